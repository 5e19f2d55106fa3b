//! The equivalence harness: trains the manual MLP and the libtorch reference side by side from
//! the same weights on the same batches, and compares them at every step.
//!
//! Two comparisons per step:
//! - **lockstep**: the reference computes loss, gradients and update *at the manual model's
//!   current weights*; loss, every ∂E/∂W^k, ∂E/∂b^k and the updated W^k, b^k are compared entry
//!   by entry against the [`Tolerance`]. This isolates one step's error and decides the verdict.
//! - **independent** (drift): a second reference follows its own trajectory from the same initial
//!   weights; W^k and b^k of the two trajectories are compared every step. Round-off makes them
//!   part slowly; this is reported and plotted against its own tolerance.

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

use crate::activation::Activation;
use crate::check::{compare, compare_params, Divergence, TensorKind, TensorReport, Tolerance};
use crate::data::Dataset;
use crate::manual::{Mlp, Workspace};
use crate::matrix::Matrix;
use crate::params::Params;
use crate::reference::Reference;
use crate::scalar::Scalar;
use crate::spec::{DType, Spec};
use crate::trace::TraceWriter;

/// A deliberate error in the manual gradient, to watch the harness catch it:
/// `--inject-fault STEP:LAYER[:REL]` multiplies ∂E/∂W^k (and ∂E/∂b^k) of layer `layer` at step
/// `step` by (1 + rel). Steps count from 0, layers from 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Fault {
    /// Step t (from 0).
    pub step: usize,
    /// Layer k (from 1).
    pub layer: usize,
    /// Relative size of the perturbation (default 0.01).
    pub rel: f64,
}

impl FromStr for Fault {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Fault> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad =
            || anyhow::anyhow!("--inject-fault {s:?}: expected STEP:LAYER or STEP:LAYER:REL, e.g. 10:2:0.01");
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let step = parts[0].trim().parse().map_err(|_| bad())?;
        let layer: usize = parts[1].trim().parse().map_err(|_| bad())?;
        let rel: f64 = match parts.get(2) {
            Some(r) => r.trim().parse().map_err(|_| bad())?,
            None => 0.01,
        };
        if layer == 0 {
            bail!("--inject-fault {s:?}: layers count from 1");
        }
        if !rel.is_finite() || rel == 0.0 {
            bail!("--inject-fault {s:?}: REL must be a finite, non-zero number");
        }
        Ok(Fault { step, layer, rel })
    }
}

/// Everything that defines an experiment besides the network and the data.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The network.
    pub spec: Spec,
    /// Learning rate η.
    pub lr: f64,
    /// Number of SGD steps.
    pub steps: usize,
    /// Samples per step; 0 (or N and above) for the full batch.
    pub batch_size: usize,
    /// Seed of the batch order (a fresh shuffle per epoch).
    pub shuffle_seed: u64,
    /// Lockstep tolerance (decides the verdict).
    pub tol: Tolerance,
    /// Normwise relative tolerance of the drift between the two trajectories.
    pub drift_tol: f64,
    /// Optional injected fault.
    pub fault: Option<Fault>,
    /// Hidden-layer activation snapshots at these steps (before the step's update).
    pub snapshot_steps: Vec<usize>,
    /// |z| above which a tanh unit counts as saturated (sigmoid: z < 1 − s or z > s, with the
    /// same s; relu: z = 0 counts as dead).
    pub saturation: f64,
}

/// Default lockstep tolerance per dtype: f64 rtol 1e−10, atol 1e−12; f32 rtol 1e−4, atol 1e−5.
///
/// One step's gradients are dot products over a batch and a layer; computed in another order
/// they differ by about n·ε of the size of their terms (ε = 2.2e−16 in f64, 1.2e−7 in f32), so
/// for O(1) data and weights these leave two to three orders of headroom while still catching a
/// wrong derivative (which is wrong in the leading digits).
pub fn default_tolerance(dtype: DType) -> Tolerance {
    match dtype {
        DType::F64 => Tolerance { rtol: 1e-10, atol: 1e-12 },
        DType::F32 => Tolerance { rtol: 1e-4, atol: 1e-5 },
    }
}

