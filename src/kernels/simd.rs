//! Run-time choice of the instruction set, and the one way a loop is compiled for each.
//!
//! Every plain loop of the kernels (activations, bias rows and column sums, the small products)
//! and every elementwise update outside them (the optimizers, the SGD step, the split's gradient
//! sums, the verdict's bounds) is written once and compiled three times, for AVX-512, AVX2+FMA
//! and the baseline, by [`multiversion!`](crate::kernels::simd::multiversion): a function's body
//! inlines into a `#[target_feature]` copy per level, where the compiler vectorises it, and
//! [`level`] picks the widest copy this CPU runs. [`dispatch`] is that macro applied to a closure.
//! The register tiles (`kernels::tile`), written in intrinsics for each level, are chosen by the
//! same [`level`].
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

/// Compiles a function three times and picks the copy at run time: its body goes into an
/// `#[inline(always)]` function that a `#[target_feature]` copy for AVX-512 (`avx512f,avx2,fma`)
/// and one for AVX2 (`avx2,fma`) call, and the function itself runs the copy [`level`] allows,
/// or the body as compiled for the baseline.
///
/// ```ignore
/// multiversion! {
///     /// Docs and attributes (`#[inline]`, lint levels) go to the function.
///     pub(crate) fn add_to<T: Scalar>(x: &mut [T], y: &[T]) {
///         for (x, &y) in x.iter_mut().zip(y) {
///             *x = *x + y;
///         }
///     }
/// }
/// ```
///
/// The arguments are plain names; generic parameters take at most one bound each. Plain loops
/// form no fused multiply-adds unless written (`mul_add`), so every level computes the same bits.
macro_rules! multiversion {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident $(<$($gen:ident $(: $bound:path)?),* $(,)?>)?
            ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$attr])*
        $vis fn $name $(<$($gen $(: $bound)?),*>)? ($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body $(<$($gen $(: $bound)?),*>)? ($($arg: $ty),*) $(-> $ret)? $body

            /// # Safety
            /// The CPU must have AVX-512F, AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512 $(<$($gen $(: $bound)?),*>)? ($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            /// # Safety
            /// The CPU must have AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2 $(<$($gen $(: $bound)?),*>)? ($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            match $crate::kernels::simd::level() {
                // SAFETY: each copy runs only on a CPU that `level` found to have its features.
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::Level::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::simd::Level::Avx2 => unsafe { avx2($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}
pub(crate) use multiversion;

multiversion! {
    /// Runs `f` compiled for the widest instruction set [`level`] allows: [`multiversion!`] for a
    /// loop written in place, as a closure (elementwise updates and sums, with no fused
    /// multiply-adds unless written, so the bits are every level's).
    ///
    /// Write the closure `#[inline(always)]`: one the compiler declines to inline (an optimizer's
    /// three update rules were) is called from the copy as a function of its own, compiled for the
    /// baseline. The per-layer loops (activations, bias rows, small products) are functions of
    /// their own under [`multiversion!`] instead: through a closure that captures their slices by
    /// reference they measured 10–30% slower.
    #[inline(always)]
    pub(crate) fn dispatch<R, F: FnOnce() -> R>(f: F) -> R {
        f()
    }
}
