//! What the harness is told (the run's configuration, an injected fault) and what it finds (per
//! step and per layer figures, the first divergence, the outcome of a run).

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::{field_bail, FieldError};
use crate::harness::check::{Divergence, Entry, Tolerance};
use crate::manual::Mutant;
use crate::model::optim::OptimConfig;
use crate::model::params::Params;
use crate::model::spec::{DType, Spec};

/// A deliberate error in the manual gradient, to watch the harness catch it:
/// `--inject-fault STEP:LAYER[:REL]` multiplies ∂E/∂W^k (and ∂E/∂b^k) of layer `layer` at step
/// `step` by (1 + rel). Steps count from 0, layers from 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Fault {
    /// Step t (from 0).
    pub step: usize,
    /// Layer k (from 1).
    pub layer: usize,
    /// Relative size of the perturbation (default 0.01).
    pub rel: f64,
}

impl Fault {
    /// An error unless layer `layer` exists in a network of `depth` layers.
    pub fn check_layer(&self, depth: usize) -> Result<()> {
        if self.layer > depth {
            field_bail!(
                "inject_fault.layer",
                "{{inject_fault}}: layer {} does not exist (the network has {depth} layers)",
                self.layer
            );
        }
        Ok(())
    }
}

impl FromStr for Fault {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Fault> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || {
            let e = format!("{{inject_fault}} {s:?}: expected STEP:LAYER or STEP:LAYER:REL, e.g. 10:2:0.01");
            anyhow::Error::new(FieldError::new("inject_fault", e))
        };
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let step = parts[0].trim().parse().map_err(|_| bad())?;
        let layer: usize = parts[1].trim().parse().map_err(|_| bad())?;
        let rel: f64 = match parts.get(2) {
            Some(r) => r.trim().parse().map_err(|_| bad())?,
            None => 0.01,
        };
        if layer == 0 {
            field_bail!("inject_fault.layer", "{{inject_fault}} {s:?}: layers count from 1");
        }
        if !rel.is_finite() || rel == 0.0 {
            field_bail!("inject_fault.rel", "{{inject_fault}} {s:?}: REL must be a finite, non-zero number");
        }
        Ok(Fault { step, layer, rel })
    }
}

/// How the lockstep comparison judges an entry.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Judge {
    /// Each entry against its own round-off bound, computed from the step's magnitudes
    /// ([`crate::harness::bound`]): the default.
    RoundOff {
        /// The factor between the first-order bound and the tolerance ([`crate::harness::bound::SAFETY`]).
        safety: f64,
    },
    /// Every entry against `atol + rtol·|torch|`, as `torch.testing.assert_close`.
    Fixed {
        /// Relative part.
        rtol: f64,
        /// Absolute part.
        atol: f64,
    },
}

impl Judge {
    /// The round-off-aware default.
    pub fn round_off() -> Judge {
        Judge::RoundOff { safety: crate::harness::bound::SAFETY }
    }
    /// A fixed tolerance.
    pub fn fixed(tol: Tolerance) -> Judge {
        Judge::Fixed { rtol: tol.rtol, atol: tol.atol }
    }
    /// The fixed tolerance, when this is one.
    pub fn tolerance(&self) -> Option<Tolerance> {
        match *self {
            Judge::Fixed { rtol, atol } => Some(Tolerance { rtol, atol }),
            Judge::RoundOff { .. } => None,
        }
    }
}

impl fmt::Display for Judge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Judge::RoundOff { safety } => {
                write!(f, "each entry within its round-off bound (safety factor {safety})")
            }
            Judge::Fixed { rtol, atol } => write!(f, "fixed tolerance rtol {rtol:e}, atol {atol:e}"),
        }
    }
}

/// Which hand-written form the harness checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// Matrix products, the fast trainer (the default).
    Batched,
    /// Sample by sample, index for index as the sheet writes it; the one mutants are planted in.
    Literal,
}

/// Everything that defines an experiment besides the network and the data.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The network.
    pub spec: Spec,
    /// The optimizer both sides use (its learning rate is η): plain SGD is the sheet's update.
    pub optim: OptimConfig,
    /// Number of training steps.
    pub steps: usize,
    /// Samples per step; 0 (or N and above) for the full batch.
    pub batch_size: usize,
    /// Seed of the batch order (a fresh shuffle per epoch).
    pub shuffle_seed: u64,
    /// How the lockstep comparison (the verdict) judges an entry.
    pub judge: Judge,
    /// Normwise relative tolerance of the drift between the two trajectories.
    pub drift_tol: f64,
    /// Optional injected fault.
    pub fault: Option<Fault>,
    /// The hand-written form under test.
    pub form: Form,
    /// A classic mistake planted in the literal form.
    pub mutant: Option<Mutant>,
    /// Hidden-layer activation snapshots at these steps (before the step's update).
    pub snapshot_steps: Vec<usize>,
    /// |z| above which a tanh unit counts as saturated (sigmoid: z < 1 − s or z > s, with the
    /// same s; relu: z = 0 counts as dead).
    pub saturation: f64,
    /// Every how many steps the witness takes the step (docs/verdict.md, "The witness"): 0 leaves
    /// it to the run (every step, unless a step costs more than
    /// `harness::run::WITNESS_MAX_FLOPS`).
    pub witness_every: usize,
    /// Threads the harness itself may use (1: none besides the caller's); with two or more, the
    /// round-off bounds of a large step are computed beside the step. libtorch's own threads are
    /// set by the caller ([`crate::reference::use_threads`] with the `torch` feature).
    pub threads: usize,
}

