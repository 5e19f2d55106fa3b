//! Timing one SGD step of the manual trainer against libtorch, side by side in one process.

use anyhow::Result;
use std::time::Instant;

use crate::manual::{Backprop, Batch, Batched, Split, SplitWorkspace};
use crate::model::matrix::Matrix;
use crate::model::optim::OptimConfig;
use crate::model::params::Params;
use crate::model::scalar::Scalar;
use crate::reference::Reference;

pub use super::sizes::{case_spec, cases, flops, Case};

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
    let (p32, p64, isa) = super::peak::fma_peak();
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

/// Networks from 1e4 to 1e9 floating-point operations per step, and their batches.
const CROSSOVER_SIZES: [(&[usize], usize); 8] = [
    (&[2, 16, 1], 32),
    (&[2, 32, 32, 1], 64),
    (&[16, 64, 64, 1], 64),
    (&[32, 128, 128, 4], 64),
    (&[64, 128, 128, 10], 128),
    (&[64, 256, 256, 10], 128),
    (&[64, 256, 256, 256, 10], 128),
    (&[784, 1024, 1024, 10], 256),
];

/// Time per libtorch SGD step (f32) with one intra-op thread and with two, medians of
/// alternating runs, for tanh networks from 1e4 to 1e9 floating-point operations per step; prints
/// a Markdown table with the ratio. Measured on a quiet machine: a second thread pays only
/// above some size, and below it only spins.
pub fn crossover(quick: bool) -> Result<()> {
    let sizes = CROSSOVER_SIZES;
    println!("| network | batch | MFLOP/step | libtorch 1 thread | 2 threads | 1 thread ÷ 2 threads |");
    println!("|---|---|---|---|---|---|");
    for (widths, batch) in sizes {
        let case = Case { widths: widths.to_vec(), batch, target: 0.0 };
        let spec = case_spec::<f32>(&case)?;
        let mut torch = Reference::new(&spec, &Params::<f32>::init(&spec), &OptimConfig::sgd(1e-4))?;
        let (x, y) = sample_batch::<f32>(&spec, batch);
        let mut tensors = Batch::new(&x, &y);
        Backprop::<f32>::prepare(&torch, &mut tensors);
        let mut time = |threads: i32, iters: usize| {
            tch::set_num_threads(threads);
            let start = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(torch.step(&tensors));
            }
            start.elapsed().as_secs_f64() / iters as f64
        };
        let one = time(1, 3).max(time(2, 3));
        let iters = (((if quick { 0.01 } else { 0.04 }) / one).ceil() as usize).clamp(1, 5000);
        let (mut t1, mut t2) = (Vec::new(), Vec::new());
        for _ in 0..if quick { 3 } else { 9 } {
            t1.push(time(1, iters));
            t2.push(time(2, iters));
        }
        let (t1, t2) = (median(&mut t1), median(&mut t2));
        println!(
            "| {} | {batch} | {:.3} | {} | {} | {:.2}× |",
            widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-"),
            flops(&spec, batch) / 1e6,
            fmt_time(t1),
            fmt_time(t2),
            t1 / t2
        );
    }
    Ok(())
}

/// Seconds per manual training step (median of alternating rounds) of `spec` on a batch of `batch`
/// with the batch split into `blocks` ([`SplitWorkspace`]) and the matrix products on
/// `gemm_threads` threads each.
fn manual_step_time<T: Scalar>(
    spec: &crate::model::spec::Spec,
    batch: usize,
    blocks: usize,
    gemm_threads: usize,
    quick: bool,
) -> Result<f64> {
    let mut mlp = Split::new(spec, Params::<T>::init(spec), OptimConfig::sgd(1e-4), batch, blocks);
    let (x, y) = sample_batch::<T>(spec, batch);
    crate::model::matrix::set_threads(gemm_threads);
    // Inside the pool, as `train` runs: the hand-over to the other thread is a steal, not a wake-up.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(blocks.max(gemm_threads)).build()?;
    let times = pool.install(|| {
        let batch = Batch::new(&x, &y);
        let start = Instant::now();
        mlp.step(&batch);
        let one = start.elapsed().as_secs_f64().max(1e-7);
        let iters = (((if quick { 0.01 } else { 0.04 }) / one).ceil() as usize).clamp(1, 20000);
        let mut times = Vec::new();
        for _ in 0..if quick { 3 } else { 9 } {
            let start = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(mlp.step(&batch));
            }
            times.push(start.elapsed().as_secs_f64() / iters as f64);
        }
        times
    });
    crate::model::matrix::set_threads(1);
    let mut times = times;
    Ok(median(&mut times))
}

