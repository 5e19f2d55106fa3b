//! PNG charts drawn from plain data: line charts (optionally log-y, with dashed reference lines),
//! stacks of such charts, grids of histograms, and grids of black-and-white maps.
//!
//! The module knows nothing about training; callers hand it slices of numbers. Three promises hold
//! for every public function:
//!
//! * **No panics on bad data.** NaN, ±Inf, zeros or negatives on a log axis, empty series, empty
//!   grids: such points are left out and counted (see [`PlotStats`]), and a chart with nothing
//!   plottable is still drawn, with a note in its title.
//! * **Atomic files.** The image is rendered to a hidden temporary file beside the target and
//!   renamed onto it, so a reader never sees a half-written PNG, and a failed render leaves
//!   nothing behind. The file is always PNG, whatever extension the path has.
//! * **Self-contained text.** The machine may have no fonts at all, so DejaVu Sans is embedded in
//!   the binary and registered with plotters as `"sans-serif"`.
//!
//! Log axes are drawn by plotting `log10(y)` on a linear axis and labelling the ticks `10ⁿ`,
//! rather than with plotters' `log_scale()`: that one drops every tick below `f64::EPSILON`
//! (it takes them for the zero point), which is exactly the range of round-off errors this crate
//! plots.

use std::fmt::Display;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Result};

use crate::fsio;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width of every image, in pixels.
pub const WIDTH: u32 = 1200;
/// Height of a single chart; grids grow taller than this with their number of rows.
pub const HEIGHT: u32 = 800;

/// The family name every text style uses; [`ensure_font`] registers the embedded font under it.
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

const TITLE_SIZE: f64 = 30.0;
const PANEL_TITLE_SIZE: f64 = 24.0;
const AXIS_DESC_SIZE: f64 = 20.0;
const TICK_SIZE: f64 = 16.0;
const LEGEND_SIZE: f64 = 17.0;
const CELL_TITLE_SIZE: f64 = 16.0;
const CELL_TICK_SIZE: f64 = 13.0;

/// Colours for data series: the matplotlib "tab10" palette, chosen because it stays
/// distinguishable for the handful of layers a network here has.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Colours for reference lines: dark and neutral, so they read as annotations and not as data.
const HLINE_PALETTE: [RGBColor; 4] =
    [RGBColor(40, 40, 40), RGBColor(150, 150, 150), RGBColor(120, 60, 0), RGBColor(90, 0, 120)];

const HIST_FILL: RGBColor = RGBColor(70, 130, 180);

/// One named curve: `(x, y)` points, borrowed so that callers need not copy their logs.
///
/// Points are drawn in the order given and joined by lines; a point that cannot be plotted
/// (non-finite, or `y <= 0` on a log axis) breaks the line rather than being bridged over, so a gap
/// in the picture is a gap in the data.
#[derive(Clone, Debug)]
pub struct Series<'a> {
    /// Legend text.
    pub label: String,
    /// `(x, y)` pairs, any values allowed.
    pub points: &'a [(f64, f64)],
    /// Drawn dashed, over the solid ones: a curve expected to lie on another stays visible.
    pub dashed: bool,
    /// Hollow circles on the line (about [`MARKERS`] of them), drawn over every line: a third
    /// curve that may coincide with two others stays visible.
    pub markers: bool,
}

/// About how many markers a [`Series::markers`] line carries.
pub const MARKERS: usize = 24;

impl<'a> Series<'a> {
    /// A solid series from a label and its points.
    pub fn new(label: impl Into<String>, points: &'a [(f64, f64)]) -> Self {
        Self { label: label.into(), points, dashed: false, markers: false }
    }
    /// A dashed series, drawn over the solid ones.
    pub fn dashed(label: impl Into<String>, points: &'a [(f64, f64)]) -> Self {
        Self { label: label.into(), points, dashed: true, markers: false }
    }
    /// The same series with hollow circles on its line.
    pub fn with_markers(self) -> Self {
        Self { markers: true, ..self }
    }
}

