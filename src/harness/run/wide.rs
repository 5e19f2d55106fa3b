//! The witness's side of a run: how often it steps, and each side's distance from its more
//! precise step, in f32 ulps or in σ; and the small norms the records use.

use crate::harness::bound::StepBounds;
use crate::harness::check::{TensorKind, TensorReport};
use crate::harness::witness::{self, WideStep};
use crate::harness::{RunConfig, StepRecord, Witness};
use crate::kernels::scalar::Scalar;
use crate::model::params::Params;
use crate::model::spec::{DType, Spec};
use crate::reference::RefStep;

/// Every how many steps the witness takes the step: 1 (every step) unless a step costs more than
/// [`WITNESS_MAX_FLOPS`] and the configuration leaves it to the run (`witness_every` 0); None for
/// step 0 alone.
pub(super) fn witness_every(cfg: &RunConfig, spec: &Spec, batch: usize, dtype: DType) -> Option<usize> {
    if cfg.witness_every > 0 {
        return Some(cfg.witness_every);
    }
    let flops = 6.0 * spec.param_count() as f64 * batch as f64;
    if dtype == DType::F32 || flops <= WITNESS_MAX_FLOPS {
        Some(1)
    } else if cfg.optim.is_plain_sgd() {
        Some((flops / WITNESS_MAX_FLOPS).ceil() as usize)
    } else {
        // A stateful optimizer's witness would have to take every step to keep its state: step 0
        // alone, where the state is known exactly (zero).
        None
    }
}

/// The double-double witness of an f64 run costs about 2.5 ns per floating-point operation of
/// the step (6 · parameters · batch), some hundred times the step itself on a large network.
/// Steps above this take it by default on a subset: plain SGD every ⌈flops / 10⁶⌉-th step from
/// step 0, a stateful optimizer at step 0 alone. f32 runs (whose witness is libtorch in f64, about
/// twice a step) take it at every step.
pub const WITNESS_MAX_FLOPS: f64 = 1e6;

fn scaled(p: &Params<f64>, f: f64) -> Params<f64> {
    let mut out = p.clone();
    for l in &mut out.layers {
        l.w.as_mut_slice().iter_mut().for_each(|v| *v *= f);
        l.b.iter_mut().flatten().for_each(|v| *v *= f);
    }
    out
}

/// Adds the witness's judgement to every report of a step, by layer and kind: the loss, the
/// gradients and the updated parameters, each where the implementation under test has it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn witness_reports<T: Scalar>(
    reports: &mut [TensorReport],
    loss_m: Option<T>,
    grads: Option<&Params<T>>,
    params: Option<&Params<T>>,
    r: &RefStep<T>,
    w: &WideStep,
    bounds: &StepBounds,
    param_sigma: &Params<f64>,
) {
    for rep in reports.iter_mut() {
        let k = rep.layer.saturating_sub(1);
        let parts = match rep.kind {
            TensorKind::Loss => {
                let Some(l) = loss_m else { continue };
                rep.witness = Some(witness::judge(
                    &[l],
                    &[r.loss],
                    &[w.loss.hi],
                    &[w.loss.lo],
                    &[bounds.loss_sigma],
                    1,
                ));
                continue;
            }
            TensorKind::GradW | TensorKind::GradB => {
                grads.map(|m| (m, &r.grads, &w.grads, &w.grads_lo, &bounds.sigma))
            }
            TensorKind::W | TensorKind::B => {
                params.map(|m| (m, &r.params, &w.params, &w.params_lo, param_sigma))
            }
        };
        let Some((m, t, hi, lo, sigma)) = parts else { continue };
        let bias = matches!(rep.kind, TensorKind::GradB | TensorKind::B);
        let cols = if bias { m.layers[k].part(true).len() } else { m.layers[k].w.cols() };
        rep.witness = Some(witness::judge(
            m.layers[k].part(bias),
            t.layers[k].part(bias),
            hi.layers[k].part(bias),
            lo.layers[k].part(bias),
            sigma.layers[k].part(bias),
            cols,
        ));
    }
}

/// The witness step of an f32 run (libtorch in f64) as a [`WideStep`].
pub(crate) fn wide_of(w: &RefStep<f64>) -> WideStep {
    WideStep::from_f64(w.loss, w.grads.clone(), w.params.clone())
}

