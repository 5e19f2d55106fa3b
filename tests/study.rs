//! The saturation study, reduced in size, and the saturation measures on constructed examples.
#![cfg(feature = "torch")]

mod common;

use backprop::commands::study::{self, StudyArgs};
use backprop::harness::saturated_pct;
use backprop::harness::saturation::flat;
use backprop::harness::study::{slowdown, Diagnostics, Role, Validation, VariantResult, VARIANTS};
use backprop::output::study::{overlapping, OVERLAP};
use backprop::plot::{map_grid, MapCell, MapRow};
use backprop::{Activation, Matrix};
use common::{assert_picture, temp_dir};

#[test]
fn saturated_share_is_right_on_constructed_examples() {
    // tanh: |z| > 0.97 saturates; 3 of 8 here.
    let z = [0.0, 0.98, -0.99, 0.5, -0.97, 0.97, 1.0, 0.2];
    assert_eq!(saturated_pct(Activation::Tanh, &z, 4, 0.97), 100.0 * 3.0 / 8.0);
    // sigmoid: outside [0.03, 0.97]; 2 of 4.
    assert_eq!(saturated_pct(Activation::Sigmoid, &[0.01, 0.5, 0.99, 0.04], 2, 0.97), 50.0);
    // relu: a unit (column) is dead when it is 0 for every sample. 3 samples × 4 units:
    // unit 0 dead, unit 1 alive once, unit 2 dead, unit 3 alive.
    let z = [0.0, 0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 3.0];
    assert_eq!(saturated_pct(Activation::Relu, &z, 4, 0.97), 50.0);
    assert_eq!(saturated_pct(Activation::Gelu, &z, 4, 0.97), 0.0);
}

#[test]
fn a_unit_is_dead_when_it_is_flat_for_every_sample() {
    assert!(flat(Activation::Tanh, -0.995, 0.99) && !flat(Activation::Tanh, 0.98, 0.99));
    assert!(flat(Activation::Elu, -0.995, 0.99) && !flat(Activation::Elu, -0.5, 0.99));
    assert!(!flat(Activation::Silu, 0.0, 0.99));
    // 3 samples × 3 tanh units: unit 0 saturated on every sample (either sign), unit 1 on two of
    // three, unit 2 on none.
    let z = Matrix::from_vec(3, 3, vec![0.999, 1.0, 0.1, -0.999, 0.995, -0.2, 0.9999, 0.3, 0.0]);
    let d = Diagnostics { z: vec![z.clone()], dz: vec![z.clone()], w: vec![z.clone()], dw: vec![z] };
    assert_eq!(d.dead_units(Activation::Tanh, 1, 0.99), 1);
    assert_eq!(d.dead_units(Activation::Tanh, 1, 0.9999), 0);
}

#[test]
fn a_saturation_map_is_white_exactly_where_asked() {
    let dir = temp_dir("study-map");
    let whites = |flags: &[bool]| {
        let path = dir.join("map.png");
        let rows = [MapRow {
            title: "layer".into(),
            cells: vec![MapCell { title: "cell".into(), rows: 4, cols: 4, white: flags }],
        }];
        map_grid(&path, "map", &rows).unwrap();
        assert_picture(&path, backprop::plot::WIDTH, backprop::plot::HEIGHT);
        let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf[..info.buffer_size()].chunks_exact(3).filter(|p| p == &[255, 255, 255]).count()
    };
    let none = whites(&[false; 16]);
    let mut one_column = [false; 16];
    (0..4).for_each(|r| one_column[r * 4 + 2] = true);
    let column = whites(&one_column);
    let all = whites(&[true; 16]);
    // The background is white too; a white column adds about a quarter of the cell's area.
    assert!(column > none && all > column, "white pixels: none {none}, a column {column}, all {all}");
    let quarter = (all - none) as f64 / 4.0;
    assert!(((column - none) as f64 - quarter).abs() < 0.1 * quarter, "{none} {column} {all}");
}

/// The default network (5 hidden layers of 32 on the teacher task, 256 + 256 held-out samples)
/// on fewer steps, with a target the best fix reaches early.
fn reduced(dir: std::path::PathBuf) -> StudyArgs {
    StudyArgs { steps: 250, target: 3e-2, out: dir, quiet: true, ..StudyArgs::default() }
}

