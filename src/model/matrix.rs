//! A dense row-major matrix, and the one GEMM entry point the batched code uses. A product
//! `C = A·B` (β = 0) goes, by its size m·n·k in multiply-adds:
//! - up to [`MID_GEMM`], to the register tiles of `model::tile` (AVX-512 or AVX2), which
//!   need no packing and no allocation; a B stored transposed is transposed first into a
//!   per-thread scratch buffer (Δ^k (W^k)ᵀ reads W^k so);
//! - a one-column C of up to [`SMALL_GEMM`], or any small product on a CPU without AVX2, to the
//!   dot and row loops of this module;
//! - everything else to the `gemm` crate, whose packing and cache blocking win on large operands.
use crate::model::scalar::Scalar;
use crate::model::simd::{level, Level};
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
        // SAFETY: each version runs only on a CPU that `level` found to have its features.
        match level() {
            Level::Avx512 => unsafe { rows::add_to_rows_avx512(&mut self.data, b) },
            Level::Avx2 => unsafe { rows::add_to_rows_avx2(&mut self.data, b) },
            Level::Base => rows::add_to_rows(&mut self.data, b),
        }
    }

    /// The column sums `Σ_r M[r][j]` into `out` (`cols` entries): `∇b^k = (Δ^k)ᵀ 1`, eq. (6) for
    /// the bias. Each column is summed from the first row to the last, so the result does not
    /// depend on the instruction set. Panics unless `out.len() == cols`.
    pub fn column_sums(&self, out: &mut [T]) {
        assert_eq!(out.len(), self.cols, "column_sums: {} outputs for {} columns", out.len(), self.cols);
        // SAFETY: as in `add_to_rows`.
        match level() {
            Level::Avx512 => unsafe { rows::column_sums_avx512(&self.data, out) },
            Level::Avx2 => unsafe { rows::column_sums_avx2(&self.data, out) },
            Level::Base => rows::column_sums(&self.data, out),
        }
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

/// The row loops, written once and compiled per instruction set.
mod rows {
    use crate::model::scalar::Scalar;

    #[inline(always)]
    pub(super) fn add_to_rows<T: Scalar>(data: &mut [T], b: &[T]) {
        for row in data.chunks_exact_mut(b.len().max(1)) {
            for (v, &c) in row.iter_mut().zip(b) {
                *v = *v + c;
            }
        }
    }

    /// Sums `W` adjacent columns from column `j` on, in registers, row after row.
    #[inline(always)]
    fn sum_block<T: Scalar, const W: usize>(data: &[T], cols: usize, j: usize, out: &mut [T]) {
        let mut acc = [T::zero(); W];
        for row in data.chunks_exact(cols) {
            let part = &row[j..j + W];
            for l in 0..W {
                acc[l] = acc[l] + part[l];
            }
        }
        out[j..j + W].copy_from_slice(&acc);
    }

    #[inline(always)]
    pub(super) fn column_sums<T: Scalar>(data: &[T], out: &mut [T]) {
        let cols = out.len();
        if cols == 0 {
            return;
        }
        let mut j = 0;
        while cols - j >= 32 {
            sum_block::<T, 32>(data, cols, j, out);
            j += 32;
        }
        while cols - j >= 8 {
            sum_block::<T, 8>(data, cols, j, out);
            j += 8;
        }
        while j < cols {
            sum_block::<T, 1>(data, cols, j, out);
            j += 1;
        }
    }

    /// `C = A·B` (`m × n`, row-major, overwritten) for small operands, read through their strides
    /// (entry (i, p) of A at `a[i·rsa + p·csa]`, (p, j) of B at `b[p·rsb + j·csb]`; the caller
    /// checks that B's rows or B's columns and A's rows are contiguous). Every sum runs over p in
    /// registers: where B's rows are contiguous, blocks of C's columns accumulate A[i][p]·B[p][·]
    /// (the forward product and ∇W); otherwise each entry is a dot product in eight lanes (Δ Wᵀ).
    /// A one-column C is a one-row C in the same memory, so it takes whichever form reads its
    /// operands with unit stride.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn small_product<T: Scalar>(
        m: usize,
        n: usize,
        k: usize,
        a: &[T],
        rsa: isize,
        csa: isize,
        b: &[T],
        rsb: isize,
        csb: isize,
        c: &mut [T],
    ) {
        let (rsa, csa, rsb, csb) = (rsa as usize, csa as usize, rsb as usize, csb as usize);
        if n == 0 || m == 0 {
            return;
        }
        if k == 0 {
            c[..m * n].fill(T::zero());
        } else if n == 1 && csa == 1 {
            dots(m, n, k, a, rsa, b, csb, c);
        } else if n == 1 && rsa == 1 {
            // C (m × 1) = A·b read as Cᵀ (1 × m) = bᵀ·Aᵀ: Aᵀ's rows are A's contiguous columns.
            rows_of(1, m, k, b, csb, rsb, a, csa, c);
        } else if csb == 1 {
            rows_of(m, n, k, a, rsa, csa, b, rsb, c);
        } else {
            dots(m, n, k, a, rsa, b, csb, c);
        }
    }

    /// C[i][j..j+W] = Σ_p A[i][p]·B[p][j..j+W] for R rows i at once, the R·W sums in registers.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn block<T: Scalar, const R: usize, const W: usize, const S: usize>(
        i: usize,
        j: usize,
        n: usize,
        k: usize,
        a: &[T],
        rsa: usize,
        csa: usize,
        b: &[T],
        rsb: usize,
        c: &mut [T],
    ) {
        // S partial sums over interleaved p, so that few rows still keep the FMA units busy
        // (one chain of dependent FMAs waits out each one's latency).
        let mut acc = [[[T::zero(); W]; R]; S];
        let full = k - k % S;
        let mut p = 0;
        while p < full {
            for (s, acc) in acc.iter_mut().enumerate() {
                let q = p + s;
                let bp: &[T; W] = b[q * rsb + j..q * rsb + j + W].try_into().expect("W entries");
                for r in 0..R {
                    let aiq = a[(i + r) * rsa + q * csa];
                    for l in 0..W {
                        acc[r][l] = aiq.mul_add(bp[l], acc[r][l]);
                    }
                }
            }
            p += S;
        }
        for q in full..k {
            let bp: &[T; W] = b[q * rsb + j..q * rsb + j + W].try_into().expect("W entries");
            for r in 0..R {
                let aiq = a[(i + r) * rsa + q * csa];
                for l in 0..W {
                    acc[0][r][l] = aiq.mul_add(bp[l], acc[0][r][l]);
                }
            }
        }
        for r in 0..R {
            let row = &mut c[(i + r) * n + j..(i + r) * n + j + W];
            for l in 0..W {
                let mut v = acc[0][r][l];
                for part in &acc[1..] {
                    v = v + part[r][l];
                }
                row[l] = v;
            }
        }
    }

    /// The row form: B's rows contiguous (csb = 1), C's columns in blocks of 16, 8 and 1, its
    /// rows four at a time, then two with two partial sums, then one with four (a 2 × 32 ∇W of
    /// a two-input layer is a product of this shape).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn rows_of<T: Scalar>(
        m: usize,
        n: usize,
        k: usize,
        a: &[T],
        rsa: usize,
        csa: usize,
        b: &[T],
        rsb: usize,
        c: &mut [T],
    ) {
        macro_rules! columns {
            ($rows:literal, $sums:literal, $i:expr) => {{
                let mut j = 0;
                while n - j >= 16 {
                    block::<T, $rows, 16, $sums>($i, j, n, k, a, rsa, csa, b, rsb, c);
                    j += 16;
                }
                while n - j >= 8 {
                    block::<T, $rows, 8, $sums>($i, j, n, k, a, rsa, csa, b, rsb, c);
                    j += 8;
                }
                while j < n {
                    block::<T, $rows, 1, 4>($i, j, n, k, a, rsa, csa, b, rsb, c);
                    j += 1;
                }
            }};
        }
        let mut i = 0;
        while m - i >= 4 {
            columns!(4, 1, i);
            i += 4;
        }
        if m - i >= 2 {
            columns!(2, 2, i);
            i += 2;
        }
        if i < m {
            columns!(1, 4, i);
        }
    }

    /// The dot form: A's rows and B's columns contiguous, each entry a sum in eight lanes.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn dots<T: Scalar>(m: usize, n: usize, k: usize, a: &[T], rsa: usize, b: &[T], csb: usize, c: &mut [T]) {
        const LANES: usize = 8;
        let body = k - k % LANES;
        for i in 0..m {
            let a_row = &a[i * rsa..i * rsa + k];
            for j in 0..n {
                let b_col = &b[j * csb..j * csb + k];
                let mut acc = [T::zero(); LANES];
                for (ac, bc) in a_row[..body].chunks_exact(LANES).zip(b_col[..body].chunks_exact(LANES)) {
                    for l in 0..LANES {
                        acc[l] = ac[l].mul_add(bc[l], acc[l]);
                    }
                }
                let mut sum = acc.iter().fold(T::zero(), |s, &v| s + v);
                for (&x, &y) in a_row[body..].iter().zip(&b_col[body..]) {
                    sum = x.mul_add(y, sum);
                }
                c[i * n + j] = sum;
            }
        }
    }

    macro_rules! versions {
        ($feature:literal, $add:ident, $sums:ident, $product:ident) => {
            /// # Safety
            /// The CPU must support the target features.
            #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn $product<T: Scalar>(
                m: usize,
                n: usize,
                k: usize,
                a: &[T],
                rsa: isize,
                csa: isize,
                b: &[T],
                rsb: isize,
                csb: isize,
                c: &mut [T],
            ) {
                small_product(m, n, k, a, rsa, csa, b, rsb, csb, c)
            }
            /// # Safety
            /// The CPU must support the target features.
            #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
            pub(super) unsafe fn $add<T: Scalar>(data: &mut [T], b: &[T]) {
                add_to_rows(data, b)
            }
            /// # Safety
            /// The CPU must support the target features.
            #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
            pub(super) unsafe fn $sums<T: Scalar>(data: &[T], out: &mut [T]) {
                column_sums(data, out)
            }
        };
    }
    versions!("avx2,fma", add_to_rows_avx2, column_sums_avx2, small_product_avx2);
    versions!("avx512f,avx2,fma", add_to_rows_avx512, column_sums_avx512, small_product_avx512);
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
    if beta == T::zero() && alpha == T::one() {
        let (a, b, c) = (a.as_slice(), b.as_slice(), c.as_mut_slice());
        let size = m * n * k;
        let small = size <= SMALL_GEMM;
        // Register tiles, where they measured faster: not for one column (the dot forms below
        // are), nor for a transposed B that only a few rows would reuse.
        if size <= MID_GEMM
            && n > 1
            && (csb == 1 || small || m >= 16)
            && tiled(m, n, k, a, rsa as usize, csa as usize, b, (rsb as usize, csb as usize), c)
        {
            return;
        }
        if small && (csb == 1 || (rsb == 1 && csa == 1)) {
            // SAFETY: each version runs only on a CPU that `level` found to have its features.
            match level() {
                Level::Avx512 => unsafe { rows::small_product_avx512(m, n, k, a, rsa, csa, b, rsb, csb, c) },
                Level::Avx2 => unsafe { rows::small_product_avx2(m, n, k, a, rsa, csa, b, rsb, csb, c) },
                Level::Base => rows::small_product(m, n, k, a, rsa, csa, b, rsb, csb, c),
            }
            return;
        }
    }
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