/// The floor σ of the updated parameters: (S4) for plain SGD; a stateful optimizer's rigorous
/// bound (B11) otherwise.
pub(crate) fn param_sigma<T: Scalar>(
    bounds: &StepBounds,
    optim_tol: Option<&Params<f64>>,
    grads: &Params<T>,
    params: &Params<T>,
    lr: f64,
) -> Params<f64> {
    match optim_tol {
        Some(tol) => scaled(tol, 1.0 / (2.0 * crate::harness::bound::SAFETY)),
        None => bounds.update_sigma(grads, params, lr),
    }
}

/// The distance of `v` from `w` in f32 ulps of `w`.
fn ulps_f32(v: f64, w: f64) -> f64 {
    if v == w {
        return 0.0;
    }
    if !v.is_finite() || !w.is_finite() {
        return f64::INFINITY;
    }
    let tiny = f32::MIN_POSITIVE as f64;
    let ulp = if w.abs() < tiny {
        tiny * f32::EPSILON as f64
    } else {
        2f64.powi(w.abs().log2().floor() as i32 - 23)
    };
    (v - w).abs() / ulp
}

fn max_ulps<T: Scalar>(v: &[T], w: &[f64]) -> f64 {
    v.iter().zip(w).map(|(&v, &w)| ulps_f32(v.to64(), w)).fold(0.0, f64::max)
}

/// Fills each tensor's distance from the f64 witness, per side, in the order of
/// [`compare_step`]'s reports.
pub(super) fn add_witness<T: Scalar>(
    rec: &mut StepRecord,
    loss_m: T,
    grads: &Params<T>,
    params: &Params<T>,
    r: &RefStep<T>,
    w: &RefStep<f64>,
) {
    let mut pairs = vec![(ulps_f32(loss_m.to64(), w.loss), ulps_f32(r.loss.to64(), w.loss))];
    for (m, t, w) in [(grads, &r.grads, &w.grads), (params, &r.params, &w.params)] {
        for k in 0..m.layers.len() {
            let (ml, tl, wl) = (&m.layers[k], &t.layers[k], &w.layers[k]);
            pairs.push((
                max_ulps(ml.w.as_slice(), wl.w.as_slice()),
                max_ulps(tl.w.as_slice(), wl.w.as_slice()),
            ));
            if let (Some(mb), Some(tb), Some(wb)) = (&ml.b, &tl.b, &wl.b) {
                pairs.push((max_ulps(mb, wb), max_ulps(tb, wb)));
            }
        }
    }
    // The same order as compare_step's reports: the loss, the gradients layer by layer (W then
    // b), then the updated parameters.
    for (ts, (m, t)) in rec.tensors.iter_mut().zip(pairs) {
        ts.manual_ulp = Some(m);
        ts.torch_ulp = Some(t);
    }
}

pub(super) fn witness_summary(records: &[StepRecord]) -> Vec<Witness> {
    let mut out: Vec<Witness> = Vec::new();
    for rec in records {
        for (i, ts) in rec.tensors.iter().enumerate() {
            if out.len() <= i {
                out.push(Witness { name: ts.name.clone(), manual_max_ulp: 0.0, torch_max_ulp: 0.0 });
            }
            let w = &mut out[i];
            w.manual_max_ulp = w.manual_max_ulp.max(ts.manual_ulp.unwrap_or(0.0));
            w.torch_max_ulp = w.torch_max_ulp.max(ts.torch_ulp.unwrap_or(0.0));
        }
    }
    out
}

/// ‖a − b‖ (Frobenius).
pub(crate) fn distance<T: Scalar>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x.to64() - y.to64()).powi(2)).sum::<f64>().sqrt()
}

pub(crate) fn frob<T: Scalar>(v: &[T]) -> f64 {
    v.iter().map(|&x| x.to64() * x.to64()).sum::<f64>().sqrt()
}

pub(crate) fn all_finite<T: Scalar>(p: &Params<T>) -> bool {
    p.layers
        .iter()
        .all(|l| l.w.as_slice().iter().all(|v| v.is_finite()) && l.b.iter().flatten().all(|v| v.is_finite()))
}
