//! What a compare run reports: `report.json`, `metrics.csv` and the console summary.

use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::fsio;
use crate::harness::check::epsilon;
use crate::harness::check::Divergence;
use crate::harness::manifest::RunManifest;
use crate::harness::{ErrorSummary, Failing, Judge, NonFinite, Outcome, RunConfig, Verdict, Witness};

/// One layer's largest figures over the run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LayerMax {
    /// Layer k.
    pub layer: usize,
    /// [n_{k−1}, n_k].
    pub shape: [usize; 2],
    /// φ_k.
    pub activation: &'static str,
    /// Largest |manual − torch| of ∂E/∂W^k, ∂E/∂b^k (lockstep).
    pub max_abs_err_grad: f64,
    /// Largest normwise relative error of ∂E/∂W^k, ∂E/∂b^k.
    pub max_rel_err_grad: f64,
    /// Largest error ÷ tolerance of ∂E/∂W^k, ∂E/∂b^k (above 1: failed).
    pub max_bound_ratio_grad: f64,
    /// Largest |manual − torch| of the updated W^k, b^k.
    pub max_abs_err_weight: f64,
    /// Largest normwise relative error of the updated W^k, b^k.
    pub max_rel_err_weight: f64,
    /// Largest error ÷ tolerance of the updated W^k, b^k.
    pub max_bound_ratio_weight: f64,
    /// Largest normwise relative difference of W^k between the two free trajectories.
    pub drift_max_rel_err_weight: f64,
    /// The witness's largest margin of ∂E/∂W^k, ∂E/∂b^k (above 1: failed).
    pub max_witness_ratio_grad: f64,
    /// The witness's largest margin of the updated W^k, b^k.
    pub max_witness_ratio_weight: f64,
}

/// Per-layer maxima over the run.
pub fn per_layer_max(run: &RunConfig, outcome: &Outcome) -> Vec<LayerMax> {
    let spec = &run.spec;
    let mut out: Vec<LayerMax> = (0..spec.depth())
        .map(|k| LayerMax {
            layer: k + 1,
            shape: [spec.widths()[k], spec.widths()[k + 1]],
            activation: spec.activations()[k].name(),
            ..LayerMax::default()
        })
        .collect();
    for rec in &outcome.records {
        for (m, l) in out.iter_mut().zip(&rec.layers) {
            m.max_abs_err_grad = m.max_abs_err_grad.max(l.grad_abs);
            m.max_rel_err_grad = m.max_rel_err_grad.max(l.grad_rel);
            m.max_bound_ratio_grad = m.max_bound_ratio_grad.max(l.grad_ratio);
            m.max_abs_err_weight = m.max_abs_err_weight.max(l.weight_abs);
            m.max_rel_err_weight = m.max_rel_err_weight.max(l.weight_rel);
            m.max_bound_ratio_weight = m.max_bound_ratio_weight.max(l.weight_ratio);
            m.drift_max_rel_err_weight = m.drift_max_rel_err_weight.max(l.drift_rel);
            m.max_witness_ratio_grad = m.max_witness_ratio_grad.max(l.grad_witness_ratio);
            m.max_witness_ratio_weight = m.max_witness_ratio_weight.max(l.weight_witness_ratio);
        }
    }
    out
}

/// The drift between the two free trajectories.
#[derive(Clone, Debug, Serialize)]
pub struct Drift {
    /// Largest normwise relative difference of the weights.
    pub max_rel_err_weight: f64,
    /// Its tolerance.
    pub tolerance: f64,
    /// Whether it stayed within.
    pub within_tolerance: bool,
}

/// A pair of figures, one per side.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PerSide {
    /// The implementation under test.
    pub manual: f64,
    /// libtorch.
    pub torch: f64,
}

