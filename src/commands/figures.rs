//! What `compare` draws: the PNGs of a run and the static `index.html` that shows them.

use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::fsio;
use crate::harness::check::epsilon;
use crate::harness::{LayerStep, Outcome, RunConfig};
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

/// What "saturated" means for φ, for captions.
pub fn saturation_rule(phi: Activation, s: f64) -> String {
    match phi {
        Activation::Tanh => format!("|z| > {s}"),
        Activation::Sigmoid => format!("z < {:.2} or z > {s}", 1.0 - s),
        Activation::Relu => "dead units, z = 0 for every sample".to_string(),
        _ => "never".to_string(),
    }
}

/// The natural range of φ's values, for histogram axes.
fn value_range(phi: Activation) -> Option<(f64, f64)> {
    match phi {
        Activation::Tanh => Some((-1.0, 1.0)),
        Activation::Sigmoid => Some((0.0, 1.0)),
        _ => None,
    }
}

fn series<'a>(per_layer: &'a [Vec<(f64, f64)>], what: &str) -> Vec<Series<'a>> {
    per_layer.iter().enumerate().map(|(k, p)| Series::new(format!("{what}{}", k + 1), p)).collect()
}

fn per_layer(o: &Outcome, depth: usize, f: impl Fn(&LayerStep) -> f64) -> Vec<Vec<(f64, f64)>> {
    (0..depth).map(|k| o.records.iter().map(|r| (r.step as f64, f(&r.layers[k]))).collect()).collect()
}

/// Writes loss.png, equivalence.png, saturation_hist.png, saturation.png and grad_norms.png
/// under `out`; returns their paths.
pub fn write_figures(out: &Path, run: &RunConfig, o: &Outcome) -> Result<Vec<PathBuf>> {
    let spec = &run.spec;
    let depth = spec.depth();
    let eps = epsilon(spec.dtype());
    let mut written = Vec::new();

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
    written.push(path);

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
    line_grid(
        &path,
        &format!(
            "{} vs libtorch, {}: error as a fraction of its tolerance ({})",
            if replay { "The trace" } else { "Manual" },
            spec.dtype(),
            run.judge
        ),
        &panels,
    )?;
    written.push(path);

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
                    "hidden layer {k} ({phi}; saturated: {})",
                    saturation_rule(phi, run.saturation)
                ),
                range: value_range(phi),
                cells: o
                    .snapshots
                    .iter()
                    .zip(caps)
                    .map(|(s, c)| HistCell { title: c.clone(), values: &s.z[k - 1] })
                    .collect(),
            }
        })
        .collect();
    if !o.snapshots.is_empty() {
        let path = out.join("saturation_hist.png");
        histogram_grid(&path, "Activations z^k of the whole dataset at moments of training", &rows)?;
        written.push(path);
    }

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
    written.push(path);

    let norms = per_layer(o, depth, |l| l.grad_norm);
    let ratios = per_layer(o, depth, |l| l.update_ratio);
    let path = out.join("grad_norms.png");
    line_grid(
        &path,
        "Gradients and updates per layer (manual)",
        &[
            Panel {
                title: "‖∂E/∂W^k‖ (Frobenius)".into(),
                x_label: "step t".into(),
                y_label: "gradient norm".into(),
                series: series(&norms, "layer "),
                log_y: true,
                hlines: vec![],
            },
            Panel {
                title: "update-to-weight ratio ‖ΔW^k‖ / ‖W^k‖".into(),
                x_label: "step t".into(),
                y_label: "ratio".into(),
                series: series(&ratios, "layer "),
                log_y: true,
                hlines: vec![("1e-3 (a common rule of thumb)".into(), 1e-3)],
            },
        ],
    )?;
    written.push(path);
    Ok(written)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Writes `index.html`: the verdict, the per-layer table and every image; no scripts, no network.
pub fn write_index(out: &Path, verdict: &str, table: &str, images: &[PathBuf]) -> Result<PathBuf> {
    let mut html = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>backprop</title>\n\
         <style>body{font-family:sans-serif;max-width:1250px;margin:2em auto;padding:0 1em}\
         pre{background:#f4f4f4;padding:1em;overflow-x:auto}img{max-width:100%;border:1px solid #ddd;margin:1em 0}\
         </style></head><body>\n<h1>backprop vs libtorch</h1>\n",
    );
    let _ = writeln!(html, "<p><strong>{}</strong></p>\n<pre>{}</pre>", esc(verdict), esc(table));
    for img in images {
        if let Some(name) = img.file_name().and_then(|n| n.to_str()) {
            let _ =
                writeln!(html, "<h2>{}</h2>\n<img src=\"{}\" alt=\"{}\">", esc(name), esc(name), esc(name));
        }
    }
    html.push_str("</body></html>\n");
    let path = out.join("index.html");
    fsio::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}
