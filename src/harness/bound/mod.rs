//! Round-off bounds: for every entry the harness compares, how far apart two correct
//! implementations may be after one step, computed from the step's own magnitudes.
//!
//! A running error analysis in the manner of Higham (*Accuracy and Stability of Numerical
//! Algorithms*, ch. 3): each quantity q of the step carries a bound e(q) on how far one correct
//! implementation's computed q may be from the exact one, to first order in the unit u of the
//! run's dtype. The bounds are built from absolute values of the terms, never from the result,
//! so an entry computed by cancellation (1 − z² of a saturated tanh, a sum of large terms of both
//! signs, W − η∂E/∂W with a large step) gets the slack its conditioning demands, while a
//! well-conditioned entry keeps a few ulps of its value. The derivation, with the numbers
//! (B1)–(B8) cited below, is in docs/verdict.md.
//!
//! Two correct implementations are each within e(q) of the exact value, so they are within
//! 2·e(q) of each other; the tolerance is [`SAFETY`]·2·e(q).
//!
//! Everything here is computed in f64 from the step's inputs (the weights both sides start from,
//! the batch), whatever the run's dtype: the bounds need a digit of accuracy, not the last one.
//!
//! # Layout
//!
//! - `rounding`: the arithmetic of error bounds in either mode (`Mode`): γ_n, two errors joined, an
//!   error carried through a product or a batch sum;
//! - `common_mode`: (S1′), (S1″) and (S5), the parts of the typical error that a product does not
//!   average out;
//! - `forward`: one layer's forward quantities and their bounds, (B1)–(B3);
//! - `output`: δ^L and the loss, (B4)–(B6) for the squared losses, (B9), (B10) for the
//!   cross-entropy;
//! - `pass`: the forward and backward pass that puts them together, (B6), (B7);
//! - `optim`: the optimizer's share, (B11) ([`OptimBound`]).

mod common_mode;
mod forward;
mod optim;
mod output;
mod pass;
mod rounding;
#[cfg(test)]
mod tests;

pub use optim::OptimBound;

use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
#[cfg(doc)]
use crate::model::activation::Activation;
use crate::model::params::Params;
use crate::model::spec::Spec;
use pass::pass;

/// The factor between the first-order bound on two correct implementations' difference and the
/// tolerance: room for the second-order terms the analysis drops and for activations a little
/// less accurate than [`ULPS`] says.
pub const SAFETY: f64 = 2.0;

/// Ulps (of [`Activation::value_scale`] and [`Activation::derivative_scale`]) within which
/// either side evaluates φ and φ': this crate's vectorised exp, expm1, tanh and σ are within 2.8
/// ulps of the exact value (measured against a double-double reference in tests/activations.rs),
/// libm's within 1, libtorch's (SLEEF) within 1 to 3.5.
pub const ULPS: f64 = 4.0;

/// The typical error of an activation, in ulps, for the estimate σ (S2): an accurate φ errs by at
/// most an ulp or three (this crate's tanh 2.55, SLEEF's up to 3.5) and by about one as a rule,
/// independently from unit to unit; a saturated unit's 1 − z² inherits it whole.
pub const ULPS_TYPICAL: f64 = 1.0;

/// The tolerance of every compared entry of one step: [`SAFETY`]·2·e, entry by entry, in the
/// seed's layout. Those of the updated parameters come from [`StepBounds::update`], once the
/// implementation has taken its step.
#[derive(Clone, Debug)]
pub struct StepBounds {
    /// Of the loss E (B5).
    pub loss: f64,
    /// Of ∂E/∂W^k and ∂E/∂b^k (B7).
    pub grads: Params<f64>,
    /// ∂E/∂W^k and ∂E/∂b^k themselves, computed in f64 by the bound's own pass (only when asked
    /// for, by [`step_bounds_with`]).
    pub values: Option<Params<f64>>,
    /// Z^k of the batch (k = 1..L, one sample per row), in f64, as the bound's forward pass
    /// computed them: what the saturation measures read.
    pub activations: Vec<Matrix<f64>>,
    /// σ(E): the typical size of one correct implementation's error in the loss ((S1)–(S3) of
    /// docs/verdict.md), the witness's floor.
    pub loss_sigma: f64,
    /// σ of every ∂E/∂W^k and ∂E/∂b^k entry, the same way.
    pub sigma: Params<f64>,
    /// ε of the run's dtype.
    eps: f64,
    /// The subnormal spacing of the run's dtype.
    tiny: f64,
}

/// Which estimate a pass computes: the rigorous worst case e(q), or the typical size σ(q) of one
/// correct implementation's error (docs/verdict.md, "The witness").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every error term by its absolute value, sums of n terms by γ_n = nu/(1 − nu): (B1)–(B10).
    Worst,
    /// (S1)–(S3): independent errors add in quadrature, through a product (√(Σ W² e²) in place of
    /// Σ |W| e) and wherever two terms of one quantity's error meet ([`join`]); a sum of n terms
    /// rounds by √n·u (Higham and Mary's probabilistic γ̃_n, λ = 1); relu and the identity are exact.
    Rms,
}

