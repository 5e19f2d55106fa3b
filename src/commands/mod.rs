//! The commands behind the binaries: `compare`, `train`, `study` and `bench`, and what they share
//! (the network, data and training flags, flag validation, the progress bar, the exit status).
//!
//! `src/bin/*.rs` only call into these modules; everything a test wants to call lives here.

use anyhow::{bail, Result};
use clap::Parser;
use std::io::IsTerminal;
use std::path::PathBuf;

use crate::data::{self, Dataset, DatasetKind};
use crate::error::FieldError;
use crate::harness::manifest::RunManifest;
use crate::model::optim::{OptimConfig, OptimizerKind};
use crate::model::spec::{parse_activations, parse_layers, DType, Init, Loss, Spec};

#[cfg(feature = "torch")]
pub mod bench;
#[cfg(feature = "torch")]
pub mod check;
#[cfg(feature = "torch")]
pub mod compare;
pub mod sizes;
#[cfg(feature = "torch")]
pub mod study;
pub mod train;

#[cfg(feature = "torch")]
pub use compare::{main_compare, run_experiment, CompareArgs, CompareResult, Experiment};

/// Samples per step when `--batch-size` is not given (the full batch for smaller datasets).
pub const DEFAULT_BATCH: usize = 32;

/// Activation buffers larger than this are refused before they are allocated.
pub const MAX_WORKSPACE_BYTES: u128 = 8_000_000_000;

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
    /// half-sse: E = ½ Σ|ŷ − y|² (eq. 5); mse: mean over all output entries; cross-entropy:
    /// softmax over the output layer's pre-activations (identity output), mean over the batch.
    #[arg(long, value_enum, default_value_t = Loss::HalfSse)]
    pub loss: Loss,
    /// Label smoothing ε of the cross-entropy: targets (1 − ε)t + ε/C.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub label_smoothing: f64,
    /// f32 or f64.
    #[arg(long, value_enum, default_value_t = DType::F64)]
    pub dtype: DType,
    /// Weight initialisation: torch (U ±1/√fan_in), xavier (Glorot uniform), he (Kaiming normal).
    #[arg(long, value_enum, default_value_t = Init::Torch)]
    pub init: Init,
    /// Learning rate η.
    #[arg(long, default_value_t = 0.01, allow_hyphen_values = true)]
    pub lr: f64,
    /// The optimizer flags.
    #[command(flatten)]
    pub optim: OptimArgs,
    /// Training steps.
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
    /// Threads libtorch may use [default: the machine's cores]. Steps of fewer than 1e8
    /// floating-point operations use one: up to 3× faster beside another busy process, at most a
    /// third slower on a quiet machine (README, "Busy machines").
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The optimizer and its hyperparameters, with torch.optim's names and defaults.
#[derive(clap::Args, Debug, Clone)]
pub struct OptimArgs {
    /// sgd, adam, adamw or rmsprop (torch.optim's SGD, Adam, AdamW, RMSprop).
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    pub optimizer: OptimizerKind,
    /// Momentum (sgd, rmsprop) [default: 0].
    #[arg(long, allow_hyphen_values = true)]
    pub momentum: Option<f64>,
    /// Dampening of the momentum (sgd) [default: 0].
    #[arg(long, allow_hyphen_values = true)]
    pub dampening: Option<f64>,
    /// Nesterov momentum (sgd; needs --momentum > 0 and no dampening).
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay λ [default: 0; adamw 0.01].
    #[arg(long, allow_hyphen_values = true)]
    pub weight_decay: Option<f64>,
    /// β1,β2 (adam, adamw) [default: 0.9,0.999].
    #[arg(long, allow_hyphen_values = true)]
    pub betas: Option<String>,
    /// ε (adam, adamw, rmsprop) [default: 1e-8].
    #[arg(long, allow_hyphen_values = true)]
    pub eps: Option<f64>,
    /// The amsgrad variant (adam, adamw).
    #[arg(long)]
    pub amsgrad: bool,
    /// Smoothing constant α (rmsprop) [default: 0.99].
    #[arg(long, allow_hyphen_values = true)]
    pub alpha: Option<f64>,
    /// Centered RMSprop.
    #[arg(long)]
    pub centered: bool,
}

