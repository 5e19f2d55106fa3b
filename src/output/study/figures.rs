//! The study's eight figures: the loss per variant, the saturated share, the gradient norms, the
//! histograms of z^k, ∂E/∂z^k and ∂E/∂W^k, the update ratios and the saturation maps; each titled
//! from the numbers it shows.

use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::harness::saturation::{flat, saturation_rule, value_range};
use crate::harness::study::{mean, slowdown, std_dev, widths, Diagnostics, Role, StudyConfig, VariantResult};
use crate::kernels::matrix::Matrix;
use crate::model::activation::Activation;
use crate::output::figures;
use crate::plot::{
    histogram_grid, line_chart, line_grid_shared, map_grid, HistCell, HistRow, MapCell, MapRow, Panel, Series,
};

use super::{arch, loss_words, slowdown_text, steps_text};

/// Draws the figures under `out`, in the order study.md and index.html show them; returns their
/// paths.
pub fn write_figures(out: &Path, cfg: &StudyConfig, results: &[VariantResult]) -> Result<Vec<PathBuf>> {
    let figures = [
        loss_figure,
        saturation_figure,
        grad_norms_figure,
        activations_figure,
        dz_figure,
        dw_figure,
        update_ratio_figure,
        saturation_map_figure,
    ];
    figures.iter().map(|f| f(out, cfg, results)).collect()
}

/// The variants whose histograms, maps and update ratios are drawn (the figures stay legible).
const DRAWN: [&str; 6] = [
    "tanh, N(0,1) (saturated)",
    "tanh, Xavier",
    "tanh, 5/3 / √fan-in",
    "tanh, torch init",
    "relu, He",
    "sigmoid, torch init",
];

/// The fraction of the output layer's gradient norm below which the study calls layer 1's
/// gradient vanished: a hundredfold, beyond what the input layer's smaller fan-in alone gives (the
/// He-initialised relu's ‖∂E/∂W^1‖ is about 0.1 of the output layer's on the default 4-input
/// network, and nothing vanishes there).
pub const VANISHED: f64 = 0.01;

/// The title of `study_grad_norms.png`, from the numbers: which variants' ‖∂E/∂W^1‖ at step 0
/// (`norms`: per variant, ‖∂E/∂W^k‖ for k = 1..L) falls below `fraction` of ‖∂E/∂W^L‖, each with
/// its ratio, or that none does.
pub fn grad_norms_title(norms: &[(&str, Vec<f64>)], fraction: f64) -> String {
    let vanished: Vec<String> = norms
        .iter()
        .filter_map(|(name, n)| {
            let (first, top) = (*n.first()?, *n.last()?);
            let ratio = first / top;
            (n.len() > 1 && top > 0.0 && ratio < fraction).then(|| format!("{name} ({ratio:.1e})"))
        })
        .collect();
    let rule = format!("‖∂E/∂W^1‖ below {fraction} × the output layer's at step 0");
    if vanished.is_empty() {
        format!("Gradient norm per layer: no variant's gradient vanishes ({rule} for none)")
    } else {
        format!("Gradient norm per layer: vanishing gradient ({rule}) in {}", vanished.join(", "))
    }
}

fn drawn(results: &[VariantResult]) -> Vec<&VariantResult> {
    DRAWN.iter().filter_map(|n| results.iter().find(|r| r.variant.name == *n)).collect()
}

/// The share of the steps at which two loss curves must agree within [`figures::COINCIDE`] for
/// `study_loss.png` to draw the later one dashed, with markers.
pub const OVERLAP: f64 = 0.2;

