use super::*;

/// A long noisy series: a decaying loss with spikes, from a fixed hash rather than a RNG.
fn noisy(n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            let u = h as f64 / (1u64 << 24) as f64;
            (i as f64, (-(i as f64) / n as f64 * 5.0).exp() * (0.2 + u * u * u * 3.0))
        })
        .collect()
}

/// Every point lies within the lowest and highest point the envelope keeps in its column, and
/// the envelope keeps points of the series, in order, at most four per column.
fn assert_envelope_contains(points: &[(f64, f64)], range: Range<f64>, columns: u32) {
    let kept = envelope(points, range.clone(), columns);
    let width = columns.max(1) as i32 - 1;
    let col = |x: f64| column((x - range.start) / (range.end - range.start), width);
    let mut span = std::collections::HashMap::new();
    for &(x, y) in &kept {
        let s = span.entry(col(x)).or_insert((y, y, 0));
        *s = (s.0.min(y), s.1.max(y), s.2 + 1);
    }
    for &(x, y) in points {
        let (lo, hi, _) = span[&col(x)];
        assert!(lo <= y && y <= hi, "({x}, {y}) outside its column's envelope [{lo}, {hi}]");
    }
    if points.windows(2).all(|w| w[0].0 <= w[1].0) {
        assert!(span.values().all(|s| s.2 <= 4) || kept.len() == points.len());
    }
    let mut rest = points.iter();
    assert!(kept.iter().all(|k| rest.any(|p| p == k)), "the envelope's points are the series', in order");
}

#[test]
fn the_envelope_contains_every_point() {
    let pts = noisy(100_000);
    let range = 0.0..99_999.0;
    assert_envelope_contains(&pts, range.clone(), 1000);
    assert!(envelope(&pts, range.clone(), 1000).len() <= 4 * 1000);
    // Short series are kept whole; a non-monotone one (a loop) still keeps its extremes.
    assert_eq!(envelope(&pts[..100], range, 1000), pts[..100].to_vec());
    let circle: Vec<(f64, f64)> =
        (0..50_000).map(|i| f64::from(i) / 5000.0).map(|t| (t.cos(), t.sin())).collect();
    assert_envelope_contains(&circle, -1.0..1.0, 300);
}

proptest::proptest! {
    #[test]
    fn any_series_lies_within_its_envelope(
        ys in proptest::collection::vec(-1e6f64..1e6, 0..3000),
        columns in 1u32..200,
    ) {
        let pts: Vec<(f64, f64)> = ys.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect();
        assert_envelope_contains(&pts, 0.0..ys.len().max(2) as f64, columns);
    }
}

/// Two PNG files of the same size: the pixels that differ, those inked (not white) in the
/// first, and the differing pixels with no pixel inked in both within `reach` pixels (a
/// difference that is not at the edge of a shared stroke).
fn differing_pixels(a: &Path, b: &Path, reach: i64) -> (usize, usize, usize) {
    let read = |p: &Path| {
        let mut reader = png::Decoder::new(std::fs::File::open(p).unwrap()).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (buf, info.width as i64, info.height as i64)
    };
    let ((a, w, h), (b, ..)) = (read(a), read(b));
    assert_eq!(a.len(), b.len());
    fn px(img: &[u8], w: i64, x: i64, y: i64) -> &[u8] {
        &img[3 * (y * w + x) as usize..3 * (y * w + x) as usize + 3]
    }
    let inked = |img: &[u8], x: i64, y: i64| px(img, w, x, y) != [255, 255, 255];
    let (mut differ, mut stray) = (0, 0);
    for y in 0..h {
        for x in 0..w {
            if px(&a, w, x, y) == px(&b, w, x, y) {
                continue;
            }
            differ += 1;
            let near = (-reach..=reach).any(|dy| {
                (-reach..=reach).any(|dx| {
                    let (u, v) = (x + dx, y + dy);
                    (0..w).contains(&u) && (0..h).contains(&v) && inked(&a, u, v) && inked(&b, u, v)
                })
            });
            stray += usize::from(!near);
        }
    }
    (differ, a.chunks(3).filter(|p| p != &[255, 255, 255]).count(), stray)
}

