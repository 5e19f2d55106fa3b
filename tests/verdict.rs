//! The verdict can be trusted in both directions: correct backpropagation is judged agreeing
//! where the numerics are hard (large steps, saturated tanh and sigmoid, inputs scaled by 1e−3
//! and 1e3, runs that blow up), and every wrong one — a small injected fault, each classic
//! mistake of the catalogue — is caught at the step where it first changes anything and named at
//! the layer where it was planted.
#![cfg(feature = "torch")]

mod common;

use backprop::data::Dataset;
use backprop::harness::{self, Form, Outcome, RunConfig, Verdict};
use backprop::manual::{mutants, Mutant, MutantKind};
use backprop::{Activation, DType, Loss, Matrix, Params, Scalar, Spec};
use common::{report, run_compare as compare, temp_dir};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn config(spec: &Spec, lr: f64, steps: usize, batch: usize) -> RunConfig {
    common::run_config(spec, backprop::OptimConfig::sgd(lr), steps, batch)
}

/// `n` samples, inputs uniform in ±`scale`, targets uniform in ±1, seeded.
fn data(spec: &Spec, n: usize, scale: f64, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Dataset {
        x: Matrix::from_fn(n, spec.n_in(), |_, _| scale * rng.gen_range(-1.0..1.0)),
        y: Matrix::from_fn(n, spec.n_out(), |_, _| rng.gen_range(-1.0..1.0)),
    }
}

fn run(cfg: &RunConfig, data: &Dataset, init_gain: f64) -> Outcome {
    backprop::reference::use_threads(&cfg.spec, cfg.batch_size, 1);
    fn go<T: Scalar>(cfg: &RunConfig, data: &Dataset, gain: f64) -> Outcome {
        let mut init = Params::<T>::init(&cfg.spec);
        for l in &mut init.layers {
            l.w.as_mut_slice().iter_mut().for_each(|w| *w = *w * T::of(gain));
        }
        harness::run::<T>(cfg, data, &init, None, |_| {}).unwrap()
    }
    match cfg.spec.dtype() {
        DType::F32 => go::<f32>(cfg, data, init_gain),
        DType::F64 => go::<f64>(cfg, data, init_gain),
    }
}

#[test]
fn large_steps_on_the_default_network_are_judged_agreeing() {
    for dtype in ["f64", "f32"] {
        for lr in ["0.1", "0.3", "1"] {
            let dir = temp_dir(&format!("verdict-lr-{dtype}-{lr}"));
            let (code, out, err) = compare(&dir, &["--dtype", dtype, "--lr", lr]);
            // Correct code: equivalent, or agreeing until both sides blew up alike (said so).
            assert!(code == 0 || code == 3, "--dtype {dtype} --lr {lr}: exit {code}\n{out}{err}");
            let r = report(&dir);
            assert!(r["first_divergence"].is_null(), "--dtype {dtype} --lr {lr}: {out}");
            if code == 3 {
                assert!(
                    out.starts_with("AGREE UNTIL NON-FINITE") && out.contains("went non-finite"),
                    "{out}"
                );
                assert_eq!(r["non_finite_step"].as_u64().unwrap() + 1, r["steps"].as_u64().unwrap());
            }
            let margin = r["max_bound_ratio"]["grad"].as_f64().unwrap();
            assert!(margin <= 0.5, "--dtype {dtype} --lr {lr}: largest error {margin} of its bound");
        }
    }
}

