//! `train`: train an MLP with the hand-written backpropagation (`--impl manual`) or libtorch
//! (`--impl torch`) and save its weights. Exit status: 0 trained, 2 bad input.

/// mimalloc: the harness allocates and frees small buffers on two threads every step, where
/// glibc's allocator locks arenas and consolidates (a fifth of a small `compare`'s time, measured).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(backprop::commands::train::main_train());
}