#[test]
fn the_saturated_network_needs_five_times_the_steps_of_the_best_fix() {
    let dir = temp_dir("study");
    let args = reduced(dir.clone());
    let results = study::run(&args, || {}).unwrap();
    assert_eq!(results.len(), VARIANTS.len());
    for r in &results {
        assert!(r.outcome.equivalent, "{}: not equivalent to libtorch", r.variant.name);
        assert_eq!(r.outcome.records.len(), 250);
        assert_eq!(r.saturated(0).len(), 5);
    }
    let slow = slowdown(&results, args.target);
    let (best, steps) = slow.best.expect("some fix reaches the target");
    assert!(
        slow.ratio >= 5.0,
        "saturated {:?} steps, best fix {best} {steps}: only {:.1}×",
        slow.saturated,
        slow.ratio
    );
    let by = |role: Role| results.iter().filter(move |r| r.variant.role == role);
    let saturated = by(Role::Saturated).next().unwrap();
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    // The mechanism, not only the symptom: past the first layer (which sees the input itself),
    // the saturated hidden layers sit on the tails, and training moves them less.
    let deep = |r: &VariantResult| mean(r.saturated(0)[1..].to_vec());
    for fix in by(Role::Fix).filter(|r| r.variant.phi == Activation::Tanh) {
        assert!(deep(saturated) > 5.0 * deep(fix).max(1.0), "{}", fix.variant.name);
        assert!(mean(saturated.hidden_change()) < mean(fix.hidden_change()), "{}", fix.variant.name);
    }

    let written = study::write(&dir, &args, &results).unwrap();
    for name in [
        "study_loss.png",
        "study_saturation.png",
        "study_grad_norms.png",
        "study_activations.png",
        "study_dz.png",
        "study_dw.png",
        "study_update_ratio.png",
        "study_saturation_map.png",
    ] {
        assert!(written.contains(&dir.join(name)), "{name} not written");
        assert_picture(&dir.join(name), backprop::plot::WIDTH, backprop::plot::HEIGHT);
    }
    let md = std::fs::read_to_string(dir.join("study.md")).unwrap();
    for v in VARIANTS {
        assert!(md.contains(&format!("| {} | ", v.name)), "{} missing from study.md:\n{md}", v.name);
    }
    let row = md.lines().find(|l| l.starts_with(&format!("| {} |", saturated.variant.name))).unwrap();
    let expected = match slow.saturated {
        Some(s) => format!("{s} steps"),
        None => "not within 250".into(),
    };
    assert!(row.contains(&expected), "{row}");
    assert!(md.contains("The loss shows it"), "{md}");
    assert!(md.contains("## Settings tried"), "{md}");

    // The standard answers reach the target: a tanh fix and a relu-family variant at least.
    let reaches = |r: &&VariantResult| r.steps_to(args.target).is_some();
    assert!(by(Role::Fix).filter(|r| r.variant.phi == Activation::Tanh).any(|r| reaches(&r)));
    assert!(by(Role::Fix).filter(|r| r.variant.phi != Activation::Tanh).any(|r| reaches(&r)));
    // What the saturated network learnt does not carry over to the held-out samples as the
    // tanh fixes' does.
    let held = |r: &VariantResult| r.validation.expect("held-out samples by default").loss;
    for fix in by(Role::Fix).filter(|r| r.variant.phi == Activation::Tanh) {
        assert!(held(saturated) > held(fix), "{}: {} vs {}", fix.variant.name, held(saturated), held(fix));
    }

    check_json(&dir, &args, &results, &md);
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(written.contains(&dir.join("index.html")));
    for png in ["study_loss.png", "study_grad_norms.png", "study_update_ratio.png"] {
        let caption = backprop::output::figures::caption(png).unwrap();
        assert!(html.contains(&format!("<img src=\"{png}\"")), "{png} not shown");
        assert!(html.contains(caption), "{png}'s caption missing");
    }
    let verdict = format!("{:.1}× the steps of the best fix ({best})", slow.ratio);
    assert!(html.contains(&verdict), "verdict {verdict:?} missing:\n{html}");
    assert!(html.contains("white-space:pre-wrap"), "index.html's text does not wrap");
}

