//! The `check` command: verify a backpropagation written elsewhere (numpy, C++, JAX, …) from its
//! trace, against libtorch, with the same verdict, report, metrics and plots as `compare`.

use anyhow::{bail, Result};
use clap::Parser;
use std::path::PathBuf;

use super::{run_tool, ToleranceArgs};
use crate::fsio;
use crate::harness::manifest::RunManifest;
use crate::harness::trace;
use crate::harness::{self, Form, RunConfig};
use crate::model::spec::DType;
use crate::output::figures;
use crate::output::report;

const EXAMPLES: &str = "\
Examples:
  check my_trace.safetensors                 replay every recorded step in libtorch and judge it
  check out/trace.safetensors --out out/chk  a trace written by compare --trace
  scripts/python examples/python/sheet_numpy.py  record a numpy backprop, then check it

The trace: x [N, n0], y [N, nL], init.W{k}, init.b{k}, batch.{t} (int64), manual.loss [T],
manual.step{t}.dW{k}, .db{k}, .W{k}, .b{k} (after the update); W{k} is n_{k-1} x n_k (the sheet's
orientation; torch's Linear.weight is its transpose); metadata `config`: layers, activations, bias,
loss, lr, dtype, and optionally reduction (mean), l2 (weights only); `lr` [T] (f64) gives every
step its own learning rate. Steps may record any of loss, gradients and updated weights (README).
When step 0 disagrees and a common mis-description explains it (a mean recorded as a sum, torch's
weight layout, another output activation, lr off by the batch size), a line `likely cause: ...`
names the recorder argument to change.

Exit status: 0 equivalent, 1 not equivalent, 2 a trace that cannot be checked (one line naming the
tensor or field), 3 agreed on every step until both sides went non-finite.";

/// Check a backpropagation written elsewhere, from its trace: every recorded step is replayed in
/// libtorch at the trace's own weights, and each recorded loss, gradient and updated weight is
/// judged against its round-off bound.
#[derive(Parser, Debug, Clone)]
#[command(name = "check", version, after_help = EXAMPLES, allow_negative_numbers = true)]
pub struct CheckArgs {
    /// The trace (safetensors).
    pub trace: PathBuf,
    /// Output directory for report.json, metrics.csv and the plots.
    #[arg(long, default_value = "out/check")]
    pub out: PathBuf,
    /// How entries are judged.
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
    /// |z| above which a tanh unit counts as saturated.
    #[arg(long, default_value_t = 0.97)]
    pub saturation: f64,
    /// Threads libtorch may use for large networks [default: the machine's cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// The verdict line only (and the likely cause, when one is found).
    #[arg(long)]
    pub quiet: bool,
}

/// The `check` binary: read, replay, write, print; the exit status of the verdict, or 2.
pub fn main_check() -> i32 {
    run_tool(check_main)
}

fn check_main(args: &CheckArgs) -> Result<i32> {
    let rec = trace::read(&args.trace)?;
    let spec = rec.spec.clone();
    let judge = args.tolerance.judge(spec.dtype())?;
    crate::harness::saturation::check_threshold(args.saturation)?;
    let batch = rec.steps.iter().map(|s| s.batch.len()).max().unwrap_or(1);
    let threads = match args.threads {
        Some(0) => bail!("--threads: must be at least 1"),
        Some(n) => n,
        None => crate::kernels::cores(),
    };
    fsio::prepare_dir(&args.out)?;
    crate::reference::use_threads(&spec, batch, threads);
    let what = format!("the trace {}", args.trace.display());
    let outcome = match spec.dtype() {
        DType::F32 => harness::replay::replay::<f32>(&rec, judge, args.saturation, &what)?,
        DType::F64 => harness::replay::replay::<f64>(&rec, judge, args.saturation, &what)?,
    };
    let run = RunConfig {
        spec: spec.clone(),
        optim: rec.optim,
        steps: rec.steps.len(),
        batch_size: batch,
        shuffle_seed: 0,
        judge,
        drift_tol: harness::default_drift_tolerance(spec.dtype()),
        fault: None,
        form: Form::Batched,
        mutant: None,
        snapshot_steps: vec![],
        saturation: args.saturation,
        witness_every: 0,
        threads,
    };
    let config = RunManifest {
        trace: Some(args.trace.display().to_string()),
        tolerance: Some(judge),
        reduction: rec.conventions.mean.then(|| "mean".to_string()),
        l2: (rec.conventions.l2 > 0.0).then_some(rec.conventions.l2),
        ..RunManifest::of_spec(&spec)
    }
    .with_optim(&rec.optim);
    let mut written = Vec::new();
    let report_path = args.out.join("report.json");
    report::write_report(&report_path, &run, &config, &outcome)?;
    written.push(report_path);
    let metrics_path = args.out.join("metrics.csv");
    report::write_metrics(&metrics_path, &outcome)?;
    written.push(metrics_path);
    let images = figures::write_figures(&args.out, &run, &outcome)?;
    let dataset = format!("trace {}", args.trace.display());
    let index = figures::write_index(
        &args.out,
        &report::verdict(&run, &outcome),
        &report::summary_text(&dataset, &run, &outcome),
        &images,
    )?;
    written.extend(images);
    written.push(index);
    report::print_console(&dataset, &run, &outcome, &written, args.quiet);
    if outcome.first_divergence.as_ref().is_some_and(|d| d.step == 0) {
        if let Some(cause) = harness::diagnose::likely_cause(&rec)? {
            println!("likely cause: {cause}");
        }
    }
    Ok(outcome.verdict.exit_code())
}