/// `report.json`: every field documented in README's "Outputs".
#[derive(Clone, Debug, Serialize)]
pub struct Report<'a> {
    /// Whether every entry of every step agreed.
    pub equivalent: bool,
    /// `"verdict"`: `equivalent`, `agree-until-non-finite` (with `"non_finite_step"`, where the
    /// run stopped) or `not-equivalent`.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// What was checked: `batched`, `literal`, `literal with mutant NAME:LAYER`, `the trace PATH`.
    pub implementation: &'a str,
    /// For a trace: the steps and tensors it recorded, which were checked (null for compare).
    pub checked: Option<&'a str>,
    /// Steps run.
    pub steps: usize,
    /// The run's configuration.
    pub config: &'a RunManifest,
    /// How entries were judged: `{"mode": "round-off", "safety": 2}` or
    /// `{"mode": "fixed", "rtol": .., "atol": ..}`.
    pub tolerance: Judge,
    /// ε of the dtype.
    pub machine_epsilon: f64,
    /// Largest |manual − torch| per kind.
    pub max_abs_err: ErrorSummary,
    /// Largest normwise relative error per kind.
    pub max_rel_err: ErrorSummary,
    /// Largest error ÷ tolerance per kind (the margin; above 1 an entry failed).
    pub max_bound_ratio: ErrorSummary,
    /// The second judgement: the step recomputed in higher precision (docs/verdict.md).
    pub witness: WitnessReport,
    /// With `--mutant`: whether the planted mistake changed the gradients at some step (false: it
    /// computes what the correct formula computes on this network).
    pub mutant_changed: Option<bool>,
    /// The two free trajectories (null when checking a trace: there is no free run).
    pub drift: Option<Drift>,
    /// Where the disagreement began (the origin of the first failing step), or null.
    pub first_divergence: Option<&'a Divergence>,
    /// Every failing tensor at that step.
    pub failing: &'a [Failing],
    /// The first step with a NaN or ±∞, per side.
    pub non_finite: NonFinite,
    /// Loss on the whole dataset after training, each side by its own forward pass.
    pub final_loss: PerSide,
    /// Accuracy after training, when the targets classify.
    pub accuracy: Option<PerSide>,
    /// f32 runs: per tensor, each side's largest error against libtorch's f64 step, in f32 ulps.
    pub f64_witness: Option<&'a [Witness]>,
    /// Per layer.
    pub per_layer: Vec<LayerMax>,
}

/// The witness's part of the report.
#[derive(Clone, Debug, Serialize)]
pub struct WitnessReport {
    /// `libtorch f64` (f32 runs), `double-double` (f64 runs), or `none` (a fixed tolerance).
    pub method: &'static str,
    /// Every how many steps it took the step (0: step 0 alone).
    pub every: usize,
    /// Steps it took.
    pub steps: usize,
    /// K_T: the multiple of the reference's own distance from the witness the manual side may be.
    pub k_torch: f64,
    /// K_S: the multiple of the typical error σ the manual side may always be.
    pub k_sigma: f64,
    /// The largest ‖m − w‖ / max(K_T‖t − w‖, K_S‖σ‖) per kind (above 1 a tensor failed).
    pub max_ratio: ErrorSummary,
    /// Entries the round-off bound could not certify (a tolerance that overflowed); the witness
    /// judged them alone.
    pub uncertified_entries: usize,
    /// Where the reference alone went non-finite while the manual side and the witness agree.
    pub reference_overflow: Vec<String>,
}

/// The report of a run.
pub fn report<'a>(run: &RunConfig, config: &'a RunManifest, o: &'a Outcome) -> Report<'a> {
    Report {
        equivalent: o.equivalent,
        verdict: o.verdict,
        implementation: &o.implementation,
        checked: o.checked.as_deref(),
        steps: o.steps_run,
        config,
        tolerance: run.judge,
        machine_epsilon: epsilon(run.spec.dtype()),
        max_abs_err: o.max_abs,
        max_rel_err: o.max_rel,
        max_bound_ratio: o.max_ratio,
        witness: WitnessReport {
            method: witness_method(run, o),
            every: o.witness_every,
            steps: o.witness_steps,
            k_torch: crate::harness::witness::K_TORCH,
            k_sigma: crate::harness::witness::K_SIGMA,
            max_ratio: o.max_witness_ratio,
            uncertified_entries: o.uncertified,
            reference_overflow: o.reference_overflow.clone(),
        },
        mutant_changed: o.mutant_changed,
        drift: o.checked.is_none().then_some(Drift {
            max_rel_err_weight: o.max_drift,
            tolerance: run.drift_tol,
            within_tolerance: o.max_drift <= run.drift_tol,
        }),
        first_divergence: o.first_divergence.as_ref(),
        failing: &o.failing,
        non_finite: o.non_finite,
        final_loss: PerSide { manual: o.final_loss.0, torch: o.final_loss.1 },
        accuracy: o.accuracy.map(|(manual, torch)| PerSide { manual, torch }),
        f64_witness: o.witness.as_deref(),
        per_layer: per_layer_max(run, o),
    }
}

/// Which witness took the steps of a run.
fn witness_method(run: &RunConfig, o: &Outcome) -> &'static str {
    match (o.witness_steps, run.spec.dtype()) {
        (0, _) => "none",
        (_, crate::model::spec::DType::F32) => "libtorch f64",
        (_, crate::model::spec::DType::F64) => "double-double",
    }
}

