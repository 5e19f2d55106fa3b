//! The `compare` command end to end: the default run, fault injection, datasets, bad input.
#![cfg(feature = "torch")]

mod common;

use common::{assert_picture, report, run_compare as compare, temp_dir};

#[test]
fn default_run_is_equivalent_and_writes_every_file() {
    let dir = temp_dir("default");
    // Not --quiet: the console lists every file written.
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_compare")).arg("--out").arg(&dir).output().unwrap();
    let (code, stdout, stderr) = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("EQUIVALENT"), "{stdout}");
    let r = report(&dir);
    assert_eq!(r["equivalent"], true);
    assert_eq!(r["steps"], 1000);
    assert_eq!(r["config"]["layers"], serde_json::json!([1, 16, 16, 1]));
    assert!(r["first_divergence"].is_null());
    assert!(r["non_finite"]["manual"].is_null() && r["non_finite"]["torch"].is_null());
    assert_eq!(r["per_layer"].as_array().unwrap().len(), 3);
    let (m, t) = (r["final_loss"]["manual"].as_f64().unwrap(), r["final_loss"]["torch"].as_f64().unwrap());
    assert!((m - t).abs() <= 1e-8 * t.abs(), "final losses {m} vs {t}");
    for key in ["loss", "grad", "weight"] {
        let e = r["max_rel_err"][key].as_f64().unwrap();
        assert!(e.is_finite() && e < 1e-8, "max_rel_err.{key} = {e}");
        // Every entry within its round-off bound, with room: correct code stays below ½ (the
        // safety factor 2 on the first-order bound of two correct implementations).
        let ratio = r["max_bound_ratio"][key].as_f64().unwrap();
        assert!(ratio <= 0.5, "max_bound_ratio.{key} = {ratio}");
    }
    assert_eq!(r["verdict"], "equivalent");
    assert_eq!(r["tolerance"]["mode"], "round-off");
    for png in ["loss.png", "equivalence.png", "saturation_hist.png", "saturation.png", "grad_norms.png"] {
        assert_picture(&dir.join(png), backprop::plot::WIDTH, backprop::plot::HEIGHT);
        assert!(stdout.contains(png), "{png} not listed: {stdout}");
    }
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(index.contains("EQUIVALENT") && index.contains("<img src=\"equivalence.png\""), "{index}");
    assert!(!index.contains("<script") && !index.contains("http"), "index.html is static and offline");
    for png in ["loss.png", "equivalence.png", "saturation_hist.png", "saturation.png", "grad_norms.png"] {
        let caption = backprop::output::figures::caption(png).expect("a caption for each of compare's PNGs");
        assert!(index.contains(&format!("<figcaption>{caption}")), "{png}: no caption in {index}");
        assert!(!index.contains(&format!("<h2>{png}</h2>")), "{png}: a file name as heading");
    }
    assert!(index.contains("white-space:pre-wrap"), "the verdict block must wrap, not scroll");
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = metrics.lines().collect();
    assert_eq!(lines.len(), 1001, "a header and one row per step");
    let header: Vec<&str> = lines[0].split(',').collect();
    let cols = header.len();
    // step, 3 losses; loss and 4 tensors per layer × (abs, rel, bound ratio, ok, and the witness's
    // ratio and both sides' distances); 4 per-layer figures.
    assert_eq!(cols, 4 + (1 + 3 * 4) * 7 + 3 * 4);
    for name in [
        "loss_abs_err",
        "dW1_rel_err",
        "db3_ok",
        "W2_abs_err",
        "b1_rel_err",
        "dW2_bound_ratio",
        "dW2_witness_ratio",
        "W3_witness_manual_rel",
        "l3_drift_rel_err",
    ] {
        assert!(header.contains(&name), "metrics.csv lacks {name}: {header:?}");
    }
    assert!(lines[1..]
        .iter()
        .all(|l| l.split(',').nth(header.iter().position(|h| *h == "dW2_ok").unwrap()) == Some("1")));
    assert!(lines[1..].iter().all(|l| l.split(',').count() == cols));
}