/// Default drift tolerance (normwise relative, W of the two trajectories): f64 1e−8, f32 1e−2.
pub fn default_drift_tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-8,
        DType::F32 => 1e-2,
    }
}

/// One layer's figures at one step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LayerStep {
    /// Lockstep max |manual − torch| over ∂E/∂W^k and ∂E/∂b^k.
    pub grad_abs: f64,
    /// Lockstep normwise relative error of ∂E/∂W^k (the larger of W and b).
    pub grad_rel: f64,
    /// Lockstep max |manual − torch| over the updated W^k and b^k.
    pub weight_abs: f64,
    /// Lockstep normwise relative error of the updated W^k, b^k.
    pub weight_rel: f64,
    /// Normwise relative difference of W^k, b^k between the manual and the free trajectory.
    pub drift_rel: f64,
    /// ‖∂E/∂W^k‖ (Frobenius), manual.
    pub grad_norm: f64,
    /// ‖ΔW^k‖ / ‖W^k‖ = η‖∂E/∂W^k‖ / ‖W^k‖, manual.
    pub update_ratio: f64,
    /// Percentage of this layer's activations (on the step's batch) that are saturated (hidden
    /// layers; for the output layer too, but plots show hidden ones).
    pub saturated_pct: f64,
}

/// One step's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StepRecord {
    /// Step t.
    pub step: usize,
    /// Manual loss (before the update).
    pub manual_loss: f64,
    /// Reference loss at the manual weights (lockstep).
    pub torch_loss: f64,
    /// Loss of the free reference on its own trajectory.
    pub torch_free_loss: f64,
    /// |manual_loss − torch_loss|.
    pub loss_abs: f64,
    /// Per layer k = 1..L.
    pub layers: Vec<LayerStep>,
    /// Every lockstep tensor of the step: the loss, then per layer dW, db, W, b.
    pub tensors: Vec<TensorStep>,
}

/// One lockstep tensor's comparison at one step.
#[derive(Clone, Debug, Serialize)]
pub struct TensorStep {
    /// `loss`, or the tensor and its layer: `dW2`, `db2`, `W2`, `b2`.
    pub name: String,
    /// max |manual − torch|.
    pub max_abs: f64,
    /// ‖manual − torch‖∞ / ‖torch‖∞.
    pub rel: f64,
    /// Whether every entry is within the tolerance.
    pub pass: bool,
}

/// Hidden-layer activations z^k of the whole dataset at one step (before its update).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Step t.
    pub step: usize,
    /// `z[k − 1]`: the activations of layer k, every sample and unit, flattened.
    pub z: Vec<Vec<f64>>,
}

/// Largest errors over the run, per kind.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ErrorSummary {
    /// Of the loss.
    pub loss: f64,
    /// Of the gradients ∂E/∂W, ∂E/∂b.
    pub grad: f64,
    /// Of the updated weights.
    pub weight: f64,
}

/// The first step (from 0) at which each side produced a NaN or ±∞ in loss, gradient or weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct NonFinite {
    /// The manual implementation.
    pub manual: Option<usize>,
    /// The reference (lockstep or free trajectory).
    pub torch: Option<usize>,
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// No lockstep divergence, and both sides went non-finite at the same step or not at all.
    pub equivalent: bool,
    /// Steps actually run (fewer than asked when the run stopped at a non-finite value).
    pub steps_run: usize,
    /// Where the two first parted (lockstep).
    pub first_divergence: Option<Divergence>,
    /// First non-finite step per side.
    pub non_finite: NonFinite,
    /// Lockstep max absolute errors.
    pub max_abs: ErrorSummary,
    /// Lockstep max normwise relative errors.
    pub max_rel: ErrorSummary,
    /// Max normwise relative drift of the weights between the trajectories.
    pub max_drift: f64,
    /// Loss of each trajectory on the whole dataset after training: (manual, free reference).
    pub final_loss: (f64, f64),
    /// Classification accuracy on the whole dataset after training, when the targets classify.
    pub accuracy: Option<(f64, f64)>,
    /// Per step.
    pub records: Vec<StepRecord>,
    /// Activation snapshots.
    pub snapshots: Vec<Snapshot>,
    /// The manual model's final weights, as f64.
    pub final_params: Params<f64>,
}

