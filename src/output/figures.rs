//! What `compare` draws: the PNGs of a run and the static `index.html` that shows them.

use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::fsio;
use crate::harness::check::{epsilon, Divergence};
use crate::harness::saturation::value_range;
pub use crate::harness::saturation::{saturated_intervals, saturation_rule};
use crate::harness::{Judge, LayerStep, Outcome, RunConfig, Verdict};
use crate::model::activation::Activation;
use crate::plot::{histogram_grid, line_chart, line_grid, HistCell, HistRow, Panel, Series};

/// Mean, standard deviation and share (%) saturated of a layer's activations (`units` columns).
pub fn summary(phi: Activation, z: &[f64], units: usize, saturation: f64) -> (f64, f64, f64) {
    let finite: Vec<f64> = z.iter().copied().filter(|v| v.is_finite()).collect();
    let n = finite.len().max(1) as f64;
    let mean = finite.iter().sum::<f64>() / n;
    let var = finite.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt(), crate::harness::saturated_pct(phi, z, units, saturation))
}

fn series<'a>(per_layer: &'a [Vec<(f64, f64)>], what: &str) -> Vec<Series<'a>> {
    per_layer.iter().enumerate().map(|(k, p)| Series::new(format!("{what}{}", k + 1), p)).collect()
}

/// Relative difference at or below which two curves draw as one line.
pub const COINCIDE: f64 = 1e-2;

/// For each curve of `per_layer`, the (0-based) others it coincides with: at every x where both
/// are finite they differ by at most [`COINCIDE`] of the larger magnitude (at least one such x).
pub fn coincident(per_layer: &[Vec<(f64, f64)>]) -> Vec<Vec<usize>> {
    let same = |a: &[(f64, f64)], b: &[(f64, f64)]| {
        let mut any = false;
        for (&(_, u), &(_, v)) in a.iter().zip(b) {
            if u.is_finite() && v.is_finite() {
                any = true;
                if (u - v).abs() > COINCIDE * u.abs().max(v.abs()) {
                    return false;
                }
            }
        }
        any
    };
    (0..per_layer.len())
        .map(|i| (0..per_layer.len()).filter(|&j| j != i && same(&per_layer[i], &per_layer[j])).collect())
        .collect()
}

/// One series per layer, told apart where they overlap: layer 1 solid (and drawn wider), layer 2
/// dashed, layer 3 with markers, and so on in turn; a label names the layers it coincides with.
pub fn distinct_series<'a>(per_layer: &'a [Vec<(f64, f64)>], what: &str) -> Vec<Series<'a>> {
    let with = coincident(per_layer);
    per_layer
        .iter()
        .zip(&with)
        .enumerate()
        .map(|(k, (p, w))| {
            let mut label = format!("{what}{}", k + 1);
            if !w.is_empty() {
                let others: Vec<String> = w.iter().map(|j| (j + 1).to_string()).collect();
                let _ = write!(label, " (on layer {}'s curve)", others.join(", "));
            }
            match k % 3 {
                0 => Series::new(label, p),
                1 => Series::dashed(label, p),
                _ => Series::new(label, p).with_markers(),
            }
        })
        .collect()
}

fn per_layer(o: &Outcome, depth: usize, f: impl Fn(&LayerStep) -> f64) -> Vec<Vec<(f64, f64)>> {
    (0..depth).map(|k| o.records.iter().map(|r| (r.step as f64, f(&r.layers[k]))).collect()).collect()
}

/// The tolerance `judge` applies, as a criterion (not a claim that the run met it).
fn judge_words(judge: &Judge) -> String {
    match judge {
        Judge::RoundOff { safety } => format!("tolerance: each entry's round-off bound × {safety}"),
        Judge::Fixed { rtol, atol } => format!("tolerance: rtol {rtol:e}, atol {atol:e}"),
    }
}

