//! `train`: train an MLP with the hand-written backpropagation (`--impl manual`) or libtorch
//! (`--impl torch`) and save its weights. Exit status: 0 trained, 2 bad input.

fn main() {
    std::process::exit(backprop::commands::train::main_train());
}
