//! Maps: grids of black-and-white cells.

use super::*;

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

pub(super) fn draw_map_cell(area: &Area, cell: &MapCell) -> Result<()> {
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
