//! `study`: the saturation study's command line. The experiment is [`crate::harness::study`], the
//! figures and the report [`crate::output::study`]; this module maps the flags onto a
//! [`StudyConfig`], runs, writes and prints.

use anyhow::Result;
use clap::Parser;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::commands::run_tool;
use crate::fsio;
use crate::model::spec::Loss;

use crate::harness::study::{slowdown, StudyConfig, VariantResult, VARIANTS};
use crate::output::study::StudySummary;
use crate::output::study::{reach, slowdown_text, summary_line};

/// Run the saturation study: one deep network, ten activation/initialisation variants.
#[derive(Parser, Debug, Clone)]
#[command(name = "study", version, allow_negative_numbers = true)]
pub struct StudyArgs {
    /// Hidden layers of --width units (a bottleneck, if any, comes after them).
    #[arg(long, default_value_t = 5)]
    pub hidden: usize,
    /// Units per hidden layer.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// Units of a last, narrow hidden layer (0: none, the default). With one unit the output
    /// layer can only scale a single feature; a dead relu unit there kills the whole network.
    #[arg(long, default_value_t = 0)]
    pub bottleneck: usize,
    /// Full-batch SGD steps per variant.
    #[arg(long, default_value_t = 500)]
    pub steps: usize,
    /// Learning rate η, the same for every variant.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// The loss: mse (default), half-sse, or cross-entropy (a classification dataset: spirals).
    #[arg(long, value_enum, default_value_t = Loss::Mse)]
    pub loss: Loss,
    /// The loss whose first crossing is counted as "steps to target".
    #[arg(long, default_value_t = 1e-2)]
    pub target: f64,
    /// teacher (4 inputs; targets from a fixed random tanh network of the same widths), sine (1
    /// input), xor (2) or spirals (2 inputs, 2 classes).
    #[arg(long, default_value = "teacher")]
    pub dataset: String,
    /// Training samples of the dataset.
    #[arg(long, default_value_t = 256)]
    pub samples: usize,
    /// Held-out samples of the same dataset (drawn with the training samples, then split off at
    /// random), on which each variant's final loss (and accuracy, for classes) is measured; 0: none.
    #[arg(long, default_value_t = 256)]
    pub validation: usize,
    /// Seed of weights and data, the same for every variant.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// |z| above which a tanh unit counts as saturated (sigmoid: z outside [1 − s, s]).
    #[arg(long, default_value_t = 0.99)]
    pub saturation: f64,
    /// Output directory.
    #[arg(long, default_value = "out/study")]
    pub out: PathBuf,
    /// Only the summary lines: no progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Variants trained at once, each on its own thread with one libtorch thread [default: the
    /// machine's cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Default for StudyArgs {
    fn default() -> StudyArgs {
        StudyArgs::parse_from(["study"])
    }
}

impl StudyArgs {
    /// The experiment's configuration: every flag but the output's (`--out`, `--quiet`).
    pub fn config(&self) -> StudyConfig {
        StudyConfig {
            hidden: self.hidden,
            width: self.width,
            bottleneck: self.bottleneck,
            steps: self.steps,
            lr: self.lr,
            loss: self.loss,
            target: self.target,
            dataset: self.dataset.clone(),
            samples: self.samples,
            validation: self.validation,
            seed: self.seed,
            saturation: self.saturation,
            threads: self.threads,
        }
    }
}

/// n_0, then --hidden layers of --width, the bottleneck if any, and n_L.
pub fn widths(args: &StudyArgs) -> Result<Vec<usize>> {
    crate::harness::study::widths(&args.config())
}

/// Runs every variant as `args` say ([`crate::harness::study::run`]).
pub fn run(args: &StudyArgs, progress: impl Fn() + Sync) -> Result<Vec<VariantResult>> {
    crate::harness::study::run(&args.config(), progress)
}

/// Writes the figures, study.md, study.json and index.html under `out`
/// ([`crate::output::study::write`]).
pub fn write(out: &Path, args: &StudyArgs, results: &[VariantResult]) -> Result<Vec<PathBuf>> {
    crate::output::study::write(out, &args.config(), results)
}

/// study.md's text ([`crate::output::study::report`]).
pub fn report(args: &StudyArgs, results: &[VariantResult]) -> Result<String> {
    crate::output::study::report(&args.config(), results)
}

/// study.json's content ([`crate::output::study::summary`]).
pub fn summary(args: &StudyArgs, results: &[VariantResult]) -> StudySummary {
    crate::output::study::summary(&args.config(), results)
}

/// The loss of the zero output on the study's data ([`crate::harness::study::zero_output_loss`]).
pub fn zero_output_loss(args: &StudyArgs) -> Result<f64> {
    crate::harness::study::zero_output_loss(&args.config())
}

/// The line `study` prints on stderr off a terminal when the `n`-th of `total` variants ends.
fn progress_line(n: usize, total: usize, r: &VariantResult, target: f64) -> String {
    format!(
        "study: {n}/{total} variants done: {} {}, final loss {:.3e}, {}",
        r.variant.name,
        reach(r, target),
        r.final_loss(),
        if r.outcome.equivalent { "equivalent to libtorch" } else { "NOT equivalent to libtorch" }
    )
}

/// equivalent to libtorch, or 2 on bad input.
pub fn main_study() -> i32 {
    run_tool(|args: &StudyArgs| {
        let cfg = args.config();
        crate::harness::study::validate(&cfg)?;
        crate::harness::study::widths(&cfg)?;
        fsio::prepare_dir(&args.out)?;
        let total = (VARIANTS.len() * args.steps) as u64;
        let tty = std::io::stderr().is_terminal();
        let bar = if args.quiet || !tty {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} steps of {msg} variants, {eta} left",
            ) {
                bar.set_style(style);
            }
            bar.set_message(VARIANTS.len().to_string());
            bar
        };
        // Off a terminal there is no bar: one line per finished variant instead.
        let done = AtomicUsize::new(0);
        let results = crate::harness::study::run_reporting(
            &cfg,
            || bar.inc(1),
            |r| {
                if !args.quiet && !tty {
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    eprintln!("{}", progress_line(n, VARIANTS.len(), r, args.target));
                }
            },
        );
        bar.finish_and_clear();
        let results = results?;
        let written = crate::output::study::write(&args.out, &cfg, &results)?;
        let slow = slowdown(&results, args.target);
        for r in &results {
            println!("{}", summary_line(r, args.target));
        }
        println!("{}", slowdown_text(&slow));
        if !args.quiet {
            for p in written {
                println!("wrote {}", p.display());
            }
        }
        Ok(if results.iter().all(|r| r.outcome.equivalent) { 0 } else { 1 })
    })
}
