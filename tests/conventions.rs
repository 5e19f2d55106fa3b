//! Code written the way public numpy implementations write it, recorded with the Python recorder
//! and checked against libtorch: in-place updates, (η/m)·Σ∇ with a short last minibatch and
//! batches passed as (x, y), a mean loss, a learning-rate schedule, L2 on the weights only with a
//! mean cross-entropy (tests/python/user_nets.py). Each checks EQUIVALENT as written, and NOT
//! EQUIVALENT with its planted bug, at the step and layer of the bug. The recorder refuses the
//! common slips in one sentence naming the argument, and when a right run is mis-described `check`
//! names the likely cause.
#![cfg(feature = "torch")]

mod common;

use common::{python, replay_in_pytorch, report, temp_dir};
use std::path::{Path, PathBuf};

/// Records `scenario` (with `flags`) into `dir/trace.safetensors` by tests/python/user_nets.py.
fn record(scenario: &str, dir: &Path, flags: &[&str]) -> PathBuf {
    let trace = dir.join("trace.safetensors");
    let out = std::process::Command::new(python())
        .arg(format!("{}/tests/python/user_nets.py", env!("CARGO_MANIFEST_DIR")))
        .arg(scenario)
        .arg(&trace)
        .args(flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "{scenario} {flags:?}: {}", String::from_utf8_lossy(&out.stderr));
    trace
}

/// `check TRACE --out DIR --quiet`: (exit status, stdout and stderr together).
fn check(trace: &Path, dir: &Path) -> (i32, String) {
    let (code, out, err) = common::run_check(trace, dir, &[]);
    (code, out + &err)
}

/// Right: EQUIVALENT (and PyTorch's own replay agrees); the planted bug: NOT EQUIVALENT, first
/// diverging at `step`, `layer`, one of `tensors`.
fn judged(scenario: &str, step: u64, layer: u64, tensors: &[&str]) {
    judged_with(scenario, &[], step, layer, tensors);
}

/// [`judged`], the scenario recorded with `flags`.
fn judged_with(scenario: &str, flags: &[&str], step: u64, layer: u64, tensors: &[&str]) {
    let name = format!("{scenario}{}", flags.concat());
    let dir = temp_dir(&format!("conv-{name}"));
    let trace = record(scenario, &dir, flags);
    let (code, out) = check(&trace, &dir);
    assert_eq!(code, 0, "{name}: {out}");
    assert_eq!(report(&dir)["verdict"], "equivalent");
    if flags.is_empty() {
        let (ok, replay) = replay_in_pytorch(&trace);
        assert!(ok, "{name}: PyTorch's replay: {replay}");
    }

    let dir = temp_dir(&format!("conv-{name}-mistake"));
    let trace = record(scenario, &dir, &[flags, &["--mistake"]].concat());
    let (code, out) = check(&trace, &dir);
    assert_eq!(code, 1, "{name} --mistake: {out}");
    let d = &report(&dir)["first_divergence"];
    assert_eq!((d["step"].as_u64(), d["layer"].as_u64()), (Some(step), Some(layer)), "{name}: {out}");
    assert!(tensors.contains(&d["tensor"].as_str().unwrap()), "{name}: {d}");
    assert!(!out.contains("likely cause"), "a bug in the backprop is no mis-description: {out}");
}

#[test]
fn nielsen_in_place_mean_step_short_last_batch_and_xy_batches() {
    judged("nielsen", 0, 1, &["dW", "db"]);
}

/// The same run recording its gradients alone: each step starts from the weights the one before
/// moved by its own lr (η/m, m = 4 at the short last batch), and the bug is still named at step 0.
#[test]
fn nielsen_gradients_only_with_a_short_last_batch() {
    judged_with("nielsen", &["--grads-only"], 0, 1, &["dW", "db"]);
}

#[test]
fn a_mean_loss_with_a_short_last_batch() {
    judged("mean", 0, 2, &["dW"]);
}

#[test]
fn a_learning_rate_schedule_given_per_step() {
    judged("schedule", 1, 2, &["W"]);
}

#[test]
fn l2_on_the_weights_only_with_a_mean_cross_entropy() {
    judged("l2", 0, 2, &["db"]);
}

#[test]
fn torch_layout_weights_in_place() {
    judged("square", 0, 1, &["dW", "db"]);
}

/// The recorder's slips: each refused in one sentence that names the argument to change, and no
/// file written for the save into a missing folder.
#[test]
fn the_recorder_refuses_slips_in_one_sentence_each() {
    let dir = temp_dir("conv-slips");
    let out = std::process::Command::new(python())
        .arg(format!("{}/tests/python/user_nets.py", env!("CARGO_MANIFEST_DIR")))
        .arg("slips")
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let line =
        |name: &str| text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {text}"));
    for (name, names) in [
        ("one activation name", "activations: give one name per layer"),
        ("torch layout", "pass layout='torch'"),
        ("boolean mask", "np.flatnonzero(mask)"),
        ("reused recorder", "make a new Recorder"),
        ("missing folder", "does not exist"),
    ] {
        let l = line(name);
        assert!(!l.contains("ACCEPTED") && l.contains(names), "{l}");
    }
}

