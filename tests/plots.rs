//! Every chart type written to disk, decoded back with the `png` crate, and checked for size and
//! for actually containing a picture.

use std::path::PathBuf;

use backprop::plot::{
    histogram, histogram_grid, line_chart, line_grid, HistCell, HistRow, Panel, Series, HEIGHT, WIDTH,
};
use proptest::prelude::*;

mod common;
use common::assert_picture;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("backprop-plots-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// Files left in the directory, to catch stray temporaries.
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn decay(rate: f64, noise: f64) -> Vec<(f64, f64)> {
    (0..1000)
        .map(|i| (f64::from(i), (-rate * f64::from(i)).exp() * (1.0 + noise * (f64::from(i) * 0.7).sin())))
        .collect()
}

#[test]
fn line_chart_writes_a_png_and_no_temporaries() {
    let dir = TempDir::new("line");
    let a = decay(0.005, 0.1);
    let b = decay(0.004, 0.2);
    let path = dir.join("loss.png");
    let stats = line_chart(
        &path,
        "loss",
        "step",
        "E",
        &[Series::new("manual", &a), Series::new("libtorch", &b)],
        true,
        &[("tolerance".to_owned(), 1e-3)],
    )
    .unwrap();
    assert_eq!((stats.skipped_points, stats.skipped_hlines), (0, 0));
    assert_eq!(assert_picture(&path, WIDTH, HEIGHT), HEIGHT);
    // Overwriting an existing file works too, and leaves only the one file.
    line_chart(&path, "loss", "step", "E", &[Series::new("manual", &a)], false, &[]).unwrap();
    assert_picture(&path, WIDTH, HEIGHT);
    assert_eq!(dir.entries(), vec!["loss.png"]);
}

#[test]
fn log_axis_skips_and_counts_unplottable_points() {
    let dir = TempDir::new("logskip");
    let pts = [(0.0, 1e-15), (1.0, 0.0), (2.0, -3.0), (3.0, f64::NAN), (4.0, 2e-15), (f64::INFINITY, 1.0)];
    let path = dir.join("errors.png");
    let hlines =
        [("epsilon".to_owned(), f64::EPSILON), ("bad".to_owned(), 0.0), ("nan".to_owned(), f64::NAN)];
    let stats =
        line_chart(&path, "errors", "step", "error", &[Series::new("layer 1", &pts)], true, &hlines).unwrap();
    assert_eq!(stats.skipped_points, 4);
    assert_eq!(stats.skipped_hlines, 2);
    assert_picture(&path, WIDTH, HEIGHT);
    // The same data on a linear axis only loses the non-finite points.
    let stats = line_chart(&path, "errors", "step", "error", &[Series::new("layer 1", &pts)], false, &hlines)
        .unwrap();
    assert_eq!((stats.skipped_points, stats.skipped_hlines), (2, 1));
}

#[test]
fn all_nan_and_empty_charts_are_still_drawn() {
    let dir = TempDir::new("nan");
    let nan = vec![(f64::NAN, f64::NAN); 50];
    for (i, log) in [true, false].into_iter().enumerate() {
        let path = dir.join(&format!("nan{i}.png"));
        let stats = line_chart(&path, "all NaN", "x", "y", &[Series::new("nan", &nan)], log, &[]).unwrap();
        assert_eq!(stats.skipped_points, 50);
        assert_picture(&path, WIDTH, HEIGHT);
    }
    let path = dir.join("empty.png");
    line_chart(&path, "no series", "x", "y", &[], true, &[]).unwrap();
    assert_picture(&path, WIDTH, HEIGHT);
    let path = dir.join("empty-grid.png");
    line_grid(&path, "no panels", &[]).unwrap();
    histogram_grid(dir.join("empty-hist.png"), "no rows", &[]).unwrap();
    assert_picture(&path, WIDTH, HEIGHT);
    assert_picture(&dir.join("empty-hist.png"), WIDTH, HEIGHT);
}

#[test]
fn line_grid_stacks_panels() {
    let dir = TempDir::new("grid");
    let a = decay(0.005, 0.1);
    let b: Vec<_> = a.iter().map(|&(x, y)| (x, y * 1e-14)).collect();
    let panels: Vec<Panel> = (0..3)
        .map(|i| Panel {
            title: format!("panel {i}"),
            x_label: "step".into(),
            y_label: "value".into(),
            series: vec![Series::new("a", &a), Series::new("b", &b)],
            log_y: i != 1,
            hlines: vec![("eps".into(), f64::EPSILON)],
        })
        .collect();
    let path = dir.join("grid.png");
    let stats = line_grid(&path, "three panels", &panels).unwrap();
    assert_eq!(stats.skipped_points, 0);
    assert!(assert_picture(&path, WIDTH, HEIGHT) > HEIGHT);
}

/// A dashed series drawn exactly over a solid one leaves both visible: the picture differs from the
/// solid one alone, and holds pixels of both colours.
#[test]
fn a_dashed_series_over_a_solid_one_leaves_both_visible() {
    let dir = TempDir::new("dashed");
    let a = decay(0.005, 0.1);
    let (one, two) = (dir.join("one.png"), dir.join("two.png"));
    line_chart(&one, "solid", "step", "loss", &[Series::new("manual", &a)], true, &[]).unwrap();
    line_chart(
        &two,
        "solid and dashed",
        "step",
        "loss",
        &[Series::new("manual", &a), Series::dashed("torch", &a)],
        true,
        &[],
    )
    .unwrap();
    assert_picture(&two, WIDTH, HEIGHT);
    let colours = |path: &std::path::Path| {
        let mut reader = png::Decoder::new(std::fs::File::open(path).unwrap()).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf[..info.buffer_size()]
            .chunks_exact(3)
            .map(|c| [c[0], c[1], c[2]])
            .collect::<std::collections::HashSet<_>>()
    };
    let (c1, c2) = (colours(&one), colours(&two));
    assert!(c2.len() > c1.len(), "the dashed series adds colours");
    assert!(c2.difference(&c1).count() > 10, "the dashed series is visible");
}

#[test]
fn histogram_grid_draws_every_cell() {
    let dir = TempDir::new("hist");
    let data: Vec<Vec<f64>> = (0..4)
        .map(|j| (0..2000).map(|i| (f64::from(i) * 0.37 * f64::from(j + 1)).sin().tanh()).collect())
        .collect();
    let mut with_bad = data[0].clone();
    with_bad.extend([f64::NAN, 7.0, -7.0]);
    let rows: Vec<HistRow> = (0..3)
        .map(|r| HistRow {
            title: format!("hidden layer {r}"),
            range: if r == 2 { None } else { Some((-1.0, 1.0)) },
            cells: (0..4)
                .map(|c| HistCell {
                    title: format!("moment {c}"),
                    values: if r == 1 && c == 0 { &with_bad } else { &data[c] },
                })
                .collect(),
            x_label: "z".into(),
            marked: vec![(-1.0, -0.9), (0.9, 1.0)],
        })
        .collect();
    let path = dir.join("hist.png");
    let stats = histogram_grid(&path, "activations", &rows).unwrap();
    assert_eq!((stats.skipped_nonfinite, stats.clamped), (1, 2));
    assert_picture(&path, WIDTH, HEIGHT);
    let h = histogram(&with_bad, 50, -1.0, 1.0);
    assert_eq!(h.total(), with_bad.len() as u64 - 1);
}

#[test]
fn missing_directory_is_an_error_not_a_panic() {
    let dir = TempDir::new("missing");
    let path = dir.join("no/such/dir/x.png");
    let err = line_chart(&path, "t", "x", "y", &[], false, &[]).unwrap_err();
    assert!(format!("{err:#}").contains("x.png"), "{err:#}");
    assert!(dir.entries().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Arbitrary values, including every kind of non-finite one, never make a chart fail, and
    /// histograms count every finite value.
    #[test]
    fn arbitrary_data_always_renders(
        ys in prop::collection::vec(prop_oneof![
            any::<f64>(),
            Just(0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            -1e3..1e3f64,
        ], 0..60),
        log in any::<bool>(),
    ) {
        let dir = TempDir::new("prop");
        let pts: Vec<_> = ys.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect();
        let path = dir.join("p.png");
        line_chart(&path, "t", "x", "y", &[Series::new("s", &pts)], log, &[("h".into(), ys.first().copied().unwrap_or(1.0))]).unwrap();
        let rows = [HistRow { title: "r".into(), range: None, cells: vec![HistCell { title: "c".into(), values: &ys }], x_label: String::new(), marked: vec![] }];
        histogram_grid(dir.join("h.png"), "h", &rows).unwrap();
        let finite = ys.iter().filter(|v| v.is_finite()).count() as u64;
        prop_assert_eq!(histogram(&ys, 7, -1.0, 1.0).total(), finite);
        prop_assert_eq!(dir.entries(), vec!["h.png".to_owned(), "p.png".to_owned()]);
    }
}