/// Random architectures in the regimes where a fixed tolerance cries wolf: large learning rates,
/// saturated layers (weights scaled ×4, inputs scaled by 1e3), tiny inputs (1e−3). Every run must
/// end equivalent or agreeing until both sides went non-finite; the largest error ÷ bound is
/// printed and must stay at or below ½ (the safety factor 2 on a first-order bound).
#[test]
fn hard_regimes_raise_no_false_alarm() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut worst: f64 = 0.0;
    let mut worst_witness: f64 = 0.0;
    let (mut cases, mut blew_up) = (0, 0);
    let cases_n: usize = std::env::var("SWEEP").ok().and_then(|v| v.parse().ok()).unwrap_or(160);
    for case in 0..cases_n {
        let depth = rng.gen_range(1..=4);
        let widths: Vec<usize> = (0..=depth).map(|_| rng.gen_range(1..=12)).collect();
        let phi = [Activation::Tanh, Activation::Sigmoid, Activation::ALL[rng.gen_range(0..9)]][case % 3];
        let mut acts = vec![phi; depth];
        if case % 2 == 0 {
            acts[depth - 1] = Activation::Identity;
        }
        let dtype = if case % 4 < 2 { DType::F64 } else { DType::F32 };
        let loss = if case % 5 == 0 { Loss::Mse } else { Loss::HalfSse };
        let spec = Spec::new(widths, acts)
            .unwrap()
            .with_bias(case % 3 != 1)
            .with_loss(loss)
            .with_dtype(dtype)
            .with_seed(case as u64);
        let lr = [0.05, 0.3, 1.0][case % 3];
        let (scale, gain) = [(1.0, 1.0), (1e3, 1.0), (1e-3, 1.0), (1.0, 4.0)][(case / 3) % 4];
        let d = data(&spec, 24, scale, case as u64);
        let o = run(&config(&spec, lr, 12, 8), &d, gain);
        assert!(
            o.first_divergence.is_none(),
            "false alarm: {spec:?}, lr {lr}, inputs ×{scale}, weights ×{gain}: {:?} (failing {:?})",
            o.first_divergence,
            o.failing
        );
        assert_ne!(o.verdict, Verdict::NotEquivalent);
        if matches!(o.verdict, Verdict::AgreeUntilNonFinite { .. }) {
            blew_up += 1;
        }
        worst = worst.max(o.max_ratio.loss).max(o.max_ratio.grad).max(o.max_ratio.weight);
        let w = o.max_witness_ratio;
        worst_witness = worst_witness.max(w.loss).max(w.grad).max(w.weight);
        cases += 1;
    }
    eprintln!(
        "{cases} runs ({blew_up} blew up alike on both sides): largest error {worst:.3} of its bound, \
         largest witness margin {worst_witness:.3}"
    );
    assert!(worst <= 0.5, "largest error {worst} of its bound");
}

