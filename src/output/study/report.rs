//! study.md: the setup, steps to the target per variant, per-layer tables, and what the numbers
//! say. The prose lives in the Markdown template `study.md` beside this file, one named block per
//! paragraph, table row or alternative wording; the code here picks the blocks and fills them from
//! the numbers.

use anyhow::{anyhow, Result};

use crate::harness::study::{
    mean, slowdown, std_dev, zero_output_loss, Diagnostics, Role, Slowdown, StudyConfig, VariantResult,
    VARIANTS,
};
use crate::model::activation::Activation;
use crate::model::spec::Loss;

use super::{arch, check_text, loss_words, reach, role_word, slowdown_text, steps_text};

/// The template: blocks that start at a line `<!-- @name -->`.
const TEMPLATE: &str = include_str!("study.md");

/// The settings searched for the default study, each with its command and how it came out: a
/// hand-written record (measured 2026-12-04, seed 0, on a 2-core AMD EPYC), not regenerated.
pub const SETTINGS_TRIED: &str = include_str!("settings_tried.md");

/// The template's block `name`: the text after its marker line up to the next marker, without its
/// last line break when `name` ends in `_` (a fragment of a sentence).
fn block(name: &str) -> Result<&'static str> {
    let marker = format!("<!-- @{name} -->\n");
    let start =
        TEMPLATE.find(&marker).ok_or_else(|| anyhow!("study.md template: no block {name}"))? + marker.len();
    let rest = &TEMPLATE[start..];
    let text = rest.find("\n<!-- @").map_or(rest, |end| &rest[..=end]);
    Ok(if name.ends_with('_') { text.strip_suffix('\n').unwrap_or(text) } else { text })
}

