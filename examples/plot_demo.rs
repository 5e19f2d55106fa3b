//! Draws every chart type of `backprop::plot` from synthetic data, to look at them:
//!
//! ```text
//! cargo run --example plot_demo [OUT_DIR]     # default /tmp/plotdemo
//! ```

use anyhow::Result;
use backprop::plot::{histogram_grid, line_chart, line_grid, HistCell, HistRow, Panel, Series};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

fn main() -> Result<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/plotdemo".into()));
    std::fs::create_dir_all(&out)?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let noise = Normal::new(0.0, 1.0)?;
    let mut jitter = |scale: f64| (scale * noise.sample(&mut rng)).exp();

    // Two implementations of the same training run: curves that lie on top of each other.
    let manual: Vec<(f64, f64)> = (0..1000)
        .map(|i| (f64::from(i), 2.0 * (-f64::from(i) / 180.0).exp() * jitter(0.05) + 1e-3))
        .collect();
    let torch: Vec<(f64, f64)> = manual.iter().map(|&(x, y)| (x, y * (1.0 + 1e-3 * jitter(1.0)))).collect();
    let stats = line_chart(
        out.join("loss.png"),
        "Training loss: manual backprop vs libtorch",
        "step",
        "loss E",
        &[Series::new("manual", &manual), Series::new("libtorch", &torch)],
        true,
        &[],
    )?;
    println!("loss.png: {stats:?}");

    // Per-layer gradient error around round-off, and the weights' drift between the two models.
    let layers = 3;
    let grad_err: Vec<Vec<(f64, f64)>> = (0..layers)
        .map(|l| (0..1000).map(|i| (f64::from(i), 1e-15 * f64::from(l + 1) * jitter(0.6))).collect())
        .collect();
    let drift: Vec<Vec<(f64, f64)>> = (0..layers)
        .map(|l| {
            (0..1000)
                .map(|i| (f64::from(i), 1e-16 * (1.0 + f64::from(i) * 0.02 * f64::from(l + 1)) * jitter(0.2)))
                .collect()
        })
        .collect();
    let refs = vec![("tolerance 1e-10".to_owned(), 1e-10), ("machine epsilon".to_owned(), f64::EPSILON)];
    let err_series = per_layer(&grad_err, "layer");
    line_chart(
        out.join("grad_error.png"),
        "Max relative gradient error, manual vs libtorch",
        "step",
        "max |Δ∂E/∂W| / |∂E/∂W|",
        &err_series,
        true,
        &refs,
    )?;
    let stats = line_grid(
        out.join("error_grid.png"),
        "Manual vs libtorch, per layer",
        &[
            Panel {
                title: "Gradient error".into(),
                x_label: "step".into(),
                y_label: "relative error".into(),
                series: err_series.clone(),
                log_y: true,
                hlines: refs.clone(),
            },
            Panel {
                title: "Weight drift".into(),
                x_label: "step".into(),
                y_label: "max |W_manual − W_torch|".into(),
                series: per_layer(&drift, "layer"),
                log_y: true,
                hlines: refs.clone(),
            },
        ],
    )?;
    println!("error_grid.png: {stats:?}");

    // Gradient norms per layer and the update/weight ratio.
    let norms: Vec<Vec<(f64, f64)>> = (0..layers)
        .map(|l| {
            (0..1000)
                .map(|i| (f64::from(i), 0.5 / f64::from(l + 1) * (-f64::from(i) / 400.0).exp() * jitter(0.3)))
                .collect()
        })
        .collect();
    let ratio: Vec<Vec<(f64, f64)>> =
        norms.iter().map(|n| n.iter().map(|&(x, g)| (x, 0.05 * g / (1.0 + x / 1000.0))).collect()).collect();
    line_grid(
        out.join("grad_norms.png"),
        "Gradient health",
        &[
            log_panel("Gradient norm per layer", "‖∂E/∂W‖", &norms, vec![]),
            log_panel(
                "Update / weight ratio",
                "‖ΔW‖ / ‖W‖",
                &ratio,
                vec![("1e-3 rule of thumb".into(), 1e-3)],
            ),
        ],
    )?;

    // % saturated per layer per step, on a linear axis.
    let sat: Vec<Vec<(f64, f64)>> = (0..layers)
        .map(|l| {
            (0..1000)
                .map(|i| {
                    (f64::from(i), 30.0 * f64::from(l + 1) * (1.0 - (-f64::from(i) / 300.0).exp()) / 3.0)
                })
                .collect()
        })
        .collect();
    let sat_series = per_layer(&sat, "hidden layer");
    line_chart(
        out.join("saturation.png"),
        "Saturated tanh units (|z| > 0.97)",
        "step",
        "% saturated",
        &sat_series,
        false,
        &[],
    )?;

    // Activation histograms: 3 hidden layers × 4 moments, spreading towards saturation.
    let moments = ["start", "1/4", "1/2", "end"];
    let acts: Vec<Vec<Vec<f64>>> = (0..3)
        .map(|l| {
            (0..4)
                .map(|m| {
                    let spread = 0.4 + 0.5 * f64::from(m) * f64::from(l + 1) / 2.0;
                    (0..4000).map(|_| (spread * noise.sample(&mut rng)).tanh()).collect()
                })
                .collect()
        })
        .collect();
    let rows: Vec<HistRow> = acts
        .iter()
        .enumerate()
        .map(|(l, row)| HistRow {
            title: format!("hidden layer {} (tanh)", l + 1),
            range: Some((-1.0, 1.0)),
            cells: row
                .iter()
                .zip(moments)
                .map(|(v, m)| {
                    let n = v.len() as f64;
                    let mean = v.iter().sum::<f64>() / n;
                    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                    let sat = 100.0 * v.iter().filter(|x| x.abs() > 0.97).count() as f64 / n;
                    HistCell {
                        title: format!("{m}: mean {mean:.2}, std {std:.2}, {sat:.0}% sat."),
                        values: v,
                    }
                })
                .collect(),
            x_label: format!("z^{} = tanh(a^{})", l + 1, l + 1),
            marked: vec![(-1.0, -0.97), (0.97, 1.0)],
        })
        .collect();
    let stats = histogram_grid(out.join("activations.png"), "Hidden activations during training", &rows)?;
    println!("activations.png: {stats:?}");

    // Degenerate input: nothing plottable on a log axis.
    let bad = [(0.0, 0.0), (1.0, f64::NAN), (2.0, -1.0)];
    let stats = line_chart(
        out.join("degenerate.png"),
        "Degenerate data",
        "step",
        "value",
        &[Series::new("bad", &bad)],
        true,
        &refs,
    )?;
    println!("degenerate.png: {stats:?}");
    let mut odd: Vec<f64> = acts[0][0].clone();
    odd.extend([f64::NAN, f64::INFINITY, 3.0, -2.5]);
    let rows = [HistRow {
        title: "values outside the range, and NaN".into(),
        range: Some((-1.0, 1.0)),
        cells: vec![
            HistCell { title: "with outliers".into(), values: &odd },
            HistCell { title: "empty".into(), values: &[] },
        ],
        x_label: "value".into(),
        marked: vec![],
    }];
    let stats = histogram_grid(out.join("degenerate_hist.png"), "Degenerate histograms", &rows)?;
    println!("degenerate_hist.png: {stats:?}");
    println!("wrote charts to {}", out.display());
    Ok(())
}

/// One series per layer, labelled "`prefix` 1", "`prefix` 2", ….
fn per_layer<'a>(data: &'a [Vec<(f64, f64)>], prefix: &str) -> Vec<Series<'a>> {
    data.iter().enumerate().map(|(l, v)| Series::new(format!("{prefix} {}", l + 1), v)).collect()
}

fn log_panel<'a>(title: &str, y: &str, data: &'a [Vec<(f64, f64)>], hlines: Vec<(String, f64)>) -> Panel<'a> {
    Panel {
        title: title.into(),
        x_label: "step".into(),
        y_label: y.into(),
        series: per_layer(data, "layer"),
        log_y: true,
        hlines,
    }
}