/// The title of `equivalence.png`, generated from the run's verdict: `who` (`Manual` or `The
/// trace`) against libtorch in `dtype`, the verdict in capitals with where it was reached (the
/// first failing step and layer, or the step at which both went non-finite), and the largest error
/// ÷ tolerance of the compared steps.
pub fn equivalence_title(
    who: &str,
    dtype: &str,
    judge: &Judge,
    verdict: Verdict,
    divergence: Option<&Divergence>,
    steps_run: usize,
    largest: f64,
) -> String {
    let verdict = match verdict {
        Verdict::Equivalent => {
            format!("EQUIVALENT at all {steps_run} steps, largest error {largest:.3} of its tolerance")
        }
        Verdict::NotEquivalent => match divergence {
            Some(d) => format!(
                "NOT EQUIVALENT at step {}, layer {} ({}), {}",
                d.step,
                d.layer,
                if d.layer == 0 { d.tensor.to_string() } else { format!("{}{}", d.tensor, d.layer) },
                if d.ratio.is_finite() {
                    format!("{:.3e} × its tolerance", d.ratio)
                } else {
                    "non-finite on one side".to_string()
                }
            ),
            None => "NOT EQUIVALENT: non-finite values at different steps".to_string(),
        },
        Verdict::AgreeUntilNonFinite { step } => format!(
            "AGREE UNTIL NON-FINITE at step {step}, largest error before it {largest:.3} of its tolerance"
        ),
    };
    format!("{who} vs libtorch, {dtype}: {verdict} ({})", judge_words(judge))
}

/// Writes loss.png, equivalence.png, saturation_hist.png, saturation.png and grad_norms.png
/// under `out`; returns their paths.
pub fn write_figures(out: &Path, run: &RunConfig, o: &Outcome) -> Result<Vec<PathBuf>> {
    let mut written = vec![loss_figure(out, run, o)?, equivalence_figure(out, run, o)?];
    written.extend(saturation_hist_figure(out, run, o)?);
    written.push(saturation_figure(out, run, o)?);
    written.push(grad_norms_figure(out, run, o)?);
    Ok(written)
}

/// loss.png: the two losses per step, and the lockstep loss difference against its tolerance.
fn loss_figure(out: &Path, run: &RunConfig, o: &Outcome) -> Result<PathBuf> {
    // A checked trace has no free libtorch trajectory: its loss is libtorch's at the trace's weights.
    let replay = o.checked.is_some();
    let manual: Vec<(f64, f64)> = o.records.iter().map(|r| (r.step as f64, r.manual_loss)).collect();
    let torch: Vec<(f64, f64)> = o
        .records
        .iter()
        .map(|r| (r.step as f64, if replay { r.torch_loss } else { r.torch_free_loss }))
        .collect();
    let diff: Vec<(f64, f64)> = o.records.iter().map(|r| (r.step as f64, r.loss_abs)).collect();
    let bound: Vec<(f64, f64)> = o.records.iter().map(|r| (r.step as f64, r.loss_bound)).collect();
    let path = out.join("loss.png");
    line_grid(
        &path,
        &if replay {
            "Loss per recorded step: the trace's and libtorch's at the trace's weights".to_string()
        } else {
            format!(
                "Loss per step ({} batch): manual backprop and libtorch, each on its own trajectory",
                run.batch_size
            )
        },
        &[
            Panel {
                title: "loss E of the step's batch (libtorch dashed over the manual line)".into(),
                x_label: "step t".into(),
                y_label: "loss".into(),
                series: vec![
                    Series::new(if replay { "the trace" } else { "manual" }, &manual),
                    Series::dashed(if replay { "libtorch (same weights)" } else { "libtorch (independent)" }, &torch),
                ],
                log_y: true,
                hlines: vec![],
            },
            Panel {
                title: "lockstep: |E_manual − E_torch| at the same weights against its tolerance (0 is not drawn)".into(),
                x_label: "step t".into(),
                y_label: "absolute difference".into(),
                series: vec![Series::new("|ΔE|", &diff), Series::dashed("tolerance", &bound)],
                log_y: true,
                hlines: vec![],
            },
        ],
    )?;
    Ok(path)
}

