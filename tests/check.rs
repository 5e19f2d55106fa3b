//! `check` verifies a backpropagation written elsewhere from its trace: a trace `compare --trace`
//! wrote, partial traces (gradients only, a subset of steps, no loss), a numpy implementation of
//! the sheet's network recorded with nothing but numpy and safetensors — right, and with a mistake
//! in δ — and every trace that cannot be checked is refused in one line naming the tensor or field.
#![cfg(feature = "torch")]

mod common;

use common::{python, replay_in_pytorch, report, run_check as check, run_compare as compare, temp_dir};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A trace of `steps` f64 steps of the default network, written by `compare --trace`.
fn compare_trace(name: &str, steps: &str, extra: &[&str]) -> PathBuf {
    let dir = temp_dir(name);
    let mut args = vec!["--trace", "--steps", steps];
    args.extend(extra);
    let (code, out, err) = compare(&dir, &args);
    assert_eq!(code, 0, "{out}{err}");
    dir.join("trace.safetensors")
}

/// A trace's tensors (name → (dtype, shape, bytes)) and its config.
type Tensors = HashMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

fn load(path: &Path) -> (Tensors, serde_json::Value) {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let config = serde_json::from_str(&meta.metadata().as_ref().unwrap()["config"]).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensors = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect();
    (tensors, config)
}

fn save(path: &Path, tensors: &Tensors, config: Option<&serde_json::Value>) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let meta = config.map(|c| HashMap::from([("config".to_string(), c.to_string())]));
    std::fs::write(path, safetensors::serialize(views, &meta).unwrap()).unwrap();
}

/// `f64` values of a tensor, and back.
fn values(t: &(Dtype, Vec<usize>, Vec<u8>)) -> Vec<f64> {
    t.2.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}
fn set_values(t: &mut (Dtype, Vec<usize>, Vec<u8>), v: &[f64]) {
    t.2 = v.iter().flat_map(|x| x.to_le_bytes()).collect();
}

#[test]
fn a_trace_written_by_compare_checks_equivalent_in_f64_and_f32() {
    for dtype in ["f64", "f32"] {
        let trace = compare_trace(&format!("check-own-{dtype}"), "20", &["--dtype", dtype]);
        let dir = temp_dir(&format!("check-own-out-{dtype}"));
        let (code, out, err) = check(&trace, &dir, &[]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.starts_with("EQUIVALENT: the trace"), "{out}");
        let r = report(&dir);
        assert_eq!(r["checked"], "20 steps (0..19): the loss, ∂E/∂W, ∂E/∂b, the updated weights");
        assert!(r["max_bound_ratio"]["grad"].as_f64().unwrap() <= 0.5);
        assert!(r["drift"].is_null());
        for png in ["loss.png", "equivalence.png", "grad_norms.png"] {
            common::assert_picture(&dir.join(png), backprop::plot::WIDTH, backprop::plot::HEIGHT);
        }
        let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        assert_eq!(metrics.lines().count(), 21);
    }
}