/// Sample indices of each step: the full batch in order, or mini-batches of a fresh seeded
/// shuffle every epoch (the last batch of an epoch may be shorter).
pub fn batch_order(n: usize, batch_size: usize, steps: usize, seed: u64) -> Vec<Vec<usize>> {
    if batch_size == 0 || batch_size >= n {
        return vec![(0..n).collect(); steps];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xba7c4);
    let mut out = Vec::with_capacity(steps);
    let mut perm: Vec<usize> = (0..n).collect();
    while out.len() < steps {
        perm.shuffle(&mut rng);
        for chunk in perm.chunks(batch_size) {
            if out.len() == steps {
                break;
            }
            out.push(chunk.to_vec());
        }
    }
    out
}

fn frob<T: Scalar>(v: &[T]) -> f64 {
    v.iter().map(|&x| x.to64() * x.to64()).sum::<f64>().sqrt()
}

fn all_finite<T: Scalar>(p: &Params<T>) -> bool {
    p.layers
        .iter()
        .all(|l| l.w.as_slice().iter().all(|v| v.is_finite()) && l.b.iter().flatten().all(|v| v.is_finite()))
}

/// The share (%) of a layer's activations that are saturated, for `z` holding `units` columns
/// (one row per sample): tanh |z| > s; sigmoid z < 1 − s or z > s; relu: the share of dead
/// units, those with z = 0 for every sample; other activations do not saturate (0).
pub fn saturated_pct<T: Scalar>(phi: Activation, z: &[T], units: usize, s: f64) -> f64 {
    if z.is_empty() || units == 0 {
        return 0.0;
    }
    let share = |hits: usize, of: usize| 100.0 * hits as f64 / of as f64;
    match phi {
        Activation::Tanh => share(z.iter().filter(|v| v.to64().abs() > s).count(), z.len()),
        Activation::Sigmoid => {
            share(z.iter().filter(|v| v.to64() < 1.0 - s || v.to64() > s).count(), z.len())
        }
        Activation::Relu => {
            let dead = (0..units).filter(|&j| z.iter().skip(j).step_by(units).all(|v| v.is_zero())).count();
            share(dead, units)
        }
        _ => 0.0,
    }
}