/// study.json says what the run measured, and agrees with study.md.
fn check_json(dir: &std::path::Path, args: &StudyArgs, results: &[VariantResult], md: &str) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("study.json")).unwrap()).unwrap();
    let variants = json["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), results.len());
    let steps = |v: &serde_json::Value| v["steps_to_target"].as_u64().map(|s| s as usize);
    for (v, r) in variants.iter().zip(results) {
        assert_eq!(v["name"], r.variant.name);
        assert_eq!(v["activation"], r.variant.phi.name());
        assert!(v["init"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(steps(v), r.steps_to(args.target), "{}", r.variant.name);
        // serde_json reads a float back to within an ulp or so.
        let near = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-15 * b.abs(),
            (a, b) => a == b,
        };
        assert!(near(v["final_loss"].as_f64(), Some(r.final_loss())), "{v}");
        assert!(near(v["validation_loss"].as_f64(), r.validation.map(|x| x.loss)), "{v}");
        assert_eq!(v["equivalent"], true, "{}", r.variant.name);
        // The same numbers as study.md's row.
        let row = md.lines().find(|l| l.starts_with(&format!("| {} |", r.variant.name))).unwrap();
        let text = match steps(v) {
            Some(s) => format!("| {s} steps |"),
            None => format!("| not within {} |", args.steps),
        };
        assert!(row.contains(&text), "{row} vs {text}");
        assert!(row.contains(&format!("| {:.3e} |", r.final_loss())), "{row}");
    }
    // The claims, read off the JSON alone.
    let role = |name: &'static str| variants.iter().filter(move |v| v["role"] == name);
    let best = role("fix").filter_map(steps).min().expect("a fix reaches the target");
    let saturated = role("saturated").next().unwrap();
    assert!(steps(saturated).is_none_or(|s| s >= 5 * best), "{saturated} against {best}");
    assert!(role("fix").any(|v| v["activation"] == "tanh" && steps(v).is_some()));
    assert!(role("fix").any(|v| v["activation"] != "tanh" && steps(v).is_some()));
}

#[test]
fn bad_study_flags_are_one_line_and_exit_2() {
    for flags in [
        &["--target", "0"][..],
        &["--threads", "0"],
        &["--dataset", "csv:x.csv"],
        &["--steps", "0"],
        &["--loss", "cross-entropy"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_study"))
            .args(flags)
            .args(["--quiet", "--out"])
            .arg(temp_dir("study-bad"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{flags:?}: {err}");
    }
}

/// The loss a network with zero outputs starts at, which study.md puts next to the measured one:
/// mean(ŷ²) = 1/C for one-hot targets under the mean squared error, ln C under the cross-entropy
/// (the softmax of zero logits is uniform).
#[test]
fn the_zero_output_loss_is_1_over_c_or_ln_c_on_the_spirals() {
    let args = |loss| StudyArgs {
        dataset: "spirals".into(),
        bottleneck: 0,
        loss,
        out: temp_dir("study-zero"),
        ..StudyArgs::default()
    };
    let mse = study::zero_output_loss(&args(backprop::Loss::Mse)).unwrap();
    let ce = study::zero_output_loss(&args(backprop::Loss::CrossEntropy)).unwrap();
    // Means over the samples: exact up to the round-off of summing them.
    assert!((mse - 0.5).abs() < 1e-14, "{mse}");
    assert!((ce - 2f64.ln()).abs() < 1e-14, "{ce}");
}

#[test]
fn off_a_terminal_the_study_prints_one_line_per_finished_variant() {
    let dir = temp_dir("study-progress");
    let run = |quiet: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_study"));
        cmd.args(["--steps", "3", "--hidden", "2", "--width", "4", "--samples", "16", "--out"]).arg(&dir);
        if quiet {
            cmd.arg("--quiet");
        }
        // Output captured: stderr is a pipe, not a terminal.
        let out = cmd.output().unwrap();
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stderr).unwrap()
    };
    let stderr = run(false);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("study: ")).collect();
    assert_eq!(lines.len(), VARIANTS.len(), "{stderr}");
    for v in VARIANTS {
        assert!(
            lines.iter().any(|l| l.contains(&format!("done: {} ", v.name))),
            "{} missing:\n{stderr}",
            v.name
        );
    }
    let last = format!("study: {n}/{n} variants done", n = VARIANTS.len());
    assert!(lines.iter().any(|l| l.starts_with(&last)), "{stderr}");
    assert!(!run(true).contains("variants done"), "--quiet still prints progress");
}

/// Pixels of the first palette colour (31, 119, 180) in each half (top, bottom) of a two-panel
/// PNG: the series' line and its legend swatch.
fn blue_pixels(path: &std::path::Path) -> [usize; 2] {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut out = [0, 0];
    for (i, p) in buf[..w * h * 3].chunks_exact(3).enumerate() {
        if p == [31, 119, 180] {
            out[usize::from(i / w >= h / 2)] += 1;
        }
    }
    out
}

#[test]
fn shared_panels_draw_a_short_run_on_the_long_runs_x_axis() {
    use backprop::plot::{line_grid, line_grid_shared, Panel, Series};
    let dir = temp_dir("study-shared");
    let short: Vec<(f64, f64)> = (0..=10).map(|t| (f64::from(t), 1.0)).collect();
    let long: Vec<(f64, f64)> = (0..=1000).map(|t| (f64::from(t), 1.0)).collect();
    fn panel(p: &[(f64, f64)]) -> Panel<'_> {
        Panel {
            title: "p".into(),
            x_label: "step t".into(),
            y_label: "y".into(),
            series: vec![Series::new("s", p)],
            log_y: false,
            hlines: vec![],
        }
    }
    let (short, long) = (short.as_slice(), long.as_slice());
    let own = dir.join("own.png");
    line_grid(&own, "own axes", &[panel(short), panel(long)]).unwrap();
    let [a, b] = blue_pixels(&own);
    // On its own axes the short run's line is as long as the long run's.
    assert!(a * 10 > b * 9, "own axes: {a} {b} blue pixels");
    let shared = dir.join("shared.png");
    line_grid_shared(&shared, "shared axes", &[panel(short), panel(long)]).unwrap();
    let [a, b] = blue_pixels(&shared);
    // On shared axes it spans 10/1000 of the long run's width: the legend swatch and a stub.
    assert!(a * 3 < b, "shared axes: {a} {b} blue pixels");
}