/// The fixed tolerance per dtype, for `--tolerance fixed`: f64 rtol 1e−10, atol 1e−12; f32 rtol
/// 1e−4, atol 1e−5 — two to three orders above n·ε for O(1) data and weights, and wrong as soon
/// as an entry is computed by cancellation; the default judges by round-off bounds instead.
pub fn default_tolerance(dtype: DType) -> Tolerance {
    match dtype {
        DType::F64 => Tolerance { rtol: 1e-10, atol: 1e-12 },
        DType::F32 => Tolerance { rtol: 1e-4, atol: 1e-5 },
    }
}

/// Default drift tolerance (normwise relative, W of the two trajectories): f64 1e−8, f32 1e−2.
pub fn default_drift_tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-8,
        DType::F32 => 1e-2,
    }
}

/// One layer's figures at one step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LayerStep {
    /// Lockstep max |manual − torch| over ∂E/∂W^k and ∂E/∂b^k.
    pub grad_abs: f64,
    /// Lockstep normwise relative error of ∂E/∂W^k (the larger of W and b).
    pub grad_rel: f64,
    /// Lockstep margin of ∂E/∂W^k, ∂E/∂b^k: the largest error ÷ tolerance (fails above 1).
    pub grad_ratio: f64,
    /// Lockstep max |manual − torch| over the updated W^k and b^k.
    pub weight_abs: f64,
    /// Lockstep normwise relative error of the updated W^k, b^k.
    pub weight_rel: f64,
    /// Lockstep margin of the updated W^k, b^k.
    pub weight_ratio: f64,
    /// The witness's margin of ∂E/∂W^k, ∂E/∂b^k (the larger; fails above 1).
    pub grad_witness_ratio: f64,
    /// The witness's margin of the updated W^k, b^k.
    pub weight_witness_ratio: f64,
    /// Normwise relative difference of W^k, b^k between the manual and the free trajectory.
    pub drift_rel: f64,
    /// ‖∂E/∂W^k‖ (Frobenius), manual.
    pub grad_norm: f64,
    /// ‖ΔW^k‖ / ‖W^k‖ = η‖∂E/∂W^k‖ / ‖W^k‖, manual.
    pub update_ratio: f64,
    /// Percentage of this layer's activations (on the step's batch) that are saturated.
    pub saturated_pct: f64,
}

/// One step's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StepRecord {
    /// Step t.
    pub step: usize,
    /// Manual loss (before the update).
    pub manual_loss: f64,
    /// Reference loss at the manual weights (lockstep).
    pub torch_loss: f64,
    /// Loss of the free reference on its own trajectory.
    pub torch_free_loss: f64,
    /// |manual_loss − torch_loss|.
    pub loss_abs: f64,
    /// The loss's tolerance at this step (its round-off bound, or the fixed tolerance).
    pub loss_bound: f64,
    /// Per layer k = 1..L.
    pub layers: Vec<LayerStep>,
    /// Every lockstep tensor of the step: the loss, then per layer dW, db, W, b.
    pub tensors: Vec<TensorStep>,
}

/// One lockstep tensor's comparison at one step.
#[derive(Clone, Debug, Serialize)]
pub struct TensorStep {
    /// `loss`, or the tensor and its layer: `dW2`, `db2`, `W2`, `b2`.
    pub name: String,
    /// max |manual − torch|.
    pub max_abs: f64,
    /// ‖manual − torch‖∞ / ‖torch‖∞.
    pub rel: f64,
    /// The margin: the largest |manual − torch| ÷ tolerance over the tensor's entries.
    pub ratio: f64,
    /// Whether every entry is within its tolerance.
    pub pass: bool,
    /// Whether this tensor was compared at this step (a partial trace may not record it).
    pub checked: bool,
    /// f32 runs: the implementation under test's largest error against libtorch's f64 step at
    /// the same weights, in f32 ulps of the f64 value.
    pub manual_ulp: Option<f64>,
    /// f32 runs: libtorch's f32 largest error against its own f64 step, in f32 ulps.
    pub torch_ulp: Option<f64>,
    /// The witness's margin ‖m − w‖ / max(K_T‖t − w‖, K_S‖σ‖) (fails above 1), at a witnessed step.
    pub witness_ratio: Option<f64>,
    /// ‖manual − witness‖ / ‖witness‖, at a witnessed step.
    pub witness_manual: Option<f64>,
    /// ‖torch − witness‖ / ‖witness‖, at a witnessed step.
    pub witness_torch: Option<f64>,
}

/// Hidden-layer activations z^k of the whole dataset at one step (before its update).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Step t.
    pub step: usize,
    /// `z[k − 1]`: the activations of layer k, every sample and unit, flattened.
    pub z: Vec<Vec<f64>>,
}

