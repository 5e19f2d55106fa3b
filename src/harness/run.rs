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

use crate::data::Dataset;
use crate::harness::check::{compare, compare_params, Divergence, TensorKind, TensorReport};
use crate::harness::{
    batch_order, saturated_pct, ErrorSummary, LayerStep, NonFinite, Outcome, RunConfig, Snapshot, StepRecord,
    TensorStep,
};
use crate::manual::{Mlp, Workspace};
use crate::model::matrix::Matrix;
use crate::model::params::Params;
use crate::model::scalar::Scalar;
use crate::output::trace::TraceWriter;
use crate::reference::Reference;

fn frob<T: Scalar>(v: &[T]) -> f64 {
    v.iter().map(|&x| x.to64() * x.to64()).sum::<f64>().sqrt()
}

fn all_finite<T: Scalar>(p: &Params<T>) -> bool {
    p.layers
        .iter()
        .all(|l| l.w.as_slice().iter().all(|v| v.is_finite()) && l.b.iter().flatten().all(|v| v.is_finite()))
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
