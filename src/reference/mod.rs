//! The libtorch twin of the manual MLP: `nn::Linear` layers and torch's activations, the same loss
//! formula (torch's own `cross_entropy` for the cross-entropy), gradients by autograd, the update
//! by libtorch's own optimizers (tch's `nn::Sgd`, `Adam`, `AdamW`, `RmsProp` wrap
//! `torch::optim`). Kept boring on purpose: it is the ruler the manual code is measured with.

use anyhow::{Context, Result};
use tch::{nn, nn::Module, nn::OptimizerConfig, Device, Kind, Reduction, Tensor};

use std::borrow::Cow;

use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::manual::{Backprop, Batch};
use crate::model::activation::Activation;
use crate::model::optim::{OptimConfig, OptimizerKind};
use crate::model::params::{Layer, Params};
use crate::model::spec::{DType, Loss, Spec};

// ---- The one place where the seed's layout meets torch's. ----------------------------------------
// The seed's W^k is n_{k−1} × n_k (row i = input unit, column j = output unit); torch's
// `Linear.weight` is n_k × n_{k−1}, its transpose. Every weight crossing goes through these two.

/// The seed's `W^k` (`n_{k−1} × n_k`) as torch's `Linear.weight` (`n_k × n_{k−1}`).
pub fn weight_to_torch<T: Scalar>(w: &Matrix<T>) -> Tensor {
    matrix_to_tensor(&w.transpose())
}

/// torch's `Linear.weight` (or its gradient), `n_k × n_{k−1}`, as the seed's `W^k`.
pub fn weight_from_torch<T: Scalar>(t: &Tensor) -> Matrix<T> {
    match (cpu_slice::<T>(t), t.size().as_slice()) {
        // One pass from libtorch's buffer, transposed on the way.
        (Some(v), &[rows, cols]) => {
            let (rows, cols) = (rows as usize, cols as usize);
            Matrix::from_fn(cols, rows, |i, j| v[j * cols + i])
        }
        _ => tensor_to_matrix::<T>(t).transpose(),
    }
}

/// Writes the seed's `W^k` into torch's `Linear.weight` in place (`n_k × n_{k−1}`, converting
/// the kind when it differs).
fn weight_into_torch<T: Scalar>(w: &Matrix<T>, t: &mut Tensor) {
    match cpu_slice_mut::<T>(t) {
        // Torch's row j is the seed's column j.
        Some(v) if v.len() == w.rows() * w.cols() => {
            for (j, row) in v.chunks_exact_mut(w.rows()).enumerate() {
                for (i, x) in row.iter_mut().enumerate() {
                    *x = w[(i, j)];
                }
            }
        }
        _ => {
            t.copy_(&weight_to_torch(w));
        }
    }
}

// ----------------------------------------------------------------------------------------------------

/// The entries of `t`, borrowed from libtorch's buffer, when `t` is a contiguous CPU tensor of
/// `T`'s kind: a crossing with no libtorch operator call (each costs microseconds of dispatch,
/// which on a small network is more than the step's arithmetic). None otherwise.
fn cpu_slice<T: Scalar>(t: &Tensor) -> Option<&[T]> {
    if t.device() != Device::Cpu || t.kind() != kind::<T>() || !t.is_contiguous() {
        return None;
    }
    let (ptr, n) = (t.data_ptr() as *const T, t.numel());
    if n == 0 || ptr.is_null() || !ptr.is_aligned() {
        return None;
    }
    // SAFETY: a contiguous CPU tensor of T's kind holds `numel` initialised, aligned values of T
    // from `data_ptr` on; the buffer lives as long as the tensor, which the borrow outlives.
    Some(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// [`cpu_slice`], writable: for overwriting a parameter in place, as `copy_` under `no_grad`
/// does.
fn cpu_slice_mut<T: Scalar>(t: &mut Tensor) -> Option<&mut [T]> {
    let n = cpu_slice::<T>(t)?.len();
    // SAFETY: as in `cpu_slice`; the tensor is borrowed mutably, so no other slice of this
    // handle's buffer exists while this one does.
    Some(unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, n) })
}

