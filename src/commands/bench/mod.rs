//! Timing one SGD step of the manual trainer against libtorch, side by side in one process.

use anyhow::Result;
use std::time::Instant;

use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::manual::{Backprop, Batch, Batched, Split, SplitWorkspace};
use crate::model::optim::OptimConfig;
use crate::model::params::Params;
use crate::reference::Reference;

pub use super::sizes::{case_spec, cases, flops, Case};

mod machine;

pub use machine::{busy, crossover, outside, split, OUTSIDE_LIMIT, OUTSIDE_TARGETS};

/// Median time per step in seconds of (manual, torch), measured alternately: `reps` rounds, each
/// timing `iters.0` manual steps and then `iters.1` torch steps, each block after an untimed one
/// of the same length.
///
/// The manual step runs as `train` runs it: with `threads` > 1 and a step above
/// `manual::split::SPLIT_MIN_FLOPS`, the batch split over that many threads of a rayon pool.
pub fn time_case<T: Scalar>(
    case: &Case,
    reps: usize,
    iters: (usize, usize),
    threads: usize,
) -> Result<(f64, f64)> {
    let spec = case_spec::<T>(case)?;
    let init = Params::<T>::init(&spec);
    let sgd = OptimConfig::sgd(1e-4);
    let mut torch = Reference::new(&spec, &init, &sgd)?;
    let blocks = SplitWorkspace::<T>::threads_for(&spec, case.batch, threads);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(blocks).build()?;
    let mut mlp: Box<dyn Backprop<T> + Send> = if blocks > 1 {
        Box::new(Split::new(&spec, init, sgd, case.batch, blocks))
    } else {
        Box::new(Batched::new(&spec, init, sgd, case.batch))
    };
    let (x, y) = sample_batch::<T>(&spec, case.batch);
    // The reference's batch, made tensors once.
    let mut tensors = Batch::new(&x, &y);
    Backprop::<T>::prepare(&torch, &mut tensors);
    // `iters` manual steps, timed: in the pool when the batch is split.
    let mut manual = |iters: usize| -> f64 {
        let mut go = || {
            let batch = Batch::new(&x, &y);
            let start = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(mlp.step(&batch));
            }
            start.elapsed().as_secs_f64()
        };
        if blocks > 1 {
            pool.install(go)
        } else {
            go()
        }
    };
    let (mut m, mut t) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    // Each timed block follows an untimed one of the same side: the other side's threads (libtorch's
    // OpenMP workers spin for milliseconds after its last step, on the cores the split needs) have
    // gone quiet, and the side's own are awake, as in a process of its own.
    let (mi, ti) = (iters.0.max(1), iters.1.max(1));
    for _ in 0..reps {
        manual(mi.max(3));
        m.push(manual(mi) / mi as f64);
        for _ in 0..ti.max(3) {
            torch.step(&tensors);
        }
        let start = Instant::now();
        for _ in 0..ti {
            std::hint::black_box(torch.step(&tensors));
        }
        t.push(start.elapsed().as_secs_f64() / ti as f64);
    }
    Ok((median(&mut m), median(&mut t)))
}

