//! Optimizers and the cross-entropy, matched to libtorch step by step: every optimizer (with its
//! variants) × f32/f64 × {half-sse, mse, cross-entropy} on a few networks is judged equivalent with
//! room to spare, and the classic mistakes of hand-written optimizers — Adam without its bias
//! corrections, ε inside the square root, AdamW's decay coupled into the gradient, a dampened
//! first momentum step, Nesterov without its lookahead — are each caught at their first step,
//! in the updated weights, while the gradients still agree.
#![cfg(feature = "torch")]

mod common;

use backprop::data::Dataset;
use backprop::harness::{self, Outcome, RunConfig, Verdict};
use backprop::manual::{Backprop, Batch};
use backprop::{Activation, DType, Loss, Matrix, OptimConfig, OptimizerKind, Params, Spec, Workspace};
use common::run_config;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;

/// `n` samples with inputs uniform in ±1 and one-hot targets (a class from the inputs' signs),
/// seeded: targets every loss accepts.
fn data(spec: &Spec, n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Matrix::from_fn(n, spec.n_in(), |_, _| rng.gen_range(-1.0..1.0));
    let c = spec.n_out();
    let y = Matrix::from_fn(n, c, |i, j| {
        let class = ((x[(i, 0)] + 1.0) * c as f64 / 2.0).floor().min(c as f64 - 1.0) as usize;
        if j == class {
            1.0
        } else {
            0.0
        }
    });
    Dataset { x, y }
}

fn run(cfg: &RunConfig, data: &Dataset) -> Outcome {
    backprop::reference::use_threads(&cfg.spec, cfg.batch_size, 1);
    match cfg.spec.dtype() {
        DType::F32 => harness::run::<f32>(cfg, data, &Params::init(&cfg.spec), None, |_| {}).unwrap(),
        DType::F64 => harness::run::<f64>(cfg, data, &Params::init(&cfg.spec), None, |_| {}).unwrap(),
    }
}

/// Every optimizer PyTorch has here, with the variants that change its arithmetic.
fn optimizers() -> Vec<(&'static str, OptimConfig)> {
    let with = |kind, lr, f: &dyn Fn(&mut OptimConfig)| {
        let mut c = OptimConfig::new(kind, lr);
        f(&mut c);
        c
    };
    vec![
        ("sgd", OptimConfig::sgd(0.05)),
        (
            "sgd momentum, dampening, weight decay",
            with(OptimizerKind::Sgd, 0.05, &|c| {
                c.momentum = 0.9;
                c.dampening = 0.2;
                c.weight_decay = 1e-2;
            }),
        ),
        (
            "sgd nesterov",
            with(OptimizerKind::Sgd, 0.05, &|c| {
                c.momentum = 0.8;
                c.nesterov = true;
            }),
        ),
        ("adam", OptimConfig::new(OptimizerKind::Adam, 0.01)),
        (
            "adam amsgrad, weight decay",
            with(OptimizerKind::Adam, 0.01, &|c| {
                c.amsgrad = true;
                c.weight_decay = 1e-2;
                c.betas = (0.8, 0.99);
            }),
        ),
        ("adamw", OptimConfig::new(OptimizerKind::AdamW, 0.01)),
        ("adamw amsgrad", with(OptimizerKind::AdamW, 0.01, &|c| c.amsgrad = true)),
        ("rmsprop", OptimConfig::new(OptimizerKind::RmsProp, 0.005)),
        (
            "rmsprop centered, momentum, weight decay",
            with(OptimizerKind::RmsProp, 0.005, &|c| {
                c.centered = true;
                c.momentum = 0.5;
                c.weight_decay = 1e-3;
                c.alpha = 0.9;
            }),
        ),
    ]
}

#[test]
fn every_optimizer_and_loss_matches_libtorch() {
    let nets: [(&[usize], Activation); 3] = [
        (&[2, 8, 3], Activation::Tanh),
        (&[3, 16, 16, 4], Activation::Gelu),
        (&[2, 12, 12, 12, 2], Activation::Relu),
    ];
    let mut worst: (f64, String) = (0.0, String::new());
    let mut runs = 0;
    for (name, optim) in optimizers() {
        for dtype in [DType::F64, DType::F32] {
            for loss in [Loss::HalfSse, Loss::Mse, Loss::CrossEntropy] {
                for (i, (widths, phi)) in nets.iter().enumerate() {
                    let mut acts = vec![*phi; widths.len() - 2];
                    acts.push(Activation::Identity);
                    let smoothing = if loss == Loss::CrossEntropy && i == 1 { 0.1 } else { 0.0 };
                    let spec = Spec::new(widths.to_vec(), acts)
                        .unwrap()
                        .with_loss(loss)
                        .with_label_smoothing(smoothing)
                        .with_dtype(dtype)
                        .with_seed(i as u64 + 3);
                    let d = data(&spec, 48, i as u64);
                    let o = run(&run_config(&spec, optim, 25, 16), &d);
                    let what = format!("{name}, {dtype}, {loss}, {widths:?}");
                    assert_eq!(o.verdict, Verdict::Equivalent, "{what}: {:?}", o.first_divergence);
                    let m = o.max_ratio.loss.max(o.max_ratio.grad).max(o.max_ratio.weight);
                    if m > worst.0 {
                        worst = (m, what);
                    }
                    runs += 1;
                }
            }
        }
    }
    println!("{runs} runs: largest error {:.3} of its tolerance ({})", worst.0, worst.1);
    // A correct implementation stays within half its tolerance (docs/verdict.md).
    assert!(worst.0 <= 0.5, "largest error {:.3} of its tolerance ({})", worst.0, worst.1);
}

