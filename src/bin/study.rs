//! `study`: the saturation study (a saturated deep tanh network against fan-in-scaled
//! initialisations, the relu family and sigmoid), every run checked against libtorch. Writes PNGs
//! and study.md under out/study.

/// mimalloc: the harness allocates and frees small buffers on two threads every step, where
/// glibc's allocator locks arenas and consolidates (a fifth of a small `compare`'s time, measured).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(backprop::commands::study::main_study());
}
