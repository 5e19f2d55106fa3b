//! What the saturation study leaves behind: its eight figures ([`write_figures`]), study.md (the
//! [`report`], its prose a Markdown template filled from the numbers), study.json ([`summary`])
//! and index.html; and the lines `study` prints.

mod figures;
mod report;

use anyhow::Result;
use std::path::{Path, PathBuf};

use crate::fsio;
use crate::harness::study::{slowdown, widths, Role, Scale, Slowdown, StudyConfig, Variant, VariantResult};
use crate::harness::Outcome;
use crate::model::spec::Loss;

pub use figures::{grad_norms_title, overlapping, write_figures, OVERLAP, VANISHED};
pub use report::{report, SETTINGS_TRIED};

/// Writes the study's PNGs (loss, saturation over time, gradient norms, histograms of z^k,
/// ∂E/∂z^k and ∂E/∂W^k, update ratios, saturation maps), study.md, study.json and index.html
/// under `out`; returns their paths.
pub fn write(out: &Path, cfg: &StudyConfig, results: &[VariantResult]) -> Result<Vec<PathBuf>> {
    fsio::prepare_dir(out)?;
    let slow = slowdown(results, cfg.target);
    let mut written = write_figures(out, cfg, results)?;
    let images: Vec<PathBuf> = written.clone();
    let path = out.join("study.md");
    fsio::write_atomic(&path, report(cfg, results)?.as_bytes())?;
    written.push(path);

    let path = out.join("study.json");
    fsio::write_atomic(&path, serde_json::to_string_pretty(&summary(cfg, results))?.as_bytes())?;
    written.push(path);

    let table: String = results.iter().map(|r| format!("{}\n", summary_line(r, cfg.target))).collect();
    let verdict = format!(
        "{}; {} of {} variants equivalent to libtorch",
        slowdown_text(&slow),
        results.iter().filter(|r| r.outcome.equivalent).count(),
        results.len()
    );
    let heading = format!("Saturation study: {} on {}", arch(cfg), cfg.dataset);
    written.push(crate::output::figures::write_index_titled(out, &heading, &verdict, &table, &images)?);
    Ok(written)
}

/// `1-32-32-1-1`, the widths as the study's captions print them.
fn arch(cfg: &StudyConfig) -> String {
    widths(cfg).map_or_else(|_| "?".into(), |w| w.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("-"))
}

/// The steps a variant took to `target`, or why it has none.
fn steps_text(r: &VariantResult, target: f64) -> String {
    match r.steps_to(target) {
        Some(s) => format!("{s} steps"),
        None if r.outcome.non_finite.manual.is_some() => {
            format!("never (diverged by step {})", r.outcome.records.len())
        }
        None => format!("not within {}", r.outcome.records.len()),
    }
}

/// A variant's outcome against the target as a clause of a sentence, subject first: "reaches
/// E ≤ 1e-2 in 120 steps", "does not reach E ≤ 1e-2 within 400 steps", or "diverges (non-finite
/// by step 37) without reaching E ≤ 1e-2". `steps_to` is the first step at or below `target`,
/// `diverged` whether the run went non-finite, `run` the steps recorded.
pub fn reach_clause(steps_to: Option<usize>, diverged: bool, run: usize, target: f64) -> String {
    match steps_to {
        Some(s) => format!("reaches E ≤ {target:.0e} in {s} steps"),
        None if diverged => format!("diverges (non-finite by step {run}) without reaching E ≤ {target:.0e}"),
        None => format!("does not reach E ≤ {target:.0e} within {run} steps"),
    }
}

/// [`reach_clause`] for a variant's result.
pub fn reach(r: &VariantResult, target: f64) -> String {
    reach_clause(r.steps_to(target), r.outcome.non_finite.manual.is_some(), r.outcome.records.len(), target)
}

/// The slowdown in words: how many times the best fix's steps the saturated network needs.
pub fn slowdown_text(d: &Slowdown) -> String {
    match d.best {
        None => "no fix reached the target".into(),
        Some((name, _)) => format!(
            "the saturated network needs {}{:.1}× the steps of the best fix ({name})",
            if d.at_least { "at least " } else { "" },
            d.ratio
        ),
    }
}

/// The loss in words, for titles and axes.
fn loss_words(loss: Loss) -> &'static str {
    match loss {
        Loss::Mse => "mean squared error",
        Loss::HalfSse => "half the summed squared error",
        Loss::CrossEntropy => "cross-entropy",
    }
}

/// One variant in `study.json`.
#[derive(serde::Serialize, Debug)]
pub struct VariantSummary {
    /// The variant's name, as in study.md.
    pub name: &'static str,
    /// saturated, fix or reference.
    pub role: &'static str,
    /// The hidden layers' activation.
    pub activation: &'static str,
    /// The initialisation of the hidden layers' weights, in words.
    pub init: String,
    /// The first step whose training loss is at most the target (`null`: not within the run).
    pub steps_to_target: Option<usize>,
    /// The training loss at the last step.
    pub final_loss: f64,
    /// The final weights' loss on the held-out samples (`null` without any).
    pub validation_loss: Option<f64>,
    /// The final weights' accuracy on the held-out samples, for class targets.
    pub validation_accuracy: Option<f64>,
    /// Whether the harness found the run equivalent to libtorch.
    pub equivalent: bool,
}