/// libtorch's kind for the scalar type `T`.
pub fn kind<T: Scalar>() -> Kind {
    kind_of(T::DTYPE)
}

/// A slice as a tensor of `shape`, of `T`'s kind (one copy, through the bytes: the manual side's
/// [`Scalar`] knows nothing of libtorch).
pub fn slice_to_tensor<T: Scalar>(v: &[T], shape: &[i64]) -> Tensor {
    Tensor::from_data_size(bytemuck::cast_slice(v), shape, kind::<T>())
}

/// A matrix as a 2-D tensor of the same shape and orientation (for batches: one sample per row).
pub fn matrix_to_tensor<T: Scalar>(m: &Matrix<T>) -> Tensor {
    slice_to_tensor(m.as_slice(), &[m.rows() as i64, m.cols() as i64])
}

/// A 2-D tensor as a matrix of the same shape and orientation.
pub fn tensor_to_matrix<T: Scalar>(t: &Tensor) -> Matrix<T> {
    let size = t.size();
    assert_eq!(size.len(), 2, "tensor_to_matrix: expected 2 dimensions, got {size:?}");
    Matrix::from_vec(size[0] as usize, size[1] as usize, tensor_to_vec(t))
}

/// Every entry of a tensor, in row-major order, as `T` (converted when the tensor is of another
/// kind). One copy, straight from libtorch's buffer.
pub fn tensor_to_vec<T: Scalar>(t: &Tensor) -> Vec<T> {
    if let Some(v) = cpu_slice::<T>(t) {
        return v.to_vec();
    }
    let t = if t.kind() == kind::<T>() { t.shallow_clone() } else { t.to_kind(kind::<T>()) };
    let t = t.contiguous();
    let numel = t.numel();
    let mut out = vec![T::zero(); numel];
    t.copy_data_u8(bytemuck::cast_slice_mut(&mut out), numel);
    out
}

fn kind_of(dtype: DType) -> Kind {
    match dtype {
        DType::F32 => Kind::Float,
        DType::F64 => Kind::Double,
    }
}

/// φ applied by torch, for the reference and for the activation tests.
pub fn torch_activation(phi: Activation, a: &Tensor) -> Tensor {
    match phi {
        Activation::Identity => a.shallow_clone(),
        Activation::Sigmoid => a.sigmoid(),
        Activation::Tanh => a.tanh(),
        Activation::Relu => a.relu(),
        Activation::LeakyRelu => a.leaky_relu(),
        Activation::Elu => a.elu(),
        Activation::Softplus => a.softplus(),
        Activation::Gelu => a.gelu("none"),
        Activation::Silu => a.silu(),
    }
}

/// The loss by torch: ½ Σ (y − ŷ)² summed for eq. (5), `mse_loss` with mean reduction for MSE,
/// `cross_entropy` with probability targets, mean reduction and the label smoothing for the
/// cross-entropy.
pub fn torch_loss(loss: Loss, smoothing: f64, output: &Tensor, target: &Tensor) -> Tensor {
    match loss {
        Loss::HalfSse => (output - target).square().sum(output.kind()) * 0.5,
        Loss::Mse => output.mse_loss(target, Reduction::Mean),
        Loss::CrossEntropy => {
            output.cross_entropy_loss::<Tensor>(target, None, Reduction::Mean, -100, smoothing)
        }
    }
}

/// libtorch's own optimizer for `cfg` over the variables of `vs`.
pub fn optimizer(vs: &nn::VarStore, cfg: &OptimConfig) -> Result<nn::Optimizer> {
    let built = match cfg.kind {
        OptimizerKind::Sgd => nn::Sgd {
            momentum: cfg.momentum,
            dampening: cfg.dampening,
            wd: cfg.weight_decay,
            nesterov: cfg.nesterov,
        }
        .build(vs, cfg.lr),
        OptimizerKind::Adam => nn::Adam {
            beta1: cfg.betas.0,
            beta2: cfg.betas.1,
            wd: cfg.weight_decay,
            eps: cfg.eps,
            amsgrad: cfg.amsgrad,
        }
        .build(vs, cfg.lr),
        OptimizerKind::AdamW => nn::AdamW {
            beta1: cfg.betas.0,
            beta2: cfg.betas.1,
            wd: cfg.weight_decay,
            eps: cfg.eps,
            amsgrad: cfg.amsgrad,
        }
        .build(vs, cfg.lr),
        OptimizerKind::RmsProp => nn::RmsProp {
            alpha: cfg.alpha,
            eps: cfg.eps,
            wd: cfg.weight_decay,
            momentum: cfg.momentum,
            centered: cfg.centered,
        }
        .build(vs, cfg.lr),
    };
    built.with_context(|| format!("building libtorch's {} optimizer", cfg.kind))
}