#[test]
fn partial_traces_are_checked_for_what_they_record() {
    let trace = compare_trace("check-partial", "12", &[]);
    let (all, config) = load(&trace);
    let dir = temp_dir("check-partial-out");
    type Keep = Box<dyn Fn(&str) -> bool>;
    let cases: [(&str, Keep, &str); 3] = [
        (
            "gradients only",
            Box::new(|n: &str| !(n.contains(".W") || n.contains(".b")) || n.starts_with("init.")),
            "12 steps (0..11): the loss, ∂E/∂W, ∂E/∂b",
        ),
        (
            "no loss",
            Box::new(|n: &str| n != "manual.loss"),
            "12 steps (0..11): ∂E/∂W, ∂E/∂b, the updated weights",
        ),
        (
            "the first 5 steps",
            Box::new(|n: &str| {
                let step = n.split("step").nth(1).or_else(|| n.strip_prefix("batch."));
                step.and_then(|s| s.split('.').next())
                    .and_then(|s| s.parse::<usize>().ok())
                    .is_none_or(|t| t < 5)
            }),
            "5 steps (0..4): the loss, ∂E/∂W, ∂E/∂b, the updated weights",
        ),
    ];
    for (what, keep, checked) in cases {
        let kept: Tensors =
            all.iter().filter(|(n, _)| keep(n)).map(|(n, t)| (n.clone(), t.clone())).collect();
        let path = dir.join("partial.safetensors");
        save(&path, &kept, Some(&config));
        let (code, out, err) = check(&path, &dir, &[]);
        assert_eq!(code, 0, "{what}: {out}{err}");
        assert_eq!(report(&dir)["checked"], checked, "{what}");
    }
    // A planted error in a recorded gradient: caught at its step and layer.
    let mut bad = all.clone();
    let g = bad.get_mut("manual.step7.dW2").unwrap();
    let mut v = values(g);
    v[3] *= 1.0 + 1e-9;
    set_values(g, &v);
    let path = dir.join("bad.safetensors");
    save(&path, &bad, Some(&config));
    let (code, out, _) = check(&path, &dir, &[]);
    assert_eq!(code, 1, "{out}");
    let d = &report(&dir)["first_divergence"];
    assert_eq!(
        (d["step"].as_u64(), d["layer"].as_u64(), d["tensor"].as_str()),
        (Some(7), Some(2), Some("dW"))
    );
}

#[test]
fn traces_that_cannot_be_checked_are_refused_naming_the_tensor_or_field() {
    let trace = compare_trace("check-bad", "8", &[]);
    let (all, config) = load(&trace);
    let dir = temp_dir("check-bad-out");
    type Edit = Box<dyn Fn(&mut Tensors, &mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|t, _| drop(t.remove("init.W2"))), "no tensor init.W2"),
        (
            Box::new(|t, _| {
                let g = t.get_mut("manual.step3.dW1").unwrap();
                g.1 = vec![16, 1];
            }),
            "manual.step3.dW1 has shape [16, 1]",
        ),
        (Box::new(|_, c| c["layers"] = serde_json::json!([1, 8, 16, 1])), "init.W1 has shape"),
        (Box::new(|_, c| c["layers"] = serde_json::json!([2, 16, 16, 1])), "x has shape"),
        (
            Box::new(|_, c| c["activations"] = serde_json::json!(["tanh", "tahn", "identity"])),
            "config.activations[1]",
        ),
        (Box::new(|_, c| c["loss"] = serde_json::json!("l1")), "config.loss"),
        (Box::new(|_, c| c["dtype"] = serde_json::json!("f32")), "config.dtype says f32"),
        (Box::new(|_, c| drop(c.as_object_mut().unwrap().remove("lr"))), "config has no field \"lr\""),
        (Box::new(|_, c| c["bias"] = serde_json::json!(false)), "config.bias is false"),
        (
            Box::new(|t, _| {
                let b = t.get_mut("batch.2").unwrap();
                b.2[..8].copy_from_slice(&9999i64.to_le_bytes());
            }),
            "batch.2: index 9999 is out of range",
        ),
        (
            Box::new(|t, _| t.retain(|n, _| !(n == "batch.4" || n.starts_with("manual.step4.")))),
            "step 5 starts from weights the trace does not record",
        ),
        (
            Box::new(|t, _| t.retain(|n, _| !n.starts_with("manual.step4.") || n.contains("dW1"))),
            "no tensor manual.step4.db1",
        ),
        (Box::new(|t, _| t.retain(|n, _| !n.starts_with("batch."))), "no tensor batch.0"),
    ];
    for (i, (edit, needle)) in cases.iter().enumerate() {
        let (mut t, mut c) = (all.clone(), config.clone());
        edit(&mut t, &mut c);
        let path = dir.join(format!("bad{i}.safetensors"));
        save(&path, &t, Some(&c));
        let (code, out, err) = check(&path, &dir, &[]);
        assert_eq!(code, 2, "case {i} ({needle}): {out}{err}");
        assert_eq!(err.lines().count(), 1, "case {i}: {err}");
        assert!(err.contains(needle), "case {i}: expected {needle:?} in {err}");
    }
    // No config at all, and a file that is not a trace.
    let path = dir.join("noconfig.safetensors");
    save(&path, &all, None);
    let (code, _, err) = check(&path, &dir, &[]);
    assert!(code == 2 && err.contains("no metadata key \"config\""), "{err}");
    let path = dir.join("junk.safetensors");
    std::fs::write(&path, b"not a trace").unwrap();
    let (code, _, err) = check(&path, &dir, &[]);
    assert!(code == 2 && err.contains("not a safetensors file"), "{err}");
    assert!(!dir.join("report.json").exists(), "nothing written for a refused trace");
}

