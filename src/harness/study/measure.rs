//! What the study measures per variant: the diagnostics of a set of weights on the whole dataset
//! (z^k, ∂E/∂z^k, ∂E/∂W^k, dead units, grad:data), the held-out loss, and the saturated network's
//! slowdown against the best fix.

use crate::data::Dataset;
use crate::harness::saturation::flat;
use crate::harness::Outcome;
use crate::kernels::gemm::{gemm, Op};
use crate::kernels::matrix::Matrix;
use crate::manual::Workspace;
use crate::model::activation::Activation;
use crate::model::params::Params;
use crate::model::spec::Spec;

use super::{Role, Variant};

/// Per hidden layer, at one set of weights on the whole dataset: z^k, ∂E/∂z^k, W^k and
/// ∂E/∂W^k (all N × n_k or n_{k−1} × n_k, as the workspace holds them).
pub struct Diagnostics {
    /// z^k = φ(a^k), eqs. (1)–(2).
    pub z: Vec<Matrix<f64>>,
    /// ∂E/∂z^k = Δ^{k+1} (W^{k+1})ᵀ: eq. (7) before its factor φ'(a^k).
    pub dz: Vec<Matrix<f64>>,
    /// W^k.
    pub w: Vec<Matrix<f64>>,
    /// ∂E/∂W^k = (Z^{k−1})ᵀ Δ^k, eq. (6).
    pub dw: Vec<Matrix<f64>>,
}

impl Diagnostics {
    /// Runs one forward and backward pass of `params` on `data` (nothing is updated).
    pub fn of(spec: &Spec, params: &Params<f64>, data: &Dataset) -> Diagnostics {
        let mut ws = Workspace::<f64>::new(spec, data.len());
        ws.gradients(params, &data.x, &data.y);
        let hidden = spec.depth() - 1;
        let dz = (1..=hidden)
            .map(|k| {
                let mut m = Matrix::zeros(data.len(), spec.widths()[k]);
                gemm(1.0, ws.delta(k + 1), Op::N, &params.layers[k].w, Op::T, 0.0, &mut m);
                m
            })
            .collect();
        Diagnostics {
            z: (1..=hidden).map(|k| ws.activations(k).clone()).collect(),
            dz,
            w: params.layers[..hidden].iter().map(|l| l.w.clone()).collect(),
            dw: ws.grads().layers[..hidden].iter().map(|l| l.w.clone()).collect(),
        }
    }

    /// Units of hidden layer `k` (from 1) that are flat ([`flat`]) for every sample: dead, they
    /// pass no gradient back whatever the input.
    pub fn dead_units(&self, phi: Activation, k: usize, s: f64) -> usize {
        let z = &self.z[k - 1];
        (0..z.cols()).filter(|&j| (0..z.rows()).all(|r| flat(phi, z[(r, j)], s))).count()
    }

    /// std(∂E/∂W^k) / std(W^k), the "grad:data" ratio of hidden layer `k` (from 1).
    pub fn grad_data(&self, k: usize) -> f64 {
        std_dev(self.dw[k - 1].as_slice()) / std_dev(self.w[k - 1].as_slice())
    }
}

/// The arithmetic mean (0 of nothing).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The population standard deviation.
pub fn std_dev(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

/// What one variant measured.
pub struct VariantResult {
    /// The variant.
    pub variant: Variant,
    /// The initial weights.
    pub init: Params<f64>,
    /// The harness's outcome (every step checked against libtorch).
    pub outcome: Outcome,
    /// Per hidden layer at the initial weights.
    pub start: Diagnostics,
    /// Per hidden layer at the final weights.
    pub end: Diagnostics,
    /// The final weights on the held-out samples (`None` without held-out samples).
    pub validation: Option<Validation>,
}

/// The final weights of a variant measured on held-out samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Validation {
    /// The loss on the held-out samples.
    pub loss: f64,
    /// The share of held-out samples classified right, for class targets (binary or one-hot).
    pub accuracy: Option<f64>,
}

impl Validation {
    /// Measures `params` on `data`.
    pub fn of(spec: &Spec, params: &Params<f64>, data: &Dataset) -> Validation {
        let mut ws = Workspace::<f64>::new(spec, data.len());
        let loss = ws.gradients(params, &data.x, &data.y);
        let accuracy = data.classes().map(|c| c.accuracy(ws.forward(params, &data.x), &data.y));
        Validation { loss, accuracy }
    }
}

impl VariantResult {
    /// ‖∂E/∂W^k‖ for k = 1..L at step `t`.
    pub fn grad_norms(&self, t: usize) -> Vec<f64> {
        self.outcome.records[t].layers.iter().map(|l| l.grad_norm).collect()
    }
    /// ‖W^k_end − W^k_0‖ / ‖W^k_0‖ per hidden layer: how far training moved each layer.
    pub fn hidden_change(&self) -> Vec<f64> {
        let hidden = self.init.layers.len() - 1;
        let frob = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        (0..hidden)
            .map(|k| {
                let (w0, w1) = (&self.init.layers[k].w, &self.outcome.final_params.layers[k].w);
                let diff = frob(&mut w0.as_slice().iter().zip(w1.as_slice()).map(|(a, b)| b - a));
                diff / frob(&mut w0.as_slice().iter().copied())
            })
            .collect()
    }

    /// % saturated per hidden layer at step `t`.
    pub fn saturated(&self, t: usize) -> Vec<f64> {
        let layers = &self.outcome.records[t].layers;
        layers[..layers.len() - 1].iter().map(|l| l.saturated_pct).collect()
    }

    /// The first step whose loss (before its update) is at most `target`; `None` when no step of
    /// the run reached it.
    pub fn steps_to(&self, target: f64) -> Option<usize> {
        self.outcome.records.iter().find(|r| r.manual_loss <= target).map(|r| r.step)
    }

    /// The loss at the last step.
    pub fn final_loss(&self) -> f64 {
        self.outcome.records.last().map_or(f64::NAN, |r| r.manual_loss)
    }
}

/// Steps to the target of the saturated variant and of the best fix, and their ratio: a lower
/// bound (`steps / best`) when the saturated network did not reach the target at all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slowdown {
    /// Steps the saturated network took (`None`: not within the run).
    pub saturated: Option<usize>,
    /// The fix that reached the target first, and its steps.
    pub best: Option<(&'static str, usize)>,
    /// saturated ÷ best, or steps run ÷ best when the saturated network never got there.
    pub ratio: f64,
    /// Whether `ratio` is only a lower bound.
    pub at_least: bool,
}

/// The saturated network's steps to `target` against the best fix's.
pub fn slowdown(results: &[VariantResult], target: f64) -> Slowdown {
    let saturated = results.iter().find(|r| r.variant.role == Role::Saturated);
    let best = results
        .iter()
        .filter(|r| r.variant.role == Role::Fix)
        .filter_map(|r| r.steps_to(target).map(|s| (r.variant.name, s)))
        .min_by_key(|&(_, s)| s);
    let sat_steps = saturated.and_then(|r| r.steps_to(target));
    let run = saturated.map_or(0, |r| r.outcome.records.len());
    let (ratio, at_least) = match (sat_steps, best) {
        (_, None) => (f64::NAN, false),
        (Some(s), Some((_, b))) => (s.max(1) as f64 / b.max(1) as f64, false),
        (None, Some((_, b))) => (run as f64 / b.max(1) as f64, true),
    };
    Slowdown { saturated: sat_steps, best, ratio, at_least }
}
