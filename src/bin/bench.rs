//! `bench`: time per SGD step of the manual trainer and libtorch, side by side, for the sizes of
//! the performance table, in f32 and f64, with 1 and 2 threads. `--quick` for a rough table.

fn main() {
    std::process::exit(backprop::commands::bench::main_bench());
}
