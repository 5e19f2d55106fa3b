//! The saturation study: why a deep tanh network trains slowly, and what fixes it (the exercise
//! sheet's question (e)).
//!
//! One deep network (by default 6 hidden layers of 64) is trained on the same data from the same
//! seed five ways: tanh, sigmoid and relu with torch's default initialisation, tanh with large
//! weights (N(0, 1), which saturates it) and tanh with Xavier initialisation. Every run is
//! checked against libtorch by the harness. The study measures, per variant, the share of
//! saturated units per layer, the gradient norm per layer (the vanishing gradient of eq. (7):
//! each δ^k carries a factor φ'(a^k), near 0 for a saturated unit) and the loss.

use anyhow::{bail, Result};
use clap::Parser;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::commands::figures::saturation_rule;
use crate::commands::run_tool;
use crate::data::{self, DatasetKind};
use crate::fsio;
use crate::harness::{self, Outcome, RunConfig};
use crate::model::activation::Activation;
use crate::model::params::Params;
use crate::model::spec::{DType, Init, Loss, Spec};
use crate::plot::{line_chart, line_grid, Panel, Series};

/// Run the saturation study: one deep network, five activation/initialisation variants.
#[derive(Parser, Debug, Clone)]
#[command(name = "study", version, allow_negative_numbers = true)]
pub struct StudyArgs {
    /// Hidden layers.
    #[arg(long, default_value_t = 6)]
    pub hidden: usize,
    /// Units per hidden layer.
    #[arg(long, default_value_t = 64)]
    pub width: usize,
    /// Full-batch SGD steps per variant.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Learning rate η (the loss is the mean squared error).
    #[arg(long, default_value_t = 0.02)]
    pub lr: f64,
    /// sine (1 input), xor (2), spirals (2 inputs, 2 classes) or teacher (4 inputs).
    #[arg(long, default_value = "sine")]
    pub dataset: String,
    /// Samples of the dataset.
    #[arg(long, default_value_t = 256)]
    pub samples: usize,
    /// Seed of weights and data, the same for every variant.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// |z| above which a tanh unit counts as saturated (sigmoid: z outside [1 − s, s]).
    #[arg(long, default_value_t = 0.97)]
    pub saturation: f64,
    /// Output directory.
    #[arg(long, default_value = "out/study")]
    pub out: PathBuf,
    /// Only the summary line.
    #[arg(long)]
    pub quiet: bool,
    /// Threads libtorch may use for large networks [default: the machine's cores]; the default
    /// study's network is small enough that it uses one.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// One way of training the network.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Short name for legends and tables.
    pub name: &'static str,
    /// Hidden-layer activation.
    pub phi: Activation,
    /// Weight initialisation.
    pub init: Init,
    /// Scale the hidden layers' weights to standard deviation 1 (a saturating initialisation).
    pub large: bool,
}

/// The five variants.
pub const VARIANTS: [Variant; 5] = [
    Variant { name: "tanh, torch init", phi: Activation::Tanh, init: Init::Torch, large: false },
    Variant { name: "tanh, large init N(0,1)", phi: Activation::Tanh, init: Init::He, large: true },
    Variant { name: "tanh, Xavier init", phi: Activation::Tanh, init: Init::Xavier, large: false },
    Variant { name: "sigmoid, torch init", phi: Activation::Sigmoid, init: Init::Torch, large: false },
    Variant { name: "relu, torch init", phi: Activation::Relu, init: Init::Torch, large: false },
];

/// What one variant measured.
pub struct VariantResult {
    /// The variant.
    pub variant: Variant,
    /// The initial weights.
    pub init: Params<f64>,
    /// The harness's outcome (every step checked against libtorch).
    pub outcome: Outcome,
}

impl VariantResult {
    /// ‖∂E/∂W^k‖ for k = 1..L at step `t`.
    pub fn grad_norms(&self, t: usize) -> Vec<f64> {
        self.outcome.records[t].layers.iter().map(|l| l.grad_norm).collect()
    }
    /// ‖W^k_end − W^k_0‖ / ‖W^k_0‖ per hidden layer: how far training moved each layer.
    pub fn hidden_change(&self) -> Vec<f64> {
        let hidden = self.init.layers.len() - 1;
        let frob = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        (0..hidden)
            .map(|k| {
                let (w0, w1) = (&self.init.layers[k].w, &self.outcome.final_params.layers[k].w);
                let diff = frob(&mut w0.as_slice().iter().zip(w1.as_slice()).map(|(a, b)| b - a));
                diff / frob(&mut w0.as_slice().iter().copied())
            })
            .collect()
    }

