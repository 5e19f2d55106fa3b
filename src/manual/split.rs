//! The batched form on several cores: the batch's rows split into one contiguous block per
//! thread, each block's forward and backward pass on its own thread with single-threaded matrix
//! products, then one sum of the blocks' ∂E/∂W^k, ∂E/∂b^k (eq. (6) is a sum over samples, so the
//! blocks' shares add up to the batch's gradient).
//!
//! The blocks and the order of the sum are fixed by the batch size and the thread count alone, so
//! a run gives the same bits however the threads are scheduled. The threads are rayon's pool (its
//! `join` hands a block to an idle worker without allocating).

use crate::manual::batched::Workspace;
use crate::model::matrix::Matrix;
use crate::model::params::Params;
use crate::model::scalar::Scalar;
use crate::model::spec::Spec;

/// Steps of fewer floating-point operations than this (6 · parameters · batch) are not split: a
/// hand-over to another core costs a few microseconds, more than such a step saves (measured by
/// `bench --split`).
pub const SPLIT_MIN_FLOPS: f64 = 4e6;

/// One [`Workspace`] per thread, and the blocks of the batch they work on.
#[derive(Clone, Debug)]
pub struct SplitWorkspace<T> {
    parts: Vec<Part<T>>,
    grads: Params<T>,
}

#[derive(Clone, Debug)]
struct Part<T> {
    ws: Workspace<T>,
    x: Matrix<T>,
    y: Matrix<T>,
    loss: T,
}

impl<T: Scalar> SplitWorkspace<T> {
    /// Buffers for batches of up to `max_batch` samples split over `threads` blocks (at least 1).
    pub fn new(spec: &Spec, max_batch: usize, threads: usize) -> SplitWorkspace<T> {
        let threads = threads.max(1);
        let rows = max_batch.div_ceil(threads);
        let parts = (0..threads)
            .map(|_| Part {
                ws: Workspace::new(spec, rows),
                x: Matrix::zeros(rows, spec.n_in()),
                y: Matrix::zeros(rows, spec.n_out()),
                loss: T::zero(),
            })
            .collect();
        SplitWorkspace { parts, grads: Params::zeros(spec) }
    }

    /// The thread count `requested` for training `spec` on batches of `batch` samples: 1 below
    /// [`SPLIT_MIN_FLOPS`] or for a batch smaller than twice the threads, else `requested`.
    pub fn threads_for(spec: &Spec, batch: usize, requested: usize) -> usize {
        let flops = 6.0 * spec.param_count() as f64 * batch as f64;
        if flops < SPLIT_MIN_FLOPS || batch < 2 * requested {
            1
        } else {
            requested.max(1)
        }
    }

    /// Blocks (threads) a batch is split into.
    pub fn threads(&self) -> usize {
        self.parts.len()
    }

    /// Forward and backward pass of a batch (`x`: N × n_0, `y`: N × n_L) in blocks, one per
    /// thread; returns the loss E and leaves ∂E/∂W^k, ∂E/∂b^k in [`SplitWorkspace::grads`].
    /// Allocates nothing once the buffers have seen a batch this large.
    pub fn gradients(&mut self, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>) -> T {
        let n = x.rows();
        let blocks = self.parts.len().min(n).max(1);
        if blocks == 1 {
            let p = &mut self.parts[0];
            let loss = p.ws.gradients(params, x, y);
            self.grads.copy_from(p.ws.grads());
            return loss;
        }
        // Contiguous blocks, the first n mod blocks of them one row longer.
        let (base, extra) = (n / blocks, n % blocks);
        let mut start = 0;
        for (i, p) in self.parts[..blocks].iter_mut().enumerate() {
            let rows = base + usize::from(i < extra);
            p.x.set_rows(rows);
            p.y.set_rows(rows);
            p.x.as_mut_slice().copy_from_slice(&x.as_slice()[start * x.cols()..(start + rows) * x.cols()]);
            p.y.as_mut_slice().copy_from_slice(&y.as_slice()[start * y.cols()..(start + rows) * y.cols()]);
            start += rows;
        }
        run(&mut self.parts[..blocks], params, n);
        // The sum, in block order.
        let (first, rest) = self.parts[..blocks].split_first().expect("at least one block");
        self.grads.copy_from(first.ws.grads());
        let mut loss = first.loss;
        for p in rest {
            loss = loss + p.loss;
            for (g, pg) in self.grads.layers.iter_mut().zip(&p.ws.grads().layers) {
                for (a, &b) in g.w.as_mut_slice().iter_mut().zip(pg.w.as_slice()) {
                    *a = *a + b;
                }
                if let (Some(a), Some(b)) = (&mut g.b, &pg.b) {
                    for (a, &b) in a.iter_mut().zip(b) {
                        *a = *a + b;
                    }
                }
            }
        }
        loss
    }

    /// ∂E/∂W^k and ∂E/∂b^k of the last [`SplitWorkspace::gradients`] call.
    pub fn grads(&self) -> &Params<T> {
        &self.grads
    }
}

/// Each block's share of the batch of `n` samples, on rayon's threads: halves by `join`, down to
/// one block per task.
fn run<T: Scalar>(parts: &mut [Part<T>], params: &Params<T>, n: usize) {
    match parts {
        [] => {}
        [p] => p.loss = p.ws.gradients_in(params, &p.x, &p.y, n),
        _ => {
            let (left, right) = parts.split_at_mut(parts.len() / 2);
            rayon::join(|| run(left, params, n), || run(right, params, n));
        }
    }
}
