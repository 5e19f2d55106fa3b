//! The saturation study's experiment: why a deep tanh network trains slowly, and what fixes it
//! (the exercise sheet's question (e)).
//!
//! One deep network is trained on the same data from the same seed, with the same learning rate
//! and number of steps, ten ways: tanh with large weights N(0, 1) (which saturates it), tanh with
//! torch's default, Xavier/Glorot and gain-5/3 initialisation, the relu family (relu, leaky-relu,
//! elu, gelu, silu) with He initialisation, and sigmoid. Every run is checked against libtorch by
//! the harness. By default the task is a *teacher* one: the targets come from a fixed random tanh
//! network of the same widths, on 256 training inputs, with 256 more held out; a network whose
//! hidden layers cannot learn (eq. (7): each δ^k carries the factor φ'(a^k), near 0 for a
//! saturated unit) fits the training set late and what it fits does not carry over to the held-out
//! samples. The study measures per variant the steps to a target loss, the held-out loss of the
//! final weights and, per hidden layer, the saturated share ([`crate::harness::saturation`]), the
//! dead units, the histograms of z^k, ∂E/∂z^k and ∂E/∂W^k, and the update-to-weight ratio over
//! training ([`measure`]).
//!
//! The experiment takes a plain [`StudyConfig`]; `study`'s command line maps onto it, and
//! [`crate::output::study`] draws and writes what it measured.

pub mod measure;

use anyhow::{bail, Result};
use rayon::prelude::*;
use std::sync::Mutex;

use crate::data::{self, Dataset, DatasetKind};
use crate::error::field_bail;
use crate::harness::{self, RunConfig};
use crate::model::activation::Activation;
use crate::model::params::Params;
use crate::model::spec::{DType, Init, Loss, Spec};

pub use measure::{mean, slowdown, std_dev, Diagnostics, Slowdown, Validation, VariantResult};

/// What the study runs: the network, the data, the training and the saturation threshold, the
/// same for every variant. Validation messages name `study`'s flags (`--hidden`, …), whose
/// values these are.
#[derive(Clone, Debug)]
pub struct StudyConfig {
    /// Hidden layers of `width` units (a bottleneck, if any, comes after them).
    pub hidden: usize,
    /// Units per hidden layer.
    pub width: usize,
    /// Units of a last, narrow hidden layer (0: none).
    pub bottleneck: usize,
    /// Full-batch SGD steps per variant.
    pub steps: usize,
    /// Learning rate η, the same for every variant.
    pub lr: f64,
    /// The loss.
    pub loss: Loss,
    /// The loss whose first crossing is counted as "steps to target".
    pub target: f64,
    /// The built-in dataset's name: teacher, sine, xor or spirals.
    pub dataset: String,
    /// Training samples of the dataset.
    pub samples: usize,
    /// Held-out samples of the same dataset; 0: none.
    pub validation: usize,
    /// Seed of weights and data, the same for every variant.
    pub seed: u64,
    /// The saturation threshold `s` of [`crate::harness::saturation::flat`].
    pub saturation: f64,
    /// Variants trained at once (`None`: the machine's cores).
    pub threads: Option<usize>,
}

/// How a variant scales the hidden layers' initial weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// As the variant's [`Init`] draws them.
    AsInit,
    /// N(0, σ²) whatever the fan-in: σ = 1 saturates tanh (a^k then has standard deviation about
    /// √n_{k−1} · std z^{k−1}).
    Std(f64),
    /// N(0, g² / n_{k−1}): "Kaiming" for tanh with g = 5/3, the gain that offsets tanh's
    /// squashing of a unit-variance input.
    Gain(f64),
}

/// The part a variant plays in the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The saturated network of question (e).
    Saturated,
    /// A remedy: a fan-in-scaled initialisation or a non-saturating activation.
    Fix,
    /// For comparison: torch's default initialisation, and sigmoid, the worst case.
    Reference,
}

/// One way of training the network.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Short name for legends and tables.
    pub name: &'static str,
    /// Hidden-layer activation.
    pub phi: Activation,
    /// Weight initialisation.
    pub init: Init,
    /// Rescaling of the hidden layers' initial weights; [`Scale::Std`] and [`Scale::Gain`]
    /// rescale He's normal draws, so they go with `init: Init::He`.
    pub scale: Scale,
    /// Saturated, fix or reference.
    pub role: Role,
}

const fn variant(name: &'static str, phi: Activation, init: Init, scale: Scale, role: Role) -> Variant {
    Variant { name, phi, init, scale, role }
}