    /// % saturated per hidden layer at step `t`.
    pub fn saturated(&self, t: usize) -> Vec<f64> {
        let layers = &self.outcome.records[t].layers;
        layers[..layers.len() - 1].iter().map(|l| l.saturated_pct).collect()
    }
}

/// Runs every variant; `progress` hears each variant's name as it starts.
pub fn run(args: &StudyArgs, mut progress: impl FnMut(&str)) -> Result<Vec<VariantResult>> {
    if args.hidden == 0 || args.width == 0 || args.steps == 0 || args.samples == 0 {
        bail!("--hidden, --width, --steps and --samples must be at least 1");
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr: must be a finite number > 0, got {}", args.lr);
    }
    if !(args.saturation > 0.5 && args.saturation < 1.0) {
        bail!("--saturation: must lie in (0.5, 1), got {}", args.saturation);
    }
    let dataset: DatasetKind = args.dataset.parse()?;
    let (n_in, n_out) = match dataset {
        DatasetKind::Sine => (1, 1),
        DatasetKind::Xor => (2, 1),
        DatasetKind::Spirals => (2, 2),
        DatasetKind::Teacher => (4, 1),
        DatasetKind::Csv(_) => bail!("--dataset: the study runs on sine, xor, spirals or teacher"),
    };
    let mut widths = vec![n_in];
    widths.extend(std::iter::repeat_n(args.width, args.hidden));
    widths.push(n_out);
    let mut results = Vec::new();
    for variant in VARIANTS {
        progress(variant.name);
        let mut acts = vec![variant.phi; args.hidden];
        acts.push(Activation::Identity);
        let spec = Spec::new(widths.clone(), acts)?
            .with_loss(Loss::Mse)
            .with_dtype(DType::F64)
            .with_init(variant.init)
            .with_seed(args.seed);
        let data = data::load(&dataset, &spec, args.samples, None, args.seed)?;
        let mut init = Params::<f64>::init(&spec);
        if variant.large {
            // He draws N(0, 2/n_{k−1}); rescale the hidden layers to N(0, 1). The output layer
            // keeps its scale: it does not saturate, and large output weights would only blow up
            // the loss.
            let hidden = init.layers.len() - 1;
            for layer in &mut init.layers[..hidden] {
                let scale = (layer.w.rows() as f64 / 2.0).sqrt();
                layer.w.as_mut_slice().iter_mut().for_each(|w| *w *= scale);
            }
        }
        let run = RunConfig {
            judge: harness::Judge::round_off(),
            form: harness::Form::Batched,
            mutant: None,
            drift_tol: harness::default_drift_tolerance(DType::F64),
            spec,
            optim: crate::model::optim::OptimConfig::sgd(args.lr),
            steps: args.steps,
            batch_size: 0,
            shuffle_seed: args.seed,
            fault: None,
            snapshot_steps: vec![],
            saturation: args.saturation,
            threads: args.threads.unwrap_or_else(super::cores),
        };
        crate::reference::use_threads(&run.spec, data.len(), run.threads);
        let outcome = harness::run::<f64>(&run, &data, &init, None, |_| {})?;
        results.push(VariantResult { variant, init, outcome });
    }
    Ok(results)
}

