//! The `compare` command: its flags, the experiment they describe, and what it writes.

use anyhow::{bail, Result};
use clap::Parser;
use std::path::{Path, PathBuf};

use super::{positive_finite, progress_bar, run_tool, NetArgs, Setup, ToleranceArgs};
use crate::harness::manifest::RunManifest;
use crate::harness::trace::{self, TraceWriter};
use crate::harness::{self, Fault, Form, Judge, Outcome, RunConfig};
use crate::manual::Mutant;
use crate::model::params::Params;
use crate::model::spec::DType;
use crate::output::figures;
use crate::output::report;

/// Traces larger than this are refused unless `--force`.
pub const TRACE_LIMIT_BYTES: u128 = 2 << 30;

const EXAMPLES: &str = "\
Examples:
  compare                                  tanh 1-16-16-1 on sine, f64, 1000 steps
  compare --layers 2,32,2 --dataset spirals --activations relu --steps 2000
  compare --dtype f32 --loss mse --batch-size 0 --no-bias
  compare --lr 0.3 --dtype f32            a step too large: agree until both blow up (exit 3)
  compare --layers 2,32,2 --dataset spirals --activations tanh,identity --loss cross-entropy \\
          --optimizer adam --betas 0.9,0.99   softmax cross-entropy and Adam against torch::optim
  compare --optimizer sgd --lr 0.001 --momentum 0.9 --nesterov --weight-decay 1e-4
  compare --inject-fault 10:2              perturb dW2 at step 10 by 1%: exit 1, named
  compare --mutant skip-phi-prime:2        a classic mistake in the literal form: caught, named at layer 2
  compare --mutant list                    the catalogue of mistakes
  compare --trace --steps 50               also write out/trace.safetensors
  compare --dataset csv:data.csv --layers 3,8,1 --targets 1

Exit status: 0 equivalent, 1 not equivalent, 2 bad input, 3 agreed on every step until both sides
went non-finite (NaN or the same infinity) at the same step, where the run stopped.";

/// Train the hand-written MLP and its libtorch twin side by side and prove, step by step, that they
/// compute the same gradients and weights.
#[derive(Parser, Debug, Clone)]
#[command(name = "compare", version, after_help = EXAMPLES, allow_negative_numbers = true)]
pub struct CompareArgs {
    /// Network, data and training flags.
    #[command(flatten)]
    pub net: NetArgs,
    /// Also write out/trace.safetensors, every tensor of every step.
    #[arg(long)]
    pub trace: bool,
    /// Write a trace even when it would exceed 2 GiB.
    #[arg(long)]
    pub force: bool,
    /// How entries are judged.
    #[command(flatten)]
    pub tolerance: ToleranceArgs,
    /// The hand-written form under test: batched (matrix products) or literal (sample by sample,
    /// as the sheet writes it). [default: batched; literal with --mutant]
    #[arg(long, value_enum)]
    pub manual: Option<Form>,
    /// Plant a classic backprop mistake in the literal form, at LAYER (see --mutant list).
    #[arg(long, value_name = "NAME[:LAYER]|list")]
    pub mutant: Option<String>,
    /// Drift tolerance, normwise relative (default: 1e-8 in f64, 1e-2 in f32).
    #[arg(long, allow_hyphen_values = true)]
    pub drift_tol: Option<f64>,
    /// Perturb the manual gradient of LAYER at STEP by the factor (1 + REL), default REL 0.01.
    #[arg(long, value_name = "STEP:LAYER[:REL]")]
    pub inject_fault: Option<String>,
    /// |z| above which a tanh unit counts as saturated (sigmoid: z outside [1 − s, s]).
    #[arg(long, default_value_t = 0.97)]
    pub saturation: f64,
    /// The witness (the step recomputed in higher precision, docs/verdict.md) takes every N-th
    /// step, from step 0. Default: every step; in f64 above 10⁶ floating-point operations a step
    /// (6 · parameters · batch), every ⌈flops/10⁶⌉-th with plain SGD and step 0 alone with a
    /// stateful optimizer.
    #[arg(long, value_name = "N")]
    pub witness_every: Option<usize>,
}

/// A validated compare run: the [`Setup`] and the harness's own settings.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// Network, training and data.
    pub setup: Setup,
    /// How the lockstep comparison judges.
    pub judge: Judge,
    /// The hand-written form under test.
    pub form: Form,
    /// The planted mistake.
    pub mutant: Option<Mutant>,
    /// Drift tolerance.
    pub drift_tol: f64,
    /// Injected fault.
    pub fault: Option<Fault>,
    /// Saturation threshold.
    pub saturation: f64,
    /// Every how many steps the witness takes the step (0: the run decides).
    pub witness_every: usize,
}

impl CompareArgs {
    /// Validates every flag into an [`Experiment`]; errors name the flag and value.
    pub fn experiment(&self) -> Result<Experiment> {
        let setup = self.net.setup()?;
        let dtype = setup.spec.dtype();
        let judge = self.tolerance.judge(dtype)?;
        let spec = &setup.spec;
        let mutant = match self.mutant.as_deref() {
            Some(m) => Some(Mutant::parse(m, spec.depth(), spec.bias())?),
            None => None,
        };
        let form = match (self.manual, mutant) {
            (Some(Form::Batched), Some(_)) => {
                bail!("--mutant: mistakes are planted in the literal form; drop --manual batched")
            }
            (Some(f), _) => f,
            (None, Some(_)) => Form::Literal,
            (None, None) => Form::Batched,
        };
        let drift_tol = match self.drift_tol {
            Some(d) => positive_finite("--drift-tol", d)?,
            None => harness::default_drift_tolerance(dtype),
        };
        crate::harness::saturation::check_threshold(self.saturation)?;
        let fault = self.inject_fault.as_deref().map(str::parse::<Fault>).transpose()?;
        if let Some(f) = fault {
            if f.step >= setup.steps {
                bail!("--inject-fault: step {} is past the last step {}", f.step, setup.steps - 1);
            }
            f.check_layer(setup.spec.depth())?;
        }
        let witness_every = match self.witness_every {
            Some(0) => bail!("--witness-every: must be a positive integer (1 = every step)"),
            Some(n) => n,
            None => 0,
        };
        Ok(Experiment {
            setup,
            judge,
            form,
            mutant,
            drift_tol,
            fault,
            saturation: self.saturation,
            witness_every,
        })
    }
}