/// A fixed batch of `batch` samples for `spec`'s network, for timing.
fn sample_batch<T: Scalar>(spec: &crate::model::spec::Spec, batch: usize) -> (Matrix<T>, Matrix<T>) {
    let x =
        Matrix::<T>::from_fn(batch, spec.n_in(), |i, j| T::of(((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5));
    let y = Matrix::<T>::from_fn(batch, spec.n_out(), |i, j| T::of(((i + j) % 5) as f64 / 5.0 - 0.5));
    (x, y)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One row of the performance table.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// Widths, e.g. "2-16-1".
    pub network: String,
    /// Samples per step.
    pub batch: usize,
    /// f32 or f64.
    pub dtype: String,
    /// Threads for both implementations.
    pub threads: usize,
    /// Median seconds per step, manual.
    pub manual_s: f64,
    /// Median seconds per step, libtorch.
    pub torch_s: f64,
    /// GFLOP per step (6 × parameters × batch).
    pub gflop: f64,
    /// The target ratio.
    pub target: f64,
}

fn measure_all(threads: usize, quick: bool) -> Result<Vec<Row>> {
    tch::set_num_threads(threads as i32);
    let mut rows = Vec::new();
    for case in cases() {
        for dtype in ["f32", "f64"] {
            // Aim for ~30 ms per timed block (10 ms when quick), from one step's time of each side.
            let (m1, t1) = match dtype {
                "f32" => time_case::<f32>(&case, 1, (1, 1), threads)?,
                _ => time_case::<f64>(&case, 1, (1, 1), threads)?,
            };
            let budget = if quick { 0.01 } else { 0.03 };
            let count = |one: f64| ((budget / one).ceil() as usize).clamp(1, 50_000);
            let iters = (count(m1), count(t1));
            let reps = if quick { 3 } else { 9 };
            let (m, t) = match dtype {
                "f32" => time_case::<f32>(&case, reps, iters, threads)?,
                _ => time_case::<f64>(&case, reps, iters, threads)?,
            };
            let spec = case_spec::<f64>(&case)?;
            rows.push(Row {
                network: case.widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-"),
                batch: case.batch,
                dtype: dtype.into(),
                threads,
                manual_s: m,
                torch_s: t,
                gflop: flops(&spec, case.batch) / 1e9,
                target: case.target,
            });
        }
    }
    Ok(rows)
}

fn fmt_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

/// The table as Markdown; `peak` is one core's measured (f32, f64) GFLOP/s, against which each
/// side's rate is put (times the threads).
pub fn table(rows: &[Row], peak: (f64, f64)) -> String {
    let mut s = String::from(
        "| network | batch | dtype | threads | manual / step | libtorch / step | torch ÷ manual | target | manual GFLOP/s | of peak | libtorch GFLOP/s | of peak |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ratio = r.torch_s / r.manual_s;
        let top = if r.dtype == "f32" { peak.0 } else { peak.1 } * r.threads as f64;
        s.push_str(&format!(
            "| {} tanh | {} | {} | {} | {} | {} | {:.2}× | ≥ {}× {} | {:.1} | {:.0}% | {:.1} | {:.0}% |\n",
            r.network,
            r.batch,
            r.dtype,
            r.threads,
            fmt_time(r.manual_s),
            fmt_time(r.torch_s),
            ratio,
            r.target,
            if ratio >= r.target { "met" } else { "missed" },
            r.gflop / r.manual_s,
            100.0 * r.gflop / r.manual_s / top,
            r.gflop / r.torch_s,
            100.0 * r.gflop / r.torch_s / top,
        ));
    }
    s
}

/// Time one SGD step of the hand-written trainer against libtorch, side by side in one process,
/// for the sizes of README's performance table, in f32 and f64, with 1 and 2 threads.
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "bench", version)]
pub struct BenchArgs {
    /// Fewer repetitions: a rough table in a fraction of the time.
    #[arg(long)]
    pub quick: bool,
    /// Instead of the table: libtorch's step with one intra-op thread against two, over a range
    /// of sizes (where a second thread starts to pay: `reference::PARALLEL_MIN_FLOPS`).
    #[arg(long)]
    pub crossover: bool,
    /// Instead of the table: the manual step on one core against two, the products split by the
    /// GEMM crate or the batch split in two (where splitting starts to pay:
    /// `manual::split::SPLIT_MIN_FLOPS`).
    #[arg(long)]
    pub split: bool,
    /// Instead of the table: the wall time of `compare` and `study --steps 200`, quiet and beside
    /// one busy process (and beside a PyTorch job, when the setup's Python is found).
    #[arg(long)]
    pub busy: bool,
    /// Instead of the table: `train` seen from outside, at each size, `--impl manual` and
    /// `--impl torch`, in f32 and f64: whole-process time per step (a 5-step run's time
    /// subtracted), against the step time `train` reports, with CSV data and a tenth held out.
    #[arg(long)]
    pub outside: bool,
    /// Instead of the table: only its last line, the default `compare`'s bookkeeping (the
    /// harness's time over the same training by the two implementations alone).
    #[arg(long)]
    pub bookkeeping: bool,
    /// Spin forever (the busy process `--busy` starts).
    #[arg(long, hide = true)]
    pub spin: bool,
}

