//! Steps 4 and 5 of a run: one step's comparison against the bounds or the fixed tolerance, its
//! record, and the verdict the records add up to.

use crate::harness::bound::StepBounds;
use crate::harness::check::{
    compare, compare_bounded, compare_params, Divergence, Entry, TensorKind, TensorReport,
};
use crate::harness::{
    ErrorSummary, Failing, Judge, LayerStep, NonFinite, Outcome, StepRecord, TensorStep, Verdict,
};
use crate::kernels::scalar::Scalar;
use crate::model::params::Params;
use crate::reference::RefStep;

/// Step 4: the loss, every gradient and every updated parameter, against the bounds or the fixed
/// tolerance.
pub(super) fn compare_step<T: Scalar>(
    judge: Judge,
    bounds: &StepBounds,
    param_bounds: &Params<f64>,
    loss: T,
    grads: &Params<T>,
    params: &Params<T>,
    r: &RefStep<T>,
) -> Vec<TensorReport> {
    let fixed = judge.tolerance();
    let tol = fixed.unwrap_or(crate::harness::check::Tolerance { rtol: 0.0, atol: 0.0 });
    let (loss_errors, gb, pb) = match fixed {
        Some(tol) => (compare(&[loss], &[r.loss], 1, tol), None, None),
        None => {
            (compare_bounded(&[loss], &[r.loss], 1, &[bounds.loss]), Some(&bounds.grads), Some(param_bounds))
        }
    };
    let mut reports =
        vec![TensorReport { layer: 0, kind: TensorKind::Loss, errors: loss_errors, witness: None }];
    reports.extend(compare_params(grads, &r.grads, true, tol, gb));
    reports.extend(compare_params(params, &r.params, false, tol, pb));
    reports
}

/// Step 5: one step's record.
pub(crate) fn record<T: Scalar>(
    t: usize,
    reports: &[TensorReport],
    loss_m: T,
    r: &RefStep<T>,
    free_loss: T,
    bounds: &StepBounds,
    judge: Judge,
) -> StepRecord {
    let depth = r.grads.layers.len();
    let bias = r.grads.layers.first().is_some_and(|l| l.b.is_some());
    // Every tensor of the step, in one order (metrics.csv's columns); a partial trace leaves some
    // unchecked.
    let mut slots = vec![(0, TensorKind::Loss)];
    for kinds in [[TensorKind::GradW, TensorKind::GradB], [TensorKind::W, TensorKind::B]] {
        for k in 1..=depth {
            slots.push((k, kinds[0]));
            if bias {
                slots.push((k, kinds[1]));
            }
        }
    }
    let mut rec = StepRecord {
        step: t,
        manual_loss: loss_m.to64(),
        torch_loss: r.loss.to64(),
        torch_free_loss: free_loss.to64(),
        loss_abs: reports.iter().find(|r| r.kind == TensorKind::Loss).map_or(f64::NAN, |r| r.errors.max_abs),
        loss_bound: judge.tolerance().map_or(bounds.loss, |tol| tol.of(r.loss.to64())),
        layers: vec![LayerStep::default(); depth],
        tensors: slots
            .into_iter()
            .map(|(layer, kind)| match reports.iter().find(|rep| rep.layer == layer && rep.kind == kind) {
                Some(rep) => {
                    let w = rep.witness.as_ref().filter(|w| w.judged);
                    TensorStep {
                        name: rep.name(),
                        max_abs: rep.errors.max_abs,
                        rel: rep.errors.rel,
                        ratio: rep.errors.ratio,
                        pass: rep.pass(),
                        checked: true,
                        manual_ulp: None,
                        torch_ulp: None,
                        witness_ratio: w.map(|w| w.ratio),
                        witness_manual: w.map(|w| w.manual_rel()),
                        witness_torch: w.map(|w| w.torch_rel()),
                    }
                }
                None => TensorStep {
                    name: crate::harness::check::tensor_name(layer, kind),
                    max_abs: f64::NAN,
                    rel: f64::NAN,
                    ratio: f64::NAN,
                    pass: true,
                    checked: false,
                    manual_ulp: None,
                    torch_ulp: None,
                    witness_ratio: None,
                    witness_manual: None,
                    witness_torch: None,
                },
            })
            .collect(),
    };
    for rep in reports.iter().filter(|r| r.layer > 0) {
        let l = &mut rec.layers[rep.layer - 1];
        let e = &rep.errors;
        match rep.kind {
            TensorKind::GradW | TensorKind::GradB => {
                if let Some(w) = rep.witness.as_ref().filter(|w| w.judged) {
                    l.grad_witness_ratio = l.grad_witness_ratio.max(w.ratio);
                }
                l.grad_abs = l.grad_abs.max(e.max_abs);
                l.grad_rel = l.grad_rel.max(e.rel);
                l.grad_ratio = l.grad_ratio.max(e.ratio);
            }
            _ => {
                if let Some(w) = rep.witness.as_ref().filter(|w| w.judged) {
                    l.weight_witness_ratio = l.weight_witness_ratio.max(w.ratio);
                }
                l.weight_abs = l.weight_abs.max(e.max_abs);
                l.weight_rel = l.weight_rel.max(e.rel);
                l.weight_ratio = l.weight_ratio.max(e.ratio);
            }
        }
    }
    rec
}

