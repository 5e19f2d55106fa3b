//! Whatever a user types or feeds the tools: one clear line and exit status 2, no panic, no
//! half-written file; numerical blow-ups reported; the same flags give the same bytes.

mod common;

#[cfg(feature = "torch")]
use common::{report, run_compare as compare};
use common::{run_train as train, temp_dir};
use std::path::Path;

fn no_temporaries(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "a temporary file was left behind: {name}");
    }
}

fn assert_bad(code: i32, stdout: &str, stderr: &str, needle: &str) {
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[cfg(feature = "torch")]
#[test]
fn layer_specs_that_make_no_sense_are_refused_before_allocating() {
    let dir = temp_dir("hostile-layers");
    for (layers, needle) in [
        ("", "empty"),
        (" , ", "not a non-negative integer"),
        ("1,-3,1", "not a non-negative integer"),
        ("1,1e3,1", "not a non-negative integer"),
        ("1,0,1", "n1 is 0"),
        ("7", "single width"),
        ("2,1000000000000,1", "GB per copy of the weights"),
        ("1,99999999999999999999,1", "not a non-negative integer"),
        ("1,3000000,1", "GB of activations"),
    ] {
        let (code, out, err) = compare(&dir, &["--layers", layers]);
        assert_bad(code, &out, &err, needle);
    }
}

#[cfg(feature = "torch")]
#[test]
fn numbers_that_make_no_sense_are_refused() {
    let dir = temp_dir("hostile-numbers");
    for (args, needle) in [
        (&["--lr", "inf"][..], "--lr"),
        (&["--lr", "-inf"][..], "--lr"),
        (&["--lr", "0"][..], "--lr"),
        (&["--steps", "-1"][..], "--steps"),
        (&["--rtol", "-1"][..], "--rtol"),
        (&["--atol", "NaN"][..], "--atol"),
        (&["--saturation", "1.5"][..], "--saturation"),
        (&["--samples", "0"][..], "--samples"),
        (&["--inject-fault", "5000:1"][..], "past the last step"),
        (&["--batch-size", "257"][..], "larger than the dataset"),
        (&["--dataset", "mnist"][..], "dataset"),
    ] {
        let (code, out, err) = compare(&dir, args);
        assert_bad(code, &out, &err, needle);
    }
}

#[cfg(feature = "torch")]
#[test]
fn csv_files_that_make_no_sense_name_file_and_line() {
    let dir = temp_dir("hostile-csv");
    let csv = |name: &str, body: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        format!("csv:{}", p.display())
    };
    let cases = [
        (csv("empty.csv", b""), "no data rows"),
        (csv("header.csv", b"a,b,c\n"), "only a header"),
        (csv("ragged.csv", b"1,2,3\n4,5,6\n7,8\n"), "ragged.csv:3"),
        (csv("word.csv", b"1,2,3\n4,five,6\n"), "word.csv:2: column 2"),
        (csv("inf.csv", b"1,2,3\n4,inf,6\n"), "not a finite number"),
        (csv("nan.csv", b"1,2,nan\n"), "not a finite number"),
        (csv("narrow.csv", b"1,2\n3,4\n"), "expected 3"),
        (csv("binary.csv", &[0xff, 0xfe, 0x00, 0x01, b'\n', 0x80]), "binary.csv:1"),
        ("csv:/nonexistent/file.csv".to_string(), "cannot read"),
    ];
    for (spec, needle) in cases {
        let (code, out, err) = compare(&dir, &["--dataset", &spec, "--layers", "2,4,1", "--steps", "3"]);
        assert_bad(code, &out, &err, needle);
    }
    let good = csv("good.csv", b"1,2,3\n4,5,6\n");
    let (code, out, err) = compare(&dir, &["--dataset", &good, "--layers", "2,4,1", "--targets", "2"]);
    assert_bad(code, &out, &err, "--targets 2");
}