/// The same regimes with every optimizer (random hyperparameters: momentum, Nesterov, dampening,
/// weight decay, amsgrad, centered, ε down to 1e−12, learning rates up to 1) and the cross-entropy
/// (random probability targets, label smoothing): the state each optimizer carries from step to
/// step carries its round-off with it, and the bound must follow it without crying wolf.
#[test]
fn hard_regimes_with_optimizers_and_cross_entropy_raise_no_false_alarm() {
    use backprop::{OptimConfig, OptimizerKind};
    let mut rng = ChaCha8Rng::seed_from_u64(2027);
    let mut worst: (f64, String) = (0.0, String::new());
    let mut worst_witness: f64 = 0.0;
    let (mut cases, mut blew_up) = (0, 0);
    let cases_n: usize = std::env::var("SWEEP").ok().and_then(|v| v.parse().ok()).unwrap_or(160);
    for case in 0..cases_n {
        let depth = rng.gen_range(1..=4);
        let mut widths: Vec<usize> = (0..=depth).map(|_| rng.gen_range(1..=12)).collect();
        let phi = [Activation::Tanh, Activation::Sigmoid, Activation::ALL[rng.gen_range(0..9)]][case % 3];
        let mut acts = vec![phi; depth];
        let loss = [Loss::CrossEntropy, Loss::HalfSse, Loss::Mse][case % 3];
        if loss == Loss::CrossEntropy || case % 2 == 0 {
            acts[depth - 1] = Activation::Identity;
        }
        if loss == Loss::CrossEntropy {
            widths[depth] = widths[depth].max(2);
        }
        let dtype = if case % 4 < 2 { DType::F64 } else { DType::F32 };
        let smoothing = if loss == Loss::CrossEntropy && case % 2 == 1 { 0.1 } else { 0.0 };
        let spec = Spec::new(widths, acts)
            .unwrap()
            .with_bias(case % 5 != 1)
            .with_loss(loss)
            .with_label_smoothing(smoothing)
            .with_dtype(dtype)
            .with_seed(case as u64);
        let kind =
            [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW, OptimizerKind::RmsProp][case % 4];
        let mut optim = OptimConfig::new(kind, [0.01, 0.1, 1.0][rng.gen_range(0..3)]);
        match kind {
            OptimizerKind::Sgd => {
                optim.momentum = [0.0, 0.5, 0.9][rng.gen_range(0..3)];
                optim.nesterov = optim.momentum > 0.0 && rng.gen_bool(0.5);
                optim.dampening = if optim.nesterov { 0.0 } else { [0.0, 0.3][rng.gen_range(0..2)] };
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                optim.amsgrad = rng.gen_bool(0.5);
                optim.betas = [(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)][rng.gen_range(0..3)];
                optim.eps = [1e-8, 1e-12, 1e-3][rng.gen_range(0..3)];
            }
            OptimizerKind::RmsProp => {
                optim.centered = rng.gen_bool(0.5);
                optim.momentum = [0.0, 0.9][rng.gen_range(0..2)];
                optim.alpha = [0.99, 0.5][rng.gen_range(0..2)];
                optim.eps = [1e-8, 1e-12][rng.gen_range(0..2)];
            }
        }
        optim.weight_decay =
            [0.0, 1e-2, if kind == OptimizerKind::AdamW { 0.5 } else { 1.0 }][rng.gen_range(0..3)];
        let (scale, gain) = [(1.0, 1.0), (1e3, 1.0), (1e-3, 1.0), (1.0, 4.0)][(case / 3) % 4];
        let mut d = data(&spec, 24, scale, case as u64);
        if loss == Loss::CrossEntropy {
            // Probability targets: a softmax of random numbers, one row per sample.
            let c = spec.n_out();
            for r in 0..d.y.rows() {
                let e: Vec<f64> = (0..c).map(|_| (3.0 * rng.gen_range(-1.0..1.0f64)).exp()).collect();
                let s: f64 = e.iter().sum();
                for (j, e) in e.iter().enumerate() {
                    d.y[(r, j)] = e / s;
                }
            }
        }
        let o = run(&common::run_config(&spec, optim, 12, 8), &d, gain);
        let what = format!("{spec:?}, {}, inputs ×{scale}, weights ×{gain}", optim.describe());
        assert!(
            o.first_divergence.is_none(),
            "false alarm: {what}: {:?} (failing {:?})",
            o.first_divergence,
            o.failing
        );
        assert_ne!(o.verdict, Verdict::NotEquivalent);
        if matches!(o.verdict, Verdict::AgreeUntilNonFinite { .. }) {
            blew_up += 1;
        }
        let m = o.max_ratio.loss.max(o.max_ratio.grad).max(o.max_ratio.weight);
        let w = o.max_witness_ratio;
        worst_witness = worst_witness.max(w.loss).max(w.grad).max(w.weight);
        if m > worst.0 {
            worst = (m, what);
        }
        cases += 1;
    }
    eprintln!(
        "{cases} runs ({blew_up} blew up alike on both sides): largest error {:.3} of its bound ({}), largest \
         witness margin {worst_witness:.3}",
        worst.0, worst.1
    );
    assert!(worst.0 <= 0.5, "largest error {:.3} of its bound ({})", worst.0, worst.1);
}

#[test]
fn small_faults_on_a_well_conditioned_run_are_caught_at_their_step_and_layer() {
    for (dtype, rel) in [("f64", "1e-9"), ("f32", "1e-3")] {
        let dir = temp_dir(&format!("verdict-fault-{dtype}"));
        let (code, out, err) = compare(&dir, &["--dtype", dtype, "--inject-fault", &format!("17:2:{rel}")]);
        assert_eq!(code, 1, "{out}{err}");
        let d = &report(&dir)["first_divergence"];
        assert_eq!((d["step"].as_u64(), d["layer"].as_u64()), (Some(17), Some(2)), "{dtype}: {out}");
        assert!(d["ratio"].as_f64().unwrap() > 1.0, "{d}");
        assert!(out.contains("step 17, layer 2"), "{out}");
    }
}

