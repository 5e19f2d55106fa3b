//! `compare`: train the manual MLP and libtorch side by side and prove them equal step by step.
//! Exit status: 0 equivalent, 1 not equivalent, 2 bad input.

fn main() {
    std::process::exit(backprop::commands::main_compare());
}
