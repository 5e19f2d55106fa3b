//! `compare`: train the manual MLP and libtorch side by side and prove them equal step by step.
//! Exit status: 0 equivalent, 1 not equivalent, 2 bad input.

/// mimalloc: the harness allocates and frees small buffers on two threads every step, where
/// glibc's allocator locks arenas and consolidates (a fifth of a small `compare`'s time, measured).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(backprop::commands::main_compare());
}
