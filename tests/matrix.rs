//! The one GEMM entry point against a plain triple loop, on the shapes a training step makes (and
//! a few awkward ones), through each of its paths: the register tiles (up to `MID_GEMM`), the dot
//! and row loops (a one-column C up to `SMALL_GEMM`; every small product on a CPU without AVX2,
//! `BACKPROP_SIMD=base`), and the `gemm` crate above. The tolerance is the product's conditioning: a dot
//! product of k terms, each side computed in its own precision, differs from the exact one by at
//! most γ_k Σ|a_ip b_pj| (Higham, Numerical Stability, §3.1), so the test ratio
//! |C − C_ref| / (k·ε·Σ|a||b|) must stay ≤ 2 (both sides' bounds), as LAPACK's tests do.

use backprop::kernels::gemm::{gemm, Op, MID_GEMM, SMALL_GEMM};
use backprop::{Matrix, Scalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random<T: Scalar>(rng: &mut ChaCha8Rng, rows: usize, cols: usize, scale: f64) -> Matrix<T> {
    Matrix::from_fn(rows, cols, |_, _| T::of(rng.gen_range(-1.0..1.0) * scale))
}

/// The largest test ratio of `gemm(op_a, op_b)` over the shapes, in `T`.
fn worst_ratio<T: Scalar>(shapes: &[(usize, usize, usize)]) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut worst = 0.0f64;
    for &(m, n, k) in shapes {
        for op_a in [Op::N, Op::T] {
            for op_b in [Op::N, Op::T] {
                // Entries spread over six orders of magnitude, so that cancellation happens.
                let a: Matrix<T> = match op_a {
                    Op::N => random(&mut rng, m, k, 1e3),
                    Op::T => random(&mut rng, k, m, 1e-3),
                };
                let b: Matrix<T> = match op_b {
                    Op::N => random(&mut rng, k, n, 1.0),
                    Op::T => random(&mut rng, n, k, 1.0),
                };
                let at = |i: usize, p: usize| match op_a {
                    Op::N => a[(i, p)].to64(),
                    Op::T => a[(p, i)].to64(),
                };
                let bt = |p: usize, j: usize| match op_b {
                    Op::N => b[(p, j)].to64(),
                    Op::T => b[(j, p)].to64(),
                };
                let mut c = Matrix::<T>::from_fn(m, n, |_, _| T::of(f64::NAN));
                gemm(T::one(), &a, op_a, &b, op_b, T::zero(), &mut c);
                let eps = T::epsilon().to64();
                for i in 0..m {
                    for j in 0..n {
                        let (mut want, mut size) = (0.0f64, 0.0f64);
                        for p in 0..k {
                            want += at(i, p) * bt(p, j);
                            size += (at(i, p) * bt(p, j)).abs();
                        }
                        let got = c[(i, j)].to64();
                        assert!(got.is_finite(), "{m}×{n}×{k} {op_a:?}{op_b:?}: C[{i}][{j}] = {got}");
                        let ratio =
                            if size == 0.0 { 0.0 } else { (got - want).abs() / (k as f64 * eps * size) };
                        assert!(
                            ratio <= 2.0,
                            "{m}×{n}×{k} {op_a:?}{op_b:?}: C[{i}][{j}] = {got:e}, want {want:e}, ratio {ratio:.2}"
                        );
                        worst = worst.max(ratio);
                    }
                }
            }
        }
    }
    worst
}

/// The shapes of the bench's small networks' steps, single rows and columns, lengths that are
/// not multiples of a vector, an empty sum, and products on both sides of `SMALL_GEMM` and of
/// `MID_GEMM`.
fn shapes() -> Vec<(usize, usize, usize)> {
    let mut s = vec![
        (32, 2, 16),
        (32, 16, 1),
        (16, 32, 1),
        (32, 1, 16),
        (2, 32, 16),
        (64, 32, 32),
        (64, 2, 32),
        (1, 1, 1),
        (1, 17, 3),
        (17, 1, 9),
        (5, 7, 0),
        (3, 33, 19),
        (9, 4, 23),
    ];
    // Just below and above the threshold.
    s.push((16, 16, SMALL_GEMM / 256));
    s.push((16, 16, SMALL_GEMM / 256 + 1));
    s.push((SMALL_GEMM / 64, 1, 64));
    s.push((SMALL_GEMM / 64 + 1, 1, 64));
    s.push((64, 64, MID_GEMM / 4096));
    s.push((64, 64, MID_GEMM / 4096 + 1));
    s
}

#[test]
fn gemm_agrees_with_a_triple_loop_within_its_conditioning_in_every_orientation() {
    let (w32, w64) = (worst_ratio::<f32>(&shapes()), worst_ratio::<f64>(&shapes()));
    println!("worst test ratio: f32 {w32:.3}, f64 {w64:.3}");
}

#[test]
fn gemm_with_beta_accumulates_onto_c() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (a, b): (Matrix<f64>, Matrix<f64>) = (random(&mut rng, 4, 3, 1.0), random(&mut rng, 3, 5, 1.0));
    let c0: Matrix<f64> = random(&mut rng, 4, 5, 1.0);
    let mut c = c0.clone();
    gemm(2.0, &a, Op::N, &b, Op::N, 1.0, &mut c);
    for i in 0..4 {
        for j in 0..5 {
            let want = c0[(i, j)] + 2.0 * (0..3).map(|p| a[(i, p)] * b[(p, j)]).sum::<f64>();
            assert!(
                (c[(i, j)] - want).abs() <= 1e-14 * (1.0 + want.abs()),
                "C[{i}][{j}] = {}, want {want}",
                c[(i, j)]
            );
        }
    }
}

#[test]
fn bias_rows_and_column_sums_are_the_plain_loops_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for cols in [1, 2, 7, 8, 9, 16, 31, 32, 33, 70] {
        let rows = rng.gen_range(1..70);
        let m: Matrix<f32> = random(&mut rng, rows, cols, 10.0);
        let b: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut sums = vec![f32::NAN; cols];
        m.column_sums(&mut sums);
        let mut added = m.clone();
        added.add_to_rows(&b);
        for j in 0..cols {
            let mut want = 0.0f32;
            for i in 0..rows {
                want += m[(i, j)];
                assert_eq!(added[(i, j)].to_bits(), (m[(i, j)] + b[j]).to_bits());
            }
            assert_eq!(sums[j].to_bits(), want.to_bits(), "{rows}×{cols}: column {j}");
        }
    }
}

/// Every edge of the register tiles (`backprop::kernels::tile`): row counts below, at and above a
/// tile's 6 or 8 rows (whole products of fewer rows take wider tiles), and column counts that
/// reach the wide, four-vector, two-vector and masked last tiles of 8- and 16-lane vectors.
/// Run under `BACKPROP_SIMD=avx2` and `=base` too (CI does), to cover the other CPUs' loops.
#[test]
fn register_tiles_agree_with_a_triple_loop_at_every_edge() {
    let mut s = vec![];
    for m in [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17] {
        for n in [2, 5, 16, 17, 24, 33, 123, 245] {
            for k in [1, 7, 40] {
                s.push((m, n, k));
            }
        }
    }
    let (w32, w64) = (worst_ratio::<f32>(&s), worst_ratio::<f64>(&s));
    println!("worst test ratio: f32 {w32:.3}, f64 {w64:.3}");
}