/// Steps of fewer floating-point operations than this (6 · parameters · batch) run libtorch on one
/// intra-op thread, whatever is asked for. Measured (README, "Busy machines"; `bench --crossover`,
/// `bench --busy`): below it a second thread makes libtorch's own step at most 1.6× faster on a
/// quiet machine, and a whole harness run (the saturation study) 1.3×; beside one busy process its
/// OpenMP barriers wait on a descheduled thread every operation and the same run slows 3.2×. Above
/// it (the benchmark's two large networks, 116 and 2863 MFLOP per step) two threads pay 1.6–1.8×,
/// and each operation is long enough that a lost time slice is a small part of it.
pub const PARALLEL_MIN_FLOPS: f64 = 1e8;

/// Sets libtorch's intra-op thread count for training `spec` on batches of `batch` samples:
/// `requested` (at least 1) for steps of at least [`PARALLEL_MIN_FLOPS`], else 1. Returns the
/// count set. The setting is process-wide.
pub fn use_threads(spec: &Spec, batch: usize, requested: usize) -> usize {
    let flops = 6.0 * spec.param_count() as f64 * batch as f64;
    let n = if flops >= PARALLEL_MIN_FLOPS { requested.max(1) } else { 1 };
    tch::set_num_threads(n as i32);
    n
}

/// A batch as tensors of a reference's kind: what [`Reference`] prepares
/// ([`Backprop::prepare`]).
struct Tensors {
    kind: Kind,
    x: Tensor,
    y: Tensor,
}

/// The libtorch reference as a training step: autograd's gradients and libtorch's optimizer,
/// the batch prepared once as tensors. Its `update` writes the gradients it is given into the
/// variables' `grad` before libtorch's optimizer steps; its `step` steps on autograd's own,
/// copying nothing out.
impl<T: Scalar> Backprop<T> for Reference {
    fn describe(&self) -> String {
        "libtorch".to_string()
    }
    fn params(&self) -> Cow<'_, Params<T>> {
        Cow::Owned(Reference::params(self))
    }
    fn set_params(&mut self, params: &Params<T>) {
        Reference::set_params(self, params);
    }
    fn forward(&mut self, x: &Matrix<T>, out: &mut Matrix<T>) {
        *out = self.predict(x);
    }
    fn prepare(&self, batch: &mut Batch<'_, T>) {
        let run_kind = kind_of(self.spec.dtype());
        if batch.prepared::<Tensors>().is_none_or(|t| t.kind != run_kind) {
            let t = self.tensors(batch.x, batch.y);
            batch.set_prepared(t);
        }
    }
    fn gradients(&mut self, batch: &Batch<'_, T>, grads: &mut Params<T>) -> T {
        let loss = self.backward_on(batch);
        *grads = self.collect(|t| t.grad());
        loss
    }
    fn update(&mut self, grads: &Params<T>) {
        tch::no_grad(|| {
            for (lin, g) in self.layers.iter_mut().zip(&grads.layers) {
                weight_into_torch(&g.w, &mut lin.ws.grad());
                if let (Some(bs), Some(b)) = (&lin.bs, &g.b) {
                    let mut bg = bs.grad();
                    match cpu_slice_mut::<T>(&mut bg) {
                        Some(v) if v.len() == b.len() => v.copy_from_slice(b),
                        _ => {
                            bg.copy_(&slice_to_tensor(b, &[b.len() as i64]));
                        }
                    }
                }
            }
        });
        self.opt.step();
    }
    fn step(&mut self, batch: &Batch<'_, T>) -> T {
        let loss = self.backward_on(batch);
        self.opt.step();
        loss
    }
}