/// For each curve, the others it lies on (within [`figures::COINCIDE`] of the larger value) at
/// `min_share` or more of the x values where both are finite, each with that share.
pub fn overlapping(curves: &[Vec<(f64, f64)>], min_share: f64) -> Vec<Vec<(usize, f64)>> {
    let share = |a: &[(f64, f64)], b: &[(f64, f64)]| {
        let (mut both, mut same) = (0usize, 0usize);
        for (&(_, u), &(_, v)) in a.iter().zip(b) {
            if u.is_finite() && v.is_finite() {
                both += 1;
                if (u - v).abs() <= figures::COINCIDE * u.abs().max(v.abs()) {
                    same += 1;
                }
            }
        }
        if both == 0 {
            0.0
        } else {
            same as f64 / both as f64
        }
    };
    (0..curves.len())
        .map(|i| {
            (0..curves.len())
                .filter(|&j| j != i)
                .map(|j| (j, share(&curves[i], &curves[j])))
                .filter(|&(_, p)| p >= min_share)
                .collect()
        })
        .collect()
}

/// The drawn variants with the least and the most of `key`, each as (value, name).
fn extremes(
    shown: &[&VariantResult],
    key: impl Fn(&VariantResult) -> f64,
) -> Option<[(f64, &'static str); 2]> {
    let lo = shown.iter().min_by(|a, b| key(a).total_cmp(&key(b)))?;
    let hi = shown.iter().max_by(|a, b| key(a).total_cmp(&key(b)))?;
    Some([lo, hi].map(|r| (key(r), r.variant.name)))
}

/// A histogram figure's title: `what`, then the drawn variant whose layer-1 values spread least
/// (standard deviation) against the one whose spread most.
fn spread_title(
    what: &str,
    shown: &[&VariantResult],
    of: &dyn Fn(&Diagnostics) -> &Vec<Matrix<f64>>,
) -> String {
    let sd = |r: &VariantResult| of(&r.start).first().map_or(f64::NAN, |m| std_dev(m.as_slice()));
    match extremes(shown, sd) {
        Some([(lo, lo_name), (hi, hi_name)]) => {
            format!("{what}: layer 1's std from {lo:.1e} ({lo_name}) to {hi:.1e} ({hi_name})")
        }
        None => what.to_string(),
    }
}

/// One series per variant, `labels[i]` for `curves[i]`: a curve lying on an earlier one for
/// [`OVERLAP`] of its points or more is dashed with markers, over it, and its label names whose
/// curve and for what share; the others are dashed when `dashed(i)`.
fn variant_series<'a>(
    results: &[VariantResult],
    labels: Vec<String>,
    curves: &'a [Vec<(f64, f64)>],
    dashed: impl Fn(usize) -> bool,
) -> Vec<Series<'a>> {
    let overlaps = overlapping(curves, OVERLAP);
    labels
        .into_iter()
        .zip(curves)
        .zip(&overlaps)
        .enumerate()
        .map(|(i, ((mut label, c), over))| {
            let earlier: Vec<&(usize, f64)> = over.iter().filter(|&&(j, _)| j < i).collect();
            if !earlier.is_empty() {
                let names: Vec<&str> = earlier.iter().map(|&&(j, _)| results[j].variant.phi.name()).collect();
                let share = earlier.iter().map(|&&(_, p)| p).fold(0.0, f64::max);
                // Short, for the legend: the caption says it is the share of the points.
                let _ = write!(label, " (dashed: on {}, {:.0}%)", names.join(", "), 100.0 * share);
                Series::dashed(label, c).with_markers()
            } else if dashed(i) {
                Series::dashed(label, c)
            } else {
                Series::new(label, c)
            }
        })
        .collect()
}

/// One histogram row per drawn variant: `what` of its initial diagnostics, one cell per hidden
/// layer over `range(φ)`, each captioned by `caption(variant, k)`.
fn hist_rows<'a>(
    shown: &[&'a VariantResult],
    x_label: &str,
    what: &dyn Fn(&Diagnostics) -> &Vec<Matrix<f64>>,
    range: &dyn Fn(Activation) -> Option<(f64, f64)>,
    caption: &dyn Fn(&VariantResult, usize) -> String,
) -> Vec<HistRow<'a>> {
    shown
        .iter()
        .map(|r| HistRow {
            title: r.variant.name.to_string(),
            range: range(r.variant.phi),
            cells: what(&r.start)
                .iter()
                .enumerate()
                .map(|(k, m)| HistCell { title: caption(r, k + 1), values: m.as_slice() })
                .collect(),
            x_label: x_label.to_string(),
            marked: vec![],
        })
        .collect()
}

