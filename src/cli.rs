//! The `compare` command: flags, the experiment they describe, and what it writes.
//!
//! `src/bin/compare.rs` only calls [`main_compare`]; everything a test wants to call lives here.

use anyhow::{bail, Result};
use clap::Parser;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::check::Tolerance;
use crate::data::{self, Dataset, DatasetKind};
use crate::figures;
use crate::harness::{self, Fault, Outcome, RunConfig};
use crate::params::Params;
use crate::report;
use crate::spec::{parse_activations, parse_layers, DType, Init, Loss, Spec};
use crate::trace::{self, TraceWriter};

/// Samples per step when `--batch-size` is not given (the full batch for smaller datasets).
pub const DEFAULT_BATCH: usize = 32;

/// Activation buffers larger than this are refused before they are allocated.
pub const MAX_WORKSPACE_BYTES: u128 = 8_000_000_000;

/// Traces larger than this are refused unless `--force`.
pub const TRACE_LIMIT_BYTES: u128 = 2 << 30;

const EXAMPLES: &str = "\
Examples:
  compare                                  tanh 1-16-16-1 on sine, f64, 1000 steps
  compare --layers 2,32,2 --dataset spirals --activations relu --steps 2000
  compare --dtype f32 --loss mse --batch-size 0 --no-bias
  compare --inject-fault 10:2              perturb dW2 at step 10 by 1%: exit 1, named
  compare --trace --steps 50               also write out/trace.safetensors
  compare --dataset csv:data.csv --layers 3,8,1 --targets 1

Exit status: 0 equivalent, 1 not equivalent, 2 bad input.";

/// The flags that describe a network, its data and its training, shared by `compare` and `train`.
#[derive(clap::Args, Debug, Clone)]
pub struct NetArgs {
    /// Widths n0,...,nL.
    #[arg(long, default_value = "1,16,16,1")]
    pub layers: String,
    /// One name per layer, or one name for every hidden layer (the output layer is then identity):
    /// identity, sigmoid, tanh, relu, leaky-relu, elu, softplus, gelu, silu.
    #[arg(long, default_value = "tanh")]
    pub activations: String,
    /// Layers with bias b^k (the default).
    #[arg(long, overrides_with = "no_bias")]
    pub bias: bool,
    /// Layers without bias, as the exercise sheet's network.
    #[arg(long)]
    pub no_bias: bool,
    /// half-sse: E = ½ Σ|ŷ − y|² (eq. 5); mse: mean over all output entries.
    #[arg(long, default_value = "half-sse")]
    pub loss: String,
    /// f32 or f64.
    #[arg(long, default_value = "f64")]
    pub dtype: String,
    /// Weight initialisation: torch (U ±1/√fan_in), xavier (Glorot uniform), he (Kaiming normal).
    #[arg(long, default_value = "torch")]
    pub init: String,
    /// Learning rate η.
    #[arg(long, default_value_t = 0.01, allow_hyphen_values = true)]
    pub lr: f64,
    /// SGD steps.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Samples per step; 0 for the full batch [default: 32, or the full batch when the data is
    /// smaller].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// sine, xor, spirals, teacher or csv:PATH.
    #[arg(long, default_value = "sine")]
    pub dataset: String,
    /// Samples of a built-in dataset.
    #[arg(long, default_value_t = 256)]
    pub samples: usize,
    /// Target columns of a CSV (the last ones); defaults to nL.
    #[arg(long)]
    pub targets: Option<usize>,
    /// Seed of the weights, the data and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// No progress bar, and only the essential line on the console.
    #[arg(long)]
    pub quiet: bool,
}

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
    /// Lockstep relative tolerance (default: 1e-10 in f64, 1e-4 in f32).
    #[arg(long, allow_hyphen_values = true)]
    pub rtol: Option<f64>,
    /// Lockstep absolute tolerance (default: 1e-12 in f64, 1e-5 in f32).
    #[arg(long, allow_hyphen_values = true)]
    pub atol: Option<f64>,
    /// Drift tolerance, normwise relative (default: 1e-8 in f64, 1e-2 in f32).
    #[arg(long, allow_hyphen_values = true)]
    pub drift_tol: Option<f64>,
    /// Perturb the manual gradient of LAYER at STEP by the factor (1 + REL), default REL 0.01.
    #[arg(long, value_name = "STEP:LAYER[:REL]")]
    pub inject_fault: Option<String>,
    /// |z| above which a tanh unit counts as saturated (sigmoid: z outside [1 − s, s]).
    #[arg(long, default_value_t = 0.97)]
    pub saturation: f64,
}