/// The largest witness margin of the run.
fn witness_margin(o: &Outcome) -> f64 {
    let w = o.max_witness_ratio;
    w.loss.max(w.grad).max(w.weight)
}

/// Writes `report.json` atomically.
pub fn write_report(path: &Path, run: &RunConfig, config: &RunManifest, o: &Outcome) -> Result<()> {
    let mut text = serde_json::to_string_pretty(&report(run, config, o)).context("report.json")?;
    text.push('\n');
    fsio::write_atomic(path, text.as_bytes())
}

/// Writes `metrics.csv` atomically: one row per step: the three losses; for every lockstep tensor
/// (`loss`, then per layer `dW{k}`, `db{k}`, `W{k}`, `b{k}`) the max absolute error, the normwise
/// relative error, the error ÷ tolerance (`_bound_ratio`) and whether it passed both judgements (1
/// or 0), in an f32 run each side's error against libtorch's f64 step in f32 ulps (`_manual_ulp`,
/// `_torch_ulp`), and the witness's margin and each side's normwise relative distance from it
/// (`_witness_ratio`, `_witness_manual_rel`, `_witness_torch_rel`; empty at a step it did not take);
/// then per layer the drift, ‖∂E/∂W^k‖, the update ratio and the % saturated.
pub fn write_metrics(path: &Path, o: &Outcome) -> Result<()> {
    let depth = o.records.first().map_or(0, |r| r.layers.len());
    let witness = o.witness.is_some();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> =
        ["step", "manual_loss", "torch_loss", "torch_free_loss"].map(String::from).to_vec();
    for t in o.records.first().map_or(&[][..], |r| &r.tensors[..]) {
        for f in ["abs_err", "rel_err", "bound_ratio", "ok"] {
            header.push(format!("{}_{f}", t.name));
        }
        if witness {
            for f in ["manual_ulp", "torch_ulp"] {
                header.push(format!("{}_{f}", t.name));
            }
        }
        for f in ["witness_ratio", "witness_manual_rel", "witness_torch_rel"] {
            header.push(format!("{}_{f}", t.name));
        }
    }
    for k in 1..=depth {
        for f in ["drift_rel_err", "grad_norm", "update_ratio", "saturated_pct"] {
            header.push(format!("l{k}_{f}"));
        }
    }
    w.write_record(&header)?;
    for r in &o.records {
        let mut row = vec![r.step.to_string(), fmt(r.manual_loss), fmt(r.torch_loss), fmt(r.torch_free_loss)];
        for t in &r.tensors {
            if t.checked {
                row.extend([fmt(t.max_abs), fmt(t.rel), fmt(t.ratio), u8::from(t.pass).to_string()]);
            } else {
                // Not recorded in the trace, so not checked: empty fields.
                row.extend(["", "", "", ""].map(String::from));
            }
            if witness {
                row.extend([t.manual_ulp, t.torch_ulp].map(|v| fmt(v.unwrap_or(f64::NAN))));
            }
            // Empty where the witness did not take the step.
            row.extend(
                [t.witness_ratio, t.witness_manual, t.witness_torch].map(|v| v.map_or(String::new(), fmt)),
            );
        }
        for l in &r.layers {
            row.extend([l.drift_rel, l.grad_norm, l.update_ratio, l.saturated_pct].map(fmt));
        }
        w.write_record(&row)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("metrics.csv: {e}"))?;
    fsio::write_atomic(path, &bytes)
}

/// Shortest round-trip text of a float (`NaN`, `inf`, `-inf` for the non-finite).
fn fmt(v: f64) -> String {
    format!("{v:e}")
}

/// The largest error ÷ tolerance over every compared entry of the run.
fn margin(o: &Outcome) -> f64 {
    o.max_ratio.loss.max(o.max_ratio.grad).max(o.max_ratio.weight)
}

/// ", and within the witness's tolerance at N steps (largest margin x)", when a witness took steps.
fn witness_clause(run: &RunConfig, o: &Outcome) -> String {
    if o.witness_steps == 0 {
        return String::new();
    }
    let at = if o.witness_steps == o.steps_run {
        "every step".to_string()
    } else if o.witness_every == 0 {
        "step 0 alone (a stateful optimizer's witness would have to take every step of this large network)"
            .to_string()
    } else {
        format!("{} of the steps (every {})", o.witness_steps, o.witness_every)
    };
    format!(
        "; and within the {} witness's tolerance at {at}, largest margin {:.3}",
        witness_method(run, o),
        witness_margin(o)
    )
}