/// One chart of a [`line_grid`]: the same ingredients as a [`line_chart`].
#[derive(Clone, Debug, Default)]
pub struct Panel<'a> {
    /// Caption above the chart.
    pub title: String,
    /// Description of the x axis.
    pub x_label: String,
    /// Description of the y axis.
    pub y_label: String,
    /// Curves, overlaid, each with a legend entry.
    pub series: Vec<Series<'a>>,
    /// Whether the y axis is logarithmic.
    pub log_y: bool,
    /// Horizontal reference lines `(legend text, y)`, drawn dashed.
    pub hlines: Vec<(String, f64)>,
}

/// What a line chart could not draw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlotStats {
    /// Points left out: a non-finite coordinate, or `y <= 0` on a log axis.
    pub skipped_points: usize,
    /// Reference lines left out, for the same reasons.
    pub skipped_hlines: usize,
}

impl std::ops::AddAssign for PlotStats {
    fn add_assign(&mut self, other: Self) {
        self.skipped_points += other.skipped_points;
        self.skipped_hlines += other.skipped_hlines;
    }
}

/// The points of `points` that a log-y axis can show, and how many it cannot.
///
/// A point is kept when `x` is finite and `y` is finite and strictly positive; zeros, negatives,
/// NaN and ±Inf in either coordinate are dropped and counted. Kept points are returned unchanged
/// (not logged), in their original order.
pub fn log_safe(points: &[(f64, f64)]) -> (Vec<(f64, f64)>, usize) {
    let kept: Vec<_> = points.iter().copied().filter(|&(x, y)| plottable(x, y, true)).collect();
    let skipped = points.len() - kept.len();
    (kept, skipped)
}

fn plottable(x: f64, y: f64, log_y: bool) -> bool {
    x.is_finite() && y.is_finite() && (!log_y || y > 0.0)
}

/// The pixel column, `0..=width`, that an x at share `t` of the axis falls in: the rounding the
/// axes use to place a point.
fn column(t: f64, width: i32) -> i64 {
    (f64::from(width) * t.clamp(-1e4, 1e4)).round() as i64
}

/// A long run of points cut down to what `columns` pixel columns can show, as plotting tools
/// draw long series: of each stretch of consecutive points that fall in the same column, the
/// first, the lowest, the highest and the last, in their order. Joined by lines, these draw the
/// same picture as all the points: within a column the line covers the same span from the lowest
/// to the highest point, and it enters and leaves the column where the full line does.
///
/// The column of `x` is where the axis over `x_range`, `columns` pixels wide, puts it. The points
/// kept are points of `points`, in their order; a run with no more points than two per column
/// is returned whole. Points should be finite (a line's runs are).
pub fn envelope(points: &[(f64, f64)], x_range: Range<f64>, columns: u32) -> Vec<(f64, f64)> {
    let width = i32::try_from(columns.max(1) - 1).unwrap_or(i32::MAX);
    if points.len() <= 2 * (width as usize + 1) {
        return points.to_vec();
    }
    let span = x_range.end - x_range.start;
    let col = |x: f64| column((x - x_range.start) / span, width);
    let mut out = Vec::with_capacity(4 * (width as usize + 1));
    let mut i = 0;
    while i < points.len() {
        let c = col(points[i].0);
        let mut end = i + 1;
        while end < points.len() && col(points[end].0) == c {
            end += 1;
        }
        let stretch = &points[i..end];
        let (mut lo, mut hi) = (0, 0);
        for (j, p) in stretch.iter().enumerate() {
            if p.1 < stretch[lo].1 {
                lo = j;
            }
            if p.1 > stretch[hi].1 {
                hi = j;
            }
        }
        let mut keep = [0, lo.min(hi), lo.max(hi), stretch.len() - 1];
        keep.sort_unstable();
        let mut last = None;
        for j in keep {
            if last != Some(j) {
                out.push(stretch[j]);
                last = Some(j);
            }
        }
        i = end;
    }
    out
}

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

fn finite_min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn widen_single(v: f64) -> (f64, f64) {
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
const MARK_FILL: RGBColor = RGBColor(250, 215, 205);

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

/// Draws overlaid curves with a legend, and dashed horizontal reference lines (e.g. a tolerance
/// or machine epsilon) with their own legend entries, into a [`WIDTH`]×[`HEIGHT`] PNG at `path`.
///
/// The legend sits in a column right of the plot, so it never hides data. With `log_y`, the
/// y range is chosen from the finite positive values (reference lines included, so that they are
/// always in view); points that cannot be shown are skipped and counted in the result.
pub fn line_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
    hlines: &[(String, f64)],
) -> Result<PlotStats> {
    let panel = Panel {
        title: title.to_owned(),
        x_label: x_label.to_owned(),
        y_label: y_label.to_owned(),
        series: series.to_vec(),
        log_y,
        hlines: hlines.to_vec(),
    };
    render_atomic(path.as_ref(), (WIDTH, HEIGHT), |root| draw_panel(root, &panel, TITLE_SIZE))
}