/// study_loss.png: the loss of every variant, the steps each takes to the target in the legend.
fn loss_figure(out: &Path, cfg: &StudyConfig, results: &[VariantResult]) -> Result<PathBuf> {
    let slow = slowdown(results, cfg.target);
    let losses: Vec<Vec<(f64, f64)>> = results
        .iter()
        .map(|r| r.outcome.records.iter().map(|x| (x.step as f64, x.manual_loss)).collect())
        .collect();
    // The references dashed, over the rest.
    let series = variant_series(
        results,
        results.iter().map(|r| format!("{}: {}", r.variant.name, steps_text(r, cfg.target))).collect(),
        &losses,
        |i| results[i].variant.role == Role::Reference,
    );
    let path = out.join("study_loss.png");
    let title =
        format!("Loss of {} on {}, η = {} for all: {}", arch(cfg), cfg.dataset, cfg.lr, slowdown_text(&slow));
    let target_line =
        vec![(format!("target E = {:.0e} (steps to it in the legend)", cfg.target), cfg.target)];
    line_chart(&path, &title, "step t", loss_words(cfg.loss), &series, true, &target_line)?;
    Ok(path)
}

/// study_saturation.png: the saturated share per hidden layer over training, one panel per
/// variant whose activation saturates.
fn saturation_figure(out: &Path, cfg: &StudyConfig, results: &[VariantResult]) -> Result<PathBuf> {
    let s = cfg.saturation;
    let end = cfg.steps - 1;
    let hidden = widths(cfg)?.len() - 2;
    let sat: Vec<Vec<Vec<(f64, f64)>>> = results
        .iter()
        .map(|r| {
            (0..hidden)
                .map(|k| {
                    r.outcome.records.iter().map(|x| (x.step as f64, x.layers[k].saturated_pct)).collect()
                })
                .collect()
        })
        .collect();
    let panels: Vec<Panel> = results
        .iter()
        .zip(&sat)
        .filter(|(r, _)| matches!(r.variant.phi, Activation::Tanh | Activation::Sigmoid | Activation::Relu))
        .map(|(r, layers)| Panel {
            title: format!("{} (saturated: {})", r.variant.name, saturation_rule(r.variant.phi, s)),
            x_label: "step t".into(),
            y_label: "% of units".into(),
            series: figures::distinct_series(layers, "layer "),
            log_y: false,
            hlines: vec![],
        })
        .collect();
    let path = out.join("study_saturation.png");
    let sat_title = {
        let at = |r: &VariantResult, t: usize| mean(&r.saturated(t));
        let worst = results
            .iter()
            .filter(|r| matches!(r.variant.phi, Activation::Tanh | Activation::Sigmoid | Activation::Relu))
            .max_by(|a, b| at(a, 0).total_cmp(&at(b, 0)));
        match worst {
            Some(r) => format!(
                "Saturated units per hidden layer (shared axes): most at the start in {}, {:.0}% → {:.0}% by step {end}",
                r.variant.name,
                at(r, 0),
                at(r, r.outcome.records.len() - 1)
            ),
            None => "Saturated units per hidden layer during training".into(),
        }
    };
    line_grid_shared(&path, &sat_title, &panels)?;
    Ok(path)
}

