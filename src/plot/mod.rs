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

mod axis;
mod histogram;
mod line;
mod map;
#[cfg(test)]
mod tests;

use self::axis::*;
use self::histogram::*;
use self::line::*;

pub use self::histogram::{
    auto_range, histogram, histogram_grid, HistCell, HistRow, HistStats, Histogram, HIST_BINS,
};
pub use self::line::{
    envelope, line_chart, line_grid, line_grid_shared, line_grid_shared_x, log_safe, Panel, PlotStats,
    Series, MARKERS,
};
pub use self::map::{map_grid, MapCell, MapRow};

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
