//! What a compare run reports: `report.json`, `metrics.csv` and the console summary.

use anyhow::{Context, Result};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::harness::check::epsilon;
use crate::harness::{Outcome, RunConfig};
use crate::output::fsio;

/// Per-layer maxima over the run: (grad abs, grad rel, weight abs, weight rel, drift rel).
pub fn per_layer_max(outcome: &Outcome, depth: usize) -> Vec<[f64; 5]> {
    let mut out = vec![[0.0; 5]; depth];
    for rec in &outcome.records {
        for (k, l) in rec.layers.iter().enumerate() {
            let m = &mut out[k];
            for (slot, v) in
                m.iter_mut().zip([l.grad_abs, l.grad_rel, l.weight_abs, l.weight_rel, l.drift_rel])
            {
                *slot = f64::max(*slot, v);
            }
        }
    }
    out
}

/// The report as a JSON value (its field order is fixed, so the bytes are reproducible).
pub fn report_json(run: &RunConfig, config: &serde_json::Value, o: &Outcome) -> serde_json::Value {
    let spec = &run.spec;
    let per_layer: Vec<_> = per_layer_max(o, spec.depth())
        .iter()
        .enumerate()
        .map(|(k, m)| {
            json!({
                "layer": k + 1,
                "shape": [spec.widths()[k], spec.widths()[k + 1]],
                "activation": spec.activations()[k].name(),
                "max_abs_err_grad": m[0],
                "max_rel_err_grad": m[1],
                "max_abs_err_weight": m[2],
                "max_rel_err_weight": m[3],
                "drift_max_rel_err_weight": m[4],
            })
        })
        .collect();
    json!({
        "equivalent": o.equivalent,
        "steps": o.steps_run,
        "config": config,
        "tolerance": { "rtol": run.tol.rtol, "atol": run.tol.atol },
        "machine_epsilon": epsilon(spec.dtype()),
        "max_abs_err": { "loss": o.max_abs.loss, "grad": o.max_abs.grad, "weight": o.max_abs.weight },
        "max_rel_err": { "loss": o.max_rel.loss, "grad": o.max_rel.grad, "weight": o.max_rel.weight },
        "drift": {
            "max_rel_err_weight": o.max_drift,
            "tolerance": run.drift_tol,
            "within_tolerance": o.max_drift <= run.drift_tol,
        },
        "first_divergence": o.first_divergence.as_ref().map(|d| json!({
            "step": d.step, "layer": d.layer, "tensor": d.tensor,
            "index": [d.index.0, d.index.1], "manual": d.manual, "torch": d.torch,
        })),
        "non_finite": { "manual": o.non_finite.manual, "torch": o.non_finite.torch },
        "final_loss": { "manual": o.final_loss.0, "torch": o.final_loss.1 },
        "accuracy": o.accuracy.map(|(m, t)| json!({ "manual": m, "torch": t })),
        "per_layer": per_layer,
    })
}

/// Writes `report.json` atomically.
pub fn write_report(path: &Path, run: &RunConfig, config: &serde_json::Value, o: &Outcome) -> Result<()> {
    let mut text = serde_json::to_string_pretty(&report_json(run, config, o)).context("report.json")?;
    text.push('\n');
    fsio::write_atomic(path, text.as_bytes())
}

/// Writes `metrics.csv` atomically: one row per step: the three losses; for every lockstep tensor
/// (`loss`, then per layer `dW{k}`, `db{k}`, `W{k}`, `b{k}`) the max absolute error, the normwise
/// relative error and whether it passed (1 or 0); then per layer the drift, ‖∂E/∂W^k‖, the
/// update ratio and the % saturated.
pub fn write_metrics(path: &Path, o: &Outcome) -> Result<()> {
    let depth = o.records.first().map_or(0, |r| r.layers.len());
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> =
        ["step", "manual_loss", "torch_loss", "torch_free_loss"].map(String::from).to_vec();
    for t in o.records.first().map_or(&[][..], |r| &r.tensors[..]) {
        for f in ["abs_err", "rel_err", "ok"] {
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
            row.extend([fmt(t.max_abs), fmt(t.rel), u8::from(t.pass).to_string()]);
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

/// The verdict line.
pub fn verdict(run: &RunConfig, o: &Outcome) -> String {
    if o.equivalent {
        let blew_up = match o.non_finite.manual {
            Some(t) => format!("; both went non-finite at step {t}, where the run stopped"),
            None => String::new(),
        };
        format!(
            "EQUIVALENT: manual backprop and libtorch agree at every one of {} steps (rtol {:e}, atol {:e}, {}){blew_up}",
            o.steps_run,
            run.tol.rtol,
            run.tol.atol,
            run.spec.dtype()
        )
    } else if let Some(d) = &o.first_divergence {
        format!("NOT EQUIVALENT: first divergence at {d}")
    } else {
        format!("NOT EQUIVALENT: non-finite values at different steps ({})", o.non_finite)
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
        "network {} ({}), {}, bias {}, loss {}, init {}, lr {}, batch {}, dataset {}",
        widths.join("-"),
        spec.activations().iter().map(|a| a.name()).collect::<Vec<_>>().join(","),
        spec.dtype(),
        if spec.bias() { "on" } else { "off" },
        spec.loss(),
        spec.init(),
        run.lr,
        if run.batch_size == 0 { "full".to_string() } else { run.batch_size.to_string() },
        dataset
    );
    let _ = writeln!(s, "\nlargest errors over {} steps (lockstep: one step from the same weights; drift: two free trajectories)", o.steps_run);
    let _ = writeln!(
        s,
        "{:>5}  {:>10}  {:>12}  {:>12}  {:>12}  {:>12}",
        "layer", "shape", "dW,db abs", "dW,db rel", "W,b rel", "drift rel"
    );
    for (k, m) in per_layer_max(o, spec.depth()).iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>5}  {:>10}  {:>12.3e}  {:>12.3e}  {:>12.3e}  {:>12.3e}",
            k + 1,
            format!("{}x{}", spec.widths()[k], spec.widths()[k + 1]),
            m[0],
            m[1],
            m[3],
            m[4]
        );
    }
    let _ = writeln!(s, "{:>5}  {:>10}  {:>12.3e}  {:>12.3e}", "loss", "", o.max_abs.loss, o.max_rel.loss);
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
        "final loss on the whole dataset: manual {:.6e}, torch {:.6e}",
        o.final_loss.0, o.final_loss.1
    );
    if let Some((m, t)) = o.accuracy {
        let _ = writeln!(s, "accuracy: manual {:.1}%, torch {:.1}%", 100.0 * m, 100.0 * t);
    }
    if o.non_finite.manual.is_some() || o.non_finite.torch.is_some() {
        let _ = writeln!(s, "non-finite values: {} (the run stopped there)", o.non_finite);
    }
    s
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