/// The verdict line.
pub fn verdict(run: &RunConfig, o: &Outcome) -> String {
    let what = if o.implementation == "batched" {
        "manual backprop".to_string()
    } else if o.checked.is_some() {
        o.implementation.clone()
    } else {
        format!("manual backprop ({})", o.implementation)
    };
    match o.verdict {
        Verdict::Equivalent => format!(
            "EQUIVALENT: {what} and libtorch agree at every one of {} steps ({}, {}; largest error {:.3} of its tolerance{}){}",
            o.steps_run,
            run.judge,
            run.spec.dtype(),
            margin(o),
            witness_clause(run, o),
            o.checked.as_ref().map_or(String::new(), |c| format!("; checked: {c}")),
        ) + if o.mutant_changed == Some(false) {
            " — the planted mistake has no effect on this network: its gradients equal the correct formula's at \
             every step (e.g. φ'(z) = φ'(a) for relu)"
        } else {
            ""
        },
        Verdict::AgreeUntilNonFinite { step } if !o.reference_overflow.is_empty() => format!(
            "AGREE UNTIL NON-FINITE: {what} and libtorch agree {}; at step {step} libtorch alone went non-finite \
             ({}) where {what} and the {} witness agree on finite values: the reference's overflow, no \
             disagreement; the run stopped there",
            if step == 0 { "on no step before it".to_string() } else { format!("on steps 0..{}", step - 1) },
            o.reference_overflow.iter().map(|r| r.split(", ").nth(1).unwrap_or(r)).collect::<Vec<_>>().join(", "),
            witness_method(run, o),
        ),
        Verdict::AgreeUntilNonFinite { step: 0 } => format!(
            "AGREE UNTIL NON-FINITE: nothing to compare: at step 0 {what} and libtorch both went non-finite ({}), where \
             the run stopped",
            o.non_finite,
        ),
        Verdict::AgreeUntilNonFinite { step } => format!(
            "AGREE UNTIL NON-FINITE: {what} and libtorch agree on {} ({}, {}; largest error {:.3} of its tolerance); \
             at step {step} {} ({}), where the run stopped",
            if step == 1 { "step 0".to_string() } else { format!("steps 0..{}", step - 1) },
            run.judge,
            run.spec.dtype(),
            margin(o),
            match (o.non_finite.manual, o.non_finite.torch) {
                (None, Some(_)) => "libtorch went non-finite while the manual side stayed finite",
                (Some(_), None) => "the manual side went non-finite, at the edge of its range, within round-off of libtorch",
                _ => "both went non-finite",
            },
            o.non_finite,
        ),
        Verdict::NotEquivalent => match &o.first_divergence {
            Some(d) => {
                let also: Vec<&str> = o
                    .failing
                    .iter()
                    .map(|f| f.name.as_str())
                    .filter(|n| *n != format!("{}{}", d.tensor, if d.layer == 0 { String::new() } else { d.layer.to_string() }))
                    .collect();
                let also = if also.is_empty() { String::new() } else { format!("; also failing at that step: {}", also.join(", ")) };
                format!("NOT EQUIVALENT: {what} and libtorch part at {d}{also}")
            }
            None => format!("NOT EQUIVALENT: non-finite values at different steps ({})", o.non_finite),
        },
    }
}