/// The ten variants: the saturated tanh network first, the fixes, then the references.
pub const VARIANTS: [Variant; 10] = [
    variant("tanh, N(0,1) (saturated)", Activation::Tanh, Init::He, Scale::Std(1.0), Role::Saturated),
    variant("tanh, Xavier", Activation::Tanh, Init::Xavier, Scale::AsInit, Role::Fix),
    variant("tanh, 5/3 / √fan-in", Activation::Tanh, Init::He, Scale::Gain(5.0 / 3.0), Role::Fix),
    variant("relu, He", Activation::Relu, Init::He, Scale::AsInit, Role::Fix),
    variant("leaky-relu, He", Activation::LeakyRelu, Init::He, Scale::AsInit, Role::Fix),
    variant("elu, He", Activation::Elu, Init::He, Scale::AsInit, Role::Fix),
    variant("gelu, He", Activation::Gelu, Init::He, Scale::AsInit, Role::Fix),
    variant("silu, He", Activation::Silu, Init::He, Scale::AsInit, Role::Fix),
    variant("tanh, torch init", Activation::Tanh, Init::Torch, Scale::AsInit, Role::Reference),
    variant("sigmoid, torch init", Activation::Sigmoid, Init::Torch, Scale::AsInit, Role::Reference),
];

/// The input and output widths of a built-in dataset.
fn io_widths(dataset: &DatasetKind) -> Result<(usize, usize)> {
    Ok(match dataset {
        DatasetKind::Sine => (1, 1),
        DatasetKind::Xor => (2, 1),
        DatasetKind::Spirals => (2, 2),
        DatasetKind::Teacher => (4, 1),
        DatasetKind::Csv(_) => {
            field_bail!("dataset", "{{dataset}}: the study runs on sine, xor, spirals or teacher")
        }
    })
}

/// n_0, then `hidden` layers of `width`, the bottleneck if any, and n_L.
pub fn widths(cfg: &StudyConfig) -> Result<Vec<usize>> {
    let (n_in, n_out) = io_widths(&cfg.dataset.parse()?)?;
    let mut widths = vec![n_in];
    widths.extend(std::iter::repeat_n(cfg.width, cfg.hidden));
    if cfg.bottleneck > 0 {
        widths.push(cfg.bottleneck);
    }
    widths.push(n_out);
    Ok(widths)
}

/// Checks the configuration, naming the flag of a bad value.
pub fn validate(cfg: &StudyConfig) -> Result<()> {
    if cfg.hidden == 0 || cfg.width == 0 || cfg.steps == 0 || cfg.samples == 0 {
        field_bail!("hidden", "{{hidden}}, {{width}}, {{steps}} and {{samples}} must be at least 1");
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        field_bail!("lr", "{{lr}}: must be a finite number > 0, got {}", cfg.lr);
    }
    if !(cfg.target.is_finite() && cfg.target > 0.0) {
        field_bail!("target", "{{target}}: must be a finite number > 0, got {}", cfg.target);
    }
    harness::saturation::check_threshold(cfg.saturation)?;
    if cfg.threads == Some(0) {
        field_bail!("threads", "{{threads}}: must be at least 1");
    }
    Ok(())
}

/// The initial weights of `variant`: its [`Init`], then its [`Scale`] on the hidden layers. The
/// output layer keeps its scale: it does not saturate, and large output weights would only blow
/// up the loss.
pub fn initial_weights(spec: &Spec, variant: &Variant) -> Params<f64> {
    let mut init = Params::<f64>::init(spec);
    let hidden = init.layers.len() - 1;
    for layer in &mut init.layers[..hidden] {
        let fan_in = layer.w.rows() as f64;
        // He draws N(0, 2/n_{k−1}); rescale to the wanted standard deviation.
        let std = match variant.scale {
            Scale::AsInit => continue,
            Scale::Std(s) => s,
            Scale::Gain(g) => g / fan_in.sqrt(),
        };
        let factor = std / (2.0 / fan_in).sqrt();
        layer.w.as_mut_slice().iter_mut().for_each(|w| *w *= factor);
    }
    init
}

/// The training samples and the held-out ones: `samples + validation` drawn together (the
/// teacher's targets come from one teacher), `validation` of them split off at random.
pub fn load_split(cfg: &StudyConfig, spec: &Spec) -> Result<(Dataset, Option<Dataset>)> {
    let all = data::load(&cfg.dataset.parse()?, spec, cfg.samples + cfg.validation, None, cfg.seed)?;
    if cfg.validation == 0 {
        return Ok((all, None));
    }
    let share = cfg.validation as f64 / all.len() as f64;
    data::split(&all, share, cfg.seed)
}