/// equivalence.png: per layer, the lockstep errors ÷ tolerance and (for a free run) the drift;
/// the title carries the verdict.
fn equivalence_figure(out: &Path, run: &RunConfig, o: &Outcome) -> Result<PathBuf> {
    let spec = &run.spec;
    let depth = spec.depth();
    let eps = epsilon(spec.dtype());
    let replay = o.checked.is_some();
    let grad = per_layer(o, depth, |l| l.grad_ratio);
    let weight = per_layer(o, depth, |l| l.weight_ratio);
    let drift = per_layer(o, depth, |l| l.drift_rel);
    let edge = vec![("tolerance (1: the edge)".to_string(), 1.0)];
    let path = out.join("equivalence.png");
    let mut panels = vec![
        Panel {
            title: "lockstep: ∂E/∂W^k, ∂E/∂b^k at the same weights (largest |error| ÷ tolerance)".into(),
            x_label: "step t".into(),
            y_label: "error ÷ tolerance".into(),
            series: series(&grad, "dW,db "),
            log_y: true,
            hlines: edge.clone(),
        },
        Panel {
            title: "lockstep: W^k, b^k after the update (steps that agree exactly, ratio 0, are not drawn)"
                .into(),
            x_label: "step t".into(),
            y_label: "error ÷ tolerance".into(),
            series: series(&weight, "W,b "),
            log_y: true,
            hlines: edge,
        },
    ];
    if !replay {
        panels.push(Panel {
            title: "drift: W^k of the two independent trajectories (normwise relative)".into(),
            x_label: "step t".into(),
            y_label: "relative difference".into(),
            series: series(&drift, "W"),
            log_y: true,
            hlines: vec![
                (format!("drift tolerance {:e}", run.drift_tol), run.drift_tol),
                (format!("machine ε {eps:.1e}"), eps),
            ],
        });
    }
    let largest = o.max_ratio.loss.max(o.max_ratio.grad).max(o.max_ratio.weight);
    line_grid(
        &path,
        &equivalence_title(
            if replay { "The trace" } else { "Manual" },
            &spec.dtype().to_string(),
            &run.judge,
            o.verdict,
            o.first_divergence.as_ref(),
            o.steps_run,
            largest,
        ),
        &panels,
    )?;
    Ok(path)
}

/// saturation_hist.png: histograms of each hidden layer's activations at the snapshots, the
/// saturated region shaded; `None` (nothing drawn) without snapshots.
fn saturation_hist_figure(out: &Path, run: &RunConfig, o: &Outcome) -> Result<Option<PathBuf>> {
    let spec = &run.spec;
    let depth = spec.depth();
    // Hidden layers only: the output layer's values are the predictions.
    let hidden: Vec<usize> = (1..depth).collect();
    let captions: Vec<Vec<String>> = hidden
        .iter()
        .map(|&k| {
            let phi = spec.activations()[k - 1];
            o.snapshots
                .iter()
                .map(|s| {
                    let (mean, std, sat) = summary(phi, &s.z[k - 1], spec.widths()[k], run.saturation);
                    format!("step {}: mean {mean:.2}, std {std:.2}, {sat:.1}% sat.", s.step)
                })
                .collect()
        })
        .collect();
    let rows: Vec<HistRow> = hidden
        .iter()
        .zip(&captions)
        .map(|(&k, caps)| {
            let phi = spec.activations()[k - 1];
            HistRow {
                title: format!(
                    "hidden layer {k} ({phi}; saturated{}: {})",
                    if saturated_intervals(phi, run.saturation).is_empty() { "" } else { ", shaded" },
                    saturation_rule(phi, run.saturation)
                ),
                range: value_range(phi),
                x_label: format!("z^{k} = {phi}(a^{k}) of a unit on a sample"),
                marked: saturated_intervals(phi, run.saturation),
                cells: o
                    .snapshots
                    .iter()
                    .zip(caps)
                    .map(|(s, c)| HistCell { title: c.clone(), values: &s.z[k - 1] })
                    .collect(),
            }
        })
        .collect();
    if o.snapshots.is_empty() {
        return Ok(None);
    }
    let path = out.join("saturation_hist.png");
    histogram_grid(
        &path,
        "Activations z^k of the whole dataset at moments of training (count: units × samples per bin)",
        &rows,
    )?;
    Ok(Some(path))
}

/// saturation.png: % saturated per hidden layer per step.
fn saturation_figure(out: &Path, run: &RunConfig, o: &Outcome) -> Result<PathBuf> {
    let spec = &run.spec;
    let depth = spec.depth();
    let hidden: Vec<usize> = (1..depth).collect();
    let sat = per_layer(o, depth, |l| l.saturated_pct);
    let path = out.join("saturation.png");
    let sat_series: Vec<Series> = hidden
        .iter()
        .map(|&k| Series::new(format!("layer {k} ({})", spec.activations()[k - 1]), &sat[k - 1]))
        .collect();
    line_chart(
        &path,
        "Saturated units per hidden layer (on each step's batch)",
        "step t",
        "% saturated",
        &sat_series,
        false,
        &[],
    )?;
    Ok(path)
}

