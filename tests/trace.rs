//! The safetensors trace: what it holds, that its config reproduces the run byte for byte, and
//! that real PyTorch can load and replay it.
#![cfg(feature = "torch")]

mod common;

use backprop::{Activation, Loss, Matrix, Mlp, Params, Spec};
use common::{replay_in_pytorch, report, run_compare as compare, temp_dir};
use safetensors::SafeTensors;

fn f64s(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f64>) {
    let t = st.tensor(name).unwrap_or_else(|_| panic!("trace lacks {name}"));
    assert_eq!(t.dtype(), safetensors::Dtype::F64, "{name}");
    let v = t.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    (t.shape().to_vec(), v)
}

fn indices(st: &SafeTensors, name: &str) -> Vec<usize> {
    let t = st.tensor(name).unwrap();
    assert_eq!(t.dtype(), safetensors::Dtype::I64);
    t.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize).collect()
}

/// W{k}, b{k} (or, with `grads`, dW{k}, db{k}) under `prefix`, for k = 1..depth.
fn params_at(st: &SafeTensors, prefix: &str, depth: usize, grads: bool) -> Params<f64> {
    let (w, b) = if grads { ("dW", "db") } else { ("W", "b") };
    let layers = (1..=depth)
        .map(|k| {
            let (shape, wv) = f64s(st, &format!("{prefix}.{w}{k}"));
            let (_, bv) = f64s(st, &format!("{prefix}.{b}{k}"));
            backprop::Layer { w: Matrix::from_vec(shape[0], shape[1], wv), b: Some(bv) }
        })
        .collect();
    Params { layers }
}

const FLAGS: &[&str] = &[
    "--layers",
    "3,5,4,2",
    "--activations",
    "tanh,sigmoid,identity",
    "--dataset",
    "teacher",
    "--samples",
    "40",
    "--batch-size",
    "16",
    "--steps",
    "12",
    "--lr",
    "0.05",
    "--seed",
    "9",
    "--trace",
];

