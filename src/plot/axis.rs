//! Axes: ranges, tick placement and tick labels (linear and `10ⁿ` log), and the y-axis helpers
//! that let the panels of a grid share one label width.

use super::*;

/// A linear f64 axis with ticks chosen here rather than by plotters. plotters' `WithKeyPoints`
/// (`range.with_key_points(..)`) takes given ticks but implements no `ValueFormatter`, so
/// `configure_mesh` refuses it (checked against plotters 0.3.7); and log axes need ticks in
/// `log10` space that only this module knows how to place. This is the whole of what plotters
/// lacks: a range, its bold and light ticks, and a map that ignores non-finite positions.
pub(super) struct Axis {
    pub(super) range: Range<f64>,
    pub(super) bold: Vec<f64>,
    pub(super) light: Vec<f64>,
}

impl Axis {
    pub(super) fn new(range: Range<f64>, bold: Vec<f64>, light: Vec<f64>) -> Self {
        Self { range, bold, light }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.range.start) / (self.range.end - self.range.start);
        if !t.is_finite() {
            return limit.0;
        }
        // Clamped far outside the canvas (in `column`) so that `as i32` cannot wrap into view;
        // the backend clips lines to the plotting area.
        limit.0 + column(t, limit.1 - limit.0) as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Linear axes are clamped to this so that the width of the range stays finite.
pub(super) const LINEAR_LIMIT: f64 = 1e300;

/// An axis range, in axis space, over `values` (already in axis space), padded by `pad` of its
/// width on each side.
pub(super) fn axis_range(values: impl Iterator<Item = f64>, pad: f64, log: bool) -> Range<f64> {
    let Some((lo, hi)) = finite_min_max(values) else {
        // Nothing to show: a decade either side of 1 on a log axis, [0, 1] otherwise.
        return if log { -1.0..1.0 } else { 0.0..1.0 };
    };
    let (lo, hi) = if log { (lo, hi) } else { (lo.max(-LINEAR_LIMIT), hi.min(LINEAR_LIMIT)) };
    if hi - lo <= (lo.abs().max(hi.abs()) * 1e-12) {
        // One distinct value: half a decade either side on a log axis, 10% (or 0.5) otherwise.
        return if log { (lo - 0.5)..(hi + 0.5) } else { widen_single(lo).0..widen_single(hi).1 };
    }
    let p = (hi - lo) * pad;
    (lo - p)..(hi + p)
}

/// A histogram cell's x ticks for a plotting width of `bw` pixels: at least three where the
/// range allows, since with two wanted a range such as [−0.5, 0.6] rounds to a step of 1 and
/// keeps only "0".
pub(super) fn hist_x_ticks(range: &Range<f64>, bw: u32) -> Vec<f64> {
    let mut want = (bw / 70).clamp(2, 6) as usize;
    let mut ticks = nice_ticks(range, want);
    while ticks.len() < 3 && want < 12 {
        want += 1;
        ticks = nice_ticks(range, want);
    }
    ticks
}

/// Round tick positions ("1, 2 or 5 × 10ⁿ" apart) inside `range`, at most about `max_n` of them.
pub(super) fn nice_ticks(range: &Range<f64>, max_n: usize) -> Vec<f64> {
    let (lo, hi) = (range.start, range.end);
    let raw = (hi - lo) / max_n.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return vec![lo];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = match raw / mag {
        n if n <= 1.0 => mag,
        n if n <= 2.0 => 2.0 * mag,
        n if n <= 5.0 => 5.0 * mag,
        _ => 10.0 * mag,
    };
    let first = (lo / step).ceil();
    let mut ticks = Vec::new();
    // Multiplying an index, instead of adding steps, keeps ticks exact and the loop bounded even
    // where `v + step == v`.
    for i in 0..=(2 * max_n + 2) {
        let v = (first + i as f64) * step;
        if v > hi + step * 1e-9 {
            break;
        }
        ticks.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
    }
    if ticks.is_empty() {
        ticks = vec![lo, hi];
    }
    ticks
}

/// Ticks for a log axis in `log10` space: whole decades when the range spans at least two,
/// every k-th decade when there are too many, and round linear values otherwise. The second vector
/// holds minor grid lines (2..9 × 10ⁿ) where they are not too dense.
pub(super) fn log_ticks(range: &Range<f64>, max_n: usize) -> (Vec<f64>, Vec<f64>) {
    let (lo, hi) = (range.start, range.end);
    let (first, last) = (lo.ceil(), hi.floor());
    if last - first >= 1.0 {
        let step = ((hi - lo) / max_n.max(1) as f64).ceil().max(1.0);
        let decades = (last - first) as i64;
        let mut bold: Vec<f64> =
            (0..=decades).map(|i| first + i as f64).filter(|e| e.rem_euclid(step) == 0.0).collect();
        if bold.len() < 3 {
            // Two labelled decades leave the axis hard to read; label 2× and 5× as well.
            let extra = ((lo.floor() as i64)..=(hi.floor() as i64))
                .flat_map(|d| [2f64, 5.0].map(|m| d as f64 + m.log10()))
                .filter(|e| *e > lo && *e < hi);
            bold.extend(extra);
            bold.sort_by(f64::total_cmp);
        }
        let mut light = Vec::new();
        if step == 1.0 && hi - lo <= 12.0 {
            for d in (lo.floor() as i64)..=(hi.floor() as i64) {
                for m in 2..=9 {
                    let e = d as f64 + f64::from(m).log10();
                    if e > lo && e < hi {
                        light.push(e);
                    }
                }
            }
        }
        return (bold, light);
    }
    let linear = 10f64.powf(lo)..10f64.powf(hi);
    let bold = nice_ticks(&linear, max_n).into_iter().filter(|v| *v > 0.0).map(f64::log10).collect();
    (bold, Vec::new())
}

/// A tick label: plain decimals for ordinary magnitudes, `1.5e-15` style otherwise.
pub(super) fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".to_owned()
    } else if (1e-3..1e5).contains(&a) {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        let s = format!("{v:.3e}");
        match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
            None => s,
        }
    }
}

