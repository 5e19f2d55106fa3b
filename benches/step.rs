//! `cargo bench`: one SGD step, manual and libtorch, for each size of the performance table (f32,
//! one thread; and the manual step with the batch split over two threads of a rayon pool, as
//! `train` runs it). `cargo run --release --bin bench` prints the full table with ratios.

use backprop::commands::bench::{case_spec, cases};
use backprop::reference::{matrix_to_tensor, Trainer};
use backprop::{Matrix, Mlp, Workspace};
use criterion::{criterion_group, criterion_main, Criterion};

fn steps(c: &mut Criterion) {
    tch::set_num_threads(1);
    backprop::kernels::gemm::set_threads(1);
    for case in cases() {
        let spec = case_spec::<f32>(&case).unwrap();
        let name = case.widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-");
        let mut mlp = Mlp::<f32>::new(spec.clone()).unwrap();
        let x = Matrix::<f32>::from_fn(case.batch, spec.n_in(), |i, j| ((i + 3 * j) % 7) as f32 / 7.0 - 0.5);
        let y = Matrix::<f32>::from_fn(case.batch, spec.n_out(), |i, j| ((2 * i + j) % 5) as f32 / 5.0 - 0.5);
        let mut torch = Trainer::new(&mlp, &backprop::OptimConfig::sgd(1e-4)).unwrap();
        let (xt, yt) = (matrix_to_tensor(&x), matrix_to_tensor(&y));
        let mut ws = Workspace::new(&spec, case.batch);
        let mut group = c.benchmark_group(format!("step {name} batch {}", case.batch));
        group.sample_size(20).measurement_time(std::time::Duration::from_secs(2));
        group.bench_function("manual", |b| b.iter(|| mlp.train_step(&mut ws, &x, &y, 1e-4)));
        group.bench_function("libtorch", |b| b.iter(|| torch.step(&xt, &yt)));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut split = backprop::manual::SplitWorkspace::new(&spec, case.batch, 2);
        let mut opt = backprop::Optimizer::<f32>::new(backprop::OptimConfig::sgd(1e-4), &spec);
        group.bench_function("manual, batch split over 2 threads", |b| {
            pool.install(|| b.iter(|| mlp.train_step_split(&mut split, &mut opt, &x, &y)))
        });
        group.finish();
    }
}

criterion_group!(benches, steps);
criterion_main!(benches);
