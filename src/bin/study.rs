//! `study`: the saturation study (a saturated deep tanh network against fan-in-scaled
//! initialisations, the relu family and sigmoid), every run checked against libtorch. Writes PNGs
//! and study.md under out/study.

fn main() {
    std::process::exit(backprop::commands::study::main_study());
}