/// `C = A·B` in `model::tile`'s register tiles, if this CPU and type have them (else
/// false, C untouched). B stored as its transpose (B's rows strided) is first transposed into this
/// thread's scratch buffer, which grows to the largest B seen and is then reused.
#[allow(clippy::too_many_arguments)]
fn tiled<T: Scalar>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    rsa: usize,
    csa: usize,
    b: &[T],
    (rsb, csb): (usize, usize),
    c: &mut [T],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::model::tile::{avx2_f32, avx2_f64, avx512_f32, avx512_f64, transpose};
        let wide = std::mem::size_of::<T>() == 8;
        let level = level();
        if level == Level::Base {
            return false;
        }
        if k == 0 {
            // An empty sum; and no pointer into an empty A or B is formed.
            c[..m * n].fill(T::zero());
            return true;
        }
        let (a, c) = (a.as_ptr(), c.as_mut_ptr());
        let run = |b: *const T, rsb: usize| {
            // SAFETY: the caller checked the shapes against the buffers; each version runs only on
            // a CPU that `level` found to have its features; T is f64 or f32 as its size says.
            unsafe {
                match (level, wide) {
                    (Level::Avx512, false) => {
                        avx512_f32::product(m, n, k, a.cast(), rsa, csa, b.cast(), rsb, c.cast())
                    }
                    (Level::Avx512, true) => {
                        avx512_f64::product(m, n, k, a.cast(), rsa, csa, b.cast(), rsb, c.cast())
                    }
                    (_, false) => avx2_f32::product(m, n, k, a.cast(), rsa, csa, b.cast(), rsb, c.cast()),
                    (_, true) => avx2_f64::product(m, n, k, a.cast(), rsa, csa, b.cast(), rsb, c.cast()),
                }
            }
        };
        if csb == 1 {
            run(b.as_ptr(), rsb);
        } else {
            // B is stored as its transpose: n rows of stride csb, k entries each (rsb = 1).
            let mut scratch = SCRATCH.take();
            let words = (k * n * std::mem::size_of::<T>()).div_ceil(8);
            if scratch.len() < words {
                scratch.resize(words, 0.0);
            }
            let bt = scratch.as_mut_ptr().cast::<T>();
            // SAFETY: AVX2 is there (every level but Base has it); B's n rows of stride csb hold
            // its entries, and the scratch holds k·n of T.
            unsafe {
                if wide {
                    transpose::f64s(n, k, b.as_ptr().cast(), csb, bt.cast());
                } else {
                    transpose::f32s(n, k, b.as_ptr().cast(), csb, bt.cast());
                }
            }
            run(bt, n);
            SCRATCH.set(scratch);
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, n, k, a, rsa, csa, b, rsb, csb, c);
        false
    }
}