/// Draws `panels` stacked top to bottom under a common `title`, each as a [`line_chart`] would,
/// into one PNG [`WIDTH`] wide and at least [`HEIGHT`] tall (taller with more than two panels).
/// Returns the skipped counts summed over the panels.
pub fn line_grid(path: impl AsRef<Path>, title: &str, panels: &[Panel]) -> Result<PlotStats> {
    line_grid_drawn(path.as_ref(), title, panels, true, Share::None)
}

/// Which axes the panels of a grid share.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Share {
    None,
    X,
    Both,
}

/// [`line_grid`] with one x range for every panel (the union of theirs), each panel keeping its
/// own y axis: panels of different quantities over the same steps.
pub fn line_grid_shared_x(path: impl AsRef<Path>, title: &str, panels: &[Panel]) -> Result<PlotStats> {
    line_grid_drawn(path.as_ref(), title, panels, true, Share::X)
}

/// [`line_grid`] with one x range and one y range for every panel (the union of theirs), so
/// that panels compared side by side read on the same axes. The panels should share `log_y`.
pub fn line_grid_shared(path: impl AsRef<Path>, title: &str, panels: &[Panel]) -> Result<PlotStats> {
    line_grid_drawn(path.as_ref(), title, panels, true, Share::Both)
}

/// [`line_grid`]; `envelope` false draws every point of a long series instead of its
/// [`envelope`] (the picture it must match); `shared` gives every panel the same axes.
fn line_grid_drawn(
    path: &Path,
    title: &str,
    panels: &[Panel],
    envelope: bool,
    shared: Share,
) -> Result<PlotStats> {
    let height = grid_height(panels.len(), 370, 70);
    render_atomic(path, (WIDTH, height), |root| {
        let body = draw_title(root, title, TITLE_SIZE, panels.is_empty())?;
        let mut stats = PlotStats::default();
        if panels.is_empty() {
            // Empty axes rather than a blank page, so the file still looks like what it is.
            draw_panel(&body, &Panel::default(), PANEL_TITLE_SIZE)?;
            return Ok(stats);
        }
        let areas = body.split_evenly((panels.len(), 1));
        let mut plans = areas.iter().zip(panels).map(|(a, p)| plan(a, p)).collect::<Result<Vec<_>>>()?;
        if shared != Share::None {
            let with_data: Vec<&Plan> = plans
                .iter()
                .filter(|p| p.prepared.iter().any(|s| s.runs.iter().any(|r| !r.is_empty())))
                .collect();
            if !with_data.is_empty() {
                let union = |f: &dyn Fn(&Plan) -> Range<f64>| {
                    let lo = with_data.iter().map(|p| f(p).start).fold(f64::INFINITY, f64::min);
                    let hi = with_data.iter().map(|p| f(p).end).fold(f64::NEG_INFINITY, f64::max);
                    lo..hi
                };
                let (x, y) = (union(&|p| p.x_range.clone()), union(&|p| p.y_range.clone()));
                for (plan, (area, panel)) in plans.iter_mut().zip(areas.iter().zip(panels)) {
                    plan.x_range = x.clone();
                    if shared == Share::X {
                        continue;
                    }
                    plan.y_range = y.clone();
                    let (ticks, light) = y_ticks_for(area, &plan.y_range, panel.log_y);
                    plan.y_ticks = ticks;
                    plan.y_light = light;
                    plan.y_label_w = y_labels_width(area, &plan.y_ticks, panel.log_y)?;
                }
            }
        }
        let legend_w = plans.iter().map(|p| p.legend_w).max().unwrap_or(0);
        let y_label_w = plans.iter().map(|p| p.y_label_w).max().unwrap_or(0);
        for ((area, panel), plan) in areas.iter().zip(panels).zip(plans) {
            stats += draw_plan(area, panel, plan, PANEL_TITLE_SIZE, (legend_w, y_label_w), envelope)?;
        }
        Ok(stats)
    })
}

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

