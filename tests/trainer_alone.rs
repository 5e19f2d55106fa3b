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
