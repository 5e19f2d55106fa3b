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

use crate::model::activation::Activation;
use crate::model::matrix::{gemm, Matrix, Op};
use crate::model::params::{Layer, Params};
use crate::model::scalar::Scalar;
use crate::model::spec::{Loss, Spec};

/// The factor between the first-order bound on two correct implementations' difference and the
/// tolerance: room for the second-order terms the analysis drops and for activations a little
/// less accurate than [`ULPS`] says.
pub const SAFETY: f64 = 2.0;

/// Ulps (of [`Activation::value_scale`] and [`Activation::derivative_scale`]) within which
/// either side evaluates φ and φ': this crate's vectorised exp, expm1, tanh and σ are within 2.8
/// ulps of the exact value (measured against a double-double reference in tests/activations.rs),
/// libm's within 1, libtorch's (SLEEF) within 1 to 3.5.
pub const ULPS: f64 = 4.0;

/// The tolerance of every compared entry of one step: [`SAFETY`]·2·e, entry by entry, in the
/// seed's layout. Those of the updated parameters come from [`StepBounds::update`], once the
/// implementation has taken its step.
#[derive(Clone, Debug)]
pub struct StepBounds {
    /// Of the loss E (B5).
    pub loss: f64,
    /// Of ∂E/∂W^k and ∂E/∂b^k (B7).
    pub grads: Params<f64>,
    /// Z^k of the batch (k = 1..L, one sample per row), in f64, as the bound's forward pass
    /// computed them: what the saturation measures read.
    pub activations: Vec<Matrix<f64>>,
    /// ε of the run's dtype.
    eps: f64,
    /// The subnormal spacing of the run's dtype.
    tiny: f64,
}

/// γ_n = n·u / (1 − n·u): the relative error bound of a sum or dot product of n terms in any
/// order (Higham, Lemma 3.1).
fn gamma(n: usize, u: f64) -> f64 {
    let nu = n as f64 * u;
    if nu < 1.0 {
        nu / (1.0 - nu)
    } else {
        f64::INFINITY
    }
}

fn abs(m: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(m.rows(), m.cols(), m.as_slice().iter().map(|v| v.abs()).collect())
}

/// `e + g·|v|`, entrywise: an error bound plus the rounding of a sum that uses the value.
fn plus_scaled(e: &Matrix<f64>, g: f64, v: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(
        e.rows(),
        e.cols(),
        e.as_slice().iter().zip(v.as_slice()).map(|(e, v)| e + g * v.abs()).collect(),
    )
}

/// C = op(A)·op(B) into a fresh matrix.
fn product(a: &Matrix<f64>, op_a: Op, b: &Matrix<f64>, op_b: Op) -> Matrix<f64> {
    let m = if op_a == Op::N { a.rows() } else { a.cols() };
    let n = if op_b == Op::N { b.cols() } else { b.rows() };
    let mut c = Matrix::zeros(m, n);
    gemm(1.0, a, op_a, b, op_b, 0.0, &mut c);
    c
}

/// One layer's forward quantities and their bounds, f64.
struct Forward {
    /// Z^k and e(Z^k) (B2).
    z: Matrix<f64>,
    ez: Matrix<f64>,
    /// φ'_k(A^k) and e(φ'_k) (B3).
    d: Matrix<f64>,
    ed: Matrix<f64>,
}

/// The largest |f(a ± e) − f(a)|: what an error e in a may do to f, kinks and curvature included.
fn spread(f: impl Fn(f64) -> f64, a: f64, e: f64) -> f64 {
    let f0 = f(a);
    let d = (f(a - e) - f0).abs().max((f(a + e) - f0).abs());
    if d.is_nan() {
        0.0
    } else {
        d
    }
}