#[cfg(feature = "torch")]
#[test]
fn output_places_that_cannot_be_written_are_refused() {
    let dir = temp_dir("hostile-out");
    let file = dir.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let (code, out, err) = compare(&file, &["--steps", "3"]);
    assert_bad(code, &out, &err, "not a directory");
    let (code, out, err) = compare(&file.join("below"), &["--steps", "3"]);
    assert_bad(code, &out, &err, "--out");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

#[cfg(feature = "torch")]
#[test]
fn a_trace_too_large_is_refused_unless_forced() {
    let dir = temp_dir("hostile-trace");
    let (code, out, err) = compare(&dir, &["--layers", "1,512,512,1", "--steps", "100000", "--trace"]);
    assert_bad(code, &out, &err, "GiB");
    assert!(err.contains("--force"), "{err}");
    assert!(!dir.join("report.json").exists(), "nothing is written for a refused run");
}

#[test]
fn weights_of_the_wrong_network_are_refused_by_name_and_shape() {
    let dir = temp_dir("hostile-load");
    let (code, out, err) = train(&dir, &["--layers", "1,8,1", "--steps", "5"]);
    assert_eq!(code, 0, "{out}{err}");
    let weights = dir.join("weights.safetensors");
    let w = weights.to_str().unwrap();
    // A network flag that contradicts the file names both values.
    let (code, out, err) = train(&dir, &["--layers", "1,9,1", "--steps", "5", "--load", w]);
    assert_bad(code, &out, &err, "--layers 1,9,1: the weights in");
    assert!(err.contains("are for --layers 1,8,1"), "{err}");
    let (code, out, err) = train(&dir, &["--layers", "1,8,1", "--no-bias", "--steps", "5", "--load", w]);
    assert_bad(code, &out, &err, "--no-bias: the weights in");
    let (code, out, err) = train(&dir, &["--layers", "1,8,8,1", "--steps", "5", "--load", w]);
    assert_bad(code, &out, &err, "are for --layers 1,8,1");
    let (code, out, err) = train(&dir, &["--layers", "1,8,1", "--dtype", "f32", "--steps", "5", "--load", w]);
    assert_bad(code, &out, &err, "--dtype f32: the weights in");
    // Without metadata, the shapes themselves are checked, by name.
    let bare = dir.join("bare.safetensors");
    {
        let bytes = std::fs::read(&weights).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let views: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
        std::fs::write(&bare, safetensors::serialize(views, &None).unwrap()).unwrap();
    }
    let (code, out, err) =
        train(&dir, &["--layers", "1,9,1", "--steps", "5", "--load", bare.to_str().unwrap()]);
    assert_bad(code, &out, &err, "W1 has shape [1, 8], the spec needs [1, 9]");
    std::fs::write(dir.join("junk.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}").unwrap();
    let junk = dir.join("junk.safetensors");
    let (code, out, err) = train(&dir, &["--layers", "1,8,1", "--load", junk.to_str().unwrap()]);
    assert_bad(code, &out, &err, "not a safetensors file");
    let (code, out, err) = train(&dir, &["--impl", "jax"]);
    assert_bad(code, &out, &err, "--impl");
    no_temporaries(&dir);
}

#[cfg(feature = "torch")]
#[test]
fn a_learning_rate_that_overflows_is_reported_with_the_first_non_finite_step() {
    let dir = temp_dir("hostile-overflow");
    let (code, out, err) = compare(&dir, &["--lr", "1e6", "--steps", "200"]);
    // Both sides overflow at the same step: never a bare EQUIVALENT, but "agree until
    // non-finite", exit status 3, and the run stops there.
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.starts_with("AGREE UNTIL NON-FINITE"), "{out}");
    let r = report(&dir);
    assert_eq!(r["equivalent"], false);
    assert_eq!(r["verdict"], "agree-until-non-finite");
    assert_eq!(r["non_finite_step"], r["non_finite"]["manual"]);
    let (m, t) = (&r["non_finite"]["manual"], &r["non_finite"]["torch"]);
    assert!(m.is_u64() && m == t, "non_finite: {}", r["non_finite"]);
    assert_eq!(
        r["steps"].as_u64().unwrap(),
        m.as_u64().unwrap() + 1,
        "the run stops at the first non-finite step"
    );
    assert!(out.contains("non-finite"), "{out}");
    for png in ["loss.png", "equivalence.png", "grad_norms.png"] {
        common::assert_picture(&dir.join(png), backprop::plot::WIDTH, backprop::plot::HEIGHT);
    }
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count() as u64, r["steps"].as_u64().unwrap() + 1);
    no_temporaries(&dir);

    let (code, out, err) = train(&dir, &["--lr", "1e6", "--steps", "200"]);
    assert_bad(code, &out, &err, "diverged");
}