/// One-column products of at most this many multiply-adds (m·n·k), and on a CPU without AVX2
/// every product this small, run in this module's dot and row loops: the GEMM crate's set-up per
/// call costs more than such a product's arithmetic. A one-column C is the output layer of a
/// one-output network, where `model::tile`'s masked single vector would run one long
/// chain per row: the dot form was 2.5–5× faster at 64×1×32 (AVX-512).
pub const SMALL_GEMM: usize = 4096;

/// Products of at most this many multiply-adds run in `model::tile`'s register tiles
/// instead of the GEMM crate, on CPUs with AVX2 or AVX-512 (not a one-column C, see
/// [`SMALL_GEMM`], nor a transposed B above [`SMALL_GEMM`] with fewer than 16 rows in C, where
/// transposing B costs more than the tiles save).
///
/// Measured with products timed one by one (a 2-core AMD EPYC, AVX-512, best of 5): the tiles
/// won at 1.1–1.3× at 64×32×32 (1.6× with B transposed, f32), 1.5–15× below 4096, and at nearly
/// every other shape tried up to 96×96×96 (8.8·10⁵); they lost by 10–13% in f64 at 1×512×512 (one
/// row, B streamed from L2 either way) and at 64×64×128 with B transposed. At 128×128×128 (2·10⁶)
/// the crate won in f64 by 1.3–1.5×, its packed panels staying in L1 where a tile's strip of B no
/// longer does. On the bench's networks the tiles took the 2-32-32-1 step (batch 64) from 4.4 to
/// 3.5 µs in f32 and 7.9 to 7.0 µs in f64; 64-256³-10 (batch 128), whose output layer's products
/// have 3.3·10⁵, took 553 µs with this bound at 2¹⁸ and 531 µs at 2¹⁹ in f32 (1077 and 1028 in f64).
pub const MID_GEMM: usize = 1 << 19;

thread_local! {
    static SCRATCH: std::cell::Cell<Vec<f64>> = const { std::cell::Cell::new(Vec::new()) };
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