/// One reference step's results, converted to the seed's layout.
#[derive(Clone, Debug)]
pub struct RefStep<T> {
    /// E before the update.
    pub loss: T,
    /// ∂E/∂W^k and ∂E/∂b^k by autograd.
    pub grads: Params<T>,
    /// W^k and b^k after libtorch's optimizer step.
    pub params: Params<T>,
}

impl<T: Scalar> RefStep<T> {
    /// One step of `reference` on `batch`, as [`Backprop::step`] takes it (libtorch's optimizer on
    /// autograd's own gradients, nothing written back), with those gradients and the updated
    /// weights read out.
    pub fn of(reference: &mut Reference, batch: &Batch<'_, T>) -> RefStep<T> {
        let loss = reference.backward_on(batch);
        let grads = reference.collect(|t| t.grad());
        reference.opt.step();
        RefStep { loss, grads, params: Reference::params(reference) }
    }
}

/// The reference network: the same spec as nn::Linear layers in a VarStore, and libtorch's
/// optimizer, which keeps its own state (momentum, moments) across steps.
pub struct Reference {
    spec: Spec,
    // Kept alive: owns the variables the layers and the optimizer refer to.
    _vs: nn::VarStore,
    layers: Vec<nn::Linear>,
    opt: nn::Optimizer,
    // The loss divided by the batch's sample count (`reduction = "mean"`), and λ of the penalty
    // λ/2 Σ_k ‖W^k‖² on the weights: see [`Reference::with_conventions`].
    mean: bool,
    l2: f64,
}

impl Reference {
    /// A reference network with the given initial parameters (copied in) and the optimizer `optim`.
    pub fn new<T: Scalar>(spec: &Spec, params: &Params<T>, optim: &OptimConfig) -> Result<Reference> {
        params.check_shapes(spec)?;
        let mut vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let layers: Vec<nn::Linear> = spec
            .widths()
            .windows(2)
            .enumerate()
            .map(|(k, p)| {
                let config = nn::LinearConfig { bias: spec.bias(), ..Default::default() };
                nn::linear(&root / format!("layer{}", k + 1), p[0] as i64, p[1] as i64, config)
            })
            .collect();
        vs.set_kind(kind_of(spec.dtype()));
        let opt = optimizer(&vs, optim)?;
        let mut reference = Reference { spec: spec.clone(), _vs: vs, layers, opt, mean: false, l2: 0.0 };
        reference.set_params(params);
        Ok(reference)
    }

    /// Overwrites the reference's weights with `params` (seed layout → torch layout), in place:
    /// the optimizer's state, keyed to the tensors, stays. The values are written straight into
    /// libtorch's buffers, which autograd's version counter does not see: the reference's own
    /// steps call this only between steps, never between a forward pass and its backward.
    pub fn set_params<T: Scalar>(&mut self, params: &Params<T>) {
        tch::no_grad(|| {
            for (lin, p) in self.layers.iter_mut().zip(&params.layers) {
                // copy_ converts the kind, when the parameters' differs.
                weight_into_torch(&p.w, &mut lin.ws);
                if let (Some(bs), Some(b)) = (&mut lin.bs, &p.b) {
                    match cpu_slice_mut::<T>(bs) {
                        Some(v) if v.len() == b.len() => v.copy_from_slice(b),
                        _ => {
                            bs.copy_(&slice_to_tensor(b, &[b.len() as i64]));
                        }
                    }
                }
            }
        });
    }

    /// The reference's current weights, in the seed's layout.
    pub fn params<T: Scalar>(&self) -> Params<T> {
        self.collect(|t| t.shallow_clone())
    }

    fn collect<T: Scalar>(&self, f: impl Fn(&Tensor) -> Tensor) -> Params<T> {
        collect(&self.layers, f)
    }

