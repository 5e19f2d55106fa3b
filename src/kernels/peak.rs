//! One core's floating-point peak, measured: a loop of independent fused multiply-adds in the
//! widest vectors the training loops use (AVX-512, else AVX2 with FMA, else scalar: the CPU's, as
//! capped by `BACKPROP_SIMD`), so that the benchmark can put each measured GFLOP/s next to what the
//! machine allows them.

use std::time::Instant;

/// Independent accumulators: more than an FMA's latency × its issue rate, so none waits.
const ACC: usize = 12;

/// Measured peak GFLOP/s of one core in f32 and in f64 (an FMA counts as two flops), and the
/// instruction set used.
pub fn fma_peak() -> (f64, f64, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::kernels::simd::{level, Level};
        if level() == Level::Avx512 {
            // SAFETY: the CPU has AVX-512F, detected by `level`.
            return (
                rate(|n| unsafe { x86::f32_512(n) }, ACC * 16 * 2),
                rate(|n| unsafe { x86::f64_512(n) }, ACC * 8 * 2),
                "AVX-512",
            );
        }
        if level() == Level::Avx2 {
            // SAFETY: the CPU has AVX2 and FMA, detected by `level`.
            return (
                rate(|n| unsafe { x86::f32_256(n) }, ACC * 8 * 2),
                rate(|n| unsafe { x86::f64_256(n) }, ACC * 4 * 2),
                "AVX2+FMA",
            );
        }
    }
    (rate(scalar::<f32>, ACC * 2), rate(scalar::<f64>, ACC * 2), "scalar")
}

/// GFLOP/s of `kernel(iterations)` doing `flops_per_iter` each: the best of five runs of ~20 ms.
fn rate(kernel: impl Fn(u64) -> f64, flops_per_iter: usize) -> f64 {
    let mut n = 1u64 << 12;
    loop {
        let start = Instant::now();
        std::hint::black_box(kernel(n));
        if start.elapsed().as_secs_f64() > 0.02 {
            break;
        }
        n *= 2;
    }
    (0..5)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(kernel(n));
            n as f64 * flops_per_iter as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

fn scalar<T: num_traits::Float>(n: u64) -> f64 {
    let (a, b) = (T::from(0.999_999).unwrap(), T::from(1e-7).unwrap());
    let mut acc = [T::one(); ACC];
    for _ in 0..n {
        for v in acc.iter_mut() {
            *v = v.mul_add(a, b);
        }
    }
    acc.iter().fold(0.0, |s, v| s + v.to_f64().unwrap())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::ACC;
    use std::arch::x86_64::*;

    macro_rules! kernel {
        ($name:ident, $feat:literal, $set1:ident, $fma:ident, $store:ident, $t:ty, $lanes:literal) => {
            #[target_feature(enable = $feat)]
            pub unsafe fn $name(n: u64) -> f64 {
                let (a, b) = ($set1(0.999_999), $set1(1e-7));
                let mut acc = [$set1(1.0); ACC];
                for _ in 0..n {
                    for v in acc.iter_mut() {
                        *v = $fma(*v, a, b);
                    }
                }
                let mut out = [0.0 as $t; $lanes];
                let mut sum = 0.0;
                for v in acc {
                    $store(out.as_mut_ptr(), v);
                    sum += out.iter().map(|&x| x as f64).sum::<f64>();
                }
                sum
            }
        };
    }
    kernel!(f32_512, "avx512f", _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps, f32, 16);
    kernel!(f64_512, "avx512f", _mm512_set1_pd, _mm512_fmadd_pd, _mm512_storeu_pd, f64, 8);
    kernel!(f32_256, "avx2,fma", _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps, f32, 8);
    kernel!(f64_256, "avx2,fma", _mm256_set1_pd, _mm256_fmadd_pd, _mm256_storeu_pd, f64, 4);
}

#[cfg(test)]
mod tests {
    /// The peak is a positive, finite rate. How f64's compares with f32's is a timing, and timings
    /// belong to `bench` (a busy machine can slow either measurement by any factor).
    #[test]
    fn the_peak_is_measured() {
        let (f32_peak, f64_peak, isa) = super::fma_peak();
        for p in [f32_peak, f64_peak] {
            assert!(p > 0.0 && p.is_finite(), "{isa}: {f32_peak} {f64_peak}");
        }
    }
}
