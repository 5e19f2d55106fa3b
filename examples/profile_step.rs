//! Runs the manual training step of one benchmark case in a loop, for a profiler:
//! `cargo run --release --example profile_step -- CASE(0..3) f32|f64 SECONDS`.
use backprop::commands::bench::{case_spec, cases};
use backprop::{Matrix, Mlp, Workspace};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = &cases()[args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1)];
    let secs: f64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3.0);
    match args.get(2).map(String::as_str) {
        Some("f64") => run::<f64>(case, secs),
        _ => run::<f32>(case, secs),
    }
}

fn run<T: backprop::Scalar>(case: &backprop::commands::bench::Case, secs: f64) {
    let spec = case_spec::<T>(case).unwrap();
    let mut mlp = Mlp::<T>::new(spec.clone()).unwrap();
    let x = Matrix::<T>::from_fn(case.batch, spec.n_in(), |i, j| {
        T::of(((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5)
    });
    let y = Matrix::<T>::from_fn(case.batch, spec.n_out(), |i, j| T::of(((i + j) % 5) as f64 / 5.0 - 0.5));
    let mut ws = Workspace::new(&spec, case.batch);
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..100 {
            std::hint::black_box(mlp.train_step(&mut ws, &x, &y, T::of(1e-4)));
        }
        n += 100;
    }
    println!("{:.2} µs/step", start.elapsed().as_secs_f64() * 1e6 / n as f64);
}
