//! The hand-written MLP: forward by eqs (1)–(3), backward by (6)–(7), update ΔW = −η ∂E/∂W or
//! one of the optimizers of [`crate::model::optim`].
//!
//! Two forms compute the same thing from the same [`Params`]:
//! - [`literal`]: one sample at a time, loops over i and j exactly as the equations read;
//! - [`batched`]: the whole batch at once as matrix products, fast and allocation-free.

pub mod batched;
pub mod gradcheck;
pub mod literal;
pub mod mutants;
pub mod split;

use anyhow::{bail, Result};

use crate::model::matrix::Matrix;
use crate::model::optim::{OptimConfig, Optimizer};
use crate::model::params::Params;
use crate::model::scalar::Scalar;
use crate::model::spec::Spec;

pub use batched::Workspace;
pub use mutants::{Mutant, MutantKind};
pub use split::SplitWorkspace;

/// A multilayer perceptron with hand-written backpropagation: a [`Spec`] and its parameters.
///
/// ```
/// use backprop::{Activation, Matrix, Mlp, Spec, Workspace};
/// let spec = Spec::new(vec![2, 3, 1], vec![Activation::Tanh, Activation::Identity]).unwrap();
/// let mut mlp = Mlp::<f64>::new(spec).unwrap();
/// let x = Matrix::from_vec(2, 2, vec![0.0, 1.0, 1.0, 0.0]);
/// let y = Matrix::from_vec(2, 1, vec![1.0, 1.0]);
/// let (loss, grads) = mlp.gradients_literal(&x, &y);
/// let mut ws = Workspace::new(mlp.spec(), 2);
/// assert!((ws.gradients(mlp.params(), &x, &y) - loss).abs() < 1e-12);
/// mlp.sgd_step(&grads, 0.1);
/// ```
#[derive(Clone, Debug)]
pub struct Mlp<T> {
    spec: Spec,
    params: Params<T>,
}

impl<T: Scalar> Mlp<T> {
    /// A network with freshly initialised weights ([`Params::init`]). Errors when the spec's
    /// dtype is not `T`.
    pub fn new(spec: Spec) -> Result<Mlp<T>> {
        let params = Params::init(&spec);
        Mlp::with_params(spec, params)
    }

    /// A network with the given parameters, which must have the spec's shapes.
    pub fn with_params(spec: Spec, params: Params<T>) -> Result<Mlp<T>> {
        if spec.dtype() != T::DTYPE {
            bail!("the spec says dtype {}, the network is built in {}", spec.dtype(), T::DTYPE);
        }
        params.check_shapes(&spec)?;
        Ok(Mlp { spec, params })
    }

    /// The spec.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }
    /// The parameters.
    pub fn params(&self) -> &Params<T> {
        &self.params
    }
    /// The parameters, mutable (their shapes must not change).
    pub fn params_mut(&mut self) -> &mut Params<T> {
        &mut self.params
    }

    /// Loss and gradients of a batch (`x`: N × n_0, `y`: N × n_L), the literal per-sample form.
    pub fn gradients_literal(&self, x: &Matrix<T>, y: &Matrix<T>) -> (T, Params<T>) {
        literal::gradients(&self.spec, &self.params, x, y)
    }

    /// The SGD step ΔW^k = −η ∂E/∂W^k (and the same for b^k).
    pub fn sgd_step(&mut self, grads: &Params<T>, lr: T) {
        self.params.sgd_update(grads, lr);
    }

    /// One batched training step in `ws`: forward, backward, update; returns the loss before
    /// the update. Allocates nothing once `ws` has seen a batch this large.
    pub fn train_step(&mut self, ws: &mut Workspace<T>, x: &Matrix<T>, y: &Matrix<T>, lr: T) -> T {
        let loss = ws.gradients(&self.params, x, y);
        self.params.sgd_update(ws.grads(), lr);
        loss
    }

    /// One batched training step with the optimizer `opt`: forward, backward, update; returns the
    /// loss before the update. Allocates nothing once `ws` has seen a batch this large.
    pub fn train_step_with(
        &mut self,
        ws: &mut Workspace<T>,
        opt: &mut Optimizer<T>,
        x: &Matrix<T>,
        y: &Matrix<T>,
    ) -> T {
        let loss = ws.gradients(&self.params, x, y);
        opt.step(&mut self.params, ws.grads());
        loss
    }

    /// [`Mlp::train_step_with`] on several cores: the batch split into one block of rows per
    /// thread of `ws` ([`SplitWorkspace`]). Allocates nothing once `ws` has seen a batch this large.
    pub fn train_step_split(
        &mut self,
        ws: &mut SplitWorkspace<T>,
        opt: &mut Optimizer<T>,
        x: &Matrix<T>,
        y: &Matrix<T>,
    ) -> T {
        let loss = ws.gradients(&self.params, x, y);
        opt.step(&mut self.params, ws.grads());
        loss
    }

    /// The network's outputs y(x) for a batch (N × n_L).
    pub fn predict(&self, x: &Matrix<T>) -> Matrix<T> {
        let mut ws = Workspace::new(&self.spec, x.rows());
        ws.forward(&self.params, x).clone()
    }
}