/// Mistakes hand-written optimizers make, each a one-line change of the correct update.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mistake {
    /// Adam without 1 − β₁ᵗ and 1 − β₂ᵗ.
    NoBiasCorrection,
    /// Adam's √(v̂ + ε) instead of √v̂ + ε.
    EpsInsideSqrt,
    /// AdamW's decay added to the gradient (Adam's L2) instead of applied to the weights.
    CoupledDecay,
    /// SGD's first momentum step dampened: b = (1 − τ) g instead of b = g.
    DampenedFirstStep,
    /// Nesterov without the lookahead: d = b instead of d = g + μ b.
    NesterovWithoutLookahead,
    /// RMSprop's ε inside the square root.
    RmsEpsInsideSqrt,
}

/// The batched gradients, and an optimizer written out by hand, flat, with one mistake.
struct Wrong {
    ws: Workspace<f64>,
    params: Params<f64>,
    cfg: OptimConfig,
    mistake: Mistake,
    t: i32,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Backprop<f64> for Wrong {
    fn describe(&self) -> String {
        format!("{:?}", self.mistake)
    }

    fn params(&self) -> Cow<'_, Params<f64>> {
        Cow::Borrowed(&self.params)
    }

    fn set_params(&mut self, params: &Params<f64>) {
        self.params.copy_from(params);
    }

    fn forward(&mut self, x: &Matrix<f64>, out: &mut Matrix<f64>) {
        *out = self.ws.forward(&self.params, x).clone();
    }

    fn gradients(&mut self, b: &Batch<'_, f64>, g: &mut Params<f64>) -> f64 {
        let loss = self.ws.gradients(&self.params, b.x, b.y);
        g.clone_from(self.ws.grads());
        loss
    }

    fn update(&mut self, grads: &Params<f64>) {
        let params = &mut self.params;
        let c = self.cfg;
        let (mut p, g) = (params.flat(), grads.flat());
        if self.m.is_empty() {
            self.m = vec![0.0; p.len()];
            self.v = vec![0.0; p.len()];
        }
        self.t += 1;
        let (b1, b2) = c.betas;
        for i in 0..p.len() {
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            match c.kind {
                OptimizerKind::Adam | OptimizerKind::AdamW => {
                    let mut gi = g[i];
                    if c.kind == OptimizerKind::AdamW {
                        if self.mistake == Mistake::CoupledDecay {
                            gi += c.weight_decay * p[i];
                        } else {
                            p[i] *= 1.0 - c.lr * c.weight_decay;
                        }
                    }
                    *m = b1 * *m + (1.0 - b1) * gi;
                    *v = b2 * *v + (1.0 - b2) * gi * gi;
                    let (bc1, bc2) = match self.mistake {
                        Mistake::NoBiasCorrection => (1.0, 1.0),
                        _ => (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t)),
                    };
                    let denom = match self.mistake {
                        Mistake::EpsInsideSqrt => (*v / bc2 + c.eps).sqrt(),
                        _ => v.sqrt() / bc2.sqrt() + c.eps,
                    };
                    p[i] -= c.lr / bc1 * (*m / denom);
                }
                OptimizerKind::Sgd => {
                    let d = g[i];
                    *m = if self.t == 1 && self.mistake != Mistake::DampenedFirstStep {
                        d
                    } else {
                        c.momentum * *m + (1.0 - c.dampening) * d
                    };
                    let step = match (c.nesterov, self.mistake) {
                        (true, Mistake::NesterovWithoutLookahead) | (false, _) => *m,
                        (true, _) => d + c.momentum * *m,
                    };
                    p[i] -= c.lr * step;
                }
                OptimizerKind::RmsProp => {
                    *v = c.alpha * *v + (1.0 - c.alpha) * g[i] * g[i];
                    let r = match self.mistake {
                        Mistake::RmsEpsInsideSqrt => (*v + c.eps).sqrt(),
                        _ => v.sqrt() + c.eps,
                    };
                    p[i] -= c.lr * g[i] / r;
                }
            }
        }
        params.set_flat(&p);
    }
}