/// One cell of a [`map_grid`]: a `rows × cols` grid of booleans, row-major, drawn white where
/// `true` and black where `false` (a caption says what white means).
#[derive(Clone, Debug)]
pub struct MapCell<'a> {
    /// Caption above the cell.
    pub title: String,
    /// Rows of the grid (drawn top to bottom).
    pub rows: usize,
    /// Columns of the grid (drawn left to right).
    pub cols: usize,
    /// `rows × cols` entries, row-major; a shorter slice leaves the rest black.
    pub white: &'a [bool],
}

/// One row of a [`map_grid`], e.g. one hidden layer of several networks.
#[derive(Clone, Debug)]
pub struct MapRow<'a> {
    /// Heading over the row.
    pub title: String,
    /// The cells, left to right.
    pub cells: Vec<MapCell<'a>>,
}

/// Draws boolean grids as black-and-white pictures, one row of cells per [`MapRow`], under a
/// common `title` (`plt.imshow(h.abs() > 0.99, cmap="gray")`, as a picture of which units
/// saturate on which samples). The image is [`WIDTH`] wide and at least [`HEIGHT`] tall.
pub fn map_grid(path: impl AsRef<Path>, title: &str, rows: &[MapRow]) -> Result<()> {
    let height = grid_height(rows.len(), 180, 70);
    let cols = rows.iter().map(|r| r.cells.len()).max().unwrap_or(0);
    render_atomic(path.as_ref(), (WIDTH, height), |root| {
        let body = draw_title(root, title, TITLE_SIZE, rows.is_empty() || cols == 0)?;
        if rows.is_empty() || cols == 0 {
            return Ok(());
        }
        for (row_area, row) in body.split_evenly((rows.len(), 1)).iter().zip(rows) {
            let cells_area = draw_row_heading(row_area, &row.title)?;
            for (cell_area, cell) in cells_area.split_evenly((1, cols)).iter().zip(&row.cells) {
                draw_map_cell(cell_area, cell)?;
            }
        }
        Ok(())
    })
}

fn draw_map_cell(area: &Area, cell: &MapCell) -> Result<()> {
    let (w, _) = area.dim_in_pixel();
    let size = fit_size(area, &cell.title, CELL_TITLE_SIZE, w.saturating_sub(10))?;
    let body = area.titled(&cell.title, text_style(size)).ctx("drawing a cell title")?;
    let (bw, bh) = body.dim_in_pixel();
    let (x0, y0) = (6i32, 2i32);
    let (pw, ph) = (bw.saturating_sub(12) as i32, bh.saturating_sub(6) as i32);
    if pw <= 0 || ph <= 0 {
        return Ok(());
    }
    body.draw(&Rectangle::new([(x0 - 1, y0 - 1), (x0 + pw, y0 + ph)], RGBColor(150, 150, 150).filled()))
        .ctx("drawing a map")?;
    body.draw(&Rectangle::new([(x0, y0), (x0 + pw - 1, y0 + ph - 1)], BLACK.filled()))
        .ctx("drawing a map")?;
    if cell.rows == 0 || cell.cols == 0 {
        return Ok(());
    }
    let edge = |i: usize, n: usize, len: i32| (i as f64 / n as f64 * len as f64).round() as i32;
    for (i, _) in cell.white.iter().enumerate().take(cell.rows * cell.cols).filter(|(_, &w)| w) {
        let (r, c) = (i / cell.cols, i % cell.cols);
        let (left, right) = (x0 + edge(c, cell.cols, pw), x0 + edge(c + 1, cell.cols, pw));
        let (top, bottom) = (y0 + edge(r, cell.rows, ph), y0 + edge(r + 1, cell.rows, ph));
        body.draw(&Rectangle::new([(left, top), (right.max(left + 1), bottom.max(top + 1))], WHITE.filled()))
            .ctx("drawing a map")?;
    }
    Ok(())
}

