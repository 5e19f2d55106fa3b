//! The literal form: one sample at a time, index for index as the exercise sheet writes it.
//!
//! The loops run over indices i and j on purpose, so the code reads like the equations.
#![allow(clippy::needless_range_loop)]

use super::mutants::{Mutant, MutantKind};
use crate::model::matrix::Matrix;
use crate::model::params::Params;
use crate::model::scalar::Scalar;
use crate::model::spec::Spec;

/// One sample's forward pass: `a[k]` and `z[k]` for k = 1..L at index k, with `z[0] = x`
/// (and `a[0]` empty).
#[derive(Clone, Debug)]
pub struct SampleForward<T> {
    /// Pre-activations a^k_j.
    pub a: Vec<Vec<T>>,
    /// Activations z^k_j = φ_k(a^k_j); `z[L]` is the output y(x).
    pub z: Vec<Vec<T>>,
}

/// Forward pass for one sample, eqs (1)–(3): a^k_j = Σ_i W^k_ij z^{k−1}_i (+ b^k_j),
/// z^k_j = φ_k(a^k_j).
pub fn forward_sample<T: Scalar>(spec: &Spec, params: &Params<T>, x: &[T]) -> SampleForward<T> {
    let mut a = vec![Vec::new()];
    let mut z = vec![x.to_vec()];
    for (k, layer) in params.layers.iter().enumerate() {
        let phi = spec.activations()[k];
        let (n_prev, n_k) = layer.w.shape();
        let mut a_k = vec![T::zero(); n_k];
        let mut z_k = vec![T::zero(); n_k];
        for j in 0..n_k {
            let mut sum = T::zero();
            for i in 0..n_prev {
                sum = sum + layer.w[(i, j)] * z[k][i];
            }
            if let Some(b) = &layer.b {
                sum = sum + b[j];
            }
            a_k[j] = sum;
            z_k[j] = phi.apply(sum);
        }
        a.push(a_k);
        z.push(z_k);
    }
    SampleForward { a, z }
}

/// Loss and gradients of a batch, summed sample by sample.
///
/// For each sample: the forward pass (1)–(3); δ^L_j = φ'_L(a^L_j) ∂E/∂y_j; then for k = L..1,
/// ∂E/∂W^k_ij += z^{k−1}_i δ^k_j (6) (and ∂E/∂b^k_j += δ^k_j), and
/// δ^{k−1}_j = φ'_{k−1}(a^{k−1}_j) Σ_i W^k_ji δ^k_i (7).
pub fn gradients<T: Scalar>(spec: &Spec, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>) -> (T, Params<T>) {
    gradients_with(spec, params, x, y, T::zero(), None)
}

/// [`gradients`] with one classic mistake planted (`lr` is η, which only `stale-weights` uses;
/// `None` is the correct form).
///
/// The backward pass runs layer by layer, k = L..1, every sample within each layer (each entry
/// of ∂E/∂W^k still sums its samples in order): so a mutant can use W^{k+1} as updated by η
/// before δ^k is formed.
pub fn gradients_with<T: Scalar>(
    spec: &Spec,
    params: &Params<T>,
    x: &Matrix<T>,
    y: &Matrix<T>,
    lr: T,
    mutant: Option<Mutant>,
) -> (T, Params<T>) {
    let depth = spec.depth();
    let planted = |kind: MutantKind, k: usize| mutant.is_some_and(|m| m.kind == kind && m.layer == k);
    // φ'_k at (a, z); the mutant phi-prime-of-z evaluates it at the output z instead.
    let phi_prime = |k: usize, a: T, z: T| {
        let phi = spec.activations()[k - 1];
        if planted(MutantKind::SkipPhiPrime, k) {
            T::one()
        } else if planted(MutantKind::PhiPrimeOfZ, k) {
            phi.derivative(z, phi.apply(z))
        } else {
            phi.derivative(a, z)
        }
    };
    let fwd: Vec<SampleForward<T>> = (0..x.rows()).map(|n| forward_sample(spec, params, x.row(n))).collect();
    let mut loss = T::zero();
    let (batch, smoothing) = (x.rows(), spec.label_smoothing());
    // δ^L_j = φ'_L(a^L_j) ∂E/∂y_j, per sample.
    let mut delta: Vec<Vec<T>> = fwd
        .iter()
        .enumerate()
        .map(|(n, f)| {
            let (out, target) = (&f.z[depth], y.row(n));
            loss = loss + spec.loss().sample_value(out, target, batch, smoothing);
            let mut dy = vec![T::zero(); out.len()];
            spec.loss().sample_grad(out, target, batch, smoothing, &mut dy);
            (0..out.len())
                .map(|j| {
                    if mutant.is_some_and(|m| m.kind == MutantKind::FlipOutputDelta) {
                        dy[j] = -dy[j];
                    }
                    phi_prime(depth, f.a[depth][j], out[j]) * dy[j]
                })
                .collect()
        })
        .collect();
    let mut grads = Params::zeros(spec);
    for k in (1..=depth).rev() {
        let layer = &params.layers[k - 1];
        let grad = &mut grads.layers[k - 1];
        let (n_prev, n_k) = layer.w.shape();
        for (n, f) in fwd.iter().enumerate() {
            for i in 0..n_prev {
                for j in 0..n_k {
                    grad.w[(i, j)] = grad.w[(i, j)] + f.z[k - 1][i] * delta[n][j];
                }
            }
            if let Some(db) = &mut grad.b {
                if n == 0 || !planted(MutantKind::BiasGradFirstSample, k) {
                    for j in 0..n_k {
                        db[j] = db[j] + delta[n][j];
                    }
                }
            }
        }
        if k > 1 {
            // The W^k that δ^{k−1} goes through: as it was, or (stale-weights) already updated.
            let stale;
            let w = if planted(MutantKind::StaleWeights, k - 1) {
                let mut updated = layer.w.clone();
                for (w, &g) in updated.as_mut_slice().iter_mut().zip(grad.w.as_slice()) {
                    *w = *w - lr * g;
                }
                stale = updated;
                &stale
            } else {
                &layer.w
            };
            delta = fwd
                .iter()
                .zip(&delta)
                .map(|(f, d)| {
                    (0..n_prev)
                        .map(|j| {
                            let mut sum = T::zero();
                            for i in 0..n_k {
                                sum = sum + w[(j, i)] * d[i];
                            }
                            phi_prime(k - 1, f.a[k - 1][j], f.z[k - 1][j]) * sum
                        })
                        .collect()
                })
                .collect();
        }
    }
    if mutant.is_some_and(|m| m.kind == MutantKind::MeanNotSum) {
        let n = T::of(x.rows() as f64);
        for l in &mut grads.layers {
            l.w.as_mut_slice().iter_mut().for_each(|g| *g = *g / n);
            l.b.iter_mut().flatten().for_each(|g| *g = *g / n);
        }
    }
    (loss, grads)
}
