//! The literal form: one sample at a time, index for index as the exercise sheet writes it.
//!
//! The loops run over indices i and j on purpose, so the code reads like the equations.
#![allow(clippy::needless_range_loop)]

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
    let depth = spec.depth();
    let count = y.rows() * y.cols();
    let mut grads = Params::zeros(spec);
    let mut loss = T::zero();
    for n in 0..x.rows() {
        let fwd = forward_sample(spec, params, x.row(n));
        let out = &fwd.z[depth];
        let target = y.row(n);
        for j in 0..out.len() {
            loss = loss + spec.loss().term(out[j], target[j], count);
        }
        let phi_l = spec.activations()[depth - 1];
        let mut delta: Vec<T> = (0..out.len())
            .map(|j| phi_l.derivative(fwd.a[depth][j], out[j]) * spec.loss().grad(out[j], target[j], count))
            .collect();
        for k in (1..=depth).rev() {
            let layer = &params.layers[k - 1];
            let grad = &mut grads.layers[k - 1];
            let (n_prev, n_k) = layer.w.shape();
            for i in 0..n_prev {
                for j in 0..n_k {
                    grad.w[(i, j)] = grad.w[(i, j)] + fwd.z[k - 1][i] * delta[j];
                }
            }
            if let Some(db) = &mut grad.b {
                for j in 0..n_k {
                    db[j] = db[j] + delta[j];
                }
            }
            if k > 1 {
                let phi = spec.activations()[k - 2];
                delta = (0..n_prev)
                    .map(|j| {
                        let mut sum = T::zero();
                        for i in 0..n_k {
                            sum = sum + layer.w[(j, i)] * delta[i];
                        }
                        phi.derivative(fwd.a[k - 1][j], fwd.z[k - 1][j]) * sum
                    })
                    .collect();
            }
        }
    }
    (loss, grads)
}