/// Block `name` with each `{key}` replaced by its value in `vars`.
fn fill(name: &str, vars: &[(&str, String)]) -> Result<String> {
    let mut out = String::new();
    let mut rest = block(name)?;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close =
            rest[open..].find('}').ok_or_else(|| anyhow!("study.md template: unclosed {{ in {name}"))?;
        let key = &rest[open + 1..open + close];
        let value = vars
            .iter()
            .find(|(k, _)| *k == key)
            .ok_or_else(|| anyhow!("study.md template: no value for {{{key}}} in {name}"))?;
        out.push_str(&value.1);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn pct_list(v: &[f64]) -> String {
    v.iter().map(|p| format!("{p:.0}")).collect::<Vec<_>>().join(" / ")
}

/// study.md: the setup, steps to the target per variant, per-layer figures, and what they say.
pub fn report(cfg: &StudyConfig, results: &[VariantResult]) -> Result<String> {
    let zero = zero_output_loss(cfg)?;
    let mut s = block("title")?.to_string();
    s += &setup(cfg)?;
    s += &steps_table(cfg, results)?;
    let what = match cfg.loss {
        Loss::CrossEntropy => block("zero_cross_entropy_")?,
        Loss::Mse => block("zero_mse_")?,
        Loss::HalfSse => block("zero_half_sse_")?,
    };
    s += &fill("zero_output", &[("what", what.into()), ("zero", format!("{zero:.3e}"))])?;
    s += &layer_tables(cfg, results)?;
    s += block("figures")?;
    let by = |name: &str| results.iter().find(|r| r.variant.name == name);
    if let (Some(large), Some(xavier)) = (by(VARIANTS[0].name), by(VARIANTS[1].name)) {
        s += &reading(cfg, results, large, xavier)?;
        if let (Some(lv), Some(xv)) = (large.validation, xavier.validation) {
            let worst_fix = results
                .iter()
                .filter(|r| r.variant.role == Role::Fix)
                .filter_map(|r| r.validation.map(|v| v.loss))
                .fold(f64::NAN, f64::max);
            let verdict = if lv.loss > worst_fix { "carries_over_worse_" } else { "no_worse_" };
            s += &fill(
                "held_out",
                &[
                    ("validation", cfg.validation.to_string()),
                    ("saturated_loss", format!("{:.3e}", lv.loss)),
                    ("xavier_loss", format!("{:.3e}", xv.loss)),
                    ("worst_fix", format!("{worst_fix:.3e}")),
                    ("zero", format!("{zero:.3e}")),
                    ("verdict", block(verdict)?.into()),
                ],
            )?;
        }
    }
    if let (Some(sig), Some(relu), Some(tanh)) =
        (by("sigmoid, torch init"), by("relu, He"), by("tanh, torch init"))
    {
        let ratio0 = |r: &VariantResult| {
            let g = r.grad_norms(0);
            format!("{:.1e}", g[0] / g[g.len() - 1])
        };
        s += &fill("sigmoid", &[("sigmoid", ratio0(sig)), ("tanh", ratio0(tanh)), ("relu", ratio0(relu))])?;
    }
    s.push('\n');
    s += SETTINGS_TRIED;
    Ok(s)
}

/// The paragraph on the setup.
fn setup(cfg: &StudyConfig) -> Result<String> {
    let bottleneck = match cfg.bottleneck {
        0 => String::new(),
        n => fill("bottleneck_", &[("units", n.to_string())])?,
    };
    let held = match cfg.validation {
        0 => String::new(),
        n => fill("held_", &[("validation", n.to_string())])?,
    };
    fill(
        "setup",
        &[
            ("arch", arch(cfg)),
            ("hidden", cfg.hidden.to_string()),
            ("width", cfg.width.to_string()),
            ("bottleneck", bottleneck),
            ("dataset", cfg.dataset.clone()),
            ("samples", cfg.samples.to_string()),
            ("held", held),
            ("lr", cfg.lr.to_string()),
            ("loss", loss_words(cfg.loss).into()),
            ("seed", cfg.seed.to_string()),
            ("steps", cfg.steps.to_string()),
            ("sat", cfg.saturation.to_string()),
            ("lo", format!("{:.2}", 1.0 - cfg.saturation)),
        ],
    )
}

/// The steps to the target, per variant.
fn steps_table(cfg: &StudyConfig, results: &[VariantResult]) -> Result<String> {
    let slow = slowdown(results, cfg.target);
    let target = format!("{:.0e}", cfg.target);
    let held_column = match (cfg.validation, cfg.loss) {
        (0, _) => block("held_column_none_")?.to_string(),
        (n, Loss::CrossEntropy) => fill("held_column_classes_", &[("validation", n.to_string())])?,
        (n, _) => fill("held_column_", &[("validation", n.to_string())])?,
    };
    let end = (cfg.steps - 1).to_string();
    let mut s = fill("steps_heading", &[("target", target), ("end", end), ("held_column", held_column)])?;
    let best = slow.best.map(|(_, b)| b);
    for r in results {
        let times = match (r.steps_to(cfg.target), best) {
            (Some(x), Some(b)) => format!("{:.1}", x.max(1) as f64 / b.max(1) as f64),
            (None, Some(_)) if r.outcome.non_finite.manual.is_some() => "–".into(),
            (None, Some(b)) => format!("> {:.1}", r.outcome.records.len() as f64 / b.max(1) as f64),
            _ => "–".into(),
        };
        let o = &r.outcome;
        let held = match r.validation {
            Some(v) => {
                format!(
                    "{:.3e}{}",
                    v.loss,
                    v.accuracy.map_or(String::new(), |a| format!(", {:.1}%", 100.0 * a))
                )
            }
            None => "–".into(),
        };
        s += &fill(
            "steps_row",
            &[
                ("name", r.variant.name.into()),
                ("role", role_word(r.variant.role).into()),
                ("steps", steps_text(r, cfg.target)),
                ("times", times),
                ("first_loss", format!("{:.3e}", o.records[0].manual_loss)),
                ("final_loss", format!("{:.3e}", r.final_loss())),
                ("held", held),
                ("check", check_text(o)),
                ("largest", format!("{:.2}", o.max_ratio.grad.max(o.max_ratio.weight).max(o.max_ratio.loss))),
            ],
        )?;
    }
    Ok(s)
}

/// The per-hidden-layer table and the gradient norms per layer.
fn layer_tables(cfg: &StudyConfig, results: &[VariantResult]) -> Result<String> {
    let end = (cfg.steps - 1).to_string();
    let mut s = fill("layers_heading", &[("end", end.clone())])?;
    for r in results {
        let hidden = r.start.z.len();
        let dead = |d: &Diagnostics| {
            (1..=hidden)
                .map(|k| d.dead_units(r.variant.phi, k, cfg.saturation).to_string())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let last = r.outcome.records.len() - 1;
        s += &fill(
            "layers_row",
            &[
                ("name", r.variant.name.into()),
                ("saturated_first", pct_list(&r.saturated(0))),
                ("saturated_last", pct_list(&r.saturated(last))),
                ("dead_first", dead(&r.start)),
                ("dead_last", dead(&r.end)),
                (
                    "grad_data",
                    (1..=hidden)
                        .map(|k| format!("{:.1e}", r.start.grad_data(k)))
                        .collect::<Vec<_>>()
                        .join(" / "),
                ),
                (
                    "moved",
                    r.hidden_change()
                        .iter()
                        .map(|c| format!("{:.1}%", 100.0 * c))
                        .collect::<Vec<_>>()
                        .join(" / "),
                ),
            ],
        )?;
    }
    s += &fill("norms_heading", &[("end", end)])?;
    for r in results {
        let fmt = |v: Vec<f64>| v.iter().map(|g| format!("{g:.1e}")).collect::<Vec<_>>().join(", ");
        let last = r.outcome.records.len() - 1;
        s += &fill(
            "norms_row",
            &[
                ("name", r.variant.name.into()),
                ("first", fmt(r.grad_norms(0))),
                ("last", fmt(r.grad_norms(last))),
            ],
        )?;
    }
    Ok(s)
}

/// "Reading the numbers" on the saturated network (`large`) against Xavier's: the saturated
/// share, the signal that reaches the hidden layers, and what the loss shows.
fn reading(
    cfg: &StudyConfig,
    results: &[VariantResult],
    large: &VariantResult,
    xavier: &VariantResult,
) -> Result<String> {
    let sat = cfg.saturation;
    let m = |v: Vec<f64>| mean(&v);
    let last = large.outcome.records.len() - 1;
    let mut s = fill(
        "saturated_tails",
        &[
            ("saturated_first", format!("{:.0}", m(large.saturated(0)))),
            ("xavier_first", format!("{:.0}", m(xavier.saturated(0)))),
            ("saturated_last", format!("{:.0}", m(large.saturated(last)))),
            ("dphi", format!("{:.2}", 1.0 - sat * sat)),
            ("sat", sat.to_string()),
            ("moved", format!("{:.1}", 100.0 * m(large.hidden_change()))),
            ("xavier_moved", format!("{:.1}", 100.0 * m(xavier.hidden_change()))),
        ],
    )?;
    let layers_mean = |r: &VariantResult, f: &dyn Fn(&Diagnostics, usize) -> f64| {
        let n = r.start.z.len();
        (1..=n).map(|k| f(&r.start, k)).sum::<f64>() / n as f64
    };
    let dz = |d: &Diagnostics, k: usize| std_dev(d.dz[k - 1].as_slice());
    let gd = |d: &Diagnostics, k: usize| d.grad_data(k);
    let removed = layers_mean(large, &gd) < 0.3 * layers_mean(xavier, &gd);
    s += &fill(
        "signal",
        &[
            ("dz", format!("{:.1e}", layers_mean(large, &dz))),
            ("xavier_dz", format!("{:.1e}", layers_mean(xavier, &dz))),
            ("grad_data", format!("{:.1e}", layers_mean(large, &gd))),
            ("xavier_grad_data", format!("{:.1e}", layers_mean(xavier, &gd))),
            ("reading", block(if removed { "signal_removed_" } else { "signal_offset_" })?.into()),
        ],
    )?;
    s += &what_the_loss_shows(cfg, results, large)?;
    Ok(s)
}

/// The paragraph on the slowdown of the saturated network (`large`), worded by whether it could be
/// measured in this run.
fn what_the_loss_shows(
    cfg: &StudyConfig,
    results: &[VariantResult],
    large: &VariantResult,
) -> Result<String> {
    let slow: Slowdown = slowdown(results, cfg.target);
    let target = format!("{:.0e}", cfg.target);
    let tanh_fixes = results
        .iter()
        .filter(|r| r.variant.role == Role::Fix && r.variant.phi == Activation::Tanh)
        .map(|r| format!("{} {}", r.variant.name, reach(r, cfg.target)))
        .collect::<Vec<_>>()
        .join("; ");
    let common = [
        ("slowdown", slowdown_text(&slow)),
        ("steps", cfg.steps.to_string()),
        ("target", target.clone()),
        ("reach", reach(large, cfg.target)),
        ("final_loss", format!("{:.3e}", large.final_loss())),
        ("fixes", tanh_fixes),
    ];
    if slow.ratio >= 5.0 {
        let best = match slow.best {
            Some((name, b)) => fill(
                "best_fix_",
                &[("name", name.into()), ("target", target.clone()), ("steps", b.to_string())],
            )?,
            None => String::new(),
        };
        let took = match slow.saturated {
            Some(x) => fill("takes_", &[("steps", x.to_string())])?,
            None => fill("does_not_reach_", &[("steps", cfg.steps.to_string())])?,
        };
        let why = match cfg.bottleneck {
            0 => block("why_features_")?.to_string(),
            n => {
                let units = if n == 1 {
                    block("one_unit_")?.to_string()
                } else {
                    fill("units_", &[("units", n.to_string())])?
                };
                fill("why_bottleneck_", &[("units", units)])?
            }
        };
        let mut vars = common.to_vec();
        vars.extend([("best", best), ("took", took), ("why", why)]);
        fill("loss_shows", &vars)
    } else if slow.best.is_none() {
        fill("no_fix", &common)
    } else if slow.at_least {
        fill("too_short", &common)
    } else {
        fill("hardly_shows", &common)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_the_report_uses_is_in_the_template_and_fills() {
        let code = include_str!("report.rs");
        let mut names = Vec::new();
        for call in ["block(\"", "fill(\"", "{ \"", "else { \""] {
            for (i, _) in code.match_indices(call) {
                let rest = &code[i + call.len()..];
                let name = &rest[..rest.find('"').unwrap()];
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    names.push(name);
                }
            }
        }
        assert!(names.len() > 30, "{names:?}");
        for name in names {
            assert!(block(name).is_ok(), "no block {name}");
        }
        let filled = fill("takes_", &[("steps", "12".into())]).unwrap();
        assert_eq!(filled, "takes 12");
        assert!(fill("takes_", &[]).is_err(), "a placeholder without a value is an error");
        assert!(block("title").unwrap().ends_with("\n\n"), "a block keeps its blank lines");
    }
}