/// Whether the mutant changes the gradients at the initial weights on the first batch: then the
/// harness must catch it at step 0.
fn changes_at_start<T: Scalar>(spec: &Spec, d: &Dataset, batch: usize, lr: f64, m: Mutant) -> bool {
    let p = Params::<T>::init(spec);
    let order = harness::batch_order(d.len(), batch, 1, spec.seed());
    let (mut x, mut y) = (Matrix::<T>::zeros(0, spec.n_in()), Matrix::<T>::zeros(0, spec.n_out()));
    x.gather_rows(&d.x.cast(), &order[0]);
    y.gather_rows(&d.y.cast(), &order[0]);
    let (_, good) = mutants::gradients_with(spec, &p, &x, &y, T::of(lr), None);
    let (_, bad) = mutants::gradients_with(spec, &p, &x, &y, T::of(lr), Some(m));
    good != bad
}

#[test]
fn every_mutant_is_caught_and_named_at_its_layer() {
    let nets: [(&[usize], Activation, DType); 4] = [
        (&[1, 16, 16, 1], Activation::Tanh, DType::F64),
        (&[3, 8, 6, 4, 2], Activation::Sigmoid, DType::F64),
        (&[2, 7, 5, 3], Activation::Tanh, DType::F32),
        (&[4, 9, 9, 9, 2], Activation::Gelu, DType::F64),
    ];
    let mut caught = 0;
    for (n, &(widths, phi, dtype)) in nets.iter().enumerate() {
        let depth = widths.len() - 1;
        let mut acts = vec![phi; depth];
        acts[depth - 1] = Activation::Identity;
        let spec = Spec::new(widths.to_vec(), acts).unwrap().with_dtype(dtype).with_seed(n as u64);
        let d = data(&spec, 32, 1.0, n as u64);
        for kind in MutantKind::ALL {
            let layers: Vec<usize> = match kind {
                MutantKind::FlipOutputDelta | MutantKind::MeanNotSum => vec![depth],
                MutantKind::StaleWeights => (1..depth).collect(),
                // φ' of the identity output layer is 1 at a and at z: only hidden layers.
                MutantKind::PhiPrimeOfZ | MutantKind::SkipPhiPrime => (1..depth).collect(),
                _ => (1..=depth).collect(),
            };
            for layer in layers {
                let m = Mutant { kind, layer };
                let lr = 0.01;
                let changes = match dtype {
                    DType::F32 => changes_at_start::<f32>(&spec, &d, 8, lr, m),
                    DType::F64 => changes_at_start::<f64>(&spec, &d, 8, lr, m),
                };
                assert!(changes, "{m} changes nothing on {widths:?}: a useless test case");
                let mut cfg = config(&spec, lr, 5, 8);
                cfg.form = Form::Literal;
                cfg.mutant = Some(m);
                let o = run(&cfg, &d, 1.0);
                let div =
                    o.first_divergence.as_ref().unwrap_or_else(|| panic!("{m} on {widths:?} not caught"));
                assert_eq!(o.verdict, Verdict::NotEquivalent);
                assert_eq!(
                    (div.step, div.layer),
                    (0, layer),
                    "{m} on {widths:?}: {div}; failing {:?}",
                    o.failing
                );
                assert!(matches!(div.tensor, "dW" | "db"), "{m}: named {div}");
                assert!(o.implementation.contains(&m.to_string()), "{}", o.implementation);
                caught += 1;
            }
        }
    }
    eprintln!("{caught} planted mistakes, every one caught at step 0 and named at its layer");
    // The same forms without a mutant agree.
    let spec = Spec::new(vec![3, 8, 6, 2], vec![Activation::Tanh, Activation::Sigmoid, Activation::Identity])
        .unwrap();
    let mut cfg = config(&spec, 0.01, 5, 8);
    cfg.form = Form::Literal;
    assert_eq!(run(&cfg, &data(&spec, 32, 1.0, 9), 1.0).verdict, Verdict::Equivalent);
}