/// What `study.json` holds: the setting and, per variant, what it measured.
#[derive(serde::Serialize, Debug)]
pub struct StudySummary {
    /// The widths, as `4-32-32-32-32-32-1`.
    pub network: String,
    /// The dataset's name.
    pub dataset: String,
    /// Training and held-out samples.
    pub samples: usize,
    /// Held-out samples (0: none).
    pub validation: usize,
    /// Steps each variant ran.
    pub steps: usize,
    /// The learning rate.
    pub lr: f64,
    /// The target loss.
    pub target: f64,
    /// The saturated network's steps over the best fix's (a lower bound when `at_least`).
    pub slowdown: Option<f64>,
    /// Whether `slowdown` is only a lower bound (the saturated network did not reach the target).
    pub at_least: bool,
    /// The fix that reached the target first.
    pub best_fix: Option<&'static str>,
    /// Per variant.
    pub variants: Vec<VariantSummary>,
}

/// The initialisation of `v`'s hidden weights in words.
pub fn init_words(v: &Variant) -> String {
    match v.scale {
        Scale::AsInit => v.init.to_string(),
        Scale::Std(s) => format!("N(0, {s}²)"),
        Scale::Gain(g) => format!("N(0, ({g:.3})² / fan-in)"),
    }
}

fn role_word(r: Role) -> &'static str {
    match r {
        Role::Saturated => "saturated",
        Role::Fix => "fix",
        Role::Reference => "reference",
    }
}

/// `study.json`'s content.
pub fn summary(cfg: &StudyConfig, results: &[VariantResult]) -> StudySummary {
    let slow = slowdown(results, cfg.target);
    StudySummary {
        network: arch(cfg),
        dataset: cfg.dataset.clone(),
        samples: cfg.samples,
        validation: cfg.validation,
        steps: cfg.steps,
        lr: cfg.lr,
        target: cfg.target,
        slowdown: slow.ratio.is_finite().then_some(slow.ratio),
        at_least: slow.at_least,
        best_fix: slow.best.map(|(n, _)| n),
        variants: results
            .iter()
            .map(|r| VariantSummary {
                name: r.variant.name,
                role: role_word(r.variant.role),
                activation: r.variant.phi.name(),
                init: init_words(&r.variant),
                steps_to_target: r.steps_to(cfg.target),
                final_loss: r.final_loss(),
                validation_loss: r.validation.map(|v| v.loss),
                validation_accuracy: r.validation.and_then(|v| v.accuracy),
                equivalent: r.outcome.equivalent,
            })
            .collect(),
    }
}

/// The line per variant that `study` prints and index.html shows.
pub fn summary_line(r: &VariantResult, target: f64) -> String {
    let o = &r.outcome;
    let val = match r.validation {
        Some(v) => format!(
            "  held-out loss {:.4e}{}",
            v.loss,
            v.accuracy.map_or(String::new(), |a| format!(", accuracy {:.1}%", 100.0 * a))
        ),
        None => String::new(),
    };
    format!(
        "{:<26} {} (libtorch)  loss {:.4e} -> {:.4e}  E <= {:.0e}: {}{val}",
        r.variant.name,
        check_text(o),
        o.records[0].manual_loss,
        r.final_loss(),
        target,
        steps_text(r, target),
    )
}

/// The harness's verdict in a word or two; a run that blew up says so, and where.
fn check_text(o: &Outcome) -> String {
    let diverged = match (o.non_finite.manual, o.non_finite.torch) {
        (None, None) => String::new(),
        (m, t) => {
            let at = |s: Option<usize>| s.map_or("never".to_string(), |s| format!("step {s}"));
            format!(", diverged: non-finite at {} (manual), {} (libtorch)", at(m), at(t))
        }
    };
    format!("{}{diverged}", if o.equivalent { "equivalent" } else { "NOT equivalent" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grad_norms_title_names_the_variants_whose_first_layer_vanishes() {
        let norms = [("sigmoid", vec![1e-3, 1e-2, 1.0]), ("tanh", vec![0.9, 1.1, 1.0])];
        let t = grad_norms_title(&norms, 0.1);
        assert!(t.contains("in sigmoid (1.0e-3)"), "{t}");
        assert!(!t.contains("tanh"), "{t}");
        let t = grad_norms_title(&norms[1..], 0.1);
        assert!(t.contains("no variant"), "{t}");
        assert!(!t.contains(" in "), "{t}");
    }

    #[test]
    fn the_reach_clause_reads_as_a_sentence_whether_or_not_the_target_is_reached() {
        assert_eq!(reach_clause(Some(120), false, 400, 1e-2), "reaches E ≤ 1e-2 in 120 steps");
        let not = reach_clause(None, false, 400, 1e-2);
        assert_eq!(not, "does not reach E ≤ 1e-2 within 400 steps");
        let diverged = reach_clause(None, true, 37, 1e-2);
        assert!(diverged.starts_with("diverges (non-finite by step 37)"), "{diverged}");
        assert!(diverged.contains("without reaching"), "{diverged}");
    }
}
