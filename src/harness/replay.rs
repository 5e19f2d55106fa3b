//! Checking a backpropagation written elsewhere, from its trace: every recorded step is replayed in
//! libtorch *at the trace's own weights* — the initial ones for step 0, the recorded weights after
//! step t − 1 for step t — and what the trace recorded (loss, gradients, updated weights, whichever
//! it has) is judged as `compare` judges the built-in implementation: each entry against its
//! round-off bound, the origin of the first failing step, non-finite values never agreement.

use anyhow::{bail, Result};

use crate::harness::bound::{step_bounds_with, OptimBound, StepBounds};
use crate::harness::check::{compare, compare_bounded, compare_params, TensorKind, TensorReport, Tolerance};
use crate::harness::outcome::StepRecord;
use crate::harness::run::{
    all_finite, conclude, distance, frob, judge_step, new_outcome, param_sigma, record, stops, wide_of,
    witness_reports,
};
use crate::harness::trace::{Conventions, Recorded, RecordedStep};
use crate::harness::witness::{DdWitness, WideStep};
use crate::harness::{saturated_pct, Judge, Outcome};
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::model::params::Params;
use crate::reference::{RefStep, Reference};

/// What a trace recorded, in words: which steps, and which of loss, gradients and updated weights.
pub fn describe(rec: &Recorded) -> String {
    let n = rec.steps.len();
    let (first, last) = (rec.steps[0].step, rec.steps[n - 1].step);
    let steps = if last + 1 - first == n {
        if n == 1 {
            format!("step {first}")
        } else {
            format!("{n} steps ({first}..{last})")
        }
    } else {
        format!("{n} of the steps {first}..{last}")
    };
    let count =
        |f: &dyn Fn(&crate::harness::trace::RecordedStep) -> bool| rec.steps.iter().filter(|s| f(s)).count();
    let part = |c: usize, what: &str| match c {
        0 => None,
        c if c == n => Some(what.to_string()),
        c => Some(format!("{what} at {c} of them")),
    };
    let parts: Vec<String> = [
        part(count(&|s| s.loss.is_some()), "the loss"),
        part(count(&|s| s.has_grads), if rec.spec.bias() { "∂E/∂W, ∂E/∂b" } else { "∂E/∂W" }),
        part(count(&|s| s.has_after), "the updated weights"),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("{steps}: {}", parts.join(", "))
}

/// Whether the trace gives the weights each recorded step starts from: the initial ones for step
/// 0; for step t, the weights the trace recorded after step t − 1, or — when step t − 1 recorded
/// only its gradient, with plain SGD — W − η ∂E/∂W from that gradient ([`next_start`]). A step
/// whose starting weights the trace does not give is an error naming the tensor that is missing.
fn check_starts(rec: &Recorded) -> Result<()> {
    let plain = rec.optim.is_plain_sgd();
    if !plain && rec.steps[0].step != 0 {
        bail!(
            "the trace starts at step {}: {} carries state from step to step, so every step from 0 must be \
             recorded",
            rec.steps[0].step,
            rec.optim.kind
        );
    }
    for (i, s) in rec.steps.iter().enumerate() {
        if s.step == 0 {
            continue;
        }
        let t = s.step;
        match i.checked_sub(1).map(|j| &rec.steps[j]) {
            Some(prev) if prev.step + 1 == t => match (prev.has_after, prev.has_grads) {
                (true, _) | (false, true) if prev.has_after || plain => {}
                (false, true) => bail!(
                    "step {t} starts from weights the trace does not record: no manual.step{}.W1, and with \
                     {} the update needs the optimizer's state, not only the gradient",
                    t - 1,
                    rec.optim.describe()
                ),
                _ => bail!(
                    "step {t} starts from weights the trace does not record: no manual.step{}.W1, and no \
                     manual.step{}.dW1 to update them by",
                    t - 1,
                    t - 1
                ),
            },
            _ => bail!(
                "step {t} starts from weights the trace does not record: step {} is not in the trace \
                 (no batch.{}, manual.step{}.W1)",
                t - 1,
                t - 1,
                t - 1
            ),
        }
    }
    Ok(())
}

/// The weights the step after `prev` starts from: the updated weights `prev` recorded, or its
/// starting weights `start` moved by its gradient (plain SGD; [`check_starts`] has made sure one
/// of the two is there).
fn next_start<T: Scalar>(
    start: &Params<T>,
    prev: &RecordedStep,
    grads: Option<&Params<T>>,
    after: Option<&Params<T>>,
) -> Params<T> {
    match (after, grads) {
        (Some(a), _) => a.clone(),
        (None, Some(g)) => {
            let mut w = start.clone();
            w.sgd_update(g, T::of(prev.lr));
            w
        }
        (None, None) => unreachable!("check_starts refuses a step with neither"),
    }
}

/// A step's recorded gradient and updated weights, each when recorded.
type GradsAfter<T> = (Option<Params<T>>, Option<Params<T>>);

/// Replays every step of `rec` in libtorch at the trace's own weights and judges what it recorded;
/// `T` must be the trace's dtype. `what` names the implementation in the report (e.g. the path).
pub fn replay<T: Scalar>(rec: &Recorded, judge: Judge, saturation: f64, what: &str) -> Result<Outcome> {
    let spec = &rec.spec;
    if spec.dtype() != T::DTYPE {
        bail!("the trace is {}, the replay was asked for {}", spec.dtype(), T::DTYPE);
    }
    check_starts(rec)?;
    let init: Params<T> = rec.init.cast();
    let x: Matrix<T> = rec.data.x.cast();
    let y: Matrix<T> = rec.data.y.cast();
    let conv = rec.conventions;
    let mut lockstep = Reference::new(spec, &init, &rec.optim)?.with_conventions(conv.mean, conv.l2);
    let mut optim_bound = (!rec.optim.is_plain_sgd()).then(|| OptimBound::new::<T>(rec.optim, spec));
    let fixed = judge.tolerance();
    let mut witness = Witnesses::new::<T>(rec, fixed)?;

    let mut out = new_outcome(what.to_string(), rec.steps.len(), rec.init.clone());
    out.checked = Some(describe(rec));
    out.witness_every = 1;
    let (mut xb, mut yb) = (Matrix::<T>::zeros(0, spec.n_in()), Matrix::<T>::zeros(0, spec.n_out()));
    let mut last = init.clone();
    let mut start = init;
    // The previous step's recorded gradient and updated weights, for this step's start.
    let mut prev: Option<GradsAfter<T>> = None;
    for (i, s) in rec.steps.iter().enumerate() {
        let t = s.step;
        if let Some((g, a)) = prev.take() {
            start = next_start(&start, &rec.steps[i - 1], g.as_ref(), a.as_ref());
        }
        let start = &start;
        // This step's recorded gradient and updated weights, read from the trace's file now.
        let grads: Option<Params<T>> = rec.grads(i)?.as_ref().map(Params::cast);
        let after: Option<Params<T>> = rec.after(i)?.as_ref().map(Params::cast);
        xb.gather_rows(&x, &s.batch);
        yb.gather_rows(&y, &s.batch);
        let mut bounds = step_bounds_with(spec, start, &xb, &yb, optim_bound.is_some());
        let optim_tol = optim_bound.as_mut().map(|o| {
            o.update(&start.cast(), bounds.values.as_ref().expect("asked for the values"), &bounds.grads)
        });
        lockstep.set_params(start);
        lockstep.set_lr(s.lr);
        let r = RefStep::of(&mut lockstep, &crate::manual::Batch::new(&xb, &yb));
        if !conv.is_plain() {
            widen_for(&mut bounds, conv, start, s.batch.len(), &r);
        }
        let wide = witness.step(start, &xb, &yb, s.lr);
        let step = Replayed { loss: s.loss.map(T::of), grads, after, r };
        let reports = step.reports(&bounds, optim_tol.as_ref(), fixed, s.lr, wide.as_ref());
        if wide.is_some() {
            out.witness_steps += 1;
        }
        let mut rec_step =
            record(t, &reports, step.loss.unwrap_or(T::nan()), &step.r, T::nan(), &bounds, judge);
        step.layer_measures(&mut rec_step, rec, s.lr, start, &bounds, saturation);
        let unjudged = judge_step(&mut out, t, &reports);
        out.records.push(rec_step);
        out.steps_run += 1;
        last = step.after.clone().unwrap_or_else(|| step.r.params.clone());

        let (manual_ok, torch_ok) = (step.manual_ok(), step.torch_ok());
        prev = Some((step.grads, step.after));
        if stops(&mut out, t, manual_ok, torch_ok, unjudged) {
            break;
        }
    }
    // libtorch's loss on the whole dataset at the trace's last weights (the trace has no forward
    // pass of its own to compare it with).
    lockstep.set_params(&last);
    out.final_loss = (f64::NAN, lockstep.loss(&x, &y));
    out.final_params = last.cast();
    conclude(&mut out);
    Ok(out)
}

/// The witness of a replay (docs/verdict.md): libtorch in f64 for an f32 trace, double-double for
/// an f64 one; none with a fixed tolerance.
struct Witnesses {
    torch64: Option<Reference>,
    dd: Option<DdWitness>,
}

impl Witnesses {
    /// The witness for a trace in `T`, judged by the fixed tolerance `fixed` or by the bounds.
    fn new<T: Scalar>(rec: &Recorded, fixed: Option<Tolerance>) -> Result<Witnesses> {
        let (spec, conv) = (&rec.spec, rec.conventions);
        let torch64 = match (T::DTYPE, fixed) {
            (crate::model::spec::DType::F32, None) => Some(
                Reference::new(
                    &spec.clone().with_dtype(crate::model::spec::DType::F64),
                    &rec.init,
                    &rec.optim,
                )?
                .with_conventions(conv.mean, conv.l2),
            ),
            _ => None,
        };
        // The double-double witness knows the spec's loss at one lr: none for a trace with other
        // conventions or a learning rate per step (the bound alone judges those).
        let one_lr = rec.steps.iter().all(|s| s.lr == rec.optim.lr);
        let dd = (T::DTYPE == crate::model::spec::DType::F64 && fixed.is_none() && conv.is_plain() && one_lr)
            .then(|| DdWitness::new(spec, rec.optim));
        Ok(Witnesses { torch64, dd })
    }

    /// The witness's step from `start` on the batch (`xb`, `yb`) at learning rate `lr`, if there
    /// is a witness.
    fn step<T: Scalar>(
        &mut self,
        start: &Params<T>,
        xb: &Matrix<T>,
        yb: &Matrix<T>,
        lr: f64,
    ) -> Option<WideStep> {
        match (&mut self.torch64, &mut self.dd) {
            (Some(w), _) => {
                w.set_params(start);
                w.set_lr(lr);
                Some(wide_of(&RefStep::of(w, &crate::manual::Batch::new(&xb.cast::<f64>(), &yb.cast()))))
            }
            (None, Some(dd)) => Some(dd.step(&start.cast(), &xb.cast(), &yb.cast())),
            (None, None) => None,
        }
    }
}

/// One replayed step: what the trace recorded (each part when recorded), in the run's dtype, and
/// libtorch's step `r` from the same weights.
struct Replayed<T: Scalar> {
    loss: Option<T>,
    grads: Option<Params<T>>,
    after: Option<Params<T>>,
    r: RefStep<T>,
}

impl<T: Scalar> Replayed<T> {
    /// The gradient the step's update used: the recorded one, or libtorch's where the trace has
    /// none.
    fn grads_used(&self) -> &Params<T> {
        self.grads.as_ref().unwrap_or(&self.r.grads)
    }

    /// Every recorded tensor judged against libtorch's: by the fixed tolerance `fixed`, or by the
    /// round-off `bounds` (the updated weights' from the optimizer's bound `optim_tol` when there
    /// is one), and by the witness's step `wide` when there is one.
    fn reports(
        &self,
        bounds: &StepBounds,
        optim_tol: Option<&Params<f64>>,
        fixed: Option<Tolerance>,
        lr: f64,
        wide: Option<&WideStep>,
    ) -> Vec<TensorReport> {
        let r = &self.r;
        let tol = fixed.unwrap_or(Tolerance { rtol: 0.0, atol: 0.0 });
        let mut reports = Vec::new();
        if let Some(l) = self.loss {
            let errors = match fixed {
                Some(tol) => compare(&[l], &[r.loss], 1, tol),
                None => compare_bounded(&[l], &[r.loss], 1, &[bounds.loss]),
            };
            reports.push(TensorReport { layer: 0, kind: TensorKind::Loss, errors, witness: None });
        }
        if let Some(g) = &self.grads {
            reports.extend(compare_params(g, &r.grads, true, tol, fixed.is_none().then_some(&bounds.grads)));
        }
        if let Some(a) = &self.after {
            // The update's tolerance from the trace's own gradient, or libtorch's where it has none.
            let pb = match optim_tol {
                Some(tol) => tol.clone(),
                None => bounds.update(self.grads_used(), a, lr),
            };
            reports.extend(compare_params(a, &r.params, false, tol, fixed.is_none().then_some(&pb)));
        }
        if let Some(w) = wide {
            let after = self.after.as_ref();
            let ps = param_sigma(bounds, optim_tol, self.grads_used(), after.unwrap_or(&r.params), lr);
            witness_reports(&mut reports, self.loss, self.grads.as_ref(), after, r, w, bounds, &ps);
        }
        reports
    }

    /// Each layer's gradient norm, update ratio and saturation, from what the trace recorded
    /// (libtorch's where it has none), into the step's record.
    fn layer_measures(
        &self,
        rec_step: &mut StepRecord,
        rec: &Recorded,
        lr: f64,
        start: &Params<T>,
        bounds: &StepBounds,
        saturation: f64,
    ) {
        let spec = &rec.spec;
        for (k, l) in rec_step.layers.iter_mut().enumerate() {
            l.grad_norm = frob(self.grads_used().layers[k].w.as_slice());
            let step_norm = match (&self.after, rec.optim.is_plain_sgd()) {
                (Some(a), false) => distance(start.layers[k].w.as_slice(), a.layers[k].w.as_slice()),
                _ => lr * l.grad_norm,
            };
            l.update_ratio = step_norm / frob(start.layers[k].w.as_slice());
            let z = bounds.activations[k].as_slice();
            l.saturated_pct = saturated_pct(spec.activations()[k], z, spec.widths()[k + 1], saturation);
        }
    }

    /// Whether everything the trace recorded at this step is finite.
    fn manual_ok(&self) -> bool {
        self.loss.is_none_or(|l| l.is_finite())
            && self.grads.as_ref().is_none_or(all_finite)
            && self.after.as_ref().is_none_or(all_finite)
    }

    /// Whether libtorch's step is finite.
    fn torch_ok(&self) -> bool {
        let r = &self.r;
        r.loss.is_finite() && all_finite(&r.grads) && all_finite(&r.params)
    }
}

/// Widens a step's round-off bounds (computed for the spec's plain loss, summed over the batch) to
/// the trace's conventions. The mean: the sum's bounds ÷ m, plus one rounding of the value. The L2
/// penalty λ/2 Σ‖W‖²: its own sum's rounding (≤ (count + 3)·ε·P) and that of adding it to E; in
/// ∂E/∂W, the roundings of λW and of the sum g + λW. `r` is libtorch's step, with the conventions.
fn widen_for<T: Scalar>(b: &mut StepBounds, conv: Conventions, start: &Params<T>, m: usize, r: &RefStep<T>) {
    let eps = crate::harness::check::epsilon(T::DTYPE);
    let inv = 1.0 / m as f64;
    if conv.mean {
        b.loss = b.loss * inv + eps * r.loss.to64().abs();
        b.loss_sigma *= inv;
        for (bl, (gl, sl)) in
            b.grads.layers.iter_mut().zip(r.grads.layers.iter().zip(b.sigma.layers.iter_mut()))
        {
            for (bound, g) in bl.w.as_mut_slice().iter_mut().zip(gl.w.as_slice()) {
                *bound = *bound * inv + eps * g.to64().abs();
            }
            if let (Some(bb), Some(gb)) = (bl.b.as_mut(), gl.b.as_ref()) {
                for (bound, g) in bb.iter_mut().zip(gb) {
                    *bound = *bound * inv + eps * g.to64().abs();
                }
            }
            sl.w.as_mut_slice().iter_mut().for_each(|v| *v *= inv);
            if let Some(sb) = sl.b.as_mut() {
                sb.iter_mut().for_each(|v| *v *= inv);
            }
        }
    }
    if conv.l2 > 0.0 {
        let (mut squares, mut count) = (0.0, 0usize);
        for (bl, (wl, gl)) in b.grads.layers.iter_mut().zip(start.layers.iter().zip(&r.grads.layers)) {
            for ((bound, w), g) in bl.w.as_mut_slice().iter_mut().zip(wl.w.as_slice()).zip(gl.w.as_slice()) {
                let w = w.to64();
                squares += w * w;
                *bound += 2.0 * eps * (conv.l2 * w.abs() + g.to64().abs());
            }
            count += wl.w.as_slice().len();
        }
        let penalty = 0.5 * conv.l2 * squares;
        b.loss += (count as f64 + 3.0) * eps * penalty + eps * r.loss.to64().abs();
    }
}