/// Writes study_loss.png, study_saturation.png, study_grad_norms.png and study.md under `out`.
pub fn write(out: &Path, args: &StudyArgs, results: &[VariantResult]) -> Result<Vec<PathBuf>> {
    fsio::prepare_dir(out)?;
    let mut written = Vec::new();

    let losses: Vec<Vec<(f64, f64)>> = results
        .iter()
        .map(|r| r.outcome.records.iter().map(|s| (s.step as f64, s.manual_loss)).collect())
        .collect();
    let series: Vec<Series> =
        results.iter().zip(&losses).map(|(r, l)| Series::new(r.variant.name, l)).collect();
    let path = out.join("study_loss.png");
    let title = format!(
        "Loss of a 1-{}×{}-1 network on sine, full-batch SGD (η = {})",
        args.hidden, args.width, args.lr
    );
    line_chart(&path, &title, "step t", "mean squared error", &series, true, &[])?;
    written.push(path);

    let sat: Vec<Vec<Vec<(f64, f64)>>> = results
        .iter()
        .map(|r| {
            (0..args.hidden)
                .map(|k| {
                    r.outcome.records.iter().map(|s| (s.step as f64, s.layers[k].saturated_pct)).collect()
                })
                .collect()
        })
        .collect();
    let panels: Vec<Panel> = results
        .iter()
        .zip(&sat)
        .filter(|(r, _)| matches!(r.variant.phi, Activation::Tanh | Activation::Sigmoid | Activation::Relu))
        .map(|(r, layers)| Panel {
            title: format!(
                "{} (saturated: {})",
                r.variant.name,
                saturation_rule(r.variant.phi, args.saturation)
            ),
            x_label: "step t".into(),
            y_label: "% of units".into(),
            series: layers
                .iter()
                .enumerate()
                .map(|(k, p)| Series::new(format!("layer {}", k + 1), p))
                .collect(),
            log_y: false,
            hlines: vec![],
        })
        .collect();
    let path = out.join("study_saturation.png");
    line_grid(&path, "Saturated units per hidden layer during training", &panels)?;
    written.push(path);

    let last = |r: &VariantResult| r.outcome.records.len() - 1;
    let norms: Vec<[Vec<(f64, f64)>; 2]> = results
        .iter()
        .map(|r| {
            let at =
                |t: usize| r.grad_norms(t).iter().enumerate().map(|(k, &g)| ((k + 1) as f64, g)).collect();
            [at(0), at(last(r))]
        })
        .collect();
    let panel = |i: usize, title: &str| Panel {
        title: title.into(),
        x_label: "layer k (1 = input side)".into(),
        y_label: "‖∂E/∂W^k‖".into(),
        series: results.iter().zip(&norms).map(|(r, n)| Series::new(r.variant.name, &n[i])).collect(),
        log_y: true,
        hlines: vec![],
    };
    let path = out.join("study_grad_norms.png");
    line_grid(
        &path,
        "Gradient norm per layer: the vanishing gradient of eq. (7)",
        &[panel(0, "at the start (step 0)"), panel(1, &format!("at the end (step {})", args.steps - 1))],
    )?;
    written.push(path);

    let path = out.join("study.md");
    fsio::write_atomic(&path, markdown(args, results).as_bytes())?;
    written.push(path);
    Ok(written)
}

fn pct_list(v: &[f64]) -> String {
    v.iter().map(|p| format!("{p:.0}")).collect::<Vec<_>>().join(" / ")
}