/// The manual step on one core against two, two ways: the matrix products split by the GEMM crate
/// (rayon inside each product) and the batch split into two blocks of rows
/// ([`SplitWorkspace`], one single-threaded pass per block); prints a Markdown table. Where the
/// split starts to pay is `manual::split::SPLIT_MIN_FLOPS`.
pub fn split(quick: bool) -> Result<()> {
    println!("| network | batch | dtype | MFLOP/step | 1 thread | 2 threads in each product | ratio | batch split in 2 | ratio |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (widths, batch) in CROSSOVER_SIZES {
        let case = Case { widths: widths.to_vec(), batch, target: 0.0 };
        for dtype in ["f32", "f64"] {
            let (one, inner, halves) = match dtype {
                "f32" => {
                    let spec = case_spec::<f32>(&case)?;
                    (
                        manual_step_time::<f32>(&spec, batch, 1, 1, quick)?,
                        manual_step_time::<f32>(&spec, batch, 1, 2, quick)?,
                        manual_step_time::<f32>(&spec, batch, 2, 1, quick)?,
                    )
                }
                _ => {
                    let spec = case_spec::<f64>(&case)?;
                    (
                        manual_step_time::<f64>(&spec, batch, 1, 1, quick)?,
                        manual_step_time::<f64>(&spec, batch, 1, 2, quick)?,
                        manual_step_time::<f64>(&spec, batch, 2, 1, quick)?,
                    )
                }
            };
            let spec = case_spec::<f64>(&case)?;
            println!(
                "| {} | {batch} | {dtype} | {:.3} | {} | {} | {:.2}× | {} | {:.2}× |",
                widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-"),
                flops(&spec, batch) / 1e6,
                fmt_time(one),
                fmt_time(inner),
                one / inner,
                fmt_time(halves),
                one / halves,
            );
        }
    }
    Ok(())
}

/// A process that keeps one core busy until dropped.
struct Busy(std::process::Child);

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The setup's Python with torch (`.libtorch` is its `site-packages/torch`), if there is one.
fn setup_python() -> Option<std::path::PathBuf> {
    let torch = std::fs::canonicalize(".libtorch").ok()?;
    let python = torch.ancestors().nth(4)?.join("bin/python");
    python.is_file().then_some(python)
}

/// Median wall time of `cmd` over `reps` runs.
fn wall(cmd: &mut std::process::Command, reps: usize) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        let status = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status()?;
        if !status.success() && status.code() != Some(3) {
            anyhow::bail!("{cmd:?} failed: {status}");
        }
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(median(&mut times))
}

/// Wall time of the default `compare` and of `study --steps 200`, quiet, beside one busy process
/// (a spinning copy of this binary), and beside a PyTorch job (a 256×256 matmul loop on every
/// core, in the setup's Python) when that Python is found; medians of 3 runs (1 when quick).
/// Prints a Markdown table with the slowdowns.
pub fn busy(quick: bool) -> Result<()> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| anyhow::anyhow!("no directory for {}", exe.display()))?;
    let out = std::env::temp_dir().join(format!("backprop-bench-busy-{}", std::process::id()));
    let reps = if quick { 1 } else { 3 };
    let python = setup_python();
    let commands: [(&str, &str, Vec<&str>); 2] =
        [("compare (default)", "compare", vec![]), ("study --steps 200", "study", vec!["--steps", "200"])];
    println!(
        "| command | quiet | beside one busy process | slowdown |{}",
        if python.is_some() { " beside a PyTorch job | slowdown |" } else { "" }
    );
    println!("|---|---|---|---|{}", if python.is_some() { "---|---|" } else { "" });
    for (name, bin, args) in commands {
        let mut cmd = std::process::Command::new(dir.join(bin));
        cmd.args(&args).arg("--quiet").arg("--out").arg(&out);
        let quiet = wall(&mut cmd, reps)?;
        let loaded = {
            let _busy = Busy(std::process::Command::new(&exe).arg("--spin").spawn()?);
            wall(&mut cmd, reps)?
        };
        let mut line = format!("| `{name}` | {quiet:.2} s | {loaded:.2} s | {:.2}× |", loaded / quiet);
        if let Some(py) = &python {
            let job = "import torch\na = torch.randn(256, 256)\nwhile True:\n    a = torch.tanh(a @ a)";
            let _busy = Busy(
                std::process::Command::new(py)
                    .args(["-c", job])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()?,
            );
            // Let it import torch first.
            std::thread::sleep(std::time::Duration::from_secs(3));
            let t = wall(&mut cmd, reps)?;
            line.push_str(&format!(" {t:.2} s | {:.2}× |", t / quiet));
        }
        println!("{line}");
    }
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

/// The ratio torch ÷ manual that `train` must reach from outside at each size of [`cases`].
pub const OUTSIDE_TARGETS: [f64; 4] = [50.0, 15.0, 1.5, 1.0];

/// The most that `train --impl manual` may cost from outside, per step, over the step time it
/// reports.
pub const OUTSIDE_LIMIT: f64 = 1.5;

