//! Histograms: binning values, and grids of histogram cells.

use super::*;

/// Counts of values per bin, from [`histogram`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// One count per bin, lowest bin first.
    pub counts: Vec<u64>,
    /// NaN and ±Inf values, which are in no bin.
    pub skipped_nonfinite: usize,
    /// Finite values below the range, counted in the first bin.
    pub clamped_low: usize,
    /// Finite values above the range, counted in the last bin.
    pub clamped_high: usize,
}

impl Histogram {
    /// Values counted in some bin: every finite input value.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Bins `values` into `bins` equal bins over `[lo, hi]`.
///
/// Every finite value lands in exactly one bin, so [`Histogram::total`] equals the number of
/// finite values: a value exactly at `hi` goes into the last bin, and values outside `[lo, hi]`
/// are clamped into the first or last bin (and counted in `clamped_low` / `clamped_high`),
/// because a histogram of activations that silently lost its saturated tail would mislead.
/// NaN and ±Inf are skipped and counted.
///
/// Degenerate arguments do not panic: `bins == 0` is taken as 1, and a range that is not finite
/// or not increasing is replaced by [`auto_range`] of the values.
pub fn histogram(values: &[f64], bins: usize, lo: f64, hi: f64) -> Histogram {
    let bins = bins.max(1);
    let (lo, hi) = if lo.is_finite() && hi.is_finite() && lo < hi { (lo, hi) } else { auto_range(values) };
    let mut h = Histogram { counts: vec![0; bins], ..Histogram::default() };
    // Halved so that the width of a range like [-f64::MAX, f64::MAX] does not overflow.
    let half_width = hi * 0.5 - lo * 0.5;
    for &v in values {
        if !v.is_finite() {
            h.skipped_nonfinite += 1;
            continue;
        }
        let bin = if v < lo {
            h.clamped_low += 1;
            0
        } else if v > hi {
            h.clamped_high += 1;
            bins - 1
        } else {
            let t = (v * 0.5 - lo * 0.5) / half_width;
            // `as` saturates, and t ∈ [0, 1] here, so this cannot go out of bounds.
            ((t * bins as f64) as usize).min(bins - 1)
        };
        h.counts[bin] += 1;
    }
    h
}

/// A finite, increasing range covering the finite `values`: `[min, max]`, widened by 0.5 on
/// each side when all values are equal, and `[0, 1]` when there are none.
pub fn auto_range(values: &[f64]) -> (f64, f64) {
    let (lo, hi) = finite_min_max(values.iter().copied()).unwrap_or((0.0, 1.0));
    if lo < hi {
        (lo, hi)
    } else {
        widen_single(lo)
    }
}

pub(super) fn finite_min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

pub(super) fn widen_single(v: f64) -> (f64, f64) {
    let pad = (v.abs() * 0.1).max(0.5);
    (v - pad, v + pad)
}

/// One cell of a [`histogram_grid`]: a caption (the caller's summary statistics) and the values.
#[derive(Clone, Debug)]
pub struct HistCell<'a> {
    /// Caption above the cell, e.g. `"step 0: mean 0.01, std 0.52, 3% saturated"`.
    pub title: String,
    /// The values to bin; non-finite ones are skipped and noted under the cell.
    pub values: &'a [f64],
}

/// One row of a [`histogram_grid`], e.g. one hidden layer at several moments of training.
#[derive(Clone, Debug)]
pub struct HistRow<'a> {
    /// Heading over the row, e.g. `"hidden layer 1 (tanh)"`.
    pub title: String,
    /// Bin range for every cell of the row, e.g. `Some((-1.0, 1.0))` for tanh. `None` takes the
    /// range of all the row's finite values, so that the cells of a row stay comparable.
    pub range: Option<(f64, f64)>,
    /// The cells, left to right.
    pub cells: Vec<HistCell<'a>>,
    /// Description of every cell's x axis (the values binned), e.g. `"z = φ(a)"`.
    pub x_label: String,
    /// Intervals `(lo, hi)` of the x axis shaded in every cell of the row, e.g. the saturated
    /// tails of tanh; the row's title should say what they mean.
    pub marked: Vec<(f64, f64)>,
}

/// Fill of the [`HistRow::marked`] intervals: light, under the bars.
pub(super) const MARK_FILL: RGBColor = RGBColor(250, 215, 205);

/// What a histogram grid could not bin faithfully, summed over all cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistStats {
    /// NaN and ±Inf values, left out.
    pub skipped_nonfinite: usize,
    /// Finite values outside their row's range, drawn in the edge bins.
    pub clamped: usize,
}

/// Bins per histogram cell.
pub const HIST_BINS: usize = 50;