impl OptimArgs {
    /// The configuration these flags ask for with learning rate `lr`, validated; a flag the chosen
    /// optimizer does not take is an error naming it.
    pub fn config(&self, lr: f64) -> Result<OptimConfig> {
        use OptimizerKind::*;
        let kind = self.optimizer;
        let mut c = OptimConfig::new(kind, lr);
        let takes = |flag: &str, given: bool, ok: &[OptimizerKind]| -> Result<()> {
            if given && !ok.contains(&kind) {
                let names: Vec<&str> = ok.iter().map(|k| k.name()).collect();
                bail!("{flag}: a setting of {}, not of --optimizer {kind}", names.join(" and "));
            }
            Ok(())
        };
        takes("--momentum", self.momentum.is_some(), &[Sgd, RmsProp])?;
        takes("--dampening", self.dampening.is_some(), &[Sgd])?;
        takes("--nesterov", self.nesterov, &[Sgd])?;
        takes("--betas", self.betas.is_some(), &[Adam, AdamW])?;
        takes("--eps", self.eps.is_some(), &[Adam, AdamW, RmsProp])?;
        takes("--amsgrad", self.amsgrad, &[Adam, AdamW])?;
        takes("--alpha", self.alpha.is_some(), &[RmsProp])?;
        takes("--centered", self.centered, &[RmsProp])?;
        c.momentum = self.momentum.unwrap_or(c.momentum);
        c.dampening = self.dampening.unwrap_or(c.dampening);
        c.nesterov = self.nesterov;
        c.weight_decay = self.weight_decay.unwrap_or(c.weight_decay);
        c.eps = self.eps.unwrap_or(c.eps);
        c.amsgrad = self.amsgrad;
        c.alpha = self.alpha.unwrap_or(c.alpha);
        c.centered = self.centered;
        if let Some(b) = &self.betas {
            let parts: Vec<&str> = b.split(',').map(str::trim).collect();
            match parts.as_slice() {
                [b1, b2] => {
                    let parse = |v: &str| {
                        v.parse::<f64>()
                            .map_err(|_| anyhow::anyhow!("--betas: {v:?} is not a number (expected B1,B2)"))
                    };
                    c.betas = (parse(b1)?, parse(b2)?);
                }
                _ => bail!("--betas: expected two numbers B1,B2, got {b:?}"),
            }
        }
        c.validate()?;
        Ok(c)
    }
}

/// The validated [`NetArgs`]: the spec, the training and where the data comes from.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The network.
    pub spec: Spec,
    /// The optimizer (its learning rate is η).
    pub optim: OptimConfig,
    /// Training steps.
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
    /// Threads libtorch may use for large networks.
    pub threads: usize,
}

/// How the lockstep comparison judges an entry, shared by `compare` and `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct ToleranceArgs {
    /// How an entry is judged: round-off (against its own round-off bound, from the step's
    /// magnitudes; docs/verdict.md) or fixed (--rtol, --atol, as torch.testing.assert_close).
    /// [default: round-off; fixed when --rtol or --atol is given]
    #[arg(long, value_enum)]
    pub tolerance: Option<ToleranceFlag>,
    /// Relative tolerance of --tolerance fixed (default: 1e-10 in f64, 1e-4 in f32).
    #[arg(long, allow_hyphen_values = true)]
    pub rtol: Option<f64>,
    /// Absolute tolerance of --tolerance fixed (default: 1e-12 in f64, 1e-5 in f32).
    #[arg(long, allow_hyphen_values = true)]
    pub atol: Option<f64>,
}

/// The `--tolerance` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ToleranceFlag {
    /// Each entry against its own round-off bound.
    RoundOff,
    /// atol + rtol·|torch|.
    Fixed,
}

impl ToleranceArgs {
    /// The judge these flags ask for, for a run in `dtype`; errors name the flag.
    pub fn judge(&self, dtype: DType) -> Result<crate::harness::Judge> {
        let mut tol = crate::harness::default_tolerance(dtype);
        for (name, given, slot) in
            [("--rtol", self.rtol, &mut tol.rtol), ("--atol", self.atol, &mut tol.atol)]
        {
            if let Some(v) = given {
                if !v.is_finite() || v < 0.0 {
                    bail!("{name}: must be a finite number >= 0, got {v}");
                }
                *slot = v;
            }
        }
        let fixed_given = self.rtol.is_some() || self.atol.is_some();
        Ok(match (self.tolerance, fixed_given) {
            (Some(ToleranceFlag::RoundOff), true) => {
                bail!("--rtol/--atol: they set --tolerance fixed, not round-off")
            }
            (Some(ToleranceFlag::Fixed), _) | (None, true) => crate::harness::Judge::fixed(tol),
            _ => crate::harness::Judge::round_off(),
        })
    }
}

pub(crate) fn positive_finite(name: &str, v: f64) -> Result<f64> {
    if !v.is_finite() || v <= 0.0 {
        bail!("{name}: must be a finite number > 0, got {v}");
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
            .with_loss(self.loss)
            .with_label_smoothing(self.label_smoothing)
            .with_dtype(self.dtype)
            .with_init(self.init)
            .with_seed(self.seed);
        spec.check_loss()?;
        let lr = positive_finite("--lr", self.lr)?;
        let optim = self.optim.config(lr)?;
        if self.steps == 0 {
            bail!("--steps: must be at least 1");
        }
        let dataset: DatasetKind = self.dataset.parse()?;
        if let (Some(t), false) = (self.targets, matches!(dataset, DatasetKind::Csv(_))) {
            bail!(
                "--targets {t}: counts the target columns of a CSV (--dataset csv:PATH); the built-in dataset {} \
                 has its own, so drop --targets",
                self.dataset
            );
        }
        Ok(Setup {
            spec,
            optim,
            steps: self.steps,
            batch_size: self.batch_size,
            dataset,
            samples: self.samples,
            targets: self.targets,
            seed: self.seed,
            threads: match self.threads {
                Some(0) => bail!("--threads: must be at least 1"),
                Some(n) => n,
                None => crate::kernels::cores(),
            },
        })
    }
}