/// One `train` process: wall seconds, and the seconds per step it reports.
fn train_process(exe: &std::path::Path, args: &[String], steps: usize) -> Result<(f64, f64)> {
    let start = Instant::now();
    let out = std::process::Command::new(exe).args(args).arg("--steps").arg(steps.to_string()).output()?;
    let wall = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        anyhow::bail!(
            "{} {}: {}",
            exe.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // The seconds of steps it reports (to the millisecond), over the steps: finer than the
    // µs/step it prints to one decimal.
    let reported = stdout
        .split(" s (")
        .next()
        .and_then(|head| head.rsplit(" in ").next())
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no step time in train's output: {stdout}"))?;
    Ok((wall, reported / steps as f64))
}

/// `train` at one size, one dtype, one implementation: median over `reps` of (whole-process
/// seconds per step, with a 5-step run's time subtracted; the step time it reports), the long
/// run taking about `budget` seconds of steps.
fn outside_case(exe: &std::path::Path, args: &[String], budget: f64, reps: usize) -> Result<(f64, f64)> {
    let (_, first) = train_process(exe, args, 20)?;
    let steps = ((budget / first.max(1e-7)).ceil() as usize).clamp(50, 1_000_000);
    let (mut per_step, mut reported) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (short, _) = train_process(exe, args, 5)?;
        let (long, r) = train_process(exe, args, steps)?;
        per_step.push((long - short) / (steps - 5) as f64);
        reported.push(r);
    }
    Ok((median(&mut per_step), median(&mut reported)))
}

/// `train` from outside at the sizes of [`cases`]: the data written as CSV files (a teacher
/// network's outputs, 4096 samples, 2048 at the largest size), a tenth held out for validation,
/// `--lr 1e-3`, the default outputs (CSV and PNG) and threads. For each size and dtype, the manual
/// run's whole-process time per step (a 5-step run subtracted) against the step time it reports,
/// and torch ÷ manual from outside; medians of 3 alternating runs (1 when quick), the long runs
/// about 1 s of steps (0.3 s when quick). Prints a Markdown table.
pub fn outside(quick: bool) -> Result<()> {
    let exe = std::env::current_exe()?.with_file_name(format!("train{}", std::env::consts::EXE_SUFFIX));
    if !exe.is_file() {
        anyhow::bail!("{} is missing: `cargo build --release` builds it", exe.display());
    }
    let dir = std::env::temp_dir().join(format!("backprop-bench-outside-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = outside_in(&exe, &dir, quick);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn outside_in(exe: &std::path::Path, dir: &std::path::Path, quick: bool) -> Result<()> {
    let (p32, p64, isa) = super::peak::fma_peak();
    let (budget, reps) = if quick { (0.3, 1) } else { (1.0, 3) };
    let cores = super::cores();
    println!(
        "`train` from outside ({cores} threads, CSV data, a tenth held out, default outputs; one core's FMA peak \
         {p32:.0} GFLOP/s in f32, {p64:.0} in f64 ({isa}), times the threads the manual step uses):\n"
    );
    println!(
        "| network | batch | dtype | manual from outside | manual, reported | outside ÷ reported | libtorch from outside | \
         torch ÷ manual from outside | target | manual GFLOP/s from outside | of peak |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (case, target) in cases().iter().zip(OUTSIDE_TARGETS) {
        let spec = case_spec::<f64>(case)?;
        let samples = if case.widths[0] > 100 { 2048 } else { 4096 };
        let data = crate::data::load(&crate::data::DatasetKind::Teacher, &spec, samples, None, 7)?;
        let csv = dir.join(format!("data-{}.csv", case.widths[0]));
        let mut text = String::new();
        let mut num = ryu::Buffer::new();
        for r in 0..data.len() {
            let row = data.x.row(r).iter().chain(data.y.row(r));
            for (j, v) in row.enumerate() {
                if j > 0 {
                    text.push(',');
                }
                text.push_str(num.format(*v));
            }
            text.push('\n');
        }
        std::fs::write(&csv, text)?;
        let name = case.widths.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-");
        for dtype in ["f32", "f64"] {
            let args = |side: &str| -> Vec<String> {
                [
                    "--layers",
                    &name.replace('-', ","),
                    "--dataset",
                    &format!("csv:{}", csv.display()),
                    "--val-split",
                    "0.1",
                    "--batch-size",
                    &case.batch.to_string(),
                    "--lr",
                    "1e-3",
                    "--dtype",
                    dtype,
                    "--impl",
                    side,
                    "--quiet",
                    "--out",
                    &dir.join(side).display().to_string(),
                ]
                .map(String::from)
                .to_vec()
            };
            let (manual, reported) = outside_case(exe, &args("manual"), budget, reps)?;
            let (torch, _) = outside_case(exe, &args("torch"), budget, reps)?;
            let threads = SplitWorkspace::<f64>::threads_for(&spec, case.batch, cores);
            let peak = if dtype == "f32" { p32 } else { p64 } * threads as f64;
            let gflops = flops(&spec, case.batch) / 1e9 / manual;
            let (over, ratio) = (manual / reported, torch / manual);
            println!(
                "| {name} tanh | {} | {dtype} | {} | {} | {over:.2}× {} | {} | {ratio:.2}× | ≥ {target}× {} | {gflops:.1} | {:.0}% |",
                case.batch,
                fmt_time(manual),
                fmt_time(reported),
                if over <= OUTSIDE_LIMIT { "met" } else { "missed" },
                fmt_time(torch),
                if ratio >= target { "met" } else { "missed" },
                100.0 * gflops / peak,
            );
        }
    }
    Ok(())
}
