//! The hand-written MLP: forward by eqs (1)–(3), backward by (6)–(7), update ΔW = −η ∂E/∂W or
//! one of the optimizers of [`crate::model::optim`].
//!
//! Two forms compute the same thing from the same [`Params`]:
//! - [`literal`]: one sample at a time, loops over i and j exactly as the equations read;
//! - [`batched`]: the whole batch at once as matrix products, fast and allocation-free
//!   ([`split`]: the same over several threads).
//!
//! Every form that trains, and the libtorch reference, takes its training step through one trait,
//! [`Backprop`].

pub mod batched;
mod forms;
pub mod gradcheck;
pub mod literal;
pub mod mutants;
pub mod split;

use anyhow::{bail, Result};
use std::any::Any;
use std::borrow::Cow;

use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::model::params::Params;
use crate::model::spec::Spec;

pub use batched::Workspace;
pub use forms::{Batched, Literal, Split};
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

    /// The network's outputs y(x) for a batch (N × n_L).
    pub fn predict(&self, x: &Matrix<T>) -> Matrix<T> {
        let mut ws = Workspace::new(&self.spec, x.rows());
        ws.forward(&self.params, x).clone()
    }
}

/// A batch of samples (`x`: N × n_0, `y`: N × n_L) as a training step takes it, with room for
/// the form an implementation prepares it in once ([`Backprop::prepare`]: libtorch's tensors), so
/// that several steps, or several implementations, on one batch convert it once.
pub struct Batch<'a, T> {
    /// The inputs, one sample per row.
    pub x: &'a Matrix<T>,
    /// The targets, one sample per row.
    pub y: &'a Matrix<T>,
    prepared: Option<Box<dyn Any>>,
}

impl<'a, T> Batch<'a, T> {
    /// The batch (`x`, `y`), nothing prepared.
    pub fn new(x: &'a Matrix<T>, y: &'a Matrix<T>) -> Batch<'a, T> {
        Batch { x, y, prepared: None }
    }

    /// What an implementation prepared, when it is a `P`.
    pub fn prepared<P: 'static>(&self) -> Option<&P> {
        self.prepared.as_ref().and_then(|p| p.downcast_ref())
    }

    /// Keeps `p`, the batch in an implementation's own form.
    pub fn set_prepared<P: Any>(&mut self, p: P) {
        self.prepared = Some(Box::new(p));
    }
}

/// One training step of backpropagation, as every implementation takes it: the hand-written forms
/// ([`Batched`], [`Split`], [`Literal`], optionally with a planted mistake), libtorch's reference
/// (`crate::reference::Reference`, with the `torch` feature), and a library user's own network
/// type, which the harness can check ([`crate::harness::run_with`]). The implementation holds its
/// parameters and its optimizer's state.
///
/// ```
/// use backprop::manual::{Backprop, Batch, Batched, Literal};
/// use backprop::{Activation, Matrix, OptimConfig, Params, Spec};
/// let spec = Spec::new(vec![2, 3, 1], vec![Activation::Tanh, Activation::Identity]).unwrap();
/// let (x, y) = (Matrix::from_vec(1, 2, vec![0.5, -1.0]), Matrix::from_vec(1, 1, vec![0.25]));
/// let init = Params::<f64>::init(&spec);
/// let mut batched = Batched::new(&spec, init.clone(), OptimConfig::sgd(0.1), 1);
/// let mut literal = Literal::new(&spec, init, OptimConfig::sgd(0.1), None);
/// let e1 = batched.step(&Batch::new(&x, &y));
/// let e2 = literal.step(&Batch::new(&x, &y));
/// let (p1, p2) = (batched.params(), literal.params());
/// assert!((e1 - e2).abs() < 1e-15 && (p1.layers[0].w[(1, 2)] - p2.layers[0].w[(1, 2)]).abs() < 1e-15);
/// ```
pub trait Backprop<T: Scalar> {
    /// What the reports call it: `batched`, `literal`, `literal with mutant stale-weights:1`, ….
    fn describe(&self) -> String;

    /// The current parameters W^k, b^k, in the seed's layout (W^k: n_{k−1} × n_k).
    fn params(&self) -> Cow<'_, Params<T>>;

    /// Overwrites the parameters (the spec's shapes); the optimizer's state stays.
    fn set_params(&mut self, params: &Params<T>);

    /// The network's outputs y(x) for a batch `x` (N × n_0), eqs (1)–(3), written into `out`
    /// (resized to N × n_L).
    fn forward(&mut self, x: &Matrix<T>, out: &mut Matrix<T>);

    /// Prepares `batch` in the implementation's own form, once for the steps on it that follow
    /// (of this implementation, or another of the same kind). Nothing by default.
    fn prepare(&self, batch: &mut Batch<'_, T>) {
        let _ = batch;
    }

    /// The loss E of the batch at the current parameters, and ∂E/∂W^k, ∂E/∂b^k (eqs (6), (7))
    /// written into `grads` (the parameters' shapes).
    fn gradients(&mut self, batch: &Batch<'_, T>, grads: &mut Params<T>) -> T;

    /// The optimizer's update of the parameters by `grads`, with the implementation's own state:
    /// for plain SGD, ΔW = −η ∂E/∂W.
    fn update(&mut self, grads: &Params<T>);

    /// One step: [`Backprop::gradients`], then [`Backprop::update`]; returns E before the update.
    /// The built-in forms override it to keep their gradients where they are (the manual forms
    /// allocate nothing once their buffers have seen a batch this large).
    fn step(&mut self, batch: &Batch<'_, T>) -> T {
        let mut grads = self.params().into_owned();
        let loss = self.gradients(batch, &mut grads);
        self.update(&grads);
        loss
    }

    /// The optimizer's state after the last update, by PyTorch's names (`exp_avg`, …), in the
    /// parameters' shapes: what a trace records. None by default.
    fn optimizer_state(&self) -> Vec<(&'static str, &Params<T>)> {
        Vec::new()
    }
}