#[test]
fn an_injected_fault_is_caught_at_its_step_and_layer() {
    for (dtype, step, layer) in [("f64", 7, 2), ("f64", 0, 1), ("f32", 12, 3), ("f64", 19, 3)] {
        let dir = temp_dir(&format!("fault-{dtype}-{step}-{layer}"));
        let fault = format!("{step}:{layer}");
        let (code, stdout, stderr) = compare(
            &dir,
            &[
                "--layers",
                "2,8,6,1",
                "--dataset",
                "xor",
                "--steps",
                "20",
                "--dtype",
                dtype,
                "--inject-fault",
                &fault,
            ],
        );
        assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
        let d = &report(&dir)["first_divergence"];
        assert_eq!(d["step"], step, "{d}");
        assert_eq!(d["layer"], layer, "{d}");
        assert!(d["tensor"] == "dW" || d["tensor"] == "db", "{d}");
        let (m, t) = (d["manual"].as_f64().unwrap(), d["torch"].as_f64().unwrap());
        assert!(((m - t) / t - 0.01).abs() < 1e-3, "the 1% perturbation: manual {m}, torch {t}");
        assert!(stdout.contains(&format!("step {step}, layer {layer}")), "{stdout}");
    }
}

#[test]
fn every_builtin_dataset_trains_equivalently() {
    for (name, layers, extra) in [
        ("sine", "1,8,1", &[][..]),
        ("xor", "2,4,1", &["--activations", "tanh,sigmoid"][..]),
        ("spirals", "2,16,2", &["--activations", "relu"][..]),
        ("teacher", "5,7,3", &["--init", "xavier", "--loss", "mse"][..]),
    ] {
        let dir = temp_dir(&format!("data-{name}"));
        let mut args = vec!["--dataset", name, "--layers", layers, "--steps", "40", "--samples", "64"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = compare(&dir, &args);
        assert_eq!(code, 0, "{name}: {stdout}{stderr}");
        let r = report(&dir);
        assert_eq!(r["accuracy"].is_null(), !matches!(name, "xor" | "spirals"), "{name}: {}", r["accuracy"]);
    }
}

#[test]
fn csv_data_loads_and_its_errors_name_the_line() {
    let dir = temp_dir("csv");
    let good = dir.join("good.csv");
    std::fs::write(&good, "a,b,target\n0.1,0.2,0.3\n0.4,0.5,0.6\n-1,2,0\n").unwrap();
    let spec = format!("csv:{}", good.display());
    let (code, stdout, stderr) =
        compare(&dir, &["--dataset", &spec, "--layers", "2,3,1", "--steps", "5", "--targets", "1"]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    for (body, line, what) in [
        ("1,2,3\n4,5\n", 2, "columns"),
        ("x,y,z\n1,2,3\n4,abc,6\n", 3, "not a number"),
        ("1,2,3\n4,5,NaN\n", 2, "finite"),
    ] {
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, body).unwrap();
        let spec = format!("csv:{}", bad.display());
        let (code, _, stderr) = compare(&dir, &["--dataset", &spec, "--layers", "2,3,1", "--steps", "5"]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(&format!("bad.csv:{line}")) && stderr.contains(what), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn bad_flags_get_one_line_and_status_2() {
    let dir = temp_dir("bad-flags");
    for (args, needle) in [
        (&["--layers", "2,0,1"][..], "n1 is 0"),
        (&["--layers", "2,x,1"][..], "layers"),
        (&["--layers", "3"][..], "single width"),
        (&["--activations", "tanh,relu"][..], "activations"),
        (&["--activations", "swishy"][..], "unknown activation"),
        (&["--lr", "NaN"][..], "--lr"),
        (&["--lr", "-1"][..], "--lr"),
        (&["--steps", "0"][..], "--steps"),
        (&["--dtype", "f16"][..], "dtype"),
        (&["--loss", "l1"][..], "loss"),
        (&["--init", "zeros"][..], "init"),
        (&["--batch-size", "100000"][..], "--batch-size"),
        (&["--dataset", "xor"][..], "dataset xor"),
        (&["--inject-fault", "3:9"][..], "layer 9"),
        (&["--inject-fault", "nonsense"][..], "--inject-fault"),
    ] {
        let (code, stdout, stderr) = compare(&dir, args);
        assert_eq!(code, 2, "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