/// The run's maxima, per kind.
pub(crate) fn absorb(out: &mut Outcome, reports: &[TensorReport]) {
    fn slot(s: &mut ErrorSummary, kind: TensorKind) -> &mut f64 {
        match kind {
            TensorKind::Loss => &mut s.loss,
            TensorKind::GradW | TensorKind::GradB => &mut s.grad,
            TensorKind::W | TensorKind::B => &mut s.weight,
        }
    }
    for rep in reports {
        let e = &rep.errors;
        for (summary, v) in
            [(&mut out.max_abs, e.max_abs), (&mut out.max_rel, e.rel), (&mut out.max_ratio, e.ratio)]
        {
            let s = slot(summary, rep.kind);
            *s = s.max(v);
        }
        if let Some(w) = rep.witness.as_ref().filter(|w| w.judged) {
            let s = slot(&mut out.max_witness_ratio, rep.kind);
            *s = s.max(w.ratio);
        }
        out.uncertified += e.uncertified;
    }
}

/// Every failing tensor of a step.
pub(crate) fn failing(reports: &[TensorReport]) -> Vec<Failing> {
    reports
        .iter()
        .filter(|r| !r.pass())
        .filter_map(|r| {
            let w = r.witness.as_ref();
            let first = r.errors.first_fail.or_else(|| {
                w.and_then(|w| w.worst).map(|(index, manual, torch, _)| Entry {
                    index,
                    manual,
                    torch,
                    bound: f64::NAN,
                })
            })?;
            Some(Failing {
                name: r.name(),
                layer: r.layer,
                failures: r.errors.failures,
                max_ratio: r.errors.ratio,
                first,
                judgement: r.failed_by(),
                witness_ratio: w.filter(|w| w.judged).map(|w| w.ratio),
            })
        })
        .collect()
}

/// An empty outcome for `implementation`, starting from `init`.
pub(crate) fn new_outcome(implementation: String, steps: usize, init: Params<f64>) -> Outcome {
    Outcome {
        verdict: Verdict::Equivalent,
        equivalent: true,
        implementation,
        checked: None,
        steps_run: 0,
        first_divergence: None,
        failing: Vec::new(),
        non_finite: NonFinite::default(),
        max_abs: ErrorSummary::default(),
        max_rel: ErrorSummary::default(),
        max_ratio: ErrorSummary::default(),
        max_witness_ratio: ErrorSummary::default(),
        witness_steps: 0,
        mutant_changed: None,
        witness_every: 0,
        uncertified: 0,
        reference_overflow: Vec::new(),
        max_drift: 0.0,
        final_loss: (f64::NAN, f64::NAN),
        accuracy: None,
        witness: None,
        records: Vec::with_capacity(steps),
        snapshots: Vec::new(),
        final_params: init,
    }
}

/// Folds step t's comparisons into the outcome: the run's maxima, and — at the first step with a
/// failing entry — the origin and every failing tensor. A step where some entry cannot be judged
/// (non-finite alike on both sides, or overflowing within round-off on one) is where the run blew
/// up: values non-finite on one side only are its consequences there, not a disagreement. Returns
/// whether some entry could not be judged.
pub(crate) fn judge_step(out: &mut Outcome, t: usize, reports: &[TensorReport]) -> bool {
    absorb(out, reports);
    let unjudged = reports.iter().any(|r| r.errors.non_finite > 0);
    // A value non-finite on the manual side alone, where the witness is finite and the reference
    // agrees with it, is the manual side's mistake, blow-up or not.
    let manual_wrong = reports.iter().any(|r| r.witness.as_ref().is_some_and(|w| w.manual_non_finite > 0));
    // The reference alone went non-finite where the manual side and the witness agree: its
    // overflow, named, and no disagreement.
    for r in reports {
        if r.witness.as_ref().is_some_and(|w| w.torch_overflow > 0) {
            out.reference_overflow.push(format!("step {t}, {}", r.name()));
        }
    }
    let overflow_only = |r: &TensorReport| {
        r.witness
            .as_ref()
            .is_some_and(|w| w.torch_overflow > 0 && w.torch_overflow == r.errors.non_finite_failures)
            && r.errors.failures == r.errors.non_finite_failures
    };
    let blow_up_only =
        !manual_wrong && reports.iter().all(|r| r.errors.failures == r.errors.non_finite_failures);
    let disagreement = reports.iter().any(|r| !r.pass() && !overflow_only(r));
    if !disagreement {
        return unjudged || reports.iter().any(overflow_only);
    }
    if out.first_divergence.is_none() && !(unjudged && blow_up_only) {
        let judged: Vec<TensorReport> = reports.iter().filter(|r| !overflow_only(r)).cloned().collect();
        if let Some(d) = Divergence::origin(t, &judged) {
            out.first_divergence = Some(d);
            out.failing = failing(&judged);
        }
    }
    unjudged
}

/// Whether the run stops after step t: where either side went non-finite, or an entry could not be
/// judged, nothing after it can be compared. Non-finite values alike on both sides are no
/// agreement: the verdict becomes "agree until non-finite" (unless a step failed already).
pub(crate) fn stops(out: &mut Outcome, t: usize, manual_ok: bool, torch_ok: bool, unjudged: bool) -> bool {
    if !manual_ok {
        out.non_finite.manual = Some(t);
    }
    if !torch_ok {
        out.non_finite.torch = Some(t);
    }
    let stop = !manual_ok || !torch_ok || unjudged;
    if stop && out.first_divergence.is_none() {
        out.verdict = Verdict::AgreeUntilNonFinite { step: t };
    }
    stop
}

/// The verdict once the run is over.
pub(crate) fn conclude(out: &mut Outcome) {
    if out.first_divergence.is_some() {
        out.verdict = Verdict::NotEquivalent;
    }
    out.equivalent = out.verdict == Verdict::Equivalent;
}
