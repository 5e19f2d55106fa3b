//! Runs the manual training step of one benchmark case in a loop, for a profiler:
//! `cargo run --release --example profile_step -- CASE(0..3) f32|f64 SECONDS [THREADS]`; with
//! THREADS > 1 the batch is split as `train` splits it, inside a rayon pool.
use backprop::commands::bench::{case_spec, cases};
use backprop::manual::{Backprop, Batch, Batched, Split};
use backprop::{Matrix, OptimConfig, Params};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = &cases()[args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1)];
    let secs: f64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let threads: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(1);
    match args.get(2).map(String::as_str) {
        Some("f64") => run::<f64>(case, secs, threads),
        _ => run::<f32>(case, secs, threads),
    }
}

fn run<T: backprop::Scalar>(case: &backprop::commands::bench::Case, secs: f64, threads: usize) {
    let spec = case_spec::<T>(case).unwrap();
    let (init, sgd) = (Params::<T>::init(&spec), OptimConfig::sgd(1e-4));
    let mut mlp: Box<dyn Backprop<T> + Send> = if threads > 1 {
        Box::new(Split::new(&spec, init, sgd, case.batch, threads))
    } else {
        Box::new(Batched::new(&spec, init, sgd, case.batch))
    };
    let x = Matrix::<T>::from_fn(case.batch, spec.n_in(), |i, j| {
        T::of(((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5)
    });
    let y = Matrix::<T>::from_fn(case.batch, spec.n_out(), |i, j| T::of(((i + j) % 5) as f64 / 5.0 - 0.5));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool");
    pool.install(|| {
        let batch = Batch::new(&x, &y);
        let start = std::time::Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < secs {
            for _ in 0..100 {
                std::hint::black_box(mlp.step(&batch));
            }
            n += 100;
        }
        println!("{:.2} µs/step", start.elapsed().as_secs_f64() * 1e6 / n as f64);
    });
}