/// The tolerances of one lockstep step at `params` on the batch (`x`, `y`), for a run in `T`:
/// the loss and the gradients; [`StepBounds::update`] adds the updated parameters'. See the module doc and docs/verdict.md.
pub fn step_bounds<T: Scalar>(spec: &Spec, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>) -> StepBounds {
    step_bounds_with(spec, params, x, y, false)
}

/// [`step_bounds`], and with `values` also the gradient itself, in f64 ([`StepBounds::values`]):
/// what an optimizer's bound ([`OptimBound`]) runs its shadow state on.
pub fn step_bounds_with<T: Scalar>(
    spec: &Spec,
    params: &Params<T>,
    x: &Matrix<T>,
    y: &Matrix<T>,
    values: bool,
) -> StepBounds {
    // The unit roundoff u = ε/2: fl(x ∘ y) = (x ∘ y)(1 + δ), |δ| ≤ u, for each arithmetic
    // operation; an activation's error is counted in ulps, and one ulp of v is at most ε|v|.
    let eps = T::epsilon().to64();
    let u = eps / 2.0;
    // The spacing of the subnormals: the absolute error of a result that underflows.
    let tiny = T::min_positive_value().to64() * eps;
    let p: Params<f64> = params.cast();
    let x: Matrix<f64> = x.cast();
    let y: Matrix<f64> = y.cast();
    let worst = pass(Mode::Worst, spec, &p, &x, &y, values, u, tiny);
    let typical = pass(Mode::Rms, spec, &p, &x, &y, false, u, tiny);

    let both = 2.0 * SAFETY;
    let mut grads = worst.grads;
    for l in &mut grads.layers {
        l.w.as_mut_slice().iter_mut().for_each(|v| *v *= both);
        l.b.iter_mut().flatten().for_each(|v| *v *= both);
    }
    StepBounds {
        loss: both * worst.loss,
        grads,
        values: worst.values,
        activations: worst.activations,
        loss_sigma: typical.loss,
        sigma: typical.grads,
        eps,
        tiny,
    }
}

impl StepBounds {
    /// The tolerances of the updated W^k, b^k (B8), from an implementation's gradient `grads`
    /// (∂E/∂W, as it used it) and its updated parameters `updated`, W' = W − η ∂E/∂W:
    /// e(W') ≤ η e(∂E/∂W) + 2u η |∂E/∂W| + u |W'|, so the tolerance is η times the gradient's
    /// plus [`SAFETY`]·2·(2u η |∂E/∂W| + u |W'|).
    pub fn update<T: Scalar>(&self, grads: &Params<T>, updated: &Params<T>, lr: f64) -> Params<f64> {
        let (u, both) = (self.eps / 2.0, 2.0 * SAFETY);
        let one = |tau_g: f64, g: T, w: T| {
            lr * tau_g + both * (2.0 * u * lr * g.to64().abs() + u * w.to64().abs() + self.tiny)
        };
        let mut out = self.grads.clone();
        for ((o, g), w) in out.layers.iter_mut().zip(&grads.layers).zip(&updated.layers) {
            for ((t, &g), &w) in o.w.as_mut_slice().iter_mut().zip(g.w.as_slice()).zip(w.w.as_slice()) {
                *t = one(*t, g, w);
            }
            if let (Some(ob), Some(gb), Some(wb)) = (&mut o.b, &g.b, &w.b) {
                for ((t, &g), &w) in ob.iter_mut().zip(gb).zip(wb) {
                    *t = one(*t, g, w);
                }
            }
        }
        out
    }
}

impl StepBounds {
    /// σ of the updated W^k, b^k under plain SGD, (S4): η σ(∂E/∂W) + u (2η|∂E/∂W| + |W'|), from an
    /// implementation's gradient and updated parameters.
    pub fn update_sigma<T: Scalar>(&self, grads: &Params<T>, updated: &Params<T>, lr: f64) -> Params<f64> {
        let u = self.eps / 2.0;
        let one = |s: f64, g: T, w: T| lr * s + u * (2.0 * lr * g.to64().abs() + w.to64().abs()) + self.tiny;
        let mut out = self.sigma.clone();
        for ((o, g), w) in out.layers.iter_mut().zip(&grads.layers).zip(&updated.layers) {
            for ((t, &g), &w) in o.w.as_mut_slice().iter_mut().zip(g.w.as_slice()).zip(w.w.as_slice()) {
                *t = one(*t, g, w);
            }
            if let (Some(ob), Some(gb), Some(wb)) = (&mut o.b, &g.b, &w.b) {
                for ((t, &g), &w) in ob.iter_mut().zip(gb).zip(wb) {
                    *t = one(*t, g, w);
                }
            }
        }
        out
    }
}