#[test]
fn optimizer_mistakes_are_caught_in_the_update_at_their_first_step() {
    let spec = Spec::new(vec![2, 8, 8, 3], vec![Activation::Tanh, Activation::Tanh, Activation::Identity])
        .unwrap()
        .with_loss(Loss::CrossEntropy)
        .with_seed(5);
    let d = data(&spec, 32, 9);
    let cases = [
        (Mistake::NoBiasCorrection, OptimConfig::new(OptimizerKind::Adam, 0.01), 0),
        (Mistake::EpsInsideSqrt, OptimConfig::new(OptimizerKind::Adam, 0.01), 0),
        (Mistake::CoupledDecay, OptimConfig::new(OptimizerKind::AdamW, 0.01), 0),
        (
            Mistake::DampenedFirstStep,
            {
                let mut c = OptimConfig::new(OptimizerKind::Sgd, 0.05);
                c.momentum = 0.9;
                c.dampening = 0.5;
                c
            },
            0,
        ),
        (
            Mistake::NesterovWithoutLookahead,
            {
                let mut c = OptimConfig::new(OptimizerKind::Sgd, 0.05);
                c.momentum = 0.9;
                c.nesterov = true;
                c
            },
            0,
        ),
        (Mistake::RmsEpsInsideSqrt, OptimConfig::new(OptimizerKind::RmsProp, 0.01), 0),
    ];
    backprop::reference::use_threads(&spec, 32, 1);
    for (mistake, optim, step) in cases {
        let cfg = run_config(&spec, optim, 10, 16);
        let mut wrong = Wrong {
            ws: Workspace::new(&spec, 16),
            params: Params::zeros(&spec),
            cfg: optim,
            mistake,
            t: 0,
            m: vec![],
            v: vec![],
        };
        let o = harness::run_with::<f64>(&cfg, &d, &Params::init(&spec), &mut wrong, None, |_| {}).unwrap();
        assert_eq!(o.verdict, Verdict::NotEquivalent, "{mistake:?} was not caught");
        let first = o.first_divergence.as_ref().unwrap();
        assert_eq!(first.step, step, "{mistake:?}: {first:?}");
        // The gradients agree: only updated parameters fail.
        assert!(
            o.failing.iter().all(|f| f.name.starts_with('W') || f.name.starts_with('b')),
            "{mistake:?}: {:?}",
            o.failing
        );
        println!(
            "{mistake:?}: caught at step {}, {} at {:.3e}× its tolerance",
            first.step, first.tensor, first.ratio
        );
    }

    // The same hand-written optimizer without a mistake agrees.
    let optim = OptimConfig::new(OptimizerKind::Adam, 0.01);
    let mut right = Wrong {
        ws: Workspace::new(&spec, 16),
        params: Params::zeros(&spec),
        cfg: optim,
        mistake: Mistake::RmsEpsInsideSqrt,
        t: 0,
        m: vec![],
        v: vec![],
    };
    let o = harness::run_with::<f64>(
        &run_config(&spec, optim, 10, 16),
        &d,
        &Params::init(&spec),
        &mut right,
        None,
        |_| {},
    )
    .unwrap();
    assert_eq!(o.verdict, Verdict::Equivalent, "{:?}", o.first_divergence);
}

/// A cross-entropy run on logits far outside exp's range: the shifted log-sum-exp keeps both sides
/// finite, and they agree.
#[test]
fn cross_entropy_agrees_on_huge_logits() {
    for dtype in [DType::F64, DType::F32] {
        let spec = Spec::new(vec![2, 16, 3], vec![Activation::Identity, Activation::Identity])
            .unwrap()
            .with_loss(Loss::CrossEntropy)
            .with_dtype(dtype);
        let mut d = data(&spec, 32, 1);
        for v in d.x.as_mut_slice() {
            *v *= 1e3;
        }
        let mut init = Params::<f64>::init(&spec);
        for l in &mut init.layers {
            l.w.as_mut_slice().iter_mut().for_each(|w| *w *= 30.0);
        }
        let cfg = run_config(&spec, OptimConfig::new(OptimizerKind::Adam, 0.01), 10, 32);
        backprop::reference::use_threads(&spec, 32, 1);
        let o = match dtype {
            DType::F64 => harness::run::<f64>(&cfg, &d, &init, None, |_| {}).unwrap(),
            DType::F32 => harness::run::<f32>(&cfg, &d, &init.cast(), None, |_| {}).unwrap(),
        };
        assert_eq!(o.verdict, Verdict::Equivalent, "{dtype}: {:?}", o.first_divergence);
        assert!(o.records[0].manual_loss > 1e3, "the logits are not huge: {}", o.records[0].manual_loss);
    }
}