fn grid_height(rows: usize, per_row: u32, header: u32) -> u32 {
    let rows = u32::try_from(rows).unwrap_or(u32::MAX).min(40);
    (header + rows * per_row).max(HEIGHT)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Plotters' errors carry no indication of what was being drawn; this adds it.
trait DrawContext<T> {
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T, E: Display> DrawContext<T> for std::result::Result<T, E> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|e| anyhow!("{what}: {e}"))
    }
}

/// Registers the embedded font once per process; a failure is remembered and reported by every
/// later call rather than drawing charts without text.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the embedded DejaVu Sans font could not be parsed".to_owned())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Renders with `draw` into a temporary PNG beside `path`, then renames it onto `path`
/// ([`fsio::write_with_suffix`]; `.png` because the backend picks the encoder from the name).
fn render_atomic<T>(path: &Path, size: (u32, u32), draw: impl FnOnce(&Area) -> Result<T>) -> Result<T> {
    ensure_font()?;
    fsio::write_with_suffix(path, ".png", |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE).ctx("clearing the canvas")?;
        let value = draw(&root)?;
        root.present().ctx("encoding the PNG")?;
        Ok(value)
        // The backend is dropped here, before the rename or removal: on an error path its Drop
        // still writes the (partial) image, which must not outlive the temporary name.
    })
}

fn text_style(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

fn text_width(area: &Area, text: &str, size: f64) -> Result<u32> {
    Ok(area.estimate_text_size(text, &text_style(size)).ctx("measuring text")?.0)
}

/// The largest size up to `size` (and at least 10 px) at which `text` fits in `max_width`, so long
/// captions shrink instead of running off the image.
fn fit_size(area: &Area, text: &str, size: f64, max_width: u32) -> Result<f64> {
    let mut s = size;
    while s > 10.0 && text_width(area, text, s)? > max_width {
        s -= 1.0;
    }
    Ok(s)
}

/// Cuts `text` (adding "…") until it fits in `max_width` at `size`.
fn truncate_to(area: &Area, text: &str, size: f64, max_width: u32) -> Result<String> {
    if text_width(area, text, size)? <= max_width {
        return Ok(text.to_owned());
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let candidate: String = chars.iter().collect::<String>() + "…";
        if text_width(area, &candidate, size)? <= max_width {
            return Ok(candidate);
        }
    }
    Ok(String::new())
}

/// Draws a centred title (noting an empty chart) and returns the area below it.
fn draw_title<'a>(area: &Area<'a>, title: &str, size: f64, empty: bool) -> Result<Area<'a>> {
    let title = if empty { format!("{title} (no data)") } else { title.to_owned() };
    let (w, _) = area.dim_in_pixel();
    let size = fit_size(area, &title, size, w.saturating_sub(20))?;
    // The ab_glyph renderer draws ascenders slightly above the anchor, which `titled` puts only
    // 5 px from the top; without the extra margin capitals get clipped at the image edge.
    let (_, area) = area.split_vertically(8);
    area.titled(&title, text_style(size)).ctx("drawing the title")
}

fn draw_row_heading<'a>(area: &Area<'a>, title: &str) -> Result<Area<'a>> {
    let (w, _) = area.dim_in_pixel();
    let size = fit_size(area, title, 19.0, w.saturating_sub(20))?;
    let (head, body) = area.split_vertically(30);
    head.fill(&RGBColor(235, 235, 235)).ctx("drawing a row heading")?;
    let style = text_style(size).pos(Pos::new(HPos::Left, VPos::Center));
    head.draw_text(title, &style, (10, 15)).ctx("drawing a row heading")?;
    Ok(body)
}

/// A series cut into runs of consecutive plottable points, `y` already in axis space
/// (`log10(y)` on a log axis).
struct Prepared {
    label: String,
    runs: Vec<Vec<(f64, f64)>>,
    skipped: usize,
    dashed: bool,
    markers: bool,
}