/// The setup's Python (numpy, safetensors; torch is there too, but the recorder does not use it).
/// Runs `examples/python/NAME` (with `--mistake` when asked), which records its trace into `dir`
/// and checks it with this build's `check`: (exit status, stdout and stderr).
fn run_example(name: &str, dir: &Path, mistake: bool) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(python());
    cmd.arg(format!("{}/examples/python/{name}", env!("CARGO_MANIFEST_DIR")))
        .arg("--out")
        .arg(dir)
        .arg("--check")
        .arg(env!("CARGO_BIN_EXE_check"));
    if mistake {
        cmd.arg("--mistake");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn a_numpy_backprop_recorded_in_python_is_judged_right_and_its_mistake_named() {
    for (mistake, code_want) in [(false, 0), (true, 1)] {
        let dir = temp_dir(&format!("check-numpy-{mistake}"));
        let (code, stdout) = run_example("sheet_numpy.py", &dir, mistake);
        assert_eq!(code, Some(code_want), "{stdout}");
        let r = report(&dir);
        if mistake {
            let d = &r["first_divergence"];
            assert_eq!((d["step"].as_u64(), d["layer"].as_u64()), (Some(0), Some(1)), "{stdout}");
        } else {
            assert_eq!(r["verdict"], "equivalent", "{stdout}");
            assert_eq!(r["config"]["bias"], false);
        }
    }
}

#[test]
fn the_recorder_takes_torch_layout_and_refuses_what_does_not_fit() {
    let dir = temp_dir("check-recorder");
    let script = format!(
        r#"
import sys
sys.path.insert(0, "{root}/python")
import numpy as np
from backprop_trace import Recorder
rng = np.random.default_rng(1)
x, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))
W = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2))]
b = [rng.normal(size=4), rng.normal(size=2)]
def grads(W, b, idx):
    z1 = np.tanh(x[idx] @ W[0] + b[0]); out = z1 @ W[1] + b[1]
    d2 = out - y[idx]; d1 = (1 - z1 ** 2) * (d2 @ W[1].T)
    return 0.5 * np.sum(d2 ** 2), [x[idx].T @ d1, z1.T @ d2], [d1.sum(0), d2.sum(0)]
for layout, path in (("sheet", "{dir}/sheet.safetensors"), ("torch", "{dir}/torch.safetensors")):
    T = (lambda m: m.T) if layout == "torch" else (lambda m: m)
    rec = Recorder([3, 4, 2], ["tanh", "identity"], x, y, [T(w) for w in W], b, lr=0.05, layout=layout)
    Wt, bt = [w.copy() for w in W], [v.copy() for v in b]
    for t in range(3):
        idx = np.arange(t, t + 5)
        E, dW, db = grads(Wt, bt, idx)
        Wt = [w - 0.05 * g for w, g in zip(Wt, dW)]; bt = [v - 0.05 * g for v, g in zip(bt, db)]
        rec.step(idx, loss=E, dW=[T(g) for g in dW], db=db, W=[T(w) for w in Wt], b=bt)
    rec.save(path)