/// The summary under the verdict: the network, the per-layer table of the largest errors, the
/// final losses and accuracy (the files written are listed by [`print_console`]).
pub fn summary_text(dataset: &str, run: &RunConfig, o: &Outcome) -> String {
    let spec = &run.spec;
    let mut s = String::new();
    let widths: Vec<String> = spec.widths().iter().map(|w| w.to_string()).collect();
    let _ = writeln!(
        s,
        "network {} ({}), {}, bias {}, loss {}{}, init {}, {}, batch {}, dataset {}",
        widths.join("-"),
        spec.activations().iter().map(|a| a.name()).collect::<Vec<_>>().join(","),
        spec.dtype(),
        if spec.bias() { "on" } else { "off" },
        spec.loss(),
        if spec.label_smoothing() != 0.0 {
            format!(" (label smoothing {})", spec.label_smoothing())
        } else {
            String::new()
        },
        spec.init(),
        if run.optim.is_plain_sgd() { format!("lr {}", run.optim.lr) } else { run.optim.describe() },
        if run.batch_size == 0 { "full".to_string() } else { run.batch_size.to_string() },
        dataset
    );
    error_table(&mut s, run, o);
    if let Some(w) = &o.witness {
        let _ = writeln!(
            s,
            "\nf32 against libtorch's f64 step at the same weights (largest error, f32 ulps): manual / torch"
        );
        let line: Vec<String> =
            w.iter().map(|w| format!("{} {:.1}/{:.1}", w.name, w.manual_max_ulp, w.torch_max_ulp)).collect();
        for chunk in line.chunks(6) {
            let _ = writeln!(s, "  {}", chunk.join("   "));
        }
    }
    if let Some(checked) = &o.checked {
        let _ = writeln!(s, "\nmachine epsilon {:e}; the trace recorded {checked}", epsilon(spec.dtype()));
        let _ = writeln!(
            s,
            "libtorch's loss on the whole dataset at the trace's last weights: {:.6e}",
            o.final_loss.1
        );
    } else {
        let _ = writeln!(
            s,
            "\nmachine epsilon {:e}; drift {:.3e} (tolerance {:e}: {})",
            epsilon(spec.dtype()),
            o.max_drift,
            run.drift_tol,
            if o.max_drift <= run.drift_tol { "within" } else { "exceeded" }
        );
        let _ = writeln!(
            s,
            "final loss on the whole dataset (each side's own forward pass): manual {:.6e}, torch {:.6e}",
            o.final_loss.0, o.final_loss.1
        );
    }
    if let Some((m, t)) = o.accuracy {
        let _ = writeln!(s, "accuracy: manual {:.1}%, torch {:.1}%", 100.0 * m, 100.0 * t);
    }
    if o.non_finite.manual.is_some() || o.non_finite.torch.is_some() {
        let _ = writeln!(s, "non-finite values: {} (the run stopped there)", o.non_finite);
    }
    if o.uncertified > 0 {
        let _ = writeln!(
            s,
            "the round-off bound could not certify {} entries (their tolerance overflowed: a limit of the bound, not \
             a blow-up); the witness judged them alone",
            o.uncertified
        );
    }
    s
}

/// The table of the largest errors per layer (and of the loss) under the network's line.
fn error_table(s: &mut String, run: &RunConfig, o: &Outcome) {
    let free = o.checked.is_none();
    let _ = writeln!(
        s,
        "\nlargest errors over {} steps (lockstep: one step from the same weights, \"÷ tol\" the error as a \
         fraction of its round-off bound, \"÷ wit\" the distance from the {} witness as a fraction of what the \
         reference's own distance allows, above 1 a failure{})",
        o.steps_run,
        witness_method(run, o),
        if free { "; drift: two free trajectories" } else { "" }
    );
    let _ = writeln!(
        s,
        "{:>5}  {:>10}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}{}",
        "layer",
        "shape",
        "dW,db abs",
        "dW,db ÷ tol",
        "dW,db ÷ wit",
        "W,b rel",
        "W,b ÷ tol",
        "W,b ÷ wit",
        if free { format!("  {:>11}", "drift rel") } else { String::new() }
    );
    for m in per_layer_max(run, o) {
        let _ = writeln!(
            s,
            "{:>5}  {:>10}  {:>11.3e}  {:>11.3e}  {:>11.3e}  {:>11.3e}  {:>11.3e}  {:>11.3e}{}",
            m.layer,
            format!("{}x{}", m.shape[0], m.shape[1]),
            m.max_abs_err_grad,
            m.max_bound_ratio_grad,
            m.max_witness_ratio_grad,
            m.max_rel_err_weight,
            m.max_bound_ratio_weight,
            m.max_witness_ratio_weight,
            if free { format!("  {:>11.3e}", m.drift_max_rel_err_weight) } else { String::new() }
        );
    }
    let _ = writeln!(
        s,
        "{:>5}  {:>10}  {:>11.3e}  {:>11.3e}  {:>11.3e}",
        "loss", "", o.max_abs.loss, o.max_ratio.loss, o.max_witness_ratio.loss
    );
}

/// The console summary: the verdict, the per-layer table, the final losses, accuracy, and the
/// paths written. With `quiet`, the verdict line alone.
pub fn print_console(dataset: &str, run: &RunConfig, o: &Outcome, written: &[PathBuf], quiet: bool) {
    println!("{}", verdict(run, o));
    if quiet {
        return;
    }
    let mut s = summary_text(dataset, run, o);
    let _ = writeln!(s, "\nwrote:");
    for p in written {
        let _ = writeln!(s, "  {}", p.display());
    }
    print!("{s}");
}