fn prepare(series: &Series, log_y: bool) -> Prepared {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    let mut skipped = 0;
    for &(x, y) in series.points {
        if plottable(x, y, log_y) {
            run.push((x, if log_y { y.log10() } else { y }));
        } else {
            skipped += 1;
            if !run.is_empty() {
                runs.push(std::mem::take(&mut run));
            }
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    let label = match skipped {
        0 => series.label.clone(),
        n => format!("{} ({n} not plottable)", series.label),
    };
    Prepared { label, runs, skipped, dashed: series.dashed, markers: series.markers }
}

/// A linear f64 axis with ticks chosen here rather than by plotters. plotters' `WithKeyPoints`
/// (`range.with_key_points(..)`) takes given ticks but implements no `ValueFormatter`, so
/// `configure_mesh` refuses it (checked against plotters 0.3.7); and log axes need ticks in
/// `log10` space that only this module knows how to place. This is the whole of what plotters
/// lacks: a range, its bold and light ticks, and a map that ignores non-finite positions.
struct Axis {
    range: Range<f64>,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Axis {
    fn new(range: Range<f64>, bold: Vec<f64>, light: Vec<f64>) -> Self {
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
const LINEAR_LIMIT: f64 = 1e300;

/// An axis range, in axis space, over `values` (already in axis space), padded by `pad` of its
/// width on each side.
fn axis_range(values: impl Iterator<Item = f64>, pad: f64, log: bool) -> Range<f64> {
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
fn hist_x_ticks(range: &Range<f64>, bw: u32) -> Vec<f64> {
    let mut want = (bw / 70).clamp(2, 6) as usize;
    let mut ticks = nice_ticks(range, want);
    while ticks.len() < 3 && want < 12 {
        want += 1;
        ticks = nice_ticks(range, want);
    }
    ticks
}

/// Round tick positions ("1, 2 or 5 × 10ⁿ" apart) inside `range`, at most about `max_n` of them.
fn nice_ticks(range: &Range<f64>, max_n: usize) -> Vec<f64> {
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
fn log_ticks(range: &Range<f64>, max_n: usize) -> (Vec<f64>, Vec<f64>) {
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
fn fmt_num(v: f64) -> String {
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
fn fmt_log(e: f64, plain: bool) -> String {
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

fn superscript(n: i64) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let digits = n.unsigned_abs().to_string().bytes().map(|b| SUP[usize::from(b - b'0')]).collect::<String>();
    if n < 0 {
        format!("⁻{digits}")
    } else {
        digits
    }
}

/// Whether every log tick reads well as a plain decimal.
fn plain_log_axis(ticks: &[f64]) -> bool {
    ticks.iter().all(|e| (-3.0 - 1e-9..=4.0 + 1e-9).contains(e))
}

/// Everything about a panel that can be decided before drawing, so that a grid can give all its
/// panels the same legend and tick-label widths and thereby line up their x axes.
struct Plan<'p> {
    title: String,
    prepared: Vec<Prepared>,
    hlines: Vec<(&'p str, f64)>,
    stats: PlotStats,
    x_range: Range<f64>,
    y_range: Range<f64>,
    y_ticks: Vec<f64>,
    y_light: Vec<f64>,
    /// Width the legend column needs.
    legend_w: u32,
    /// Width the y tick labels need.
    y_label_w: u32,
}

fn plan<'p>(area: &Area, panel: &'p Panel) -> Result<Plan<'p>> {
    let log = panel.log_y;
    let prepared: Vec<Prepared> = panel.series.iter().map(|s| prepare(s, log)).collect();
    let mut stats =
        PlotStats { skipped_points: prepared.iter().map(|p| p.skipped).sum(), ..PlotStats::default() };
    let mut hlines = Vec::new();
    for (label, y) in &panel.hlines {
        if plottable(0.0, *y, log) {
            hlines.push((label.as_str(), if log { y.log10() } else { *y }));
        } else {
            stats.skipped_hlines += 1;
        }
    }

    let all_points = || prepared.iter().flat_map(|p| p.runs.iter().flatten());
    let nothing = all_points().next().is_none();
    let title = if nothing {
        format!("{} (no plottable data)", panel.title).trim_start().to_owned()
    } else {
        panel.title.clone()
    };
    let x_range = axis_range(all_points().map(|p| p.0), 0.0, false);
    let y_range = axis_range(all_points().map(|p| p.1).chain(hlines.iter().map(|h| h.1)), 0.05, log);

    let (area_w, _) = area.dim_in_pixel();
    let (y_ticks, y_light) = y_ticks_for(area, &y_range, log);
    let y_label_w = y_labels_width(area, &y_ticks, log)?;
    let mut legend_w = 0;
    for label in prepared.iter().map(|p| p.label.as_str()).chain(hlines.iter().map(|h| h.0)) {
        legend_w = legend_w.max(text_width(area, label, LEGEND_SIZE)? + 60);
    }
    let legend_w = legend_w.min(area_w * 35 / 100);
    Ok(Plan { title, prepared, hlines, stats, x_range, y_range, y_ticks, y_light, legend_w, y_label_w })
}

/// The y ticks (and, on a log axis, the light minor lines) for `y_range` in `area`.
fn y_ticks_for(area: &Area, y_range: &Range<f64>, log: bool) -> (Vec<f64>, Vec<f64>) {
    let (_, area_h) = area.dim_in_pixel();
    if log {
        log_ticks(y_range, (area_h / 55).clamp(3, 12) as usize)
    } else {
        (nice_ticks(y_range, (area_h / 60).clamp(3, 10) as usize), Vec::new())
    }
}

/// The width in pixels of the widest y tick label.
fn y_labels_width(area: &Area, ticks: &[f64], log: bool) -> Result<u32> {
    let mut w = 0;
    for t in ticks {
        w = w.max(text_width(area, &y_tick_label(*t, log, ticks), TICK_SIZE)?);
    }
    Ok(w)
}

fn y_tick_label(v: f64, log: bool, ticks: &[f64]) -> String {
    if log {
        fmt_log(v, plain_log_axis(ticks))
    } else {
        fmt_num(v)
    }
}

fn draw_panel(area: &Area, panel: &Panel, title_size: f64) -> Result<PlotStats> {
    let plan = plan(area, panel)?;
    let widths = (plan.legend_w, plan.y_label_w);
    draw_plan(area, panel, plan, title_size, widths, true)
}

/// Draws a planned panel with the legend column and y tick labels `widths` wide; a solid series
/// longer than the plot is wide is drawn as its [`envelope`] when `envelope` says so.
fn draw_plan(
    area: &Area,
    panel: &Panel,
    plan: Plan,
    title_size: f64,
    widths: (u32, u32),
    envelope: bool,
) -> Result<PlotStats> {
    let Plan { title, prepared, hlines, stats, x_range, y_range, y_ticks, y_light, .. } = plan;
    let (legend_w, y_label_w) = widths;
    let body = draw_title(area, &title, title_size, false)?;
    // The legend gets its own column right of the plot, so it never covers data.
    let (body_w, _) = body.dim_in_pixel();
    let (plot_area, legend_area) = body.split_horizontally(body_w.saturating_sub(legend_w));
    let (plot_w, _) = plot_area.dim_in_pixel();
    let x_ticks = nice_ticks(&x_range, (plot_w / 110).clamp(3, 12) as usize);
    let log = panel.log_y;
    let plain = plain_log_axis(&y_ticks);
    let y_fmt = |v: &f64| if log { fmt_log(*v, plain) } else { fmt_num(*v) };

    let mut chart = ChartBuilder::on(&plot_area)
        .margin(10)
        .margin_right(20)
        .x_label_area_size(55)
        .y_label_area_size(y_label_w + 45)
        .build_cartesian_2d(Axis::new(x_range.clone(), x_ticks, vec![]), Axis::new(y_range, y_ticks, y_light))
        .ctx("setting up the axes")?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_label_formatter(&|v| fmt_num(*v))
        .y_label_formatter(&y_fmt)
        .label_style(text_style(TICK_SIZE))
        .axis_desc_style(text_style(AXIS_DESC_SIZE))
        .bold_line_style(RGBColor(205, 205, 205))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .ctx("drawing the axes")?;

    // Reference lines go under the data so that they never hide it.
    for (i, (_, y)) in hlines.iter().enumerate() {
        let style = HLINE_PALETTE[i % HLINE_PALETTE.len()].stroke_width(2);
        let ends = [(x_range.start, *y), (x_range.end, *y)];
        chart.draw_series(DashedLineSeries::new(ends, 10, 6, style)).ctx("drawing a reference line")?;
    }
    let columns = {
        let (px, _) = chart.plotting_area().get_pixel_range();
        u32::try_from(px.end - px.start).unwrap_or(0) + 1
    };
    // Solid series first, dashed ones over them.
    let mut order: Vec<usize> = (0..prepared.len()).collect();
    order.sort_by_key(|&i| prepared[i].dashed);
    for i in order {
        let p = &prepared[i];
        let color = PALETTE[i % PALETTE.len()];
        // The first series is drawn wider, so that a second one lying exactly on top of it (the
        // expected picture when comparing two implementations) leaves it visible at the edges.
        let style = color.stroke_width(if i == 0 && prepared.len() > 1 { 3 } else { 2 });
        for run in &p.runs {
            if let [only] = run.as_slice() {
                // A lone point between gaps would be invisible as a line.
                chart.draw_series([Circle::new(*only, 3, color.filled())]).ctx("drawing a point")?;
            } else {
                // One element per segment: plotters joins wide polylines with unlimited miters,
                // which turns every sharp zigzag of noisy data into a long false spike.
                if p.dashed {
                    chart
                        .draw_series(DashedLineSeries::new(run.iter().copied(), 9, 6, style))
                        .ctx("drawing a series")?;
                } else {
                    // A long series costs a polygon per segment; its envelope draws the same line.
                    let kept;
                    let run = if envelope {
                        kept = self::envelope(run, x_range.clone(), columns);
                        &kept
                    } else {
                        run
                    };
                    let segments = run.windows(2).map(|w| PathElement::new([w[0], w[1]], style));
                    chart.draw_series(segments).ctx("drawing a series")?;
                }
            }
        }
    }

    // Markers last, over every line.
    for (i, p) in prepared.iter().enumerate().filter(|(_, p)| p.markers) {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<(f64, f64)> = p.runs.iter().flatten().copied().collect();
        let every = points.len().div_ceil(MARKERS).max(1);
        let circles = points.iter().step_by(every).map(|&q| Circle::new(q, 5, color.stroke_width(2)));
        chart.draw_series(circles).ctx("drawing markers")?;
    }

    // Align the legend's first entry with the top of the plotting area.
    let top = chart.plotting_area().get_pixel_range().1.start - legend_area.get_base_pixel().1 + 5;
    draw_legend(&legend_area, top, &prepared, &hlines)?;
    Ok(stats)
}

fn draw_legend(area: &Area, top: i32, series: &[Prepared], hlines: &[(&str, f64)]) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let row_h = 26;
    let text_w = w.saturating_sub(55);
    // (label, dashed, markers, colour): the series', then the reference lines'.
    let entries = series
        .iter()
        .enumerate()
        .map(|(i, p)| (p.label.as_str(), p.dashed, p.markers, PALETTE[i % PALETTE.len()]))
        .chain(
            hlines
                .iter()
                .enumerate()
                .map(|(j, h)| (h.0, true, false, HLINE_PALETTE[j % HLINE_PALETTE.len()])),
        );
    let total = series.len() + hlines.len();
    let fits = usize::try_from((h as i32 - top).max(0) / row_h).unwrap_or(0);
    for (i, (label, dashed, markers, color)) in entries.enumerate() {
        let y = top + row_h * i as i32 + row_h / 2;
        if i + 1 == fits && total > fits {
            let more = format!("… {} more", total - i);
            let style = text_style(LEGEND_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
            area.draw_text(&more, &style, (45, y)).ctx("drawing the legend")?;
            break;
        }
        let segments: &[(i32, i32)] = if dashed { &[(5, 14), (19, 28), (33, 40)] } else { &[(5, 40)] };
        for &(a, b) in segments {
            area.draw(&PathElement::new([(a, y), (b, y)], color.stroke_width(3)))
                .ctx("drawing the legend")?;
        }
        if markers {
            area.draw(&Circle::new((22, y), 5, color.stroke_width(2))).ctx("drawing the legend")?;
        }
        let label = truncate_to(area, label, LEGEND_SIZE, text_w)?;
        let style = text_style(LEGEND_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw_text(&label, &style, (48, y)).ctx("drawing the legend")?;
    }
    Ok(())
}

/// One histogram: bars of `h` over `range`, the x axis described by `x_label` and the
/// intervals `marked` shaded under the bars; the y axis counts values.
fn draw_hist_cell(
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

#[cfg(test)]
mod tests {
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
        assert_eq!(
            nice_ticks(&(0.0..1000.0), 10),
            (0..=10).map(|i| f64::from(i) * 100.0).collect::<Vec<_>>()
        );
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
}