/// The validated [`NetArgs`]: the spec, the training and where the data comes from.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The network.
    pub spec: Spec,
    /// Learning rate η.
    pub lr: f64,
    /// SGD steps.
    pub steps: usize,
    /// Samples per step as given (`None`: [`DEFAULT_BATCH`], or the full batch for smaller data).
    pub batch_size: Option<usize>,
    /// The dataset.
    pub dataset: DatasetKind,
    /// Samples of a built-in dataset.
    pub samples: usize,
    /// CSV target columns.
    pub targets: Option<usize>,
    /// The seed of weights, data and batch order.
    pub seed: u64,
}

fn positive_finite(name: &str, v: f64) -> Result<f64> {
    if !v.is_finite() || v <= 0.0 {
        bail!("{name}: must be a finite number > 0, got {v}");
    }
    Ok(v)
}

fn non_negative(name: &str, v: f64) -> Result<f64> {
    if !v.is_finite() || v < 0.0 {
        bail!("{name}: must be a finite number >= 0, got {v}");
    }
    Ok(v)
}

impl NetArgs {
    /// Validates the flags into a [`Setup`]; errors name the flag and value.
    pub fn setup(&self) -> Result<Setup> {
        let widths = parse_layers(&self.layers)?;
        if widths.len() < 2 {
            bail!("layers: {:?} has a single width; give at least n0,nL", self.layers);
        }
        let activations = parse_activations(&self.activations, widths.len() - 1)?;
        let spec = Spec::new(widths, activations)?
            .with_bias(!self.no_bias)
            .with_loss(self.loss.parse::<Loss>()?)
            .with_dtype(self.dtype.parse::<DType>()?)
            .with_init(self.init.parse::<Init>()?)
            .with_seed(self.seed);
        let lr = positive_finite("--lr", self.lr)?;
        if self.steps == 0 {
            bail!("--steps: must be at least 1");
        }
        Ok(Setup {
            spec,
            lr,
            steps: self.steps,
            batch_size: self.batch_size,
            dataset: self.dataset.parse()?,
            samples: self.samples,
            targets: self.targets,
            seed: self.seed,
        })
    }
}

impl Setup {
    /// Loads the data and settles the batch size: the one given (an error when larger than the
    /// data; 0 is the full batch), else [`DEFAULT_BATCH`] or the full batch if the data is smaller.
    pub fn load_data(&self) -> Result<(Dataset, usize)> {
        let data = data::load(&self.dataset, &self.spec, self.samples, self.targets, self.seed)?;
        let n = data.len();
        let batch = match self.batch_size {
            Some(b) if b > n => {
                bail!("--batch-size {b} is larger than the dataset ({n} samples); use 0 for the full batch")
            }
            Some(0) => n,
            Some(b) => b,
            None => DEFAULT_BATCH.min(n),
        };
        // The whole dataset goes through the network at once too (losses, snapshots).
        let bytes = self.spec.workspace_bytes(n);
        if bytes > MAX_WORKSPACE_BYTES {
            bail!(
                "layers: a forward and backward pass over {n} samples would need {:.1} GB of activations \
                 (limit {} GB); use narrower layers or fewer samples",
                bytes as f64 / 1e9,
                MAX_WORKSPACE_BYTES / 1_000_000_000
            );
        }
        Ok((data, batch))
    }

    /// The configuration as a JSON object (report.json's `config`, the trace's metadata), with
    /// the batch size actually used: enough to repeat the run with the same flags.
    pub fn config_json(&self, batch_size: usize) -> serde_json::Value {
        let s = &self.spec;
        json!({
            "layers": s.widths(),
            "activations": s.activations().iter().map(|a| a.name()).collect::<Vec<_>>(),
            "bias": s.bias(),
            "loss": s.loss().name(),
            "lr": self.lr,
            "steps": self.steps,
            "batch_size": batch_size,
            "dtype": s.dtype().name(),
            "init": s.init().name(),
            "seed": self.seed,
            "dataset": self.dataset.to_string(),
            "samples": self.samples,
            "targets": self.targets,
        })
    }
}

/// A validated compare run: the [`Setup`] and the harness's own settings.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// Network, training and data.
    pub setup: Setup,
    /// Lockstep tolerance.
    pub tol: Tolerance,
    /// Drift tolerance.
    pub drift_tol: f64,
    /// Injected fault.
    pub fault: Option<Fault>,
    /// Saturation threshold.
    pub saturation: f64,
}

