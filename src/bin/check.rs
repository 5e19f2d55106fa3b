//! `check`: verify a backpropagation written elsewhere from its trace, against libtorch.
//! Exit status: 0 equivalent, 1 not equivalent, 2 a trace that cannot be checked, 3 agreed until
//! both sides went non-finite.

/// mimalloc: the harness allocates and frees small buffers on two threads every step, where
/// glibc's allocator locks arenas and consolidates (a fifth of a small `compare`'s time, measured).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(backprop::commands::check::main_check());
}