/// A log-axis tick label for `log10` value `e`. On a `plain` axis (every tick between 10⁻³ and
/// 10⁴) this is an ordinary number; elsewhere `10⁻¹⁵` at whole decades and `2·10⁻¹⁵` between.
/// The choice is made per axis, so that one axis never mixes the two styles.
pub(super) fn fmt_log(e: f64, plain: bool) -> String {
    if plain {
        return fmt_num(10f64.powf(e));
    }
    let decade = (e + 1e-9).floor();
    let mantissa = 10f64.powf(e - decade);
    let power = format!("10{}", superscript(decade as i64));
    if (mantissa - 1.0).abs() < 1e-6 {
        power
    } else {
        format!("{}·{power}", fmt_num((mantissa * 10.0).round() / 10.0))
    }
}

pub(super) fn superscript(n: i64) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let digits = n.unsigned_abs().to_string().bytes().map(|b| SUP[usize::from(b - b'0')]).collect::<String>();
    if n < 0 {
        format!("⁻{digits}")
    } else {
        digits
    }
}

/// Whether every log tick reads well as a plain decimal.
pub(super) fn plain_log_axis(ticks: &[f64]) -> bool {
    ticks.iter().all(|e| (-3.0 - 1e-9..=4.0 + 1e-9).contains(e))
}

/// The y ticks (and, on a log axis, the light minor lines) for `y_range` in `area`.
pub(super) fn y_ticks_for(area: &Area, y_range: &Range<f64>, log: bool) -> (Vec<f64>, Vec<f64>) {
    let (_, area_h) = area.dim_in_pixel();
    if log {
        log_ticks(y_range, (area_h / 55).clamp(3, 12) as usize)
    } else {
        (nice_ticks(y_range, (area_h / 60).clamp(3, 10) as usize), Vec::new())
    }
}

/// The width in pixels of the widest y tick label.
pub(super) fn y_labels_width(area: &Area, ticks: &[f64], log: bool) -> Result<u32> {
    let mut w = 0;
    for t in ticks {
        w = w.max(text_width(area, &y_tick_label(*t, log, ticks), TICK_SIZE)?);
    }
    Ok(w)
}

pub(super) fn y_tick_label(v: f64, log: bool, ticks: &[f64]) -> String {
    if log {
        fmt_log(v, plain_log_axis(ticks))
    } else {
        fmt_num(v)
    }
}
