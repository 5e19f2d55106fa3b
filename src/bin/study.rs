//! `study`: the saturation study (deep tanh vs sigmoid vs relu, large vs Xavier initialisation),
//! every run checked against libtorch. Writes PNGs and study.md under out/study.

fn main() {
    std::process::exit(backprop::commands::study::main_study());
}