#[test]
fn a_long_series_drawn_as_its_envelope_looks_the_same() {
    let dir = std::env::temp_dir().join(format!("backprop-envelope-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pts = noisy(100_000);
    let mean: Vec<(f64, f64)> = pts.iter().step_by(500).copied().collect();
    let panels = [Panel {
        title: "loss".into(),
        series: vec![Series::new("batch loss", &pts), Series::new("epoch mean", &mean)],
        log_y: true,
        ..Panel::default()
    }];
    let (full, env) = (dir.join("full.png"), dir.join("envelope.png"));
    line_grid_drawn(&full, "t", &panels, false, Share::None).unwrap();
    line_grid_drawn(&env, "t", &panels, true, Share::None).unwrap();
    // The strokes are 3 px wide: the segments within a column join at other angles than the
    // envelope's, which moves the stroke's edge by a pixel here and there, and nothing else.
    let (differ, inked, stray) = differing_pixels(&full, &env, 2);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{differ} of {inked} inked pixels differ, {stray} away from a shared stroke");
    assert_eq!(stray, 0, "{stray} pixels differ away from the strokes both pictures draw");
    assert!(differ * 100 <= inked, "{differ} pixels differ (of {inked} inked)");
}

#[test]
fn histogram_counts_every_finite_value() {
    let values = [-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.0, 5.0, f64::NAN, f64::INFINITY, -f64::INFINITY];
    let h = histogram(&values, 4, -1.0, 1.0);
    assert_eq!(h.counts.len(), 4);
    assert_eq!(h.total(), 8);
    assert_eq!(h.skipped_nonfinite, 3);
    assert_eq!((h.clamped_low, h.clamped_high), (1, 1));
    // -2 clamped and -1 at lo: bin 0; -0.5 at a bin edge: bin 1; 0 and 0.3: bin 2;
    // 1.0 (= hi) twice and 5 clamped: last bin.
    assert_eq!(h.counts, vec![2, 1, 2, 3]);
}

#[test]
fn histogram_survives_degenerate_arguments() {
    let h = histogram(&[3.0, 3.0, f64::NAN], 0, 1.0, 1.0);
    assert_eq!(h.counts.len(), 1);
    assert_eq!(h.total(), 2);
    let h = histogram(&[1.0, 2.0], 10, f64::NAN, f64::INFINITY);
    assert_eq!(h.total(), 2);
    assert_eq!((h.clamped_low, h.clamped_high), (0, 0));
    let h = histogram(&[f64::MAX, -f64::MAX, 0.0], 3, -f64::MAX, f64::MAX);
    assert_eq!(h.counts, vec![1, 1, 1]);
    assert_eq!(histogram(&[], 5, 0.0, 1.0).total(), 0);
}

#[test]
fn log_safe_skips_and_counts() {
    let pts = [
        (0.0, 1.0),
        (1.0, 0.0),
        (2.0, -1.0),
        (3.0, f64::NAN),
        (4.0, f64::INFINITY),
        (f64::NAN, 1.0),
        (6.0, 1e-300),
        (7.0, 5e-324),
    ];
    let (kept, skipped) = log_safe(&pts);
    assert_eq!(kept, vec![(0.0, 1.0), (6.0, 1e-300), (7.0, 5e-324)]);
    assert_eq!(skipped, 5);
}

#[test]
fn prepare_breaks_lines_at_gaps() {
    let pts = [(0.0, 1.0), (1.0, 10.0), (2.0, 0.0), (3.0, 100.0), (4.0, f64::NAN)];
    let p = prepare(&Series::new("s", &pts), true);
    assert_eq!(p.runs, vec![vec![(0.0, 0.0), (1.0, 1.0)], vec![(3.0, 2.0)]]);
    assert_eq!(p.skipped, 2);
    assert_eq!(p.label, "s (2 not plottable)");
}

#[test]
fn axis_ranges_are_finite_and_increasing() {
    for (vals, log) in [
        (vec![], true),
        (vec![], false),
        (vec![-15.0], true),
        (vec![0.0], false),
        (vec![-f64::MAX, f64::MAX], false),
        (vec![-323.3, 308.2], true),
    ] {
        let r = axis_range(vals.iter().copied(), 0.05, log);
        assert!(r.start.is_finite() && r.end.is_finite() && r.start < r.end, "{vals:?}: {r:?}");
        assert!((r.end - r.start).is_finite());
    }
    assert_eq!(axis_range([-15.0].into_iter(), 0.05, true), -15.5..-14.5);
}

#[test]
fn ticks_are_round_and_inside() {
    assert_eq!(nice_ticks(&(0.0..1000.0), 10), (0..=10).map(|i| f64::from(i) * 100.0).collect::<Vec<_>>());
    let t = nice_ticks(&(-1.0..1.0), 4);
    assert_eq!(t, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
    let (bold, light) = log_ticks(&(-16.2..-9.5), 10);
    assert_eq!(bold, (-16..=-10).map(f64::from).collect::<Vec<_>>());
    assert!(!light.is_empty());
    let (bold, _) = log_ticks(&(-300.0..300.0), 10);
    assert!(bold.len() <= 11 && bold.len() >= 5, "{bold:?}");
    let (bold, _) = log_ticks(&(-0.3..0.1), 5);
    assert!(bold.len() >= 2 && bold.iter().all(|e| (-0.3..=0.1).contains(e)), "{bold:?}");
}

#[test]
fn tick_labels() {
    assert_eq!(fmt_num(0.0), "0");
    assert_eq!(fmt_num(0.1 + 0.2), "0.3");
    assert_eq!(fmt_num(250.0), "250");
    assert_eq!(fmt_num(1.5e-15), "1.5e-15");
    assert_eq!(fmt_num(2e5), "2e5");
    assert_eq!(fmt_log(-15.0, false), "10⁻¹⁵");
    assert_eq!(fmt_log(12.0, false), "10¹²");
    assert_eq!(fmt_log(-15.0 + 2f64.log10(), false), "2·10⁻¹⁵");
    assert_eq!(fmt_log(-3.0 + 5f64.log10(), false), "5·10⁻³");
    assert_eq!(fmt_log(-2.0, true), "0.01");
    assert_eq!(fmt_log(2f64.log10(), true), "2");
    assert!(plain_log_axis(&[-3.0, 0.0, 4.0]) && !plain_log_axis(&[-4.0, 0.0]));
}

#[test]
fn a_narrow_histogram_cell_gets_three_x_ticks_not_a_lone_zero() {
    assert_eq!(nice_ticks(&(-0.5..0.6), 2), vec![0.0]);
    for range in [-0.5..0.6, -0.04..0.041, -2e-6..3e-6, 0.0..1.0] {
        let ticks = hist_x_ticks(&range, 160);
        assert!(ticks.len() >= 3, "{range:?}: {ticks:?}");
        assert!(ticks.iter().all(|t| range.contains(t) || *t == range.end), "{range:?}: {ticks:?}");
    }
}