#[test]
fn the_trace_holds_exactly_what_was_computed() {
    let dir = temp_dir("trace-content");
    let (code, out, err) = compare(&dir, FLAGS);
    assert_eq!(code, 0, "{out}{err}");
    let bytes = std::fs::read(dir.join("trace.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (x_shape, x) = f64s(&st, "x");
    let (y_shape, y) = f64s(&st, "y");
    assert_eq!((x_shape.clone(), y_shape.clone()), (vec![40, 3], vec![40, 2]));
    let (x, y) = (Matrix::from_vec(40, 3, x), Matrix::from_vec(40, 2, y));
    let spec = Spec::new(vec![3, 5, 4, 2], vec![Activation::Tanh, Activation::Sigmoid, Activation::Identity])
        .unwrap()
        .with_loss(Loss::HalfSse);

    // Replay the manual steps with the literal form, from init and the recorded batches.
    let mut mlp = Mlp::<f64>::with_params(spec, params_at(&st, "init", 3, false)).unwrap();
    let (_, manual_loss) = f64s(&st, "manual.loss");
    let (_, torch_loss) = f64s(&st, "torch.loss");
    assert_eq!(manual_loss.len(), 12);
    let mut seen = vec![0usize; 40];
    for t in 0..12 {
        let idx = indices(&st, &format!("batch.{t}"));
        assert!(idx.len() == 16 || idx.len() == 8, "step {t}: batch of {}", idx.len());
        idx.iter().for_each(|&i| seen[i] += 1);
        let mut xb = Matrix::zeros(idx.len(), 3);
        let mut yb = Matrix::zeros(idx.len(), 2);
        xb.gather_rows(&x, &idx);
        yb.gather_rows(&y, &idx);
        let (loss, grads) = mlp.gradients_literal(&xb, &yb);
        assert!((loss - manual_loss[t]).abs() <= 1e-12 * loss.abs(), "step {t} loss");
        assert!((torch_loss[t] - manual_loss[t]).abs() <= 1e-12 * loss.abs(), "step {t} torch loss");
        let rec = params_at(&st, &format!("manual.step{t}"), 3, true);
        let tor = params_at(&st, &format!("torch.step{t}"), 3, true);
        for (a, b) in [(&grads, &rec), (&grads, &tor)] {
            let d = a.flat().iter().zip(b.flat()).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
            assert!(d <= 1e-12, "step {t}: gradient differs by {d}");
        }
        mlp.sgd_step(&grads, 0.05);
        let w = params_at(&st, &format!("manual.step{t}"), 3, false);
        let d = w.flat().iter().zip(mlp.params().flat()).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
        assert!(d <= 1e-13, "step {t}: updated weights differ by {d}");
        assert!(st.tensor(&format!("torch_free.step{t}.W3")).is_ok());
    }
    // 12 batches of 16 from a 40-sample set: epochs 1 and 2 cover every sample twice, a third partly.
    assert!(seen.iter().all(|&c| c >= 2), "every sample seen in every epoch: {seen:?}");
}

/// Flags that repeat a run, read back from a trace's `config` metadata.
fn flags_from_config(config: &serde_json::Value) -> Vec<String> {
    let join = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e.to_string().trim_matches('"').to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut f = vec![
        "--layers".into(),
        join(&config["layers"]),
        "--activations".into(),
        join(&config["activations"]),
        "--loss".into(),
        config["loss"].as_str().unwrap().into(),
        "--lr".into(),
        config["lr"].to_string(),
        "--steps".into(),
        config["steps"].to_string(),
        "--batch-size".into(),
        config["batch_size"].to_string(),
        "--dtype".into(),
        config["dtype"].as_str().unwrap().into(),
        "--init".into(),
        config["init"].as_str().unwrap().into(),
        "--seed".into(),
        config["seed"].to_string(),
        "--dataset".into(),
        config["dataset"].as_str().unwrap().into(),
        "--samples".into(),
        config["samples"].to_string(),
        "--trace".into(),
    ];
    if config["bias"] == false {
        f.push("--no-bias".into());
    }
    f
}

#[test]
fn a_traces_config_reproduces_the_run_byte_for_byte() {
    let first = temp_dir("trace-repro-1");
    let second = temp_dir("trace-repro-2");
    let (code, ..) = compare(&first, FLAGS);
    assert_eq!(code, 0);
    let bytes = std::fs::read(first.join("trace.safetensors")).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(meta.metadata().as_ref().unwrap().get("config").unwrap()).unwrap();
    assert_eq!(config, report(&first)["config"]);
    let flags = flags_from_config(&config);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, ..) = compare(&second, &flags);
    assert_eq!(code, 0);
    for file in ["trace.safetensors", "report.json", "metrics.csv"] {
        assert!(
            std::fs::read(first.join(file)).unwrap() == std::fs::read(second.join(file)).unwrap(),
            "{file} differs between two runs of the same flags"
        );
    }
}

#[test]
fn pytorch_loads_and_replays_a_fresh_trace() {
    for dtype in ["f64", "f32"] {
        let dir = temp_dir(&format!("trace-python-{dtype}"));
        let mut flags = FLAGS.to_vec();
        flags.extend(["--dtype", dtype, "--loss", "mse"]);
        let (code, ..) = compare(&dir, &flags);
        assert_eq!(code, 0);
        let (ok, text) = replay_in_pytorch(&dir.join("trace.safetensors"));
        assert!(ok, "replay_trace.py failed:\n{text}");
        assert!(text.contains("replayed 12 steps"), "{text}");
    }
}

/// PyTorch's own torch.optim and cross_entropy replay traces of every optimizer, and the manual
/// optimizer's state recorded in the trace matches torch.optim's.
#[test]
fn pytorch_replays_optimizer_and_cross_entropy_traces_with_their_state() {
    let optimizers: [&[&str]; 4] = [
        &["--optimizer", "adam", "--amsgrad", "--weight-decay", "0.01"],
        &["--optimizer", "adamw"],
        &["--optimizer", "rmsprop", "--centered", "--momentum", "0.5"],
        &["--optimizer", "sgd", "--momentum", "0.9", "--dampening", "0.1", "--weight-decay", "0.01"],
    ];
    for (i, opt) in optimizers.iter().enumerate() {
        let dtype = if i % 2 == 0 { "f64" } else { "f32" };
        let dir = temp_dir(&format!("trace-python-optim-{i}"));
        let mut flags = vec![
            "--layers",
            "2,8,8,2",
            "--dataset",
            "spirals",
            "--activations",
            "tanh,tanh,identity",
            "--loss",
            "cross-entropy",
            "--label-smoothing",
            "0.05",
            "--steps",
            "10",
            "--trace",
            "--dtype",
            dtype,
        ];
        flags.extend(opt.iter());
        let (code, out, err) = compare(&dir, &flags);
        assert_eq!(code, 0, "{out}{err}");
        let (ok, text) = replay_in_pytorch(&dir.join("trace.safetensors"));
        assert!(ok, "replay_trace.py failed:\n{text}");
        assert!(text.contains("replayed 10 steps") && text.contains("optimizer state tensors"), "{text}");
    }
}
