//! A dense row-major matrix, and the one GEMM entry point the batched code uses (the `gemm`
//! crate: its small-matrix kernels need no packing, which is what small networks spend on).

use crate::model::scalar::Scalar;
use std::ops::{Index, IndexMut};
use std::sync::atomic::{AtomicUsize, Ordering};

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

    /// Copies rows `idx[0], idx[1], ...` of `src` into this matrix, which becomes `idx.len() × cols`.
    pub fn gather_rows(&mut self, src: &Matrix<T>, idx: &[usize]) {
        assert_eq!(src.cols, self.cols, "gather_rows: column counts differ");
        self.set_rows(idx.len());
        for (r, &i) in idx.iter().enumerate() {
            let cols = self.cols;
            self.data[r * cols..(r + 1) * cols].copy_from_slice(src.row(i));
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

/// Whether a GEMM operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// As stored.
    N,
    /// Transposed (read through swapped strides; nothing is copied).
    T,
}

/// `C ← α·op(A)·op(B) + β·C`, with `op` as stored or transposed; panics on mismatched shapes.
///
/// The batched MLP's three identities are all this call: `A^k = Z^{k−1} W^k`,
/// `Δ^{k−1} ∝ Δ^k (W^k)ᵀ` and `∇W^k = (Z^{k−1})ᵀ Δ^k`.
pub fn gemm<T: Scalar>(
    alpha: T,
    a: &Matrix<T>,
    op_a: Op,
    b: &Matrix<T>,
    op_b: Op,
    beta: T,
    c: &mut Matrix<T>,
) {
    let (m, k, rsa, csa) = match op_a {
        Op::N => (a.rows, a.cols, a.cols as isize, 1),
        Op::T => (a.cols, a.rows, 1, a.cols as isize),
    };
    let (kb, n, rsb, csb) = match op_b {
        Op::N => (b.rows, b.cols, b.cols as isize, 1),
        Op::T => (b.cols, b.rows, 1, b.cols as isize),
    };
    assert_eq!(k, kb, "gemm: inner dimensions differ ({m}×{k} by {kb}×{n})");
    assert_eq!((c.rows, c.cols), (m, n), "gemm: output is {}×{}, product is {m}×{n}", c.rows, c.cols);
    let parallelism = match THREADS.load(Ordering::Relaxed) {
        t if t > 1 => gemm::Parallelism::Rayon(t),
        _ => gemm::Parallelism::None,
    };
    // SAFETY: the shapes were checked against the three buffers' lengths just above (each buffer
    // holds exactly rows·cols entries), and `c` is borrowed mutably, so it aliases neither input.
    // The gemm crate computes dst ← α·dst + β·lhs·rhs (its α and β are the other way round), and
    // takes column stride before row stride.
    IN_GEMM.with(|g| g.set(true));
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.data.as_mut_ptr(),
            1,
            c.cols as isize,
            beta != T::zero(),
            a.data.as_ptr(),
            csa,
            rsa,
            b.data.as_ptr(),
            csb,
            rsb,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism,
        )
    }
    IN_GEMM.with(|g| g.set(false));
}

thread_local! {
    static IN_GEMM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside [`gemm()`]: lets an allocation-counting allocator tell the GEMM
/// crate's own packing buffers (which it allocates per call for some shapes) from the rest.
pub fn in_gemm() -> bool {
    IN_GEMM.with(|g| g.get())
}

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets how many threads the manual MLP's matrix products use (default 1; more run on rayon's
/// pool). Applies to every later [`gemm()`] in the process.
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}
