//! The hand-written forms as [`Backprop`] implementations: each holds its parameters, its
//! buffers and the hand-written optimizer ([`crate::model::optim`]).

use std::borrow::Cow;

use super::batched::Workspace;
use super::literal::forward_sample;
use super::mutants::{self, Mutant};
use super::split::SplitWorkspace;
use super::{Backprop, Batch};
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::model::optim::{OptimConfig, Optimizer};
use crate::model::params::Params;
use crate::model::spec::Spec;

/// Copies the output Z^L of a forward pass into `out`.
fn copy_out<T: Scalar>(z: &Matrix<T>, out: &mut Matrix<T>) {
    if out.cols() != z.cols() {
        *out = Matrix::zeros(0, z.cols());
    }
    out.set_rows(z.rows());
    out.as_mut_slice().copy_from_slice(z.as_slice());
}

/// The [`Backprop`] methods the batched and the split form share: both hold `params`, a workspace
/// `ws` with `gradients(params, x, y)` and `grads()`, and the optimizer `opt`; the step updates
/// from the workspace's gradients without copying them.
macro_rules! workspace_form {
    () => {
        fn params(&self) -> Cow<'_, Params<T>> {
            Cow::Borrowed(&self.params)
        }
        fn set_params(&mut self, params: &Params<T>) {
            self.params.copy_from(params);
        }
        fn gradients(&mut self, batch: &Batch<'_, T>, grads: &mut Params<T>) -> T {
            let loss = self.ws.gradients(&self.params, batch.x, batch.y);
            grads.copy_from(self.ws.grads());
            loss
        }
        fn update(&mut self, grads: &Params<T>) {
            self.opt.step(&mut self.params, grads);
        }
        fn step(&mut self, batch: &Batch<'_, T>) -> T {
            let loss = self.ws.gradients(&self.params, batch.x, batch.y);
            self.opt.step(&mut self.params, self.ws.grads());
            loss
        }
        fn optimizer_state(&self) -> Vec<(&'static str, &Params<T>)> {
            self.opt.state()
        }
    };
}

/// The batched form ([`super::batched`]) with the hand-written optimizer.
#[derive(Clone, Debug)]
pub struct Batched<T> {
    params: Params<T>,
    ws: Workspace<T>,
    opt: Optimizer<T>,
}

impl<T: Scalar> Batched<T> {
    /// The batched form of `spec`'s network from the weights `params`, with the optimizer `cfg`,
    /// buffers for batches of up to `max_batch` samples (larger ones grow them once).
    pub fn new(spec: &Spec, params: Params<T>, cfg: OptimConfig, max_batch: usize) -> Batched<T> {
        Batched { params, ws: Workspace::new(spec, max_batch), opt: Optimizer::new(cfg, spec) }
    }
}

impl<T: Scalar> Backprop<T> for Batched<T> {
    fn describe(&self) -> String {
        "batched".to_string()
    }
    fn forward(&mut self, x: &Matrix<T>, out: &mut Matrix<T>) {
        copy_out(self.ws.forward(&self.params, x), out);
    }
    workspace_form!();
}

/// The batched form on several cores ([`super::split`]): the batch split into one block of rows
/// per thread of the rayon pool the step runs in, with the hand-written optimizer; the forward
/// passes of [`Backprop::forward`] in one block, in a buffer of their own.
#[derive(Clone, Debug)]
pub struct Split<T> {
    params: Params<T>,
    ws: SplitWorkspace<T>,
    opt: Optimizer<T>,
    /// For the forward passes: grows to the largest batch evaluated, once.
    eval: Workspace<T>,
}

impl<T: Scalar> Split<T> {
    /// The split form of `spec`'s network from the weights `params`, with the optimizer `cfg`,
    /// buffers for batches of up to `max_batch` samples in `threads` blocks.
    pub fn new(
        spec: &Spec,
        params: Params<T>,
        cfg: OptimConfig,
        max_batch: usize,
        threads: usize,
    ) -> Split<T> {
        Split {
            params,
            ws: SplitWorkspace::new(spec, max_batch, threads),
            opt: Optimizer::new(cfg, spec),
            eval: Workspace::new(spec, 0),
        }
    }

    /// Blocks (threads) a batch is split into.
    pub fn threads(&self) -> usize {
        self.ws.threads()
    }
}

impl<T: Scalar> Backprop<T> for Split<T> {
    fn describe(&self) -> String {
        format!("batched in {} blocks", self.ws.threads())
    }
    fn forward(&mut self, x: &Matrix<T>, out: &mut Matrix<T>) {
        copy_out(self.eval.forward(&self.params, x), out);
    }
    workspace_form!();
}

/// The literal per-sample form ([`super::literal`]) with at most one planted mistake
/// ([`super::mutants`]), and the hand-written optimizer.
#[derive(Clone, Debug)]
pub struct Literal<T> {
    spec: Spec,
    params: Params<T>,
    mutant: Option<Mutant>,
    opt: Optimizer<T>,
}

impl<T: Scalar> Literal<T> {
    /// The literal form of `spec`'s network from the weights `params`, with the optimizer `cfg`,
    /// and `mutant` planted (None: the correct form).
    pub fn new(spec: &Spec, params: Params<T>, cfg: OptimConfig, mutant: Option<Mutant>) -> Literal<T> {
        Literal { spec: spec.clone(), params, mutant, opt: Optimizer::new(cfg, spec) }
    }
}

impl<T: Scalar> Backprop<T> for Literal<T> {
    fn describe(&self) -> String {
        match self.mutant {
            Some(m) => format!("literal with mutant {m}"),
            None => "literal".to_string(),
        }
    }
    fn params(&self) -> Cow<'_, Params<T>> {
        Cow::Borrowed(&self.params)
    }
    fn set_params(&mut self, params: &Params<T>) {
        self.params.copy_from(params);
    }
    fn forward(&mut self, x: &Matrix<T>, out: &mut Matrix<T>) {
        *out = Matrix::zeros(x.rows(), self.spec.n_out());
        for n in 0..x.rows() {
            let f = forward_sample(&self.spec, &self.params, x.row(n));
            out.as_mut_slice()[n * self.spec.n_out()..(n + 1) * self.spec.n_out()]
                .copy_from_slice(&f.z[self.spec.depth()]);
        }
    }
    fn gradients(&mut self, batch: &Batch<'_, T>, grads: &mut Params<T>) -> T {
        let lr = T::of(self.opt.config().lr);
        let (loss, g) = mutants::gradients_with(&self.spec, &self.params, batch.x, batch.y, lr, self.mutant);
        *grads = g;
        loss
    }
    fn update(&mut self, grads: &Params<T>) {
        self.opt.step(&mut self.params, grads);
    }
    fn optimizer_state(&self) -> Vec<(&'static str, &Params<T>)> {
        self.opt.state()
    }
}