/// A right run described wrongly: step 0 disagrees, and `check` prints one `likely cause` line
/// naming the recorder argument.
#[test]
fn a_misdescribed_run_gets_its_likely_cause() {
    for (scenario, slip, cause) in [
        ("mean", "reduction", "reduction=\"mean\""),
        ("nielsen", "activation", "activations=[\"sigmoid\", \"sigmoid\"]"),
        ("nielsen", "lr", "lr/8"),
        ("square", "layout", "layout=\"torch\""),
    ] {
        let dir = temp_dir(&format!("conv-slip-{slip}"));
        let trace = record(scenario, &dir, &[&format!("--slip={slip}")]);
        let (code, out) = check(&trace, &dir);
        assert_eq!(code, 1, "{slip}: {out}");
        let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("likely cause: ")).collect();
        assert!(lines.len() == 1 && lines[0].contains(cause), "{slip}: {out}");
    }
}

/// `Recorder.check()` saves the trace, runs `check` and returns its result: the verdict, the exit
/// status, the first divergence and the report's path.
#[test]
fn recorder_check_returns_the_verdict() {
    for (mistake, want) in [
        (false, "verdict=equivalent code=0 ok=True report=True saved=True divergence=None"),
        (true, "verdict=not-equivalent code=1 ok=False report=True saved=True divergence=(1, 2, 'W')"),
    ] {
        let dir = temp_dir(&format!("conv-selfcheck-{mistake}"));
        let mut cmd = std::process::Command::new(python());
        cmd.arg(format!("{}/tests/python/user_nets.py", env!("CARGO_MANIFEST_DIR")))
            .arg("selfcheck")
            .arg(&dir)
            .env("BACKPROP_CHECK", env!("CARGO_BIN_EXE_check"));
        if mistake {
            cmd.arg("--mistake");
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(text.trim(), want);
    }
}

/// The README's newcomer path: `scripts/python` (the setup's Python, with `python/` on its path)
/// runs the numpy example from another directory, and the example finds this repository's `check`
/// by itself.
#[test]
fn the_numpy_example_runs_from_any_directory_with_scripts_python() {
    let dir = temp_dir("conv-newcomer");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(format!("{root}/scripts/python"))
        .arg(format!("{root}/examples/python/sheet_numpy.py"))
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("EQUIVALENT"), "{text}");
    assert_eq!(report(&dir.join("out/numpy"))["verdict"], "equivalent");
}

/// A trace whose conventions cannot be checked is refused in one line naming the field, exit 2,
/// and nothing is written.
#[test]
fn conventions_that_cannot_be_checked_are_refused_in_one_line() {
    let dir = temp_dir("conv-refused");
    let script = format!(
        r#"
import json
import numpy as np
from safetensors.numpy import save_file
base = {{"x": np.zeros((4, 2)), "y": np.zeros((4, 1)), "init.W1": np.ones((2, 1)),
        "batch.0": np.array([0, 1], dtype=np.int64), "manual.loss": np.array([0.0])}}
cfg = {{"layers": [2, 1], "activations": ["identity"], "bias": False, "loss": "half-sse", "lr": 0.1, "dtype": "f64"}}
cases = {{"mse": ({{"reduction": "mean", "loss": "mse"}}, {{}}), "avg": ({{"reduction": "avg"}}, {{}}),
         "l2": ({{"l2": -1}}, {{}}), "adam": ({{"optimizer": "adam", "reduction": "mean"}}, {{}}),
         "lr32": ({{}}, {{"lr": np.array([0.1], dtype=np.float32)}})}}
for name, (extra, tensors) in cases.items():
    save_file({{**base, **tensors}}, "{dir}/" + name + ".safetensors", metadata={{"config": json.dumps({{**cfg, **extra}})}})
"#,
        dir = dir.display()
    );
    let out = std::process::Command::new(python()).arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (name, says) in [
        ("mse", "config.reduction: \"mean\" applies to loss half-sse only"),
        ("avg", "config.reduction must be"),
        ("l2", "config.l2 must be a finite number >= 0"),
        ("adam", "config.reduction \"mean\" is checked with plain SGD only"),
        ("lr32", "lr must be an f64 vector"),
    ] {
        let report_dir = dir.join(format!("out-{name}"));
        let (code, text) = check(&dir.join(format!("{name}.safetensors")), &report_dir);
        assert_eq!(code, 2, "{name}: {text}");
        assert!(text.lines().count() == 1 && text.contains(says), "{name}: {text}");
        assert!(!report_dir.join("report.json").exists(), "{name}: a report for a refused trace");
    }
}
