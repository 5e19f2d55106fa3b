//! The hand-written trainer on its own: `train --impl manual` learns, and a build without the
//! `torch` feature says so in one line when asked for libtorch (`cargo test --no-default-features`
//! runs this file with no libtorch anywhere).

mod common;

use common::{run_train as train, temp_dir};

#[test]
fn the_manual_trainer_learns_xor() {
    let dir = temp_dir("alone-xor");
    let (code, out, err) = train(
        &dir,
        &["--dataset", "xor", "--layers", "2,8,1", "--lr", "0.003", "--steps", "2000", "--batch-size", "0"],
    );
    assert_eq!(code, 0, "{out}{err}");
    // "... loss on the whole dataset A -> B, accuracy P%"
    let losses = out.split("dataset ").nth(1).expect("a loss line");
    let mut nums = losses.split(" -> ");
    let before: f64 = nums.next().unwrap().trim().parse().unwrap();
    let after: f64 = nums.next().unwrap().split(',').next().unwrap().trim().parse().unwrap();
    assert!(after < 0.02 * before, "loss {before} -> {after}: {out}");
    assert!(out.contains("accuracy 100.0%"), "{out}");
    assert!(dir.join("weights.safetensors").is_file());
}

#[cfg(not(feature = "torch"))]
#[test]
fn asking_for_libtorch_without_it_is_one_line_and_status_2() {
    let dir = temp_dir("alone-torch");
    let (code, out, err) = train(&dir, &["--impl", "torch", "--steps", "5"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("without the `torch` feature"), "{err}");
    assert!(!dir.join("weights.safetensors").exists());
}

/// The spirals with softmax cross-entropy and Adam, a fifth held out: the validation accuracy
/// reaches 98% (README's command), train_loss.csv carries the validation columns at the last step
/// of each evaluated epoch, and train_loss.png draws the curves.
#[test]
fn cross_entropy_and_adam_classify_the_spirals_on_held_out_samples() {
    let dir = temp_dir("alone-spirals");
    let (code, out, err) = train(
        &dir,
        &[
            "--layers",
            "2,64,64,2",
            "--dataset",
            "spirals",
            "--samples",
            "512",
            "--activations",
            "tanh,tanh,identity",
            "--loss",
            "cross-entropy",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--steps",
            "3000",
            "--val-split",
            "0.2",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    // "best validation accuracy P% (102 samples) after epoch E of N (step S), ..."
    let best = out.split("best validation accuracy ").nth(1).expect("a best-validation line");
    let acc: f64 = best.split('%').next().unwrap().parse().unwrap();
    assert!(acc >= 98.0, "{out}");
    assert!(best.contains("(102 samples)"), "{out}");
    assert!(out.contains("training set (410 samples)"), "{out}");

    // "evaluated every K epoch(s) and after the last step: ..."; by default the fewest epochs
    // that cost ten times an evaluation of the 410 training and 102 validation samples.
    let every: usize = out
        .split("evaluated every ")
        .nth(1)
        .expect("an evaluation line")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(every, backprop::commands::train::eval_cadence(410 + 102, 13, 32), "{out}");
    assert!(every > 1, "{out}");

    let csv = std::fs::read_to_string(dir.join("train_loss.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("step,epoch,loss,val_loss,val_accuracy"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3000);
    // 410 training samples in batches of 32: 13 steps per epoch, the last one shorter; every
    // `every`-th epoch's last step and the last step carry the evaluation.
    for (t, r) in rows.iter().enumerate() {
        assert_eq!(r[0].parse::<usize>().unwrap(), t);
        assert_eq!(r[1].parse::<usize>().unwrap(), t / 13 + 1);
        let epoch_end = ((t + 1) % 13 == 0 && ((t + 1) / 13) % every == 0) || t == 2999;
        assert_eq!(!r[3].is_empty(), epoch_end, "row {t}: {r:?}");
        if epoch_end {
            let a: f64 = r[4].parse().unwrap();
            assert!((0.0..=1.0).contains(&a));
        }
    }
    common::assert_picture(&dir.join("train_loss.png"), backprop::plot::WIDTH, backprop::plot::HEIGHT);
}

/// `--eval-every 1` evaluates after every epoch; 0 is refused in one line, with nothing written.
#[test]
fn eval_every_sets_how_often_train_evaluates() {
    let dir = temp_dir("alone-eval-every");
    let args =
        ["--dataset", "xor", "--layers", "2,8,1", "--samples", "100", "--steps", "40", "--val-split", "0.2"];
    let (code, out, err) = train(&dir, &[&args[..], &["--eval-every", "1"]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("evaluated every 1 epoch(s)"), "{out}");
    let csv = std::fs::read_to_string(dir.join("train_loss.csv")).unwrap();
    // 80 training samples in batches of 32: 3 steps per epoch.
    for (t, row) in csv.lines().skip(1).enumerate() {
        let evaluated = !row.split(',').nth(3).unwrap().is_empty();
        assert_eq!(evaluated, (t + 1) % 3 == 0 || t == 39, "row {t}: {row}");
    }
    let dir = temp_dir("alone-eval-every-0");
    let (code, out, err) = train(&dir, &[&args[..], &["--eval-every", "0"]].concat());
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--eval-every"), "{err}");
    assert!(!dir.join("train_loss.csv").exists());
}