/// Largest figures over the run, per kind.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ErrorSummary {
    /// Of the loss.
    pub loss: f64,
    /// Of the gradients ∂E/∂W, ∂E/∂b.
    pub grad: f64,
    /// Of the updated weights.
    pub weight: f64,
}

/// The first step (from 0) at which each side produced a NaN or ±∞ in loss, gradient or weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct NonFinite {
    /// The implementation under test.
    pub manual: Option<usize>,
    /// The reference (lockstep or free trajectory).
    pub torch: Option<usize>,
}

/// A tensor that failed at the divergence step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failing {
    /// `loss`, `dW2`, `db2`, `W2`, `b2`, ….
    pub name: String,
    /// Layer k (0 for the loss).
    pub layer: usize,
    /// Entries outside their tolerance.
    pub failures: usize,
    /// Its largest error ÷ tolerance.
    pub max_ratio: f64,
    /// Its first failing entry (for a tensor only the witness failed: the entry farthest from it).
    pub first: Entry,
    /// Which judgement failed: `bound`, `witness`, or `bound and witness`.
    pub judgement: &'static str,
    /// Its witness margin, when a witness took the step.
    pub witness_ratio: Option<f64>,
}

/// The largest error of one tensor over an f32 run against libtorch's f64 step at the same
/// weights, in f32 ulps, for each side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Witness {
    /// `loss`, `dW1`, ….
    pub name: String,
    /// The implementation under test.
    pub manual_max_ulp: f64,
    /// libtorch in f32.
    pub torch_max_ulp: f64,
}

/// The verdict of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every compared entry of every step within its tolerance.
    Equivalent,
    /// Every entry within its tolerance on steps 0..step−1; at `step` both sides went non-finite
    /// alike (NaN, or the same infinity, in the same entries), and the run stopped there.
    AgreeUntilNonFinite {
        /// The first step with non-finite values on both sides.
        #[serde(rename = "non_finite_step")]
        step: usize,
    },
    /// Some entry outside its tolerance (or finite on one side only).
    NotEquivalent,
}

impl Verdict {
    /// The exit status of `compare`: 0 equivalent, 1 not equivalent, 3 agreed until both sides
    /// went non-finite (2 is bad input).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Equivalent => 0,
            Verdict::NotEquivalent => 1,
            Verdict::AgreeUntilNonFinite { .. } => 3,
        }
    }
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// `verdict == Equivalent`.
    pub equivalent: bool,
    /// What was checked (`batched`, `literal`, `literal with mutant skip-phi-prime:2`, `the
    /// trace PATH`).
    pub implementation: String,
    /// For a recorded trace: which steps and tensors it recorded, and so were checked.
    pub checked: Option<String>,
    /// Steps actually run (fewer than asked when the run stopped at a non-finite value).
    pub steps_run: usize,
    /// Where the two first parted: the origin of the first failing step (see
    /// [`Divergence::origin`]).
    pub first_divergence: Option<Divergence>,
    /// Every failing tensor of that step.
    pub failing: Vec<Failing>,
    /// First non-finite step per side.
    pub non_finite: NonFinite,
    /// Lockstep max absolute errors.
    pub max_abs: ErrorSummary,
    /// Lockstep max normwise relative errors.
    pub max_rel: ErrorSummary,
    /// Lockstep margins: the largest error ÷ tolerance.
    pub max_ratio: ErrorSummary,
    /// The witness's largest margins.
    pub max_witness_ratio: ErrorSummary,
    /// Steps the witness took.
    pub witness_steps: usize,
    /// With a planted mistake: whether it changed the gradients at some step (false: on this network
    /// and data the mistake computes the same as the correct formula, e.g. φ'(z) = φ'(a) for relu).
    pub mutant_changed: Option<bool>,
    /// Every how many steps the witness took the step (0: step 0 alone).
    pub witness_every: usize,
    /// Entries of the bound that could not be certified (a tolerance that overflowed), over the run.
    pub uncertified: usize,
    /// Where the reference alone went non-finite while the manual side and the witness agree:
    /// `step t, name` for each such tensor.
    pub reference_overflow: Vec<String>,
    /// Max normwise relative drift of the weights between the trajectories.
    pub max_drift: f64,
    /// Loss on the whole dataset after training: (implementation under test by its own forward
    /// pass, the free libtorch trajectory by libtorch's).
    pub final_loss: (f64, f64),
    /// Classification accuracy on the whole dataset after training, when the targets classify.
    pub accuracy: Option<(f64, f64)>,
    /// f32 runs: each tensor's largest error against libtorch's f64 step, per side.
    pub witness: Option<Vec<Witness>>,
    /// Per step.
    pub records: Vec<StepRecord>,
    /// Activation snapshots.
    pub snapshots: Vec<Snapshot>,
    /// The implementation under test's final weights, as f64.
    pub final_params: Params<f64>,
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |o: Option<usize>| o.map_or("never".to_string(), |t| format!("step {t}"));
        write!(f, "manual {}, torch {}", s(self.manual), s(self.torch))
    }
}