/// Trains both sides for `cfg.steps` steps on `data` and compares them; fills `trace` when given.
pub fn run<T: Scalar>(
    cfg: &RunConfig,
    data: &Dataset,
    init: &Params<T>,
    mut trace: Option<&mut TraceWriter>,
    mut progress: impl FnMut(usize),
) -> Result<Outcome> {
    let spec = &cfg.spec;
    let depth = spec.depth();
    if let Some(f) = cfg.fault {
        if f.layer > depth {
            bail!("--inject-fault: layer {} does not exist (the network has {depth} layers)", f.layer);
        }
    }
    let x: Matrix<T> = data.x.cast();
    let y: Matrix<T> = data.y.cast();
    let order = batch_order(data.len(), cfg.batch_size, cfg.steps, cfg.shuffle_seed);
    let max_batch = order.iter().map(Vec::len).max().unwrap_or(1);

    let mut manual = Mlp::<T>::with_params(spec.clone(), init.clone())?;
    let mut lockstep = Reference::new(spec, init, cfg.lr)?;
    let mut free = Reference::new(spec, init, cfg.lr)?;
    let mut ws = Workspace::<T>::new(spec, max_batch);
    // For the snapshots; its buffers grow on first use, so a run without snapshots pays nothing.
    let mut full_ws = Workspace::<T>::new(spec, 0);
    let (mut xb, mut yb) =
        (Matrix::<T>::zeros(max_batch, spec.n_in()), Matrix::<T>::zeros(max_batch, spec.n_out()));
    let lr = T::of(cfg.lr);
    let tol = cfg.tol;

    if let Some(tr) = trace.as_deref_mut() {
        tr.add("x".into(), vec![x.rows(), x.cols()], x.as_slice());
        tr.add("y".into(), vec![y.rows(), y.cols()], y.as_slice());
        tr.add_params("init", init, false);
    }

    let mut out = Outcome {
        equivalent: true,
        steps_run: 0,
        first_divergence: None,
        non_finite: NonFinite::default(),
        max_abs: ErrorSummary::default(),
        max_rel: ErrorSummary::default(),
        max_drift: 0.0,
        final_loss: (f64::NAN, f64::NAN),
        accuracy: None,
        records: Vec::with_capacity(cfg.steps),
        snapshots: Vec::new(),
        final_params: init.cast(),
    };
    let mut manual_losses = Vec::with_capacity(cfg.steps);
    let mut torch_losses = Vec::with_capacity(cfg.steps);

    for (t, idx) in order.iter().enumerate() {
        if cfg.snapshot_steps.contains(&t) {
            full_ws.forward(manual.params(), &x);
            let z = (1..depth)
                .map(|k| full_ws.activations(k).as_slice().iter().map(|v| v.to64()).collect())
                .collect();
            out.snapshots.push(Snapshot { step: t, z });
        }
        xb.gather_rows(&x, idx);
        yb.gather_rows(&y, idx);

        // The lockstep reference gets the manual weights before the manual step changes them.
        lockstep.set_params(manual.params());
        let weight_norms: Vec<f64> = manual.params().layers.iter().map(|l| frob(l.w.as_slice())).collect();

        // Manual: forward, backward (and the injected fault, on a copy), update.
        let loss_m = ws.gradients(manual.params(), &xb, &yb);
        let faulty = cfg.fault.filter(|f| f.step == t).map(|f| {
            let mut g = ws.grads().clone();
            let layer = &mut g.layers[f.layer - 1];
            let scale = T::one() + T::of(f.rel);
            layer.w.as_mut_slice().iter_mut().for_each(|v| *v = *v * scale);
            layer.b.iter_mut().flatten().for_each(|v| *v = *v * scale);
            g
        });
        let grads_m = faulty.as_ref().unwrap_or(ws.grads());
        manual.sgd_step(grads_m, lr);

        let r = lockstep.step(&xb, &yb);
        let free_loss = free.train_step(&xb, &yb);
        let free_params: Params<T> = free.params();

        let mut reports = vec![TensorReport {
            layer: 0,
            kind: TensorKind::Loss,
            errors: compare(&[loss_m], &[r.loss], 1, tol),
        }];
        reports.extend(compare_params(grads_m, &r.grads, true, tol));
        reports.extend(compare_params(manual.params(), &r.params, false, tol));
        let drift = compare_params(manual.params(), &free_params, false, tol);

        let mut rec = StepRecord {
            step: t,
            manual_loss: loss_m.to64(),
            torch_loss: r.loss.to64(),
            torch_free_loss: free_loss.to64(),
            loss_abs: reports[0].errors.max_abs,
            layers: vec![LayerStep::default(); depth],
            tensors: reports
                .iter()
                .map(|r| TensorStep {
                    name: if r.layer == 0 {
                        r.kind.name().to_string()
                    } else {
                        format!("{}{}", r.kind, r.layer)
                    },
                    max_abs: r.errors.max_abs,
                    rel: r.errors.rel,
                    pass: r.errors.first_fail.is_none(),
                })
                .collect(),
        };
        for rep in &reports {
            let e = &rep.errors;
            // The run's maxima, and (for gradients and weights) the layer's at this step.
            let (run_abs, run_rel, layer) = match rep.kind {
                TensorKind::Loss => (&mut out.max_abs.loss, &mut out.max_rel.loss, None),
                TensorKind::GradW | TensorKind::GradB => {
                    let l = &mut rec.layers[rep.layer - 1];
                    (&mut out.max_abs.grad, &mut out.max_rel.grad, Some((&mut l.grad_abs, &mut l.grad_rel)))
                }
                TensorKind::W | TensorKind::B => {
                    let l = &mut rec.layers[rep.layer - 1];
                    (
                        &mut out.max_abs.weight,
                        &mut out.max_rel.weight,
                        Some((&mut l.weight_abs, &mut l.weight_rel)),
                    )
                }
            };
            *run_abs = run_abs.max(e.max_abs);
            *run_rel = run_rel.max(e.rel);
            if let Some((abs, rel)) = layer {
                *abs = abs.max(e.max_abs);
                *rel = rel.max(e.rel);
            }
        }
        for rep in &drift {
            let l = &mut rec.layers[rep.layer - 1];
            l.drift_rel = l.drift_rel.max(rep.errors.rel);
            out.max_drift = out.max_drift.max(rep.errors.rel);
        }
        for (k, l) in rec.layers.iter_mut().enumerate() {
            let g = &grads_m.layers[k];
            l.grad_norm = frob(g.w.as_slice());
            l.update_ratio = cfg.lr * l.grad_norm / weight_norms[k];
            let z = ws.activations(k + 1).as_slice();
            l.saturated_pct = saturated_pct(spec.activations()[k], z, spec.widths()[k + 1], cfg.saturation);
        }
        if out.first_divergence.is_none() {
            out.first_divergence = Divergence::first(t, &reports);
        }

        if let Some(tr) = trace.as_deref_mut() {
            tr.add_indices(format!("batch.{t}"), idx);
            tr.add_params(&format!("manual.step{t}"), grads_m, true);
            tr.add_params(&format!("manual.step{t}"), manual.params(), false);
            tr.add_params(&format!("torch.step{t}"), &r.grads, true);
            tr.add_params(&format!("torch.step{t}"), &r.params, false);
            tr.add_params(&format!("torch_free.step{t}"), &free_params, false);
        }
        manual_losses.push(loss_m);
        torch_losses.push(r.loss);
        out.records.push(rec);
        out.steps_run = t + 1;
        progress(t + 1);

        let manual_ok = loss_m.is_finite() && all_finite(grads_m) && all_finite(manual.params());
        let torch_ok = r.loss.is_finite()
            && all_finite(&r.grads)
            && all_finite(&r.params)
            && free_loss.is_finite()
            && all_finite(&free_params);
        if !manual_ok {
            out.non_finite.manual = Some(t);
        }
        if !torch_ok {
            out.non_finite.torch = Some(t);
        }
        if !manual_ok || !torch_ok {
            break;
        }
    }

    if let Some(tr) = trace {
        tr.add("manual.loss".into(), vec![manual_losses.len()], &manual_losses);
        tr.add("torch.loss".into(), vec![torch_losses.len()], &torch_losses);
    }

    let out_m = manual.predict(&x);
    let out_t: Matrix<T> = {
        let free_params: Params<T> = free.params();
        Mlp::with_params(spec.clone(), free_params)?.predict(&x)
    };
    out.final_loss = (
        spec.loss().value(out_m.as_slice(), y.as_slice()).to64(),
        spec.loss().value(out_t.as_slice(), y.as_slice()).to64(),
    );
    out.accuracy =
        data.classes().map(|c| (c.accuracy(&out_m.cast(), &data.y), c.accuracy(&out_t.cast(), &data.y)));
    out.final_params = manual.params().cast();
    out.equivalent = out.first_divergence.is_none() && out.non_finite.manual == out.non_finite.torch;
    Ok(out)
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |o: Option<usize>| o.map_or("never".to_string(), |t| format!("step {t}"));
        write!(f, "manual {}, torch {}", s(self.manual), s(self.torch))
    }
}