#[test]
fn the_mutant_flags_list_check_and_refuse() {
    let dir = temp_dir("verdict-mutant-cli");
    let (code, out, err) = compare(&dir, &["--mutant", "list"]);
    assert_eq!(code, 0, "{out}{err}");
    for k in MutantKind::ALL {
        assert!(out.contains(k.name()), "{out}");
    }
    let (code, out, err) = compare(&dir, &["--mutant", "skip-phi-prime:2", "--steps", "20"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("step 0, layer 2") && out.contains("literal with mutant skip-phi-prime:2"), "{out}");
    assert_eq!(report(&dir)["implementation"], "literal with mutant skip-phi-prime:2");
    for (args, needle) in [
        (&["--mutant", "bogus"][..], "unknown mistake"),
        (&["--mutant", "skip-phi-prime:9"], "does not exist"),
        (&["--mutant", "flip-output-delta:1"], "give no layer"),
        (&["--mutant", "stale-weights:3"], "below the output"),
        (&["--mutant", "bias-grad-first-sample", "--no-bias"], "no bias"),
        (&["--mutant", "mean-not-sum", "--manual", "batched"], "literal"),
        (&["--tolerance", "round-off", "--rtol", "1e-3"], "fixed"),
    ] {
        let (code, out, err) = compare(&dir, args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn an_f32_run_reports_each_sides_distance_from_the_f64_step() {
    let dir = temp_dir("verdict-witness");
    let (code, out, err) = compare(&dir, &["--dtype", "f32", "--steps", "50"]);
    assert_eq!(code, 0, "{out}{err}");
    let r = report(&dir);
    let w = r["f64_witness"].as_array().expect("f64_witness in an f32 run");
    assert_eq!(w.len(), 1 + 2 * 2 * 3, "loss, and dW, db, W, b of three layers");
    for t in w {
        for side in ["manual_max_ulp", "torch_max_ulp"] {
            let v = t[side].as_f64().unwrap();
            assert!(v.is_finite() && v >= 0.0, "{t}");
        }
    }
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert!(metrics.lines().next().unwrap().contains("dW1_manual_ulp"));

    let (code, _, _) = compare(&dir, &["--steps", "5"]);
    assert_eq!(code, 0);
    assert!(report(&dir)["f64_witness"].is_null(), "no witness for an f64 run");
}

#[test]
fn the_fixed_tolerance_stays_available() {
    let dir = temp_dir("verdict-fixed");
    let (code, out, err) = compare(&dir, &["--tolerance", "fixed", "--steps", "50"]);
    assert_eq!(code, 0, "{out}{err}");
    let r = report(&dir);
    assert_eq!(r["tolerance"]["mode"], "fixed");
    assert_eq!(r["tolerance"]["rtol"], 1e-10);
    // --rtol alone implies fixed; and a fixed tolerance too tight for round-off cries wolf.
    let (code, out, _) = compare(&dir, &["--rtol", "0", "--atol", "0", "--steps", "50"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(report(&dir)["tolerance"]["mode"], "fixed");
}

#[test]
fn two_lanes_give_the_same_outcome_as_one() {
    // Large enough (≥ 1e6 flop per step) for the bounds and the free reference to run on a second
    // thread when the run may use two.
    let spec = Spec::new(vec![8, 64, 64, 4], vec![Activation::Tanh, Activation::Tanh, Activation::Identity])
        .unwrap();
    let d = data(&spec, 128, 1.0, 5);
    let mut cfg = config(&spec, 0.01, 6, 64);
    cfg.drift_tol = 1e-8;
    let one = run(&cfg, &d, 1.0);
    cfg.threads = 2;
    let two = run(&cfg, &d, 1.0);
    assert_eq!(one.verdict, Verdict::Equivalent);
    assert_eq!(two.verdict, Verdict::Equivalent);
    for (a, b) in one.records.iter().zip(&two.records) {
        assert_eq!(
            (a.manual_loss, a.torch_loss, a.torch_free_loss),
            (b.manual_loss, b.torch_loss, b.torch_free_loss)
        );
        let ratios =
            |r: &backprop::harness::StepRecord| r.tensors.iter().map(|t| t.ratio).collect::<Vec<_>>();
        assert_eq!(ratios(a), ratios(b), "step {}", a.step);
    }
    assert_eq!(one.final_params, two.final_params);
}