impl CompareArgs {
    /// Validates every flag into an [`Experiment`]; errors name the flag and value.
    pub fn experiment(&self) -> Result<Experiment> {
        let setup = self.net.setup()?;
        let dtype = setup.spec.dtype();
        let mut tol = harness::default_tolerance(dtype);
        if let Some(r) = self.rtol {
            tol.rtol = non_negative("--rtol", r)?;
        }
        if let Some(a) = self.atol {
            tol.atol = non_negative("--atol", a)?;
        }
        let drift_tol = match self.drift_tol {
            Some(d) => positive_finite("--drift-tol", d)?,
            None => harness::default_drift_tolerance(dtype),
        };
        if !(self.saturation > 0.5 && self.saturation < 1.0) {
            bail!("--saturation: must lie in (0.5, 1), got {}", self.saturation);
        }
        let fault = self.inject_fault.as_deref().map(str::parse::<Fault>).transpose()?;
        if let Some(f) = fault {
            if f.step >= setup.steps {
                bail!("--inject-fault: step {} is past the last step {}", f.step, setup.steps - 1);
            }
            if f.layer > setup.spec.depth() {
                bail!(
                    "--inject-fault: layer {} does not exist (the network has {} layers)",
                    f.layer,
                    setup.spec.depth()
                );
            }
        }
        Ok(Experiment { setup, tol, drift_tol, fault, saturation: self.saturation })
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
            lr: s.lr,
            steps,
            batch_size,
            shuffle_seed: s.seed,
            tol: self.tol,
            drift_tol: self.drift_tol,
            fault: self.fault,
            snapshot_steps,
            saturation: self.saturation,
        }
    }

    /// [`Setup::config_json`] with the injected fault, if any.
    pub fn config_json(&self, batch_size: usize) -> serde_json::Value {
        let mut config = self.setup.config_json(batch_size);
        config["inject_fault"] = json!(self.fault.map(|f| format!("{}:{}:{}", f.step, f.layer, f.rel)));
        config
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
    let outcome = match spec.dtype() {
        DType::F32 => harness::run::<f32>(&run, &data, &Params::init(spec), tracer.as_mut(), tick)?,
        DType::F64 => harness::run::<f64>(&run, &data, &Params::init(spec), tracer.as_mut(), tick)?,
    };
    bar.finish();

    let mut written = Vec::new();
    let config = exp.config_json(batch);
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
        &report::summary_text(exp, &run, &outcome),
        &images,
    )?;
    written.extend(images);
    written.push(index);
    Ok(CompareResult { outcome, run, written })
}

/// A progress bar on stderr that appears only once a run has taken about a second, only on a
/// terminal, and never with `--quiet`.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    start: std::time::Instant,
    len: u64,
    enabled: bool,
}

pub(crate) fn progress_bar(len: u64, quiet: bool) -> Progress {
    let enabled = !quiet && std::io::stderr().is_terminal();
    Progress { bar: None, start: std::time::Instant::now(), len, enabled }
}

impl Progress {
    pub(crate) fn tick_to(&mut self, t: u64) {
        if self.enabled && self.bar.is_none() && self.start.elapsed().as_secs_f64() > 1.0 {
            let bar = indicatif::ProgressBar::new(self.len);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps {eta} left")
            {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(t);
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs a command-line tool: parses its flags as `P`, runs `body`, and maps the outcome to the
/// exit status. `--help` and `--version` print and give 0; a bad flag or an error from `body` is
/// one line on stderr and 2; otherwise `body`'s own status.
pub fn run_tool<P: Parser>(body: impl FnOnce(&P) -> Result<i32>) -> i32 {
    let args = match P::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let name = P::command().get_name().to_string();
            let text = e.render().to_string();
            eprintln!("{} (see {name} --help)", text.lines().next().unwrap_or("error: bad arguments"));
            return 2;
        }
    };
    match body(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            2
        }
    }
}

/// The `compare` binary: parse, run, print, and map the result to the exit status
/// (0 equivalent, 1 not equivalent, 2 bad input).
pub fn main_compare() -> i32 {
    run_tool(compare_main)
}

fn compare_main(args: &CompareArgs) -> Result<i32> {
    let exp = args.experiment()?;
    let result = run_experiment(&exp, &args.net.out, args.trace, args.force, args.net.quiet)?;
    report::print_console(&exp, &result.run, &result.outcome, &result.written, args.net.quiet);
    Ok(if result.outcome.equivalent { 0 } else { 1 })
}

/// An error and its causes on one line: "outer: inner: root".
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if parts.last().is_none_or(|p| !p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