#[cfg(feature = "torch")]
#[test]
fn the_same_flags_give_the_same_bytes() {
    let (a, b) = (temp_dir("determinism-a"), temp_dir("determinism-b"));
    let flags = ["--layers", "2,8,2", "--dataset", "spirals", "--steps", "30", "--dtype", "f32", "--trace"];
    assert_eq!(compare(&a, &flags).0, 0);
    assert_eq!(compare(&b, &flags).0, 0);
    let tflags = ["--layers", "2,8,2", "--dataset", "spirals", "--steps", "30"];
    assert_eq!(train(&a, &tflags).0, 0);
    assert_eq!(train(&b, &tflags).0, 0);
    for file in ["report.json", "metrics.csv", "trace.safetensors", "weights.safetensors", "train_loss.csv"] {
        assert!(
            std::fs::read(a.join(file)).unwrap() == std::fs::read(b.join(file)).unwrap(),
            "{file} differs"
        );
    }
    no_temporaries(&a);
}

/// Optimizer, loss and validation settings that make no sense, or that the chosen optimizer does not
/// take: one line naming the flag, exit status 2, nothing written.
#[test]
fn optimizer_loss_and_split_settings_that_make_no_sense_are_refused() {
    let dir = temp_dir("hostile-optim");
    let ce = ["--loss", "cross-entropy", "--layers", "2,8,2", "--dataset", "spirals"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--optimizer", "sgd", "--betas", "0.9,0.99"], "--betas: a setting of adam and adamw"),
        (vec!["--optimizer", "adam", "--momentum", "0.9"], "--momentum: a setting of sgd and rmsprop"),
        (vec!["--optimizer", "sgd", "--centered"], "--centered"),
        (vec!["--nesterov"], "--nesterov: needs --momentum > 0"),
        (vec!["--nesterov", "--momentum", "0.9", "--dampening", "0.1"], "--nesterov"),
        (vec!["--optimizer", "adam", "--betas", "0.9,1"], "beta2 must lie in [0, 1)"),
        (vec!["--optimizer", "adam", "--betas", "0.9"], "--betas: expected two numbers"),
        (vec!["--optimizer", "adamw", "--betas", "0.9,x"], "--betas"),
        (vec!["--optimizer", "adam", "--eps", "-1e-8"], "--eps"),
        (vec!["--optimizer", "rmsprop", "--alpha", "-0.5"], "--alpha"),
        (vec!["--momentum", "-1"], "--momentum"),
        (vec!["--weight-decay", "nan"], "--weight-decay"),
        (vec!["--optimizer", "adamw", "--weight-decay", "200"], "--weight-decay"),
        (vec!["--optimizer", "lion"], "--optimizer"),
        (vec!["--loss", "cross-entropy"], "at least two output units"),
        (
            [&ce[..], &["--activations", "tanh,sigmoid"]].concat(),
            "output layer's activation must be identity",
        ),
        (
            vec!["--loss", "cross-entropy", "--dataset", "teacher", "--layers", "4,8,2"],
            "not one-hot or a probability vector",
        ),
        (vec!["--label-smoothing", "0.1"], "--label-smoothing: applies to --loss cross-entropy only"),
        ([&ce[..], &["--label-smoothing", "1.5"]].concat(), "[0, 1]"),
        (vec!["--val-split", "1"], "--val-split"),
        (vec!["--val-split", "-0.1"], "--val-split"),
        (vec!["--val-split", "0.999", "--samples", "10"], "none for training"),
    ];
    for (args, needle) in cases {
        let (code, out, err) = train(&dir, &args);
        assert_bad(code, &out, &err, needle);
        assert!(!dir.join("weights.safetensors").exists(), "{args:?} wrote weights");
    }
    no_temporaries(&dir);
}