/// Draws one histogram per cell, [`HIST_BINS`] bins each, one row per [`HistRow`] with its
/// heading, under a common `title`. The image is [`WIDTH`] wide and at least [`HEIGHT`] tall.
///
/// Bins follow [`histogram`]: out-of-range values are clamped into the edge bins and
/// non-finite ones skipped; either is noted under the cell it happened in, and summed in the
/// result.
pub fn histogram_grid(path: impl AsRef<Path>, title: &str, rows: &[HistRow]) -> Result<HistStats> {
    let height = grid_height(rows.len(), 260, 70);
    let cols = rows.iter().map(|r| r.cells.len()).max().unwrap_or(0);
    render_atomic(path.as_ref(), (WIDTH, height), |root| {
        let body = draw_title(root, title, TITLE_SIZE, rows.is_empty() || cols == 0)?;
        let mut stats = HistStats::default();
        if rows.is_empty() || cols == 0 {
            draw_hist_cell(&body, "", &histogram(&[], HIST_BINS, 0.0, 1.0), (0.0, 1.0), "", &[])?;
            return Ok(stats);
        }
        for (row_area, row) in body.split_evenly((rows.len(), 1)).iter().zip(rows) {
            let (lo, hi) = match row.range {
                Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => (lo, hi),
                _ => auto_range(&row.cells.iter().flat_map(|c| c.values.iter().copied()).collect::<Vec<_>>()),
            };
            let cells_area = draw_row_heading(row_area, &row.title)?;
            for (cell_area, cell) in cells_area.split_evenly((1, cols)).iter().zip(&row.cells) {
                let h = histogram(cell.values, HIST_BINS, lo, hi);
                stats.skipped_nonfinite += h.skipped_nonfinite;
                stats.clamped += h.clamped_low + h.clamped_high;
                draw_hist_cell(cell_area, &cell.title, &h, (lo, hi), &row.x_label, &row.marked)?;
            }
        }
        Ok(stats)
    })
}

/// One histogram: bars of `h` over `range`, the x axis described by `x_label` and the
/// intervals `marked` shaded under the bars; the y axis counts values.
pub(super) fn draw_hist_cell(
    area: &Area,
    title: &str,
    h: &Histogram,
    range: (f64, f64),
    x_label: &str,
    marked: &[(f64, f64)],
) -> Result<()> {
    let (lo, hi) = range;
    let title =
        if h.total() == 0 { format!("{title} (no data)").trim_start().to_owned() } else { title.to_owned() };
    let (w, _) = area.dim_in_pixel();
    let size = fit_size(area, &title, CELL_TITLE_SIZE, w.saturating_sub(10))?;
    let body = area.titled(&title, text_style(size)).ctx("drawing a cell title")?;

    let max = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let x_range = lo..hi;
    let y_range = 0.0..max * 1.08;
    let (bw, bh) = body.dim_in_pixel();
    let x_ticks = hist_x_ticks(&x_range, bw);
    let y_ticks = nice_ticks(&y_range, (bh / 45).clamp(2, 5) as usize);
    let mut y_label_w = 0;
    for t in &y_ticks {
        y_label_w = y_label_w.max(text_width(&body, &fmt_num(*t), CELL_TICK_SIZE)?);
    }
    let mut notes = Vec::new();
    if h.clamped_low + h.clamped_high > 0 {
        notes.push(format!("{} outside range, in edge bins", h.clamped_low + h.clamped_high));
    }
    if h.skipped_nonfinite > 0 {
        notes.push(format!("{} NaN/Inf skipped", h.skipped_nonfinite));
    }
    let note = notes.join("; ");
    let desc = match (x_label.is_empty(), note.is_empty()) {
        (_, true) => x_label.to_string(),
        (true, false) => note.clone(),
        (false, false) => format!("{x_label} ({note})"),
    };

    let mut chart = ChartBuilder::on(&body)
        .margin(4)
        .margin_right(12)
        .x_label_area_size(if desc.is_empty() { 24 } else { 42 })
        .y_label_area_size(y_label_w + 30)
        .build_cartesian_2d(Axis::new(x_range, x_ticks, vec![]), Axis::new(y_range, y_ticks, vec![]))
        .ctx("setting up a histogram")?;
    let desc_size = fit_size(&body, &desc, 13.0, bw.saturating_sub(y_label_w + 50))?;
    // A note about values the bins could not hold is red; a plain axis description black.
    let desc_color = if note.is_empty() { BLACK } else { RGBColor(170, 0, 0) };
    chart
        .configure_mesh()
        .x_desc(desc.as_str())
        .y_desc("count")
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&|v| fmt_num(*v))
        .label_style(text_style(CELL_TICK_SIZE))
        .axis_desc_style(text_style(desc_size).color(&desc_color))
        .bold_line_style(RGBColor(220, 220, 220))
        .light_line_style(WHITE)
        .draw()
        .ctx("drawing histogram axes")?;

    let top = max * 1.08;
    let shades = marked
        .iter()
        .map(|&(a, b)| (a.max(lo), b.min(hi)))
        .filter(|(a, b)| a < b)
        .map(|(a, b)| Rectangle::new([(a, 0.0), (b, top)], MARK_FILL.filled()));
    chart.draw_series(shades).ctx("shading a marked interval")?;
    let n = h.counts.len().max(1) as f64;
    let width = hi * 0.5 - lo * 0.5;
    let bars = h.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| {
        // Computed from the halved width, like `histogram`, so that huge ranges do not overflow.
        let x0 = lo + 2.0 * width * (i as f64 / n);
        let x1 = lo + 2.0 * width * ((i + 1) as f64 / n);
        Rectangle::new([(x0, 0.0), (x1, *c as f64)], HIST_FILL.filled())
    });
    chart.draw_series(bars).ctx("drawing histogram bars")?;
    Ok(())
}
