//! The machine's own measurements: where libtorch's second thread pays (`--crossover`), where
//! the manual step's split pays (`--split`), steps beside a busy process (`--busy`), and whole
//! `train` processes against PyTorch outside (`--outside`).

use anyhow::Result;
use std::time::Instant;

use super::{case_spec, cases, flops, fmt_time, median, sample_batch, Case};
use crate::kernels::scalar::Scalar;
use crate::manual::{Backprop, Batch, Split, SplitWorkspace};
use crate::model::optim::OptimConfig;
use crate::model::params::Params;
use crate::reference::Reference;

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
    crate::kernels::gemm::set_threads(gemm_threads);
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
    crate::kernels::gemm::set_threads(1);
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
    let (p32, p64, isa) = crate::kernels::peak::fma_peak();
    let (budget, reps) = if quick { (0.3, 1) } else { (1.0, 3) };
    let cores = crate::kernels::cores();
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