/// Trains one variant under the harness (checked against libtorch at every step) and measures it.
fn run_variant(
    cfg: &StudyConfig,
    widths: &[usize],
    variant: Variant,
    progress: &(dyn Fn() + Sync),
) -> Result<VariantResult> {
    let mut acts = vec![variant.phi; widths.len() - 2];
    acts.push(Activation::Identity);
    let spec = Spec::new(widths.to_vec(), acts)?
        .with_loss(cfg.loss)
        .with_dtype(DType::F64)
        .with_init(variant.init)
        .with_seed(cfg.seed);
    spec.check_loss()?;
    let (data, held_out) = load_split(cfg, &spec)?;
    data::check_targets(&data, &spec, &cfg.dataset)?;
    if variant.scale != Scale::AsInit && variant.init != Init::He {
        bail!("variant {:?}: a rescaled initialisation rescales He's normal draws (init he)", variant.name);
    }
    let init = initial_weights(&spec, &variant);
    let run = RunConfig {
        judge: harness::Judge::round_off(),
        form: harness::Form::Batched,
        mutant: None,
        drift_tol: harness::default_drift_tolerance(DType::F64),
        spec: spec.clone(),
        optim: crate::model::optim::OptimConfig::sgd(cfg.lr),
        steps: cfg.steps,
        batch_size: 0,
        shuffle_seed: cfg.seed,
        fault: None,
        snapshot_steps: vec![],
        saturation: cfg.saturation,
        witness_every: 0,
        threads: 1,
    };
    let outcome = harness::run::<f64>(&run, &data, &init, None, |_| progress())?;
    let start = Diagnostics::of(&spec, &init, &data);
    let end = Diagnostics::of(&spec, &outcome.final_params, &data);
    let validation = held_out.map(|v| Validation::of(&spec, &outcome.final_params, &v));
    Ok(VariantResult { variant, init, outcome, start, end, validation })
}

/// Runs every variant, `threads` at a time on a rayon pool of that many threads, libtorch on one
/// thread each (the default network's step is far below [`crate::reference::PARALLEL_MIN_FLOPS`],
/// where a second libtorch thread would pay); `progress` is called after every step of every
/// variant, from the threads that run them. The results are in [`VARIANTS`]' order.
pub fn run(cfg: &StudyConfig, progress: impl Fn() + Sync) -> Result<Vec<VariantResult>> {
    run_reporting(cfg, progress, |_| {})
}

/// [`run`], calling `finished` with each variant's result in [`VARIANTS`]' order, as soon as that
/// variant and every one before it have ended, so that what `finished` reports comes in the same
/// order however many threads run the variants.
pub fn run_reporting(
    cfg: &StudyConfig,
    progress: impl Fn() + Sync,
    finished: impl Fn(&VariantResult) + Sync,
) -> Result<Vec<VariantResult>> {
    validate(cfg)?;
    let widths = widths(cfg)?;
    tch::set_num_threads(1);
    let workers = cfg.threads.unwrap_or_else(crate::kernels::cores).clamp(1, VARIANTS.len());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build()?;
    // The results so far, by variant, and how many of the first have been reported.
    let done: Mutex<(Vec<Option<VariantResult>>, usize)> =
        Mutex::new(((0..VARIANTS.len()).map(|_| None).collect(), 0));
    pool.install(|| {
        VARIANTS.par_iter().enumerate().with_max_len(1).try_for_each(|(i, &variant)| -> Result<()> {
            let result = run_variant(cfg, &widths, variant, &progress)?;
            let mut guard = done.lock().map_err(|_| anyhow::anyhow!("a study thread panicked"))?;
            let (slots, reported) = &mut *guard;
            slots[i] = Some(result);
            while let Some(Some(r)) = slots.get(*reported) {
                finished(r);
                *reported += 1;
            }
            Ok(())
        })
    })?;
    let (slots, _) = done.into_inner().map_err(|_| anyhow::anyhow!("a study thread panicked"))?;
    slots
        .into_iter()
        .map(|s| s.ok_or_else(|| anyhow::anyhow!("a variant of the study was not run")))
        .collect()
}

/// The loss of the zero output: what a network whose outputs start near 0 should start at —
/// mean(ŷ²) under the mean squared error (1/C for one-hot targets of C classes), ln C = −ln(1/C)
/// under the cross-entropy (the zero logits' softmax is uniform).
pub fn zero_output_loss(cfg: &StudyConfig) -> Result<f64> {
    let widths = widths(cfg)?;
    let spec = Spec::new(widths.clone(), vec![Activation::Identity; widths.len() - 1])?.with_seed(cfg.seed);
    let (data, _) = load_split(cfg, &spec)?;
    let zeros = vec![0.0; data.y.as_slice().len()];
    Ok(cfg.loss.value(&zeros, data.y.as_slice(), data.y.cols(), 0.0))
}