for bad in (lambda: Recorder([3, 4, 2], ["tanh", "identity"], x, y, [W[1], W[0]], b, lr=0.1),
            lambda: Recorder([3, 4, 2], ["tanh", "tahn"], x, y, W, b, lr=0.1),
            lambda: Recorder([3, 4, 2], ["tanh", "identity"], x, y, W, b, lr=0.1).step([0, 99])):
    try:
        bad(); sys.exit("accepted a bad input")
    except ValueError as e:
        print("refused:", e)
"#,
        root = env!("CARGO_MANIFEST_DIR"),
        dir = dir.display()
    );
    let out = std::process::Command::new(python()).arg("-c").arg(&script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("refused:").count(), 3, "{stdout}");
    for layout in ["sheet", "torch"] {
        let (code, out, err) = check(&dir.join(format!("{layout}.safetensors")), &dir, &[]);
        assert_eq!(code, 0, "{layout}: {out}{err}");
    }
    // Both layouts store the sheet's orientation: the same bytes.
    assert_eq!(
        load(&dir.join("sheet.safetensors")).0.get("manual.step2.W1"),
        load(&dir.join("torch.safetensors")).0.get("manual.step2.W1")
    );
}

/// Traces of runs with an optimizer and the cross-entropy: checked equivalent (libtorch's own
/// optimizer replays the steps, keeping its state); an updated weight off by 1e−9 is caught at its
/// step; a trace that leaves out weights the optimizer's state depends on is refused in one line.
#[test]
fn optimizer_traces_are_checked_and_gaps_in_their_state_refused() {
    let net = [
        "--layers",
        "2,8,8,2",
        "--dataset",
        "spirals",
        "--activations",
        "tanh,tanh,identity",
        "--loss",
        "cross-entropy",
    ];
    let optimizers: [&[&str]; 4] = [
        &["--optimizer", "adam", "--amsgrad"],
        &["--optimizer", "adamw"],
        &["--optimizer", "rmsprop", "--centered", "--momentum", "0.5"],
        &["--optimizer", "sgd", "--momentum", "0.9", "--nesterov", "--weight-decay", "0.01"],
    ];
    for (i, opt) in optimizers.iter().enumerate() {
        let mut extra = net.to_vec();
        extra.extend(opt.iter());
        if i == 1 {
            extra.extend(["--dtype", "f32", "--label-smoothing", "0.1"]);
        }
        let trace = compare_trace(&format!("check-optim-{i}"), "15", &extra);
        let dir = temp_dir(&format!("check-optim-out-{i}"));
        let (code, out, err) = check(&trace, &dir, &[]);
        assert_eq!(code, 0, "{opt:?}: {out}{err}");
        assert!(out.starts_with("EQUIVALENT: the trace"), "{out}");
        assert!(report(&dir)["max_bound_ratio"]["weight"].as_f64().unwrap() <= 0.5);
        if i != 0 {
            continue;
        }
        let (all, config) = load(&trace);
        let path = dir.join("bad.safetensors");
        // An updated weight off by a relative 1e−9: caught at its step, in W.
        let mut bad = all.clone();
        let w = bad.get_mut("manual.step6.W1").unwrap();
        let mut v = values(w);
        v[2] *= 1.0 + 1e-9;
        set_values(w, &v);
        save(&path, &bad, Some(&config));
        let (code, out, _) = check(&path, &dir, &[]);
        assert_eq!(code, 1, "{out}");
        let d = &report(&dir)["first_divergence"];
        assert_eq!(
            (d["step"].as_u64(), d["layer"].as_u64(), d["tensor"].as_str()),
            (Some(6), Some(1), Some("W"))
        );
        // Step 5 without its updated weights: step 6 cannot start (the gradient alone does not
        // give Adam's update).
        let gap: Tensors = all
            .iter()
            .filter(|(n, _)| !n.starts_with("manual.step5.W") && !n.starts_with("manual.step5.b"))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        save(&path, &gap, Some(&config));
        let (code, out, err) = check(&path, &dir, &[]);
        assert_eq!(code, 2, "{out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("step 6 starts from weights the trace does not record")
                && err.contains("optimizer's state"),
            "{err}"
        );
        // A trace that starts after step 0.
        let late: Tensors = all
            .iter()
            .filter(|(n, _)| {
                let step = n.split("step").nth(1).or_else(|| n.strip_prefix("batch."));
                step.and_then(|s| s.split('.').next())
                    .and_then(|s| s.parse::<usize>().ok())
                    .is_none_or(|t| t >= 3)
            })
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        save(&path, &late, Some(&config));
        let (code, _, err) = check(&path, &dir, &[]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("every step from 0"), "{err}");
    }
}

