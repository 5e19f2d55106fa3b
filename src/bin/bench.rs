//! `bench`: time per SGD step of the manual trainer and libtorch, side by side, for the sizes of
//! the performance table, in f32 and f64, with 1 and 2 threads. `--quick` for a rough table.

/// mimalloc: the harness allocates and frees small buffers on two threads every step, where
/// glibc's allocator locks arenas and consolidates (a fifth of a small `compare`'s time, measured).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(backprop::commands::bench::main_bench());
}