/// study_grad_norms.png: ‖∂E/∂W^k‖ per layer at the start and at the end.
fn grad_norms_figure(out: &Path, cfg: &StudyConfig, results: &[VariantResult]) -> Result<PathBuf> {
    let end = cfg.steps - 1;
    let norms: Vec<[Vec<(f64, f64)>; 2]> = results
        .iter()
        .map(|r| {
            let at =
                |t: usize| r.grad_norms(t).iter().enumerate().map(|(k, &g)| ((k + 1) as f64, g)).collect();
            [at(0), at(r.outcome.records.len() - 1)]
        })
        .collect();
    let at: [Vec<Vec<(f64, f64)>>; 2] = [0, 1].map(|i| norms.iter().map(|n| n[i].clone()).collect());
    let panel = |i: usize, title: &str| Panel {
        title: title.into(),
        x_label: "layer k (1 = input side)".into(),
        y_label: "‖∂E/∂W^k‖".into(),
        series: variant_series(
            results,
            results.iter().map(|r| r.variant.name.to_string()).collect(),
            &at[i],
            |_| false,
        ),
        log_y: true,
        hlines: vec![],
    };
    let path = out.join("study_grad_norms.png");
    let at_start: Vec<(&str, Vec<f64>)> = results.iter().map(|r| (r.variant.name, r.grad_norms(0))).collect();
    line_grid_shared(
        &path,
        &grad_norms_title(&at_start, VANISHED),
        &[panel(0, "at the start (step 0)"), panel(1, &format!("at the end (step {end})"))],
    )?;
    Ok(path)
}

/// study_activations.png: histograms of z^k at initialisation, with mean, std and % flat.
fn activations_figure(out: &Path, cfg: &StudyConfig, results: &[VariantResult]) -> Result<PathBuf> {
    let s = cfg.saturation;
    let shown = drawn(results);
    let path = out.join("study_activations.png");
    histogram_grid(
        &path,
        &{
            let sat0 = |r: &&VariantResult| mean(&r.saturated(0));
            match shown.iter().max_by(|a, b| sat0(a).total_cmp(&sat0(b))) {
                Some(r) => format!(
                    "Activations z^k at initialisation: {:.0}% of {}'s hidden units saturated (|z| > {s} for tanh)",
                    sat0(r),
                    r.variant.name
                ),
                None => format!("Activations z^k per hidden layer at initialisation (saturated: |z| > {s} for tanh)"),
            }
        },
        &hist_rows(&shown, "z^k (unitless)", &|d| &d.z, &value_range, &|r, k| {
            let z = r.start.z[k - 1].as_slice();
            let pct =
                100.0 * z.iter().filter(|&&v| flat(r.variant.phi, v, s)).count() as f64 / z.len() as f64;
            // A relu's zeros are φ' = 0 for that sample, not a dead unit (the study's "saturated").
            let what = if r.variant.phi == Activation::Relu { "at 0" } else { "sat." };
            format!("layer {k}: μ {:.2}, σ {:.2}, {pct:.0}% {what}", mean(z), std_dev(z))
        }),
    )?;
    Ok(path)
}

/// study_dz.png: histograms of ∂E/∂z^k at initialisation.
fn dz_figure(out: &Path, _cfg: &StudyConfig, results: &[VariantResult]) -> Result<PathBuf> {
    let shown = drawn(results);
    let path = out.join("study_dz.png");
    histogram_grid(
        &path,
        &spread_title(
            "∂E/∂z^k, the error signal that reaches hidden layer k, at initialisation",
            &shown,
            &|d| &d.dz,
        ),
        &hist_rows(&shown, "∂E/∂z^k (loss units per unit of z)", &|d| &d.dz, &|_| None, &|r, k| {
            format!("layer {k}: std {:.1e}", std_dev(r.start.dz[k - 1].as_slice()))
        }),
    )?;
    Ok(path)
}

/// study_dw.png: histograms of ∂E/∂W^k at initialisation, with the grad:data ratio.
fn dw_figure(out: &Path, _cfg: &StudyConfig, results: &[VariantResult]) -> Result<PathBuf> {
    let shown = drawn(results);
    let path = out.join("study_dw.png");
    histogram_grid(
        &path,
        &spread_title(
            "∂E/∂W^k per hidden layer at initialisation (grad:data = std(∂E/∂W^k) / std(W^k))",
            &shown,
            &|d| &d.dw,
        ),
        &hist_rows(&shown, "∂E/∂W^k (loss units per unit of weight)", &|d| &d.dw, &|_| None, &|r, k| {
            format!(
                "layer {k}: std {:.1e}, grad:data {:.1e}",
                std_dev(r.start.dw[k - 1].as_slice()),
                r.start.grad_data(k)
            )
        }),
    )?;
    Ok(path)
}