/// The numpy classifier with softmax cross-entropy and a hand-written Adam (and its optimizer state
/// recorded): right, it checks equivalent and PyTorch's replay matches its state; with Adam's bias
/// corrections left out, check names step 0 and the updated weights, while the gradients agree.
#[test]
fn a_numpy_adam_is_judged_right_and_its_missing_bias_correction_named() {
    for (mistake, code_want) in [(false, 0), (true, 1)] {
        let dir = temp_dir(&format!("check-adam-numpy-{mistake}"));
        let (code, stdout) = run_example("adam_numpy.py", &dir, mistake);
        assert_eq!(code, Some(code_want), "{stdout}");
        let r = report(&dir);
        assert_eq!(r["config"]["optimizer"], "adam");
        if mistake {
            let d = &r["first_divergence"];
            assert_eq!((d["step"].as_u64(), d["tensor"].as_str()), (Some(0), Some("W")), "{stdout}");
            assert!(r["failing"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| !f["name"].as_str().unwrap().starts_with('d')));
        } else {
            assert_eq!(r["verdict"], "equivalent", "{stdout}");
            let (ok, text) = replay_in_pytorch(&dir.join("trace.safetensors"));
            assert!(ok && text.contains("max exp_avg_sq error"), "{text}");
        }
    }
}

/// A recorded gradient that holds +∞ where libtorch's is finite is a disagreement (exit 1) at its
/// step, not an "agree until non-finite", whatever the weights after it hold; and a trace's
/// gradient off by 1e−13 normwise is caught by the double-double witness.
#[test]
fn a_non_finite_gradient_in_a_trace_is_a_disagreement() {
    let trace = compare_trace("check-inf", "5", &[]);
    let (all, config) = load(&trace);
    let dir = temp_dir("check-inf-out");
    let mut bad = all.clone();
    for name in ["manual.step2.dW2", "manual.step2.W2"] {
        let t = bad.get_mut(name).unwrap();
        let mut v = values(t);
        v[0] = f64::INFINITY;
        set_values(t, &v);
    }
    let path = dir.join("inf.safetensors");
    save(&path, &bad, Some(&config));
    let (code, out, err) = check(&path, &dir, &[]);
    assert_eq!(code, 1, "{out}{err}");
    let d = &report(&dir)["first_divergence"];
    assert_eq!((d["step"].as_u64(), d["layer"].as_u64()), (Some(2), Some(2)), "{out}");

    let mut small = all.clone();
    let t = small.get_mut("manual.step3.dW1").unwrap();
    let v: Vec<f64> = values(t).iter().map(|x| x * (1.0 + 1e-13)).collect();
    set_values(t, &v);
    let path = dir.join("small.safetensors");
    save(&path, &small, Some(&config));
    let (code, out, err) = check(&path, &dir, &[]);
    assert_eq!(code, 1, "{out}{err}");
    let r = report(&dir);
    let d = &r["first_divergence"];
    assert_eq!((d["step"].as_u64(), d["layer"].as_u64()), (Some(3), Some(1)), "{out}");
    assert_eq!(r["witness"]["method"], "double-double", "{r}");
}
