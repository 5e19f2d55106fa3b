//! A dense row-major matrix: its storage, shape and accessors. Its row loops are
//! `kernels::rows`'s, and its products `kernels::gemm`'s.
use crate::kernels;
use crate::kernels::scalar::Scalar;
use std::ops::{Index, IndexMut};

/// A dense `rows × cols` matrix stored row-major: entry (i, j) at `data[i * cols + j]`.
///
/// Weights use the seed's orientation: `W^k` is `n_{k−1} × n_k`, row i an input unit, column j an
/// output unit. Batches are `N × n` with one sample per row.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix<T> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

impl<T: Scalar> Matrix<T> {
    /// A `rows × cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Matrix<T> {
        Matrix { rows, cols, data: vec![T::zero(); rows * cols] }
    }

    /// A matrix over `data`, row-major; panics when `data.len() != rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Matrix<T> {
        assert_eq!(data.len(), rows * cols, "Matrix::from_vec: {rows}×{cols} needs {} entries", rows * cols);
        Matrix { rows, cols, data }
    }

    /// A matrix whose entry (i, j) is `f(i, j)`.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> T) -> Matrix<T> {
        let data = (0..rows * cols).map(|p| f(p / cols, p % cols)).collect();
        Matrix { rows, cols, data }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
    /// The entries, row-major.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }
    /// The entries, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    /// Row `i`, mutable.
    pub fn row_mut(&mut self, i: usize) -> &mut [T] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The transpose (a copy).
    pub fn transpose(&self) -> Matrix<T> {
        Matrix::from_fn(self.cols, self.rows, |i, j| self[(j, i)])
    }

    /// Casts every entry to another scalar type (rounding to nearest).
    pub fn cast<U: Scalar>(&self) -> Matrix<U> {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|&v| U::of(v.to64())).collect(),
        }
    }

    /// Changes the number of rows, keeping the columns. Within the capacity the matrix was built
    /// with, this never allocates: the batched workspace shrinks for a short last mini-batch.
    pub fn set_rows(&mut self, rows: usize) {
        self.rows = rows;
        self.data.resize(rows * self.cols, T::zero());
    }

    /// Adds the row vector `b` to every row: the `1 (b^k)ᵀ` term of `A^k = Z^{k−1} W^k + 1 (b^k)ᵀ`,
    /// eq. (1) with a bias. Panics unless `b.len() == cols`.
    pub fn add_to_rows(&mut self, b: &[T]) {
        assert_eq!(
            b.len(),
            self.cols,
            "add_to_rows: the vector has {} entries, the rows {}",
            b.len(),
            self.cols
        );
        kernels::rows::add_to_rows(&mut self.data, b)
    }

    /// The column sums `Σ_r M[r][j]` into `out` (`cols` entries): `∇b^k = (Δ^k)ᵀ 1`, eq. (6) for
    /// the bias. Each column is summed from the first row to the last, so the result does not
    /// depend on the instruction set. Panics unless `out.len() == cols`.
    pub fn column_sums(&self, out: &mut [T]) {
        assert_eq!(out.len(), self.cols, "column_sums: {} outputs for {} columns", out.len(), self.cols);
        kernels::rows::column_sums(&self.data, out)
    }

    /// Copies rows `idx[0], idx[1], ...` of `src` into this matrix, which becomes `idx.len() × cols`.
    pub fn gather_rows(&mut self, src: &Matrix<T>, idx: &[usize]) {
        assert_eq!(src.cols, self.cols, "gather_rows: column counts differ");
        self.set_rows(idx.len());
        // Rows of a few entries are copied as arrays of that length: a call to memmove per
        // row would cost more than the copy.
        match self.cols {
            0 => {}
            1 => self.gather_fixed::<1>(src, idx),
            2 => self.gather_fixed::<2>(src, idx),
            3 => self.gather_fixed::<3>(src, idx),
            4 => self.gather_fixed::<4>(src, idx),
            cols => {
                for (dst, &i) in self.data.chunks_exact_mut(cols).zip(idx) {
                    dst.copy_from_slice(src.row(i));
                }
            }
        }
    }

    fn gather_fixed<const C: usize>(&mut self, src: &Matrix<T>, idx: &[usize]) {
        let (rows, _) = self.data.as_chunks_mut::<C>();
        let (from, _) = src.data.as_chunks::<C>();
        for (dst, &i) in rows.iter_mut().zip(idx) {
            *dst = from[i];
        }
    }
}

impl<T> Index<(usize, usize)> for Matrix<T> {
    type Output = T;
    fn index(&self, (i, j): (usize, usize)) -> &T {
        debug_assert!(i < self.rows && j < self.cols);
        &self.data[i * self.cols + j]
    }
}

impl<T> IndexMut<(usize, usize)> for Matrix<T> {
    fn index_mut(&mut self, (i, j): (usize, usize)) -> &mut T {
        debug_assert!(i < self.rows && j < self.cols);
        &mut self.data[i * self.cols + j]
    }
}
