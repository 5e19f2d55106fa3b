//! The batched form on several cores: the batch's rows split into one contiguous block per
//! thread, each block's forward and backward pass on its own thread with single-threaded matrix
//! products, then one sum of the blocks' ∂E/∂W^k, ∂E/∂b^k (eq. (6) is a sum over samples, so the
//! blocks' shares add up to the batch's gradient).
//!
//! The blocks and the order of the sum are fixed by the batch size and the thread count alone, so
//! a run gives the same bits however the threads are scheduled. The threads are those of the rayon
//! pool the caller runs in (its `join` hands a block to an idle worker without allocating, and a
//! block no other thread has taken is run by the caller itself, so a descheduled thread delays
//! nothing it has not started): run the training loop inside `ThreadPool::install`, as `train`
//! does; called from outside a pool, each step pays a wake-up of rayon's global pool.

use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::manual::batched::Workspace;
use crate::model::params::Params;
use crate::model::spec::Spec;

/// Steps of fewer floating-point operations than this (6 · parameters · batch) are not split.
/// Measured by `bench --split` on a 2-core AVX-512 machine: run inside a rayon pool, where handing
/// a block to the other thread is a steal, a step of 0.012 MFLOP (2-16-1, batch 32) loses
/// (0.6–0.9×), one of 0.46 MFLOP (2-32-32-1, batch 64) gains 1.15–1.2× in f32 and 1.35–1.4× in f64,
/// and larger ones 1.3–1.6×;
/// called from outside a pool each hand-over wakes a sleeping thread, about 15 µs, and nothing
/// below 8 MFLOP gains.
pub const SPLIT_MIN_FLOPS: f64 = 2e5;

/// One [`Workspace`] per thread, and the blocks of the batch they work on.
#[derive(Clone, Debug)]
pub struct SplitWorkspace<T> {
    parts: Vec<Part<T>>,
    grads: Params<T>,
    /// Whether the last batch went in one block (its gradient is then the first part's own).
    single: bool,
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
        SplitWorkspace { parts, grads: Params::zeros(spec), single: true }
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
        self.single = blocks == 1;
        if self.single {
            return self.parts[0].ws.gradients(params, x, y);
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
        // The sum, in block order: the first two blocks' sum written in one pass, the others added.
        let (first, rest) = self.parts[..blocks].split_first().expect("at least one block");
        let (second, rest) = rest.split_first().expect("two blocks or more");
        let mut loss = first.loss + second.loss;
        let grads = &mut self.grads;
        crate::kernels::simd::dispatch(
            #[inline(always)]
            || {
                let (g0, g1) = (&first.ws.grads().layers, &second.ws.grads().layers);
                for ((g, a), b) in grads.layers.iter_mut().zip(g0).zip(g1) {
                    for ((g, &a), &b) in g.w.as_mut_slice().iter_mut().zip(a.w.as_slice()).zip(b.w.as_slice())
                    {
                        *g = a + b;
                    }
                    if let (Some(g), Some(a), Some(b)) = (&mut g.b, &a.b, &b.b) {
                        for ((g, &a), &b) in g.iter_mut().zip(a).zip(b) {
                            *g = a + b;
                        }
                    }
                }
                for p in rest {
                    loss = loss + p.loss;
                    for (g, pg) in grads.layers.iter_mut().zip(&p.ws.grads().layers) {
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
            },
        );
        loss
    }

    /// ∂E/∂W^k and ∂E/∂b^k of the last [`SplitWorkspace::gradients`] call.
    pub fn grads(&self) -> &Params<T> {
        if self.single {
            self.parts[0].ws.grads()
        } else {
            &self.grads
        }
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