impl Setup {
    /// Loads the data and settles the batch size: the one given (an error when larger than the
    /// data; 0 is the full batch), else [`DEFAULT_BATCH`] or the full batch if the data is smaller.
    pub fn load_data(&self) -> Result<(Dataset, usize)> {
        let data = data::load(&self.dataset, &self.spec, self.samples, self.targets, self.seed)?;
        data::check_targets(&data, &self.spec, &self.dataset.to_string())?;
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

    /// The run's manifest (report.json's `config`, the trace's and the weights' metadata), with
    /// the batch size actually used: enough to repeat the run with the same flags.
    pub fn manifest(&self, batch_size: usize) -> RunManifest {
        RunManifest {
            steps: Some(self.steps),
            batch_size: Some(batch_size),
            init: Some(self.spec.init()),
            seed: Some(self.seed),
            dataset: Some(self.dataset.to_string()),
            samples: Some(self.samples),
            targets: Some(self.targets),
            ..RunManifest::of_spec(&self.spec)
        }
        .with_optim(&self.optim)
    }
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
    run_tool_matches(|args: &P, _| body(args))
}

/// [`run_tool`], with the parsed command line beside the flags: which flags were typed (rather than
/// left at their defaults) is in its `value_source`.
pub fn run_tool_matches<P: Parser>(body: impl FnOnce(&P, &clap::ArgMatches) -> Result<i32>) -> i32 {
    let parsed = P::command().try_get_matches().and_then(|m| P::from_arg_matches(&m).map(|args| (args, m)));
    let (args, matches) = match parsed {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let name = P::command().get_name().to_string();
            eprintln!("{} (see {name} --help)", clap_line(&e));
            return 2;
        }
    };
    if let Err(e) = crate::kernels::simd::check_env() {
        eprintln!("error: {}", one_line(&e));
        return 2;
    }
    match body(&args, &matches) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            2
        }
    }
}

/// Flags that count something and may be 0 (0 means "the full batch", "seed 0", …).
const ZERO_COUNTS: [&str; 2] = ["--batch-size", "--seed"];

/// A flag error on one line that says what to do: the valid values of an enum flag (and the
/// nearest, when one is near), what a count must be, or clap's own first line.
fn clap_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("error: bad arguments").to_string();
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::String(v)) => vec![v.clone()],
        _ => Vec::new(),
    };
    let valid = strings(ContextKind::ValidValue);
    if !valid.is_empty() {
        let first = first.split(": [possible values").next().unwrap_or(&first).to_string();
        let bad = strings(ContextKind::InvalidValue).first().cloned().unwrap_or_default();
        let near = strings(ContextKind::SuggestedValue).first().cloned().or_else(|| {
            crate::model::spec::nearest(&bad, valid.iter().map(String::as_str)).map(String::from)
        });
        let hint = near.map_or(String::new(), |n| format!("; did you mean '{n}'?"));
        return format!("{first}: expected one of {}{hint}", valid.join(", "));
    }
    let integer =
        ["invalid digit found in string", "cannot parse integer from empty string", "number too large"];
    if let Some(bad) = integer.iter().find(|m| first.contains(*m)) {
        let flag =
            strings(ContextKind::InvalidArg).first().and_then(|a| a.split(' ').next().map(String::from));
        let what = match flag.as_deref() {
            Some(f) if ZERO_COUNTS.contains(&f) => "must be a whole number, 0 or more",
            _ => "must be a positive whole number",
        };
        let head = first.split(&format!(": {bad}")).next().unwrap_or(&first);
        return format!("{head}: {what}");
    }
    first
}

/// The flag that sets a library field (a [`FieldError`]'s `{field}` or `{field=value}`): `--`
/// and the field's first part with `-` for `_` (`lr` → `--lr`, `inject_fault.layer` →
/// `--inject-fault`, `val_split` → `--val-split`), followed by the value when there is one
/// (`loss=cross-entropy` → `--loss cross-entropy`); `bias=false` is `--no-bias`.
pub fn flag(field: &str, value: Option<&str>) -> String {
    let flag = format!("--{}", field.split('.').next().unwrap_or(field).replace('_', "-"));
    match (field, value) {
        ("bias", Some("false")) => "--no-bias".to_string(),
        (_, Some(v)) => format!("{flag} {v}"),
        (_, None) => flag,
    }
}

/// An error and its causes on one line: "outer: inner: root", each [`FieldError`] in the command
/// line's words ([`flag`]).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = match cause.downcast_ref::<FieldError>() {
            Some(f) => f.render(flag),
            None => cause.to_string(),
        };
        if parts.last().is_none_or(|p| !p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}
