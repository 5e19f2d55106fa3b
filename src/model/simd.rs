//! Run-time choice of the instruction set for the elementwise loops (activations, bias rows and
//! column sums) and the small products: each such loop is compiled three times, for AVX-512,
//! AVX2+FMA and the baseline, and [`level`] picks the widest this CPU has.
//!
//! The environment variable `BACKPROP_SIMD` (`avx512`, `avx2` or `base`, read once per process)
//! caps the choice, so that one machine can run, and test, the loops another CPU would run (a
//! level above what the CPU has is never chosen).

use std::sync::OnceLock;

/// The widest instruction set this CPU offers, of those the loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Base,
    Avx2,
    Avx512,
}

/// The level of this CPU, capped by `BACKPROP_SIMD` (after the first call: one atomic load). An
/// unknown value is ignored with a warning here; the command-line tools refuse it first
/// ([`check_env`]).
#[inline]
pub(crate) fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cpu = detected();
        match env_cap() {
            Ok(Some(cap)) => cpu.min(cap),
            Ok(None) => cpu,
            Err(e) => {
                eprintln!("warning: {e}; ignored");
                cpu
            }
        }
    })
}

/// An error naming the value if `BACKPROP_SIMD` is set to something other than `avx512`, `avx2`,
/// `base` or nothing.
pub(crate) fn check_env() -> anyhow::Result<()> {
    env_cap().map(|_| ())
}

/// The level `BACKPROP_SIMD` caps the choice at, if set.
fn env_cap() -> anyhow::Result<Option<Level>> {
    let Some(v) = std::env::var_os("BACKPROP_SIMD") else {
        return Ok(None);
    };
    let v = v.to_string_lossy();
    match v.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "avx512" => Ok(Some(Level::Avx512)),
        "avx2" => Ok(Some(Level::Avx2)),
        "base" => Ok(Some(Level::Base)),
        _ => anyhow::bail!("BACKPROP_SIMD={v:?} is not avx512, avx2 or base"),
    }
}

fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        // The AVX-512 versions use AVX2 and FMA instructions too (every such CPU has them).
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Level::Avx512;
            }
            return Level::Avx2;
        }
    }
    Level::Base
}

/// Runs `f` compiled for the widest instruction set [`level`] allows: `f`'s body inlines into a
/// `#[target_feature]` copy, where the compiler vectorises its plain loops (elementwise updates
/// and sums, with no fused multiply-adds unless written, so the bits are every level's).
///
/// Write the closure `#[inline(always)]`: one the compiler declines to inline (an optimizer's
/// three update rules were) is called from the copy as a function of its own, compiled for the
/// baseline. The per-layer loops (activations, bias rows, small products) keep copies of their own
/// functions instead: through a closure that captures their slices by reference they measured
/// 10–30% slower.
#[inline(always)]
pub(crate) fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    match level() {
        // SAFETY: each copy runs only on a CPU that `level` found to have its features.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { with_avx512(f) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { with_avx2(f) },
        _ => f(),
    }
}

/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