impl Experiment {
    /// The harness configuration for a batch size settled by [`Setup::load_data`].
    pub fn run_config(&self, batch_size: usize) -> RunConfig {
        let s = &self.setup;
        let steps = s.steps;
        let mut snapshot_steps = vec![0, steps / 4, steps / 2, steps - 1];
        snapshot_steps.dedup();
        RunConfig {
            spec: s.spec.clone(),
            optim: s.optim,
            steps,
            batch_size,
            shuffle_seed: s.seed,
            judge: self.judge,
            drift_tol: self.drift_tol,
            fault: self.fault,
            form: self.form,
            mutant: self.mutant,
            snapshot_steps,
            saturation: self.saturation,
            witness_every: self.witness_every,
            threads: s.threads,
        }
    }

    /// [`Setup::manifest`] with the harness's settings: the injected fault, the form, the mutant
    /// and the tolerance.
    pub fn manifest(&self, batch_size: usize) -> RunManifest {
        RunManifest {
            inject_fault: Some(self.fault.map(|f| format!("{}:{}:{}", f.step, f.layer, f.rel))),
            manual: Some(self.form),
            mutant: Some(self.mutant.map(|m| m.to_string())),
            tolerance: Some(self.judge),
            ..self.setup.manifest(batch_size)
        }
    }
}

/// What a finished compare run wrote and found.
pub struct CompareResult {
    /// The harness's outcome.
    pub outcome: Outcome,
    /// The harness configuration it ran with.
    pub run: RunConfig,
    /// Files written.
    pub written: Vec<PathBuf>,
}

/// Runs a validated experiment, writing every output under `out`. Errors before training are bad
/// input; the outcome says whether the two sides agreed.
pub fn run_experiment(
    exp: &Experiment,
    out: &Path,
    want_trace: bool,
    force: bool,
    quiet: bool,
) -> Result<CompareResult> {
    let spec = &exp.setup.spec;
    let (data, batch) = exp.setup.load_data()?;
    let run = exp.run_config(batch);
    if want_trace {
        let elem = match spec.dtype() {
            DType::F32 => 4,
            DType::F64 => 8,
        };
        let cols = spec.n_in() + spec.n_out();
        let bytes = trace::estimate_bytes(run.steps, spec.param_count(), batch, data.len(), cols, elem);
        if bytes > TRACE_LIMIT_BYTES && !force {
            bail!(
                "--trace: the trace would take about {:.1} GiB (limit 2 GiB); fewer --steps, or add --force",
                bytes as f64 / (1u64 << 30) as f64
            );
        }
    }
    crate::fsio::prepare_dir(out)?;

    let mut tracer = want_trace.then(TraceWriter::new);
    let mut bar = progress_bar(run.steps as u64, quiet);
    let tick = |t: usize| bar.tick_to(t as u64);
    let torch_threads = crate::reference::use_threads(spec, batch, exp.setup.threads);
    let outcome = match spec.dtype() {
        DType::F32 => harness::run::<f32>(&run, &data, &Params::init(spec), tracer.as_mut(), tick)?,
        DType::F64 => harness::run::<f64>(&run, &data, &Params::init(spec), tracer.as_mut(), tick)?,
    };
    bar.finish();

    let mut written = Vec::new();
    let config = RunManifest { torch_threads: Some(torch_threads), ..exp.manifest(batch) };
    let report_path = out.join("report.json");
    report::write_report(&report_path, &run, &config, &outcome)?;
    written.push(report_path);
    let metrics_path = out.join("metrics.csv");
    report::write_metrics(&metrics_path, &outcome)?;
    written.push(metrics_path);
    if let Some(tr) = &tracer {
        let path = out.join("trace.safetensors");
        tr.write(&path, &config)?;
        written.push(path);
    }
    let images = figures::write_figures(out, &run, &outcome)?;
    let index = figures::write_index(
        out,
        &report::verdict(&run, &outcome),
        &report::summary_text(&exp.setup.dataset.to_string(), &run, &outcome),
        &images,
    )?;
    written.extend(images);
    written.push(index);
    Ok(CompareResult { outcome, run, written })
}

/// The `compare` binary: parse, run, print, and map the result to the exit status
/// (0 equivalent, 1 not equivalent, 2 bad input).
pub fn main_compare() -> i32 {
    run_tool(compare_main)
}

fn compare_main(args: &CompareArgs) -> Result<i32> {
    if args.mutant.as_deref().map(str::trim) == Some("list") {
        print!("{}", Mutant::catalogue());
        return Ok(0);
    }
    let exp = args.experiment()?;
    let result = run_experiment(&exp, &args.net.out, args.trace, args.force, args.net.quiet)?;
    report::print_console(
        &exp.setup.dataset.to_string(),
        &result.run,
        &result.outcome,
        &result.written,
        args.net.quiet,
    );
    Ok(result.outcome.verdict.exit_code())
}
