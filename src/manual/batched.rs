//! The batched form: the whole batch at once, as matrix products (GEMM by the `gemm` crate).
//!
//! With one sample per row, eqs (1)–(3), (7) and (6) become
//! `A^k = Z^{k−1} W^k + 1 (b^k)ᵀ`, `Z^k = φ_k(A^k)`,
//! `Δ^L = φ'_L(A^L) ⊙ ∂E/∂Y`, `Δ^k = φ'_k(A^k) ⊙ (Δ^{k+1} (W^{k+1})ᵀ)`,
//! `∇W^k = (Z^{k−1})ᵀ Δ^k`, `∇b^k = (Δ^k)ᵀ 1`.

use crate::kernels::gemm::{gemm, Op};
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::model::params::Params;
use crate::model::spec::Spec;

/// Buffers for the batched forward and backward passes, allocated once and reused: after the
/// first batch of the largest size, a training step allocates nothing.
#[derive(Clone, Debug)]
pub struct Workspace<T> {
    spec: Spec,
    /// `a[k − 1]` = A^k (N × n_k).
    a: Vec<Matrix<T>>,
    /// `z[k − 1]` = Z^k (N × n_k); Z^0 is the input itself.
    z: Vec<Matrix<T>>,
    /// `delta[k − 1]` = Δ^k (N × n_k).
    delta: Vec<Matrix<T>>,
    grads: Params<T>,
}

impl<T: Scalar> Workspace<T> {
    /// Buffers for batches of up to `max_batch` samples (larger ones grow them once).
    pub fn new(spec: &Spec, max_batch: usize) -> Workspace<T> {
        let per_layer =
            || spec.widths()[1..].iter().map(|&n| Matrix::zeros(max_batch, n)).collect::<Vec<_>>();
        Workspace {
            spec: spec.clone(),
            a: per_layer(),
            z: per_layer(),
            delta: per_layer(),
            grads: Params::zeros(spec),
        }
    }

    /// Forward pass of a batch `x` (N × n_0); returns the output Z^L (N × n_L).
    pub fn forward(&mut self, params: &Params<T>, x: &Matrix<T>) -> &Matrix<T> {
        let n = x.rows();
        for (k, layer) in params.layers.iter().enumerate() {
            let (before, after) = self.z.split_at_mut(k);
            let z_prev = if k == 0 { x } else { &before[k - 1] };
            let a = &mut self.a[k];
            a.set_rows(n);
            gemm(T::one(), z_prev, Op::N, &layer.w, Op::N, T::zero(), a);
            if let Some(b) = &layer.b {
                // The same single rounding of Σ + b as a GEMM that accumulates onto b.
                a.add_to_rows(b);
            }
            let z = &mut after[0];
            z.set_rows(n);
            self.spec.activations()[k].forward_slice(a.as_slice(), z.as_mut_slice());
        }
        &self.z[self.spec.depth() - 1]
    }

    /// Forward and backward pass of a batch; returns the loss E, and leaves ∂E/∂W^k, ∂E/∂b^k in
    /// [`Workspace::grads`].
    pub fn gradients(&mut self, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>) -> T {
        self.gradients_in(params, x, y, x.rows())
    }

    /// [`Workspace::gradients`] of a block of rows of a batch of `batch` samples: the block's share
    /// of E and of ∂E/∂W^k, ∂E/∂b^k (normalised as the whole batch is: the mean losses divide by
    /// `batch`, not by the block's rows). The shares of a batch's blocks sum to its loss and
    /// gradient ([`crate::manual::SplitWorkspace`]).
    pub fn gradients_in(&mut self, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>, batch: usize) -> T {
        let depth = self.spec.depth();
        let loss_kind = self.spec.loss();
        self.forward(params, x);
        let n = x.rows();
        let out = &self.z[depth - 1];
        let (n_out, smoothing) = (self.spec.n_out(), self.spec.label_smoothing());
        let loss = loss_kind.value_in(out.as_slice(), y.as_slice(), n_out, batch, smoothing);

        // Δ^L = φ'_L(A^L) ⊙ ∂E/∂Y (φ'_L = 1 for an identity output layer).
        let phi = self.spec.activations()[depth - 1];
        let d = &mut self.delta[depth - 1];
        d.set_rows(n);
        loss_kind.batch_grad(out.as_slice(), y.as_slice(), n_out, batch, smoothing, d.as_mut_slice());
        if phi != crate::model::activation::Activation::Identity {
            for ((d, &a), &z) in
                d.as_mut_slice().iter_mut().zip(self.a[depth - 1].as_slice()).zip(out.as_slice())
            {
                *d = phi.derivative(a, z) * *d;
            }
        }

        for k in (1..=depth).rev() {
            let z_prev = if k == 1 { x } else { &self.z[k - 2] };
            let grad = &mut self.grads.layers[k - 1];
            let (lower, upper) = self.delta.split_at_mut(k - 1);
            let delta = &upper[0];
            // ∇W^k = (Z^{k−1})ᵀ Δ^k, eq. (6) summed over the batch.
            gemm(T::one(), z_prev, Op::T, delta, Op::N, T::zero(), &mut grad.w);
            // ∇b^k = column sums of Δ^k.
            if let Some(db) = &mut grad.b {
                delta.column_sums(db);
            }
            if k > 1 {
                // Δ^{k−1} = φ'_{k−1}(A^{k−1}) ⊙ (Δ^k (W^k)ᵀ), eq. (7).
                let below = &mut lower[k - 2];
                below.set_rows(n);
                gemm(T::one(), delta, Op::N, &params.layers[k - 1].w, Op::T, T::zero(), below);
                self.spec.activations()[k - 2].backward_slice(
                    self.a[k - 2].as_slice(),
                    self.z[k - 2].as_slice(),
                    below.as_mut_slice(),
                );
            }
        }
        loss
    }

    /// ∂E/∂W^k and ∂E/∂b^k of the last [`Workspace::gradients`] call.
    pub fn grads(&self) -> &Params<T> {
        &self.grads
    }

    /// Activations Z^k (k = 1..L) of the last forward pass.
    pub fn activations(&self, k: usize) -> &Matrix<T> {
        &self.z[k - 1]
    }

    /// Error signals Δ^k = ∂E/∂A^k (k = 1..L), eq. (7), of the last [`Workspace::gradients`] call.
    pub fn delta(&self, k: usize) -> &Matrix<T> {
        &self.delta[k - 1]
    }
}