fn forward_layer(
    phi: Activation,
    z_prev: &Matrix<f64>,
    ez_prev: &Matrix<f64>,
    layer: &Layer<f64>,
    abs_w: &Matrix<f64>,
    u: f64,
    tiny: f64,
) -> Forward {
    let eps = 2.0 * u;
    // Below the smallest normal number an exp-based φ or φ' keeps no relative accuracy: libraries
    // flush such results to zero or round them on a coarser grid. Its absolute error is this.
    let normal = tiny / eps;
    let n_in = z_prev.cols() + usize::from(layer.b.is_some());
    let g = gamma(n_in, u);
    // (B1): a^k_j = Σ_i W_ij z^{k−1}_i + b_j, eq. (2): e(a) ≤ Σ_i |W_ij| (e(z_i) + γ_n |z_i|) + γ_n |b_j|.
    let mut a = Matrix::zeros(z_prev.rows(), layer.w.cols());
    gemm(1.0, z_prev, Op::N, &layer.w, Op::N, 0.0, &mut a);
    let mut ea = product(&plus_scaled(ez_prev, g, z_prev), Op::N, abs_w, Op::N);
    let cols = a.cols();
    for r in 0..a.rows() {
        for j in 0..cols {
            let b = layer.b.as_ref().map_or(0.0, |b| b[j]);
            a[(r, j)] += b;
            ea[(r, j)] += g * b.abs() + n_in as f64 * tiny;
        }
    }
    let (rows, cols) = a.shape();
    // z = φ(a) and φ'(a) for the whole layer at once, by the vectorised loops.
    let mut z = Matrix::zeros(rows, cols);
    phi.forward_slice(a.as_slice(), z.as_mut_slice());
    let mut d = Matrix::from_vec(rows, cols, vec![1.0; rows * cols]);
    phi.backward_slice(a.as_slice(), z.as_slice(), d.as_mut_slice());
    let (mut ez, mut ed) = (Matrix::zeros(rows, cols), Matrix::zeros(rows, cols));
    let value = |a: f64| phi.apply(a);
    let slope = |a: f64| phi.derivative(a, phi.apply(a));
    for p in 0..rows * cols {
        let (av, e) = (a.as_slice()[p], ea.as_slice()[p]);
        let (zv, dv) = (z.as_slice()[p], d.as_slice()[p]);
        let curvature = phi.second_derivative(av, zv).abs();
        // Near a kink the two sides may take different branches, and a large e(a) reaches past
        // what the Taylor terms describe: there the change is measured, φ(a ± e(a)) − φ(a).
        let near_kink = phi.kink().is_some_and(|k| (av - k).abs() <= e) || e > 1e-3 * (1.0 + av.abs());
        // (B2): e(z) ≤ |φ'(a)| e(a) + ½|φ''(a)| e(a)² (or, at a kink, |φ(a ± e(a)) − φ(a)|)
        // + ULPS ulps of the terms φ rounds.
        let mut carried_z = dv.abs() * e + 0.5 * curvature * e * e;
        if near_kink {
            carried_z = carried_z.max(spread(value, av, e));
        }
        let ezv = carried_z + ULPS * eps * phi.value_scale(av, zv) + normal;
        // (B3): φ' from z (sigmoid, tanh) carries e(z); from a, e(a); plus its own rounding.
        let carried = if phi.derivative_from_value() {
            match phi {
                Activation::Tanh => 2.0 * zv.abs() * ezv,
                _ => (1.0 - 2.0 * zv).abs() * ezv,
            }
        } else if near_kink {
            (curvature * e).max(spread(slope, av, e))
        } else {
            curvature * e
        };
        let edv = carried + ULPS * eps * phi.derivative_scale(av, zv, dv) + normal;
        ez.as_mut_slice()[p] = ezv;
        ed.as_mut_slice()[p] = edv;
    }
    Forward { z, ez, d, ed }
}