/// study_update_ratio.png: the update-to-weight ratio per hidden layer over training.
fn update_ratio_figure(out: &Path, cfg: &StudyConfig, results: &[VariantResult]) -> Result<PathBuf> {
    let shown = drawn(results);
    let hidden = widths(cfg)?.len() - 2;
    let ratios: Vec<Vec<Vec<(f64, f64)>>> = shown
        .iter()
        .map(|r| {
            (0..hidden)
                .map(|k| {
                    r.outcome.records.iter().map(|x| (x.step as f64, x.layers[k].update_ratio)).collect()
                })
                .collect()
        })
        .collect();
    let panels: Vec<Panel> = shown
        .iter()
        .zip(&ratios)
        .map(|(r, layers)| Panel {
            title: r.variant.name.to_string(),
            x_label: "step t".into(),
            y_label: "‖ΔW^k‖ / ‖W^k‖".into(),
            series: figures::distinct_series(layers, "layer "),
            log_y: true,
            hlines: vec![("1e-3 (a common rule of thumb)".into(), 1e-3)],
        })
        .collect();
    let path = out.join("study_update_ratio.png");
    let last_ratio = |r: &VariantResult| {
        let t = r.outcome.records.len() - 1;
        let v: Vec<f64> = r.outcome.records[t].layers[..hidden].iter().map(|l| l.update_ratio).collect();
        mean(&v)
    };
    let ratio_title = match extremes(&shown, last_ratio) {
        Some([(lo, lo_name), (hi, hi_name)]) => format!(
            "Update-to-weight ratio per hidden layer (shared axes); layers' mean at the end from {lo:.0e} ({lo_name}) \
             to {hi:.0e} ({hi_name})"
        ),
        None => "Update-to-weight ratio per hidden layer during training (shared axes)".into(),
    };
    line_grid_shared(&path, &ratio_title, &panels)?;
    Ok(path)
}

/// study_saturation_map.png: per drawn variant at the start and the end, units × samples per
/// hidden layer, white where φ' ≈ 0.
fn saturation_map_figure(out: &Path, cfg: &StudyConfig, results: &[VariantResult]) -> Result<PathBuf> {
    let s = cfg.saturation;
    let end = cfg.steps - 1;
    let shown = drawn(results);
    let flags: Vec<[Vec<Vec<bool>>; 2]> = shown
        .iter()
        .map(|r| {
            let of = |d: &Diagnostics| {
                d.z.iter()
                    .map(|m| m.as_slice().iter().map(|&v| flat(r.variant.phi, v, s)).collect())
                    .collect()
            };
            [of(&r.start), of(&r.end)]
        })
        .collect();
    let rows: Vec<MapRow> = shown
        .iter()
        .zip(&flags)
        .flat_map(|(r, f)| {
            [(0usize, &r.start), (1, &r.end)].into_iter().map(move |(i, d)| {
                let dead: usize = (1..=d.z.len()).map(|k| d.dead_units(r.variant.phi, k, s)).sum();
                let units: usize = d.z.iter().map(|m| m.cols()).sum();
                MapRow {
                    title: format!(
                        "{}, {}: {dead} of {units} hidden units dead (a white column)",
                        r.variant.name,
                        if i == 0 { "step 0".to_string() } else { format!("after step {end}") }
                    ),
                    cells: d
                        .z
                        .iter()
                        .zip(&f[i])
                        .enumerate()
                        .map(|(k, (m, w))| MapCell {
                            title: format!("layer {}: {} dead", k + 1, d.dead_units(r.variant.phi, k + 1, s)),
                            rows: m.rows(),
                            cols: m.cols(),
                            white: w,
                        })
                        .collect(),
                }
            })
        })
        .collect();
    let path = out.join("study_saturation_map.png");
    map_grid(
        &path,
        &format!(
            "Units (across) × samples (down) per hidden layer, white where φ' ≈ 0: tanh |z| > {s}, sigmoid z \
             outside [{:.2}, {s}], relu z = 0",
            1.0 - s
        ),
        &rows,
    )?;
    Ok(path)
}
