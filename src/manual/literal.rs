//! The literal form: one sample at a time, index for index as the exercise sheet writes it.
//!
//! The loops run over indices i and j on purpose, so the code reads like the equations. The
//! classic mistakes of [`super::mutants`] are planted through [`Hooks`], at the points it names;
//! this file holds only the sheet's equations.
#![allow(clippy::needless_range_loop)]

use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::model::activation::Activation;
use crate::model::params::Params;
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
            // a^k_j = Σ_i W^k_ij z^{k−1}_i (2), plus b^k_j.
            let mut sum = T::zero();
            for i in 0..n_prev {
                sum = sum + layer.w[(i, j)] * z[k][i];
            }
            if let Some(b) = &layer.b {
                sum = sum + b[j];
            }
            a_k[j] = sum;
            // z^k_j = φ_k(a^k_j) (3).
            z_k[j] = phi.apply(sum);
        }
        a.push(a_k);
        z.push(z_k);
    }
    SampleForward { a, z }
}

/// Where a variant of the literal form may change it: the points a planted mistake
/// ([`super::mutants`]) hooks into. Every default is the sheet's own step, so [`Exact`], which
/// overrides none, is eqs (1)–(7) as written.
pub trait Hooks<T: Scalar> {
    /// φ'_k at (a^k_j, z^k_j), the factor of δ^k in (7) (and of δ^L).
    fn phi_prime(&self, k: usize, phi: Activation, a: T, z: T) -> T {
        let _ = k;
        phi.derivative(a, z)
    }
    /// ∂E/∂y of one sample, before δ^L = φ'_L(a^L) ∂E/∂y is formed from it.
    fn output_grad(&self, dy: &mut [T]) {
        let _ = dy;
    }
    /// Whether sample `n`'s δ^k goes into ∂E/∂b^k = Σ_n δ^k_n.
    fn bias_sample(&self, k: usize, n: usize) -> bool {
        let _ = (k, n);
        true
    }
    /// The W^k that δ^{k−1} of (7) goes through, when not `w` itself (`grad_w`: ∂E/∂W^k).
    fn weights_below(&self, k: usize, w: &Matrix<T>, grad_w: &Matrix<T>) -> Option<Matrix<T>> {
        let _ = (k, w, grad_w);
        None
    }
    /// The finished ∂E/∂W^k, ∂E/∂b^k of a batch of `n` samples.
    fn finish(&self, grads: &mut Params<T>, n: usize) {
        let _ = (grads, n);
    }
}

/// The literal form as the sheet writes it: no hook changes anything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Exact;

impl<T: Scalar> Hooks<T> for Exact {}

/// Loss and gradients of a batch, summed sample by sample.
///
/// For each sample: the forward pass (1)–(3); the loss (5); δ^L_j = φ'_L(a^L_j) ∂E/∂y_j; then
/// for k = L..1, ∂E/∂W^k_ij += z^{k−1}_i δ^k_j (6) (and ∂E/∂b^k_j += δ^k_j), and
/// δ^{k−1}_j = φ'_{k−1}(a^{k−1}_j) Σ_i W^k_ji δ^k_i (7).
pub fn gradients<T: Scalar>(spec: &Spec, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>) -> (T, Params<T>) {
    gradients_hooked(spec, params, x, y, &Exact)
}

/// [`gradients`] with `hooks` called at the points of [`Hooks`].
///
/// The backward pass runs layer by layer, k = L..1, every sample within each layer (each entry
/// of ∂E/∂W^k still sums its samples in order): so a hook can see ∂E/∂W^k before δ^{k−1} is
/// formed.
pub fn gradients_hooked<T: Scalar>(
    spec: &Spec,
    params: &Params<T>,
    x: &Matrix<T>,
    y: &Matrix<T>,
    hooks: &dyn Hooks<T>,
) -> (T, Params<T>) {
    let depth = spec.depth();
    let phi_prime = |k: usize, a: T, z: T| hooks.phi_prime(k, spec.activations()[k - 1], a, z);
    // (1)–(3), sample by sample.
    let fwd: Vec<SampleForward<T>> = (0..x.rows()).map(|n| forward_sample(spec, params, x.row(n))).collect();
    let mut loss = T::zero();
    let (batch, smoothing) = (x.rows(), spec.label_smoothing());
    // E (5), and δ^L_j = φ'_L(a^L_j) ∂E/∂y_j, per sample.
    let mut delta: Vec<Vec<T>> = fwd
        .iter()
        .enumerate()
        .map(|(n, f)| {
            let (out, target) = (&f.z[depth], y.row(n));
            loss = loss + spec.loss().sample_value(out, target, batch, smoothing);
            let mut dy = vec![T::zero(); out.len()];
            spec.loss().sample_grad(out, target, batch, smoothing, &mut dy);
            hooks.output_grad(&mut dy);
            (0..out.len()).map(|j| phi_prime(depth, f.a[depth][j], out[j]) * dy[j]).collect()
        })
        .collect();
    let mut grads = Params::zeros(spec);
    for k in (1..=depth).rev() {
        let layer = &params.layers[k - 1];
        let grad = &mut grads.layers[k - 1];
        let (n_prev, n_k) = layer.w.shape();
        for (n, f) in fwd.iter().enumerate() {
            // ∂E/∂W^k_ij = Σ_n z^{k−1}_i δ^k_j (6).
            for i in 0..n_prev {
                for j in 0..n_k {
                    grad.w[(i, j)] = grad.w[(i, j)] + f.z[k - 1][i] * delta[n][j];
                }
            }
            // ∂E/∂b^k_j = Σ_n δ^k_j, (6) with z^{k−1}_i = 1.
            if let Some(db) = &mut grad.b {
                if hooks.bias_sample(k, n) {
                    for j in 0..n_k {
                        db[j] = db[j] + delta[n][j];
                    }
                }
            }
        }
        if k > 1 {
            let other = hooks.weights_below(k, &layer.w, &grad.w);
            let w = other.as_ref().unwrap_or(&layer.w);
            // δ^{k−1}_j = φ'_{k−1}(a^{k−1}_j) Σ_i W^k_ji δ^k_i (7).
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
    hooks.finish(&mut grads, x.rows());
    (loss, grads)
}
