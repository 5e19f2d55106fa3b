//! The one GEMM entry point the batched code uses, [`gemm()`]. A product `C = A·B` (β = 0) goes,
//! by its size m·n·k in multiply-adds:
//! - up to [`MID_GEMM`], to the register tiles of `kernels::tile` (AVX-512 or AVX2), which
//!   need no packing and no allocation; a B stored transposed is transposed first into a
//!   per-thread scratch buffer (Δ^k (W^k)ᵀ reads W^k so);
//! - a one-column C of up to [`SMALL_GEMM`], or any small product on a CPU without AVX2, to the
//!   dot and row loops of `kernels::small`;
//! - everything else to the `gemm` crate, whose packing and cache blocking win on large operands.

use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::kernels::simd::{level, Level};
use crate::kernels::small::small_product;
use std::sync::atomic::{AtomicUsize, Ordering};

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
        Op::N => (a.rows(), a.cols(), a.cols() as isize, 1),
        Op::T => (a.cols(), a.rows(), 1, a.cols() as isize),
    };
    let (kb, n, rsb, csb) = match op_b {
        Op::N => (b.rows(), b.cols(), b.cols() as isize, 1),
        Op::T => (b.cols(), b.rows(), 1, b.cols() as isize),
    };
    assert_eq!(k, kb, "gemm: inner dimensions differ ({m}×{k} by {kb}×{n})");
    assert_eq!(c.shape(), (m, n), "gemm: output is {}×{}, product is {m}×{n}", c.rows(), c.cols());
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
            small_product(m, n, k, a, rsa, csa, b, rsb, csb, c);
            return;
        }
    }
    let parallelism = match THREADS.load(Ordering::Relaxed) {
        t if t > 1 => ::gemm::Parallelism::Rayon(t),
        _ => ::gemm::Parallelism::None,
    };
    // SAFETY: the shapes were checked against the three buffers' lengths just above (each buffer
    // holds exactly rows·cols entries), and `c` is borrowed mutably, so it aliases neither input.
    // The gemm crate computes dst ← α·dst + β·lhs·rhs (its α and β are the other way round), and
    // takes column stride before row stride.
    let ldc = c.cols() as isize;
    IN_GEMM.with(|g| g.set(true));
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            c.as_mut_slice().as_mut_ptr(),
            1,
            ldc,
            beta != T::zero(),
            a.as_slice().as_ptr(),
            csa,
            rsa,
            b.as_slice().as_ptr(),
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

/// `C = A·B` in `kernels::tile`'s register tiles, if this CPU and type have them (else
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
        use crate::kernels::tile::{avx2_f32, avx2_f64, avx512_f32, avx512_f64, transpose};
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
/// every product this small, run in `kernels::small`'s dot and row loops: the GEMM crate's set-up per
/// call costs more than such a product's arithmetic. A one-column C is the output layer of a
/// one-output network, where `kernels::tile`'s masked single vector would run one long
/// chain per row: the dot form was 2.5–5× faster at 64×1×32 (AVX-512).
pub const SMALL_GEMM: usize = 4096;

/// Products of at most this many multiply-adds run in `kernels::tile`'s register tiles
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