/// The `bench` binary: parse, measure, print the table; exit status 0, or 2 on an error.
pub fn main_bench() -> i32 {
    super::run_tool(|args: &BenchArgs| {
        if args.spin {
            loop {
                std::hint::black_box(0u64);
            }
        }
        if args.outside {
            outside(args.quick)
        } else if args.bookkeeping {
            bookkeeping_line(args.quick)
        } else if args.busy {
            busy(args.quick)
        } else if args.split {
            split(args.quick)
        } else if args.crossover {
            crossover(args.quick)
        } else {
            bench(args.quick)
        }
        .map(|()| 0)
    })
}

/// Measures every size with 1 and then 2 threads on both sides (the GEMM's threads and libtorch's
/// intra-op threads), prints one Markdown table and the harness bookkeeping line; `quick` takes
/// fewer, shorter samples.
pub fn bench(quick: bool) -> Result<()> {
    let (p32, p64, isa) = crate::kernels::peak::fma_peak();
    let mut rows = Vec::new();
    for threads in [1, 2] {
        eprintln!("measuring with {threads} thread(s)...");
        rows.extend(measure_all(threads, quick)?);
    }
    println!(
        "One core's peak, measured with a loop of independent FMAs ({isa}): {p32:.0} GFLOP/s in f32, {p64:.0} in \
         f64; \"of peak\" is a side's rate over that times its threads.\n"
    );
    println!("{}", table(&rows, (p32, p64)));
    bookkeeping_line(quick)
}

/// Prints the line of [`bookkeeping`]: medians of 7 alternating runs (3 when `quick`).
pub fn bookkeeping_line(quick: bool) -> Result<()> {
    let (harness, bare) = bookkeeping(if quick { 3 } else { 7 })?;
    println!(
        "Default `compare` run (1000 steps, f64; medians of alternating runs): harness {:.0} ms, the same \
         training by the implementations alone {:.0} ms: bookkeeping {:.0}% on top.",
        harness * 1e3,
        bare * 1e3,
        100.0 * (harness / bare - 1.0)
    );
    Ok(())
}

/// The default `compare` run's bookkeeping: median seconds, over `reps` alternating runs, of
/// (the harness, the same training done by the two implementations alone). The harness trains the
/// manual model and two libtorch models (lockstep and free) and compares every tensor every step;
/// the bare compute is one manual step and two libtorch steps per step, on the same batches, with
/// nothing compared, copied or recorded. Files are written in neither.
pub fn bookkeeping(reps: usize) -> Result<(f64, f64)> {
    use clap::Parser;
    let args = crate::commands::CompareArgs::try_parse_from(["compare"])?;
    let exp = args.experiment()?;
    let (data, batch) = exp.setup.load_data()?;
    let run = exp.run_config(batch);
    let spec = &exp.setup.spec;
    let init = crate::model::params::Params::<f64>::init(spec);
    let order = crate::harness::batch_order(data.len(), batch, run.steps, run.shuffle_seed);
    // libtorch's threads as `compare` sets them for this run (one, for a step this small).
    crate::reference::use_threads(spec, batch, exp.setup.threads);

    let (mut harness, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let start = Instant::now();
        std::hint::black_box(crate::harness::run::<f64>(&run, &data, &init, None, |_| {})?);
        harness.push(start.elapsed().as_secs_f64());

        let mut mlp = Batched::new(spec, init.clone(), run.optim, batch);
        let mut lockstep = Reference::new(spec, &init, &run.optim)?;
        let mut free = Reference::new(spec, &init, &run.optim)?;
        let (mut xb, mut yb) = (Matrix::zeros(batch, spec.n_in()), Matrix::zeros(batch, spec.n_out()));
        let start = Instant::now();
        for idx in &order {
            xb.gather_rows(&data.x, idx);
            yb.gather_rows(&data.y, idx);
            let mut b = Batch::new(&xb, &yb);
            Backprop::<f64>::prepare(&lockstep, &mut b);
            mlp.step(&b);
            lockstep.step(&b);
            free.step(&b);
        }
        bare.push(start.elapsed().as_secs_f64());
    }
    Ok((median(&mut harness), median(&mut bare)))
}