    /// The network's output for a batch (N × n_0), as a tensor of the run's kind.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.layers
            .iter()
            .zip(self.spec.activations())
            .fold(x.shallow_clone(), |z, (lin, &phi)| torch_activation(phi, &lin.forward(&z)))
    }

    /// The network's outputs for a batch, by libtorch's forward pass.
    pub fn predict<T: Scalar>(&self, x: &Matrix<T>) -> Matrix<T> {
        let x = matrix_to_tensor(x).to_kind(kind_of(self.spec.dtype()));
        tch::no_grad(|| tensor_to_matrix(&self.forward(&x)))
    }

    /// The same reference with the loss defined as code written elsewhere defines it: with
    /// `mean`, the spec's loss divided by the batch's sample count (half-sse's `reduction =
    /// "mean"`); with `l2` = λ > 0, plus λ/2 Σ_k ‖W^k‖² on the weights only. Both are part of
    /// libtorch's graph: its loss, autograd's gradients and its optimizer's update include them.
    pub fn with_conventions(mut self, mean: bool, l2: f64) -> Reference {
        self.mean = mean;
        self.l2 = l2;
        self
    }

    /// Sets the optimizer's learning rate for the steps that follow (a schedule).
    pub fn set_lr(&mut self, lr: f64) {
        self.opt.set_lr(lr);
    }

    /// The objective libtorch differentiates: the spec's loss, with the conventions set by
    /// [`Reference::with_conventions`].
    fn objective(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let mut loss = torch_loss(self.spec.loss(), self.spec.label_smoothing(), &self.forward(x), y);
        if self.mean {
            loss /= x.size()[0];
        }
        if self.l2 > 0.0 {
            let squares = self.layers.iter().map(|l| l.ws.square().sum(None)).reduce(|a, b| a + b);
            if let Some(squares) = squares {
                loss += squares * (0.5 * self.l2);
            }
        }
        loss
    }

    /// The loss E on a batch, by libtorch's forward pass and loss.
    pub fn loss<T: Scalar>(&self, x: &Matrix<T>, y: &Matrix<T>) -> f64 {
        let run_kind = kind_of(self.spec.dtype());
        let (x, y) = (matrix_to_tensor(x).to_kind(run_kind), matrix_to_tensor(y).to_kind(run_kind));
        tch::no_grad(|| self.objective(&x, &y).double_value(&[]))
    }

    /// A batch as tensors of the reference's kind.
    fn tensors<T: Scalar>(&self, x: &Matrix<T>, y: &Matrix<T>) -> Tensors {
        let run_kind = kind_of(self.spec.dtype());
        let (x, y) = (matrix_to_tensor(x), matrix_to_tensor(y));
        if kind::<T>() == run_kind {
            Tensors { kind: run_kind, x, y }
        } else {
            Tensors { kind: run_kind, x: x.to_kind(run_kind), y: y.to_kind(run_kind) }
        }
    }

    /// Forward, loss and backward on `batch`, as prepared by a reference of the same kind or
    /// converted here; E before the update, and the gradients in the variables' `grad`.
    fn backward_on<T: Scalar>(&mut self, batch: &Batch<'_, T>) -> T {
        let run_kind = kind_of(self.spec.dtype());
        match batch.prepared::<Tensors>().filter(|t| t.kind == run_kind) {
            Some(t) => self.backward(&t.x, &t.y),
            None => {
                let t = self.tensors(batch.x, batch.y);
                self.backward(&t.x, &t.y)
            }
        }
    }

    fn backward<T: Scalar>(&mut self, x: &Tensor, y: &Tensor) -> T {
        self.opt.zero_grad();
        let loss = self.objective(x, y);
        loss.backward();
        T::of(loss.double_value(&[]))
    }
}

/// `f` of every layer's weight and bias (the tensors themselves, or their gradients), in the
/// seed's layout.
fn collect<T: Scalar>(layers: &[nn::Linear], f: impl Fn(&Tensor) -> Tensor) -> Params<T> {
    let layers = layers
        .iter()
        .map(|lin| Layer {
            w: weight_from_torch(&f(&lin.ws)),
            b: lin.bs.as_ref().map(|b| tensor_to_vec(&f(b))),
        })
        .collect();
    Params { layers }
}