#[test]
fn an_unknown_instruction_set_in_the_environment_is_refused_before_training() {
    let dir = temp_dir("hostile-simd").join("out");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["--steps", "3", "--quiet", "--out"])
        .arg(&dir)
        .env("BACKPROP_SIMD", "avx3")
        .output()
        .expect("running train");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_bad(out.status.code().unwrap_or(-1), &stdout, &stderr, "BACKPROP_SIMD=\"avx3\"");
    assert!(!dir.exists(), "nothing is written");
}

/// Enum flags list their values and suggest the nearest; counts say what they must be; a flag that
/// does nothing for the chosen data is refused; each in one line, exit 2, nothing written.
#[test]
fn slips_are_answered_with_what_to_do() {
    let root = temp_dir("hostile-slips");
    for (args, needle) in [
        (&["--optimizer", "adma"][..], "expected one of sgd, adam, adamw, rmsprop; did you mean 'adam'?"),
        (&["--dtype", "f16"][..], "expected one of f32, f64"),
        (&["--loss", "mes"][..], "did you mean 'mse'?"),
        (&["--init", "hee"][..], "did you mean 'he'?"),
        (&["--activations", "tahn"][..], "did you mean \"tanh\"?"),
        (&["--steps", "-5"][..], "'-5' for '--steps <STEPS>': must be a positive whole number"),
        (&["--samples", "-1"][..], "must be a positive whole number"),
        (&["--batch-size", "-1"][..], "must be a whole number, 0 or more"),
        (&["--targets", "2"][..], "--targets 2: counts the target columns of a CSV"),
    ] {
        let dir = root.join(args.join("_").replace(['-', ' '], ""));
        let (code, out, err) = train(&dir, args);
        assert_bad(code, &out, &err, needle);
        assert!(!dir.exists(), "{args:?}: nothing written, not even --out");
    }
}

/// A failed --load writes nothing, not even the --out folder; `train --load FILE` needs no other
/// flag: the file carries its network and the data it was trained on.
#[test]
fn saved_weights_carry_their_network() {
    let dir = temp_dir("hostile-load-network");
    let (code, out, err) = train(&dir, &["--layers", "2,8,1", "--dataset", "xor", "--steps", "5"]);
    assert_eq!(code, 0, "{out}{err}");
    let w = dir.join("weights.safetensors");
    let w = w.to_str().unwrap();
    let other = dir.join("o2");
    let (code, out, err) = train(&other, &["--layers", "1,16,1", "--load", w]);
    assert_bad(code, &out, &err, "are for --layers 2,8,1");
    assert!(!other.exists(), "a failed --load leaves no folder");
    let again = dir.join("again");
    let (code, out, err) = train(&again, &["--load", w, "--steps", "5"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("trained 2-8-1"), "{out}");
    assert!(again.join("weights.safetensors").exists());
}

/// `check` given a weights file says what it is and what to give it instead.
#[cfg(feature = "torch")]
#[test]
fn check_given_weights_says_they_are_not_a_trace() {
    let dir = temp_dir("hostile-check-weights");
    let (code, out, err) = train(&dir, &["--steps", "5"]);
    assert_eq!(code, 0, "{out}{err}");
    let out_dir = dir.join("chk");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_check"))
        .arg(dir.join("weights.safetensors"))
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_bad(run.status.code().unwrap_or(-1), "", &err, "this is a weights file");
    assert!(err.contains("compare --trace") && err.contains("backprop_trace.py"), "{err}");
    assert!(!out_dir.exists());
}
