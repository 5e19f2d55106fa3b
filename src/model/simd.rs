//! Run-time choice of the instruction set for the elementwise loops (activations, bias rows and
//! column sums): each such loop is compiled three times, for AVX-512, AVX2+FMA and the baseline,
//! and [`level`] picks the widest this CPU has.

/// The widest instruction set this CPU offers, of those the loops are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Avx512,
    Avx2,
    Base,
}

/// The level of this CPU (cached by std after the first call: an atomic load).
#[inline]
pub(crate) fn level() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Level::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Level::Avx2;
        }
    }
    Level::Base
}