/// An implementation of backpropagation that the harness can check: the gradients of a step at
/// given weights, then its optimizer's update. The built-in forms implement it ([`Batched`]: the
/// batched form; [`Literal`]: sample by sample, optionally with a planted mistake); so can a
/// library user's own network type, with an optimizer of its own.
///
/// ```
/// use backprop::manual::{Backprop, Batched, Literal};
/// use backprop::{Activation, Matrix, OptimConfig, Params, Spec};
/// let spec = Spec::new(vec![2, 3, 1], vec![Activation::Tanh, Activation::Identity]).unwrap();
/// let (x, y) = (Matrix::from_vec(1, 2, vec![0.5, -1.0]), Matrix::from_vec(1, 1, vec![0.25]));
/// let (mut p1, mut p2) = (Params::<f64>::init(&spec), Params::<f64>::init(&spec));
/// let (mut g1, mut g2) = (Params::zeros(&spec), Params::zeros(&spec));
/// let mut batched = Batched::<f64>::new(&spec, OptimConfig::sgd(0.1), 1);
/// let mut literal = Literal::<f64>::new(&spec, OptimConfig::sgd(0.1), None);
/// let e1 = batched.step(&mut p1, &x, &y, &mut g1);
/// let e2 = literal.step(&mut p2, &x, &y, &mut g2);
/// assert!((e1 - e2).abs() < 1e-15 && (p1.layers[0].w[(1, 2)] - p2.layers[0].w[(1, 2)]).abs() < 1e-15);
/// ```
pub trait Backprop<T: Scalar> {
    /// What the reports call it: `batched`, `literal`, `literal with stale-weights:1`, ….
    fn describe(&self) -> String;

    /// The loss E of the batch (`x`: N × n_0, `y`: N × n_L) at the weights `params`, and
    /// ∂E/∂W^k, ∂E/∂b^k written into `grads` (the shapes of `params`).
    fn gradients(&mut self, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>, grads: &mut Params<T>) -> T;

    /// The optimizer's update of `params` by `grads`, with the implementation's own state: for
    /// plain SGD, ΔW = −η ∂E/∂W.
    fn update(&mut self, params: &mut Params<T>, grads: &Params<T>);

    /// The optimizer's state after the last update, by PyTorch's names (`exp_avg`, …), in the
    /// parameters' shapes: what a trace records. None by default.
    fn optimizer_state(&self) -> Vec<(&'static str, &Params<T>)> {
        Vec::new()
    }

    /// One step: [`Backprop::gradients`], then [`Backprop::update`]; returns E before the update.
    fn step(&mut self, params: &mut Params<T>, x: &Matrix<T>, y: &Matrix<T>, grads: &mut Params<T>) -> T {
        let loss = self.gradients(params, x, y, grads);
        self.update(params, grads);
        loss
    }
}

/// The batched form with the hand-written optimizer, as a [`Backprop`].
#[derive(Clone, Debug)]
pub struct Batched<T> {
    ws: Workspace<T>,
    opt: Optimizer<T>,
}

impl<T: Scalar> Batched<T> {
    /// The batched form of `spec`'s network with the optimizer `cfg`, buffers for batches of up
    /// to `max_batch` samples.
    pub fn new(spec: &Spec, cfg: OptimConfig, max_batch: usize) -> Batched<T> {
        Batched { ws: Workspace::new(spec, max_batch), opt: Optimizer::new(cfg, spec) }
    }
}

impl<T: Scalar> Backprop<T> for Batched<T> {
    fn describe(&self) -> String {
        "batched".to_string()
    }

    fn gradients(&mut self, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>, grads: &mut Params<T>) -> T {
        let loss = self.ws.gradients(params, x, y);
        grads.copy_from(self.ws.grads());
        loss
    }

    fn update(&mut self, params: &mut Params<T>, grads: &Params<T>) {
        self.opt.step(params, grads);
    }

    fn optimizer_state(&self) -> Vec<(&'static str, &Params<T>)> {
        self.opt.state()
    }
}

/// The literal per-sample form as a [`Backprop`], with at most one planted mistake, and the
/// hand-written optimizer.
#[derive(Clone, Debug)]
pub struct Literal<T> {
    spec: Spec,
    mutant: Option<Mutant>,
    opt: Optimizer<T>,
}

impl<T: Scalar> Literal<T> {
    /// The literal form of `spec`'s network with the optimizer `cfg`, and `mutant` planted (None:
    /// the correct form).
    pub fn new(spec: &Spec, cfg: OptimConfig, mutant: Option<Mutant>) -> Literal<T> {
        Literal { spec: spec.clone(), mutant, opt: Optimizer::new(cfg, spec) }
    }
}

impl<T: Scalar> Backprop<T> for Literal<T> {
    fn describe(&self) -> String {
        match self.mutant {
            Some(m) => format!("literal with mutant {m}"),
            None => "literal".to_string(),
        }
    }

    fn gradients(&mut self, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>, grads: &mut Params<T>) -> T {
        let lr = T::of(self.opt.config().lr);
        let (loss, g) = mutants::gradients_with(&self.spec, params, x, y, lr, self.mutant);
        *grads = g;
        loss
    }

    fn update(&mut self, params: &mut Params<T>, grads: &Params<T>) {
        self.opt.step(params, grads);
    }

    fn optimizer_state(&self) -> Vec<(&'static str, &Params<T>)> {
        self.opt.state()
    }
}
