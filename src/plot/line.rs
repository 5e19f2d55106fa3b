//! Line charts: series, panels, the envelope of long series, and single charts and stacked grids.

use super::*;

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

pub(super) fn plottable(x: f64, y: f64, log_y: bool) -> bool {
    x.is_finite() && y.is_finite() && (!log_y || y > 0.0)
}

/// The pixel column, `0..=width`, that an x at share `t` of the axis falls in: the rounding the
/// axes use to place a point.
pub(super) fn column(t: f64, width: i32) -> i64 {
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
pub(super) enum Share {
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
pub(super) fn line_grid_drawn(
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

/// A series cut into runs of consecutive plottable points, `y` already in axis space
/// (`log10(y)` on a log axis).
pub(super) struct Prepared {
    pub(super) label: String,
    pub(super) runs: Vec<Vec<(f64, f64)>>,
    pub(super) skipped: usize,
    pub(super) dashed: bool,
    pub(super) markers: bool,
}

pub(super) fn prepare(series: &Series, log_y: bool) -> Prepared {
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

/// Everything about a panel that can be decided before drawing, so that a grid can give all its
/// panels the same legend and tick-label widths and thereby line up their x axes.
pub(super) struct Plan<'p> {
    pub(super) title: String,
    pub(super) prepared: Vec<Prepared>,
    pub(super) hlines: Vec<(&'p str, f64)>,
    pub(super) stats: PlotStats,
    pub(super) x_range: Range<f64>,
    pub(super) y_range: Range<f64>,
    pub(super) y_ticks: Vec<f64>,
    pub(super) y_light: Vec<f64>,
    /// Width the legend column needs.
    pub(super) legend_w: u32,
    /// Width the y tick labels need.
    pub(super) y_label_w: u32,
}

pub(super) fn plan<'p>(area: &Area, panel: &'p Panel) -> Result<Plan<'p>> {
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

pub(super) fn draw_panel(area: &Area, panel: &Panel, title_size: f64) -> Result<PlotStats> {
    let plan = plan(area, panel)?;
    let widths = (plan.legend_w, plan.y_label_w);
    draw_plan(area, panel, plan, title_size, widths, true)
}

/// Draws a planned panel with the legend column and y tick labels `widths` wide; a solid series
/// longer than the plot is wide is drawn as its [`envelope`] when `envelope` says so.
pub(super) fn draw_plan(
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

pub(super) fn draw_legend(area: &Area, top: i32, series: &[Prepared], hlines: &[(&str, f64)]) -> Result<()> {
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