/// The tolerances of one lockstep step at `params` on the batch (`x`, `y`), for a run in `T`:
/// the loss and the gradients; [`StepBounds::update`] adds the updated parameters'. See the module doc and docs/verdict.md.
pub fn step_bounds<T: Scalar>(spec: &Spec, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>) -> StepBounds {
    // The unit roundoff u = ε/2: fl(x ∘ y) = (x ∘ y)(1 + δ), |δ| ≤ u, for each arithmetic
    // operation; an activation's error is counted in ulps, and one ulp of v is at most ε|v|.
    let eps = T::epsilon().to64();
    let u = eps / 2.0;
    // The spacing of the subnormals: the absolute error of a result that underflows.
    let tiny = T::min_positive_value().to64() * eps;
    let p: Params<f64> = params.cast();
    let x: Matrix<f64> = x.cast();
    let y: Matrix<f64> = y.cast();
    let n = x.rows();
    let depth = spec.depth();

    let abs_w: Vec<Matrix<f64>> = p.layers.iter().map(|l| abs(&l.w)).collect();
    let mut layers: Vec<Forward> = Vec::with_capacity(depth);
    for (k, layer) in p.layers.iter().enumerate() {
        let fwd = match layers.last() {
            None => forward_layer(
                spec.activations()[k],
                &x,
                &Matrix::zeros(n, x.cols()),
                layer,
                &abs_w[k],
                u,
                tiny,
            ),
            Some(prev) => forward_layer(spec.activations()[k], &prev.z, &prev.ez, layer, &abs_w[k], u, tiny),
        };
        layers.push(fwd);
    }

    // (B4), (B5): ∂E/∂y and E from d = y − ŷ, each d rounded once.
    let out = &layers[depth - 1];
    let count = out.z.as_slice().len();
    let loss = spec.loss();
    let scale = match loss {
        Loss::HalfSse => 1.0,
        Loss::Mse => 2.0 / count as f64,
    };
    let mut e_loss = 0.0;
    let mut sum_sq = 0.0;
    let (rows, cols) = out.z.shape();
    let mut delta = Matrix::zeros(rows, cols);
    let mut e_delta = Matrix::zeros(rows, cols);
    for q in 0..rows * cols {
        let (zv, ezv) = (out.z.as_slice()[q], out.ez.as_slice()[q]);
        let diff = zv - y.as_slice()[q];
        let e_diff = ezv + u * diff.abs();
        sum_sq += diff * diff;
        e_loss += diff.abs() * e_diff;
        // (B4): ∂E/∂y = d (or 2d/(N n_L)), and (B6) at k = L: δ^L = φ'_L(a^L) ∂E/∂y.
        let g = scale * diff;
        let eg = scale * e_diff + 2.0 * u * g.abs();
        let (dv, edv) = (out.d.as_slice()[q], out.ed.as_slice()[q]);
        delta.as_mut_slice()[q] = dv * g;
        // A product's error carries the second-order term e(φ')·e(g): where both values round to
        // zero (a saturated unit under a vanishing δ) it is all there is.
        e_delta.as_mut_slice()[q] = dv.abs() * eg + g.abs() * edv + edv * eg + u * (dv * g).abs() + tiny;
    }
    let e_loss = match loss {
        Loss::HalfSse => e_loss + gamma(count + 2, u) * 0.5 * sum_sq,
        Loss::Mse => scale * e_loss + gamma(count + 2, u) * sum_sq / count as f64,
    };

    let g_batch = gamma(n, u);
    let mut grads = Params::<f64>::zeros(spec);
    for k in (1..=depth).rev() {
        let (z_prev, ez_prev) = match k {
            1 => (&x, None),
            _ => (&layers[k - 2].z, Some(&layers[k - 2].ez)),
        };
        // (B7): ∂E/∂W^k_ij = Σ_n z^{k−1}_ni δ^k_nj, eq. (6):
        // e ≤ Σ_n |z_ni| (e(δ_nj) + γ_N |δ_nj|) + e(z_ni) (|δ_nj| + e(δ_nj)).
        let e_sum = plus_scaled(&e_delta, g_batch, &delta);
        let mut egw = product(&abs(z_prev), Op::T, &e_sum, Op::N);
        // The input x is exact: no e(z^0) term.
        if let Some(ez_prev) = ez_prev {
            let from_z = product(ez_prev, Op::T, &plus_scaled(&e_delta, 1.0, &delta), Op::N);
            for (e, f) in egw.as_mut_slice().iter_mut().zip(from_z.as_slice()) {
                *e += f;
            }
        }
        egw.as_mut_slice().iter_mut().for_each(|e| *e += n as f64 * tiny);
        let layer = &p.layers[k - 1];
        grads.layers[k - 1].w = egw;
        if let Some(egb) = &mut grads.layers[k - 1].b {
            for (j, e) in egb.iter_mut().enumerate() {
                *e = (0..n).map(|r| e_sum[(r, j)]).sum::<f64>() + n as f64 * tiny;
            }
        }
        if k > 1 {
            // (B6): s = Δ^k (W^k)ᵀ, eq. (7): e(s) ≤ Σ_i |W_ji| (e(δ_i) + γ_{n_k} |δ_i|);
            // δ^{k−1} = φ'(a^{k−1}) ⊙ s: e ≤ |φ'| e(s) + |s| e(φ') + e(φ') e(s) + u |δ^{k−1}|.
            let g_width = gamma(layer.w.cols(), u);
            let es = product(&plus_scaled(&e_delta, g_width, &delta), Op::N, &abs_w[k - 1], Op::T);
            let s = product(&delta, Op::N, &layer.w, Op::T);
            let below = &layers[k - 2];
            let (rows, cols) = s.shape();
            let mut nd = Matrix::zeros(rows, cols);
            let mut ned = Matrix::zeros(rows, cols);
            for q in 0..rows * cols {
                let (sv, esv) = (s.as_slice()[q], es.as_slice()[q]);
                let (dv, edv) = (below.d.as_slice()[q], below.ed.as_slice()[q]);
                nd.as_mut_slice()[q] = dv * sv;
                let esv = esv + cols as f64 * tiny;
                ned.as_mut_slice()[q] =
                    dv.abs() * esv + sv.abs() * edv + edv * esv + u * (dv * sv).abs() + tiny;
            }
            delta = nd;
            e_delta = ned;
        }
    }

    let both = 2.0 * SAFETY;
    for l in &mut grads.layers {
        l.w.as_mut_slice().iter_mut().for_each(|v| *v *= both);
        l.b.iter_mut().flatten().for_each(|v| *v *= both);
    }
    let activations = layers.into_iter().map(|l| l.z).collect();
    StepBounds { loss: both * e_loss, grads, activations, eps, tiny }
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