#[test]
fn overlapping_curves_are_found_with_the_share_of_steps_they_share() {
    let a: Vec<(f64, f64)> = (0..100).map(|t| (f64::from(t), 1.0 + f64::from(t))).collect();
    // b lies on a for the first 40 steps, then leaves it by 50%.
    let b: Vec<(f64, f64)> = a.iter().map(|&(t, y)| (t, if t < 40.0 { y } else { 1.5 * y })).collect();
    let c: Vec<(f64, f64)> = a.iter().map(|&(t, y)| (t, 3.0 * y)).collect();
    let over = overlapping(&[a, b, c], OVERLAP);
    assert_eq!(over[0].len(), 1);
    assert_eq!(over[0][0].0, 1);
    assert!((over[0][0].1 - 0.4).abs() < 1e-12, "{over:?}");
    assert_eq!(over[1].iter().map(|o| o.0).collect::<Vec<_>>(), vec![0]);
    assert!(over[2].is_empty(), "{over:?}");
}

/// `--validation N` holds N samples out: study.json then carries each variant's held-out loss
/// (and accuracy, for classes), equal to the loss of its final weights measured on them; with
/// `--validation 0` both are null.
#[test]
fn the_held_out_samples_give_each_variant_a_validation_loss_and_accuracy() {
    let json = |flags: &[&str]| -> serde_json::Value {
        let dir = temp_dir("study-validation");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_study"))
            .args(["--steps", "3", "--hidden", "2", "--width", "4", "--samples", "24", "--quiet", "--out"])
            .arg(&dir)
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(&std::fs::read_to_string(dir.join("study.json")).unwrap()).unwrap()
    };
    let spirals = json(&["--dataset", "spirals", "--loss", "cross-entropy", "--validation", "16"]);
    assert_eq!(spirals["validation"], 16);
    for v in spirals["variants"].as_array().unwrap() {
        let loss = v["validation_loss"].as_f64().expect("a held-out loss");
        let acc = v["validation_accuracy"].as_f64().expect("a held-out accuracy for classes");
        assert!(loss.is_finite() && loss > 0.0, "{v}");
        // Accuracy is a share of 16 samples.
        assert!((0.0..=1.0).contains(&acc) && (acc * 16.0 - (acc * 16.0).round()).abs() < 1e-9, "{v}");
    }
    let teacher = json(&["--validation", "16"]);
    for v in teacher["variants"].as_array().unwrap() {
        assert!(v["validation_loss"].as_f64().is_some(), "{v}");
        assert!(v["validation_accuracy"].is_null(), "regression targets have no accuracy: {v}");
    }
    let none = json(&["--validation", "0"]);
    for v in none["variants"].as_array().unwrap() {
        assert!(v["validation_loss"].is_null() && v["validation_accuracy"].is_null(), "{v}");
    }
}

#[test]
fn a_variants_validation_is_its_final_weights_on_the_held_out_samples() {
    // A network whose weights are all zero outputs zero: its held-out mean squared error is the
    // mean of the squared targets; regression targets have no accuracy.
    let spec = backprop::Spec::new(vec![1, 3, 1], vec![Activation::Tanh, Activation::Identity])
        .unwrap()
        .with_loss(backprop::Loss::Mse);
    let mut params = backprop::Params::<f64>::init(&spec);
    for l in &mut params.layers {
        l.w.as_mut_slice().iter_mut().for_each(|w| *w = 0.0);
        if let Some(b) = &mut l.b {
            b.fill(0.0);
        }
    }
    let data = backprop::data::Dataset {
        x: Matrix::from_vec(3, 1, vec![0.5, -1.0, 2.0]),
        y: Matrix::from_vec(3, 1, vec![1.0, 2.0, 3.0]),
    };
    let v = Validation::of(&spec, &params, &data);
    assert!((v.loss - (1.0 + 4.0 + 9.0) / 3.0).abs() < 1e-12, "{v:?}");
    assert_eq!(v.accuracy, None);
}