/// study.md: the measured numbers in tables, and sentences that read them.
pub fn markdown(args: &StudyArgs, results: &[VariantResult]) -> String {
    let mut s = String::new();
    let end = args.steps - 1;
    let _ = writeln!(s, "# Saturation study\n");
    let rule = format!(
        "|z| > {s} for tanh, z outside [{:.2}, {s}] for sigmoid, and for relu a dead unit (z = 0 for every sample)",
        1.0 - args.saturation,
        s = args.saturation
    );
    let _ = writeln!(
        s,
        "A {h}×{w} network ({h} hidden layers of {w}, identity output) trained on the {data} dataset \
         ({n} samples), full-batch SGD with η = {lr}, mean squared error, f64, seed {seed}, for {steps} steps. \
         Saturated means {rule}. Regenerate with `cargo run --release --bin study`.\n",
        h = args.hidden,
        w = args.width,
        data = args.dataset,
        n = args.samples,
        lr = args.lr,
        seed = args.seed,
        steps = args.steps,
    );

    let _ = writeln!(
        s,
        "| variant | checked against libtorch | loss at step 0 | loss at step {end} | ‖∇W¹‖ / ‖∇W^L‖ at step 0 | at step {end} | % saturated per hidden layer, step 0 | step {end} | ‖ΔW^k‖/‖W^k‖ over training, hidden layers |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let o = &r.outcome;
        let last = o.records.len() - 1;
        let ratio = |t: usize| {
            let g = r.grad_norms(t);
            g[0] / g[g.len() - 1]
        };
        let _ = writeln!(
            s,
            "| {} | {} (largest error {:.2} of its round-off bound) | {:.3e} | {:.3e} | {:.2e} | {:.2e} | {} | {} | {} |",
            r.variant.name,
            if o.equivalent { "equivalent" } else { "NOT equivalent" },
            o.max_ratio.grad.max(o.max_ratio.weight).max(o.max_ratio.loss),
            o.records[0].manual_loss,
            o.records[last].manual_loss,
            ratio(0),
            ratio(last),
            pct_list(&r.saturated(0)),
            pct_list(&r.saturated(last)),
            r.hidden_change().iter().map(|c| format!("{:.1}%", 100.0 * c)).collect::<Vec<_>>().join(" / "),
        );
    }
    let _ = writeln!(s, "\n## Gradient norm per layer, ‖∂E/∂W^k‖ for k = 1..L\n");
    let _ = writeln!(s, "| variant | step 0 | step {end} |\n|---|---|---|");
    for r in results {
        let fmt = |v: Vec<f64>| v.iter().map(|g| format!("{g:.1e}")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            r.variant.name,
            fmt(r.grad_norms(0)),
            fmt(r.grad_norms(r.outcome.records.len() - 1))
        );
    }

    let by = |name: &str| results.iter().find(|r| r.variant.name == name);
    let _ = writeln!(s, "\n## Reading the numbers\n");
    if let (Some(large), Some(xavier), Some(plain)) =
        (by("tanh, large init N(0,1)"), by("tanh, Xavier init"), by("tanh, torch init"))
    {
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let final_loss = |r: &VariantResult| r.outcome.records.last().map_or(f64::NAN, |x| x.manual_loss);
        let _ = writeln!(
            s,
            "With large weights, {:.0}% of the tanh units sit on the flat tails at the start (averaged over the \
             hidden layers), against {:.0}% with Xavier initialisation and {:.0}% with torch's default, and \
             {:.0}% still do at the end. A saturated unit has φ'(a) = 1 − z² ≈ 0 (below 0.06 at |z| > 0.97), and \
             eq. (7), δ^k_j = φ'(a^k_j) Σ_i W^(k+1)_ji δ^(k+1)_i, multiplies every δ^k by it; ∂E/∂W^k_ij = \
             z^(k−1)_i δ^k_j (6) is small with it, next to weights that are large. So the saturated layers \
             barely learn: over the whole run their weights moved by {:.1}% of their size (mean over hidden \
             layers), against {:.1}% with Xavier initialisation and {:.1}% with the default.\n",
            mean(large.saturated(0)),
            mean(xavier.saturated(0)),
            mean(plain.saturated(0)),
            mean(large.saturated(large.outcome.records.len() - 1)),
            100.0 * mean(large.hidden_change()),
            100.0 * mean(xavier.hidden_change()),
            100.0 * mean(plain.hidden_change()),
        );
        let (l, x) = (final_loss(large), final_loss(xavier));
        let _ = writeln!(
            s,
            "{}\n",
            if l > 2.0 * x {
                format!(
                    "The loss shows it: after {} steps the saturated network is at {l:.3e}, the Xavier network at {x:.3e}.",
                    args.steps
                )
            } else {
                format!(
                    "The loss hardly shows it here: the saturated network ends at {l:.3e}, the Xavier network at \
                     {x:.3e}. On a problem this easy the output layer fits the target from the frozen, nearly \
                     binary features of the saturated layers, and the large W^(k+1) in (7) multiplies δ on its way \
                     down, offsetting part of the small φ'. The hidden layers are still not learning — the \
                     network is a random-feature model, not a trained deep network."
                )
            }
        );
    }
    if let (Some(sig), Some(relu), Some(tanh)) =
        (by("sigmoid, torch init"), by("relu, torch init"), by("tanh, torch init"))
    {
        let ratio0 = |r: &VariantResult| {
            let g = r.grad_norms(0);
            g[0] / g[g.len() - 1]
        };
        let _ = writeln!(
            s,
            "The sigmoid's derivative is at most ¼ (φ' = φ(1 − φ), eq. (8)), so each layer scales δ down by at \
             least 4: at step 0 the first layer's gradient is {:.1e} times the last layer's with sigmoid, {:.1e} \
             with tanh (φ' ≤ 1) and {:.1e} with relu, whose derivative is exactly 1 wherever the unit is active. \
             Remedies: keep pre-activations in the linear range with a fan-in-scaled initialisation (Xavier for \
             tanh, He for relu), or use an activation that does not saturate for positive inputs (relu and its \
             relatives: leaky-relu, elu, gelu, silu) — relu's own failure mode is the dead unit (z = 0 for every \
             sample), which the table counts as its saturation.",
            ratio0(sig),
            ratio0(tanh),
            ratio0(relu),
        );
    }
    s
}

/// The `study` binary: run, write, print a line per variant; exit 0, or 2 on bad input.
pub fn main_study() -> i32 {
    run_tool(|args: &StudyArgs| {
        fsio::prepare_dir(&args.out)?;
        let results = run(args, |name| {
            if !args.quiet {
                eprintln!("training: {name}");
            }
        })?;
        let written = write(&args.out, args, &results)?;
        for r in &results {
            let o = &r.outcome;
            println!(
                "{:<26} {}  loss {:.4e} -> {:.4e}",
                r.variant.name,
                if o.equivalent { "equivalent to libtorch" } else { "NOT equivalent to libtorch" },
                o.records[0].manual_loss,
                o.records.last().map_or(f64::NAN, |x| x.manual_loss)
            );
        }
        if !args.quiet {
            for p in written {
                println!("wrote {}", p.display());
            }
        }
        Ok(0)
    })
}