/// grad_norms.png: ‖∂E/∂W^k‖ and the update-to-weight ratio per layer per step.
fn grad_norms_figure(out: &Path, run: &RunConfig, o: &Outcome) -> Result<PathBuf> {
    let depth = run.spec.depth();
    let norms = per_layer(o, depth, |l| l.grad_norm);
    let ratios = per_layer(o, depth, |l| l.update_ratio);
    let path = out.join("grad_norms.png");
    line_grid(
        &path,
        "Gradients and updates per layer (manual; solid, dashed and marked lines tell the layers apart)",
        &[
            Panel {
                title: "‖∂E/∂W^k‖ (Frobenius)".into(),
                x_label: "step t".into(),
                y_label: "gradient norm".into(),
                series: distinct_series(&norms, "layer "),
                log_y: true,
                hlines: vec![],
            },
            Panel {
                title: "update-to-weight ratio ‖ΔW^k‖ / ‖W^k‖".into(),
                x_label: "step t".into(),
                y_label: "ratio".into(),
                series: distinct_series(&ratios, "layer "),
                log_y: true,
                hlines: vec![("1e-3 (a common rule of thumb)".into(), 1e-3)],
            },
        ],
    )?;
    Ok(path)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The caption of a PNG that `compare`, `check` or `study` writes, by file name (the README's
/// captions); `None` for a name it does not know.
pub fn caption(file: &str) -> Option<&'static str> {
    Some(match file.strip_suffix(".png")? {
        "loss" => "Loss per step, manual and the independent libtorch model (dashed, over it); below, the lockstep |E_manual − E_torch| against its round-off tolerance.",
        "equivalence" => "Per layer, the lockstep error of ∂E/∂W^k, ∂E/∂b^k and of the updated W^k, b^k as a fraction of its round-off bound (1 is the edge), and the weight drift; the title carries the verdict.",
        "saturation_hist" => "Histograms of each hidden layer's activations at the start, ¼, ½ and the end of training, with mean, std and % saturated; the saturated region is shaded.",
        "saturation" => "% saturated per hidden layer per step.",
        "grad_norms" => "‖∂E/∂W^k‖ per layer per step, and the update-to-weight ratio ‖ΔW^k‖/‖W^k‖.",
        "study_loss" => "Loss per variant over training, the steps each takes to the target in the legend; a curve that lies on an earlier one for at least a fifth of the steps is drawn dashed with markers, its legend naming that curve and the share of the steps.",
        "study_saturation_map" => "Saturation maps at initialisation: units (across) × samples (down) per hidden layer, white where φ' ≈ 0.",
        "study_activations" => "Histograms of the activations z^k per hidden layer at initialisation, with mean, std and % saturated.",
        "study_dz" => "Histograms of ∂E/∂z^k, the signal that reaches each hidden layer, at initialisation.",
        "study_dw" => "Histograms of ∂E/∂W^k per hidden layer at initialisation, with the grad:data ratio std(∂E/∂W^k) / std(W^k).",
        "study_update_ratio" => "Update-to-weight ratio ‖ΔW^k‖/‖W^k‖ per hidden layer over training, on a shared step axis.",
        "study_saturation" => "Saturated share per hidden layer over training.",
        "study_grad_norms" => "Gradient norm ‖∂E/∂W^k‖ per layer at the start and at the end of training.",
        _ => return None,
    })
}

/// Writes `index.html`: a heading, the verdict, the table (wrapped, never scrolled sideways) and
/// every image under its caption ([`caption`]; the file name for an unknown one); no scripts, no
/// network.
pub fn write_index(out: &Path, verdict: &str, table: &str, images: &[PathBuf]) -> Result<PathBuf> {
    write_index_titled(out, "backprop vs libtorch", verdict, table, images)
}

/// [`write_index`] under the heading `heading`.
pub fn write_index_titled(
    out: &Path,
    heading: &str,
    verdict: &str,
    table: &str,
    images: &[PathBuf],
) -> Result<PathBuf> {
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1250px;margin:2em auto;padding:0 1em}}\
         pre{{background:#f4f4f4;padding:1em;white-space:pre-wrap;overflow-wrap:anywhere}}\
         figure{{margin:2em 0}}figcaption{{margin-bottom:.5em}}img{{max-width:100%;border:1px solid #ddd}}\
         </style></head><body>\n<h1>{}</h1>\n",
        esc(heading),
        esc(heading)
    );
    let _ = writeln!(html, "<p><strong>{}</strong></p>\n<pre>{}</pre>", esc(verdict), esc(table));
    for img in images {
        if let Some(name) = img.file_name().and_then(|n| n.to_str()) {
            let text = caption(name).map_or_else(|| name.to_string(), str::to_string);
            let _ = writeln!(
                html,
                "<figure><figcaption>{} <code>{}</code></figcaption>\n<img src=\"{}\" alt=\"{}\"></figure>",
                esc(&text),
                esc(name),
                esc(name),
                esc(&text)
            );
        }
    }
    html.push_str("</body></html>\n");
    let path = out.join("index.html");
    fsio::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn divergence(step: usize, layer: usize, ratio: f64) -> Divergence {
        Divergence {
            step,
            layer,
            tensor: "dW",
            index: (0, 1),
            manual: 1.0,
            torch: 1.5,
            bound: 0.5 / ratio,
            ratio,
            judgement: "bound",
            witness: None,
            witness_ratio: None,
            witness_distances: None,
        }
    }

    #[test]
    fn coinciding_curves_are_found_and_named_in_the_legend() {
        let a: Vec<(f64, f64)> = (0..10).map(|t| (f64::from(t), 1.0 + f64::from(t))).collect();
        let b: Vec<(f64, f64)> = a.iter().map(|&(t, y)| (t, y * 1.001)).collect();
        let c: Vec<(f64, f64)> = a.iter().map(|&(t, y)| (t, if t == 5.0 { y * 2.0 } else { y })).collect();
        let layers = vec![a, b, c];
        assert_eq!(coincident(&layers), vec![vec![1], vec![0], vec![]]);
        let s = distinct_series(&layers, "layer ");
        assert_eq!(s[0].label, "layer 1 (on layer 2's curve)");
        assert_eq!(s[2].label, "layer 3");
        assert!(!s[0].dashed && s[1].dashed && s[2].markers, "three layers, three styles");
        // Nothing to compare: no coincidence.
        let nan = vec![vec![(0.0, f64::NAN)], vec![(0.0, f64::NAN)]];
        assert_eq!(coincident(&nan), vec![Vec::<usize>::new(), vec![]]);
    }

    #[test]
    fn the_shaded_intervals_are_where_the_run_counts_a_unit_saturated() {
        for phi in [Activation::Tanh, Activation::Sigmoid] {
            let marked = saturated_intervals(phi, 0.95);
            let (lo, hi) = value_range(phi).unwrap();
            for i in 0..=1000 {
                let z = lo + (hi - lo) * f64::from(i) / 1000.0;
                let inside = marked.iter().any(|&(a, b)| a < z && z < b);
                // The same rule as the captions' share saturated.
                let saturated = crate::harness::saturated_pct(phi, &[z], 1, 0.95) == 100.0;
                // The interval ends themselves are the threshold, on either side by convention.
                if marked.iter().all(|&(a, b)| (z - a).abs() > 1e-12 && (z - b).abs() > 1e-12) {
                    assert_eq!(inside, saturated, "{phi} at z = {z}");
                }
            }
        }
        assert!(saturated_intervals(Activation::Relu, 0.95).is_empty());
    }

    #[test]
    fn the_equivalence_title_carries_a_passing_verdict() {
        let t =
            equivalence_title("Manual", "f64", &Judge::round_off(), Verdict::Equivalent, None, 200, 0.125);
        assert!(t.contains("EQUIVALENT at all 200 steps"), "{t}");
        assert!(t.contains("0.125 of its tolerance"), "{t}");
        assert!(!t.contains("NOT"), "{t}");
    }

    #[test]
    fn the_equivalence_title_carries_a_failing_verdict_and_where() {
        let d = divergence(17, 2, 40.0);
        let t = equivalence_title(
            "Manual",
            "f32",
            &Judge::round_off(),
            Verdict::NotEquivalent,
            Some(&d),
            200,
            40.0,
        );
        assert!(t.contains("NOT EQUIVALENT at step 17, layer 2 (dW2)"), "{t}");
        assert!(t.contains("4.000e1 × its tolerance"), "{t}");
        // The tolerance is named as a criterion, never as a claim the run met.
        assert!(!t.contains("within"), "{t}");
        let t = equivalence_title("Manual", "f64", &Judge::round_off(), Verdict::NotEquivalent, None, 9, 1.0);
        assert!(t.starts_with("Manual vs libtorch, f64: NOT EQUIVALENT"), "{t}");
    }

    #[test]
    fn the_equivalence_title_carries_the_non_finite_step() {
        let t = equivalence_title(
            "The trace",
            "f64",
            &Judge::round_off(),
            Verdict::AgreeUntilNonFinite { step: 31 },
            None,
            31,
            0.5,
        );
        assert!(t.contains("AGREE UNTIL NON-FINITE at step 31"), "{t}");
        assert!(!t.contains(" EQUIVALENT"), "{t}");
    }
}
