//! The `train` command: the same network, data and optimiser flags as `compare`, trained by one
//! implementation, the hand-written one or libtorch; saves the weights and the loss curve.

use anyhow::{bail, Result};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::commands::{progress_bar, run_tool, NetArgs, Setup};
use crate::data::Dataset;
use crate::fsio;
use crate::harness::batch_order;
use crate::manual::{Mlp, Workspace};
use crate::model::matrix::Matrix;
use crate::model::params::Params;
use crate::model::scalar::Scalar;
use crate::model::spec::DType;
use crate::output::weights;
#[cfg(feature = "torch")]
use crate::reference::{matrix_to_tensor, Trainer};

const EXAMPLES: &str = "\
Examples:
  train                                    hand-written backprop, tanh 1-16-16-1 on sine
  train --impl torch                       the same through libtorch
  train --layers 2,32,2 --dataset spirals --activations relu --steps 5000
  train --load out/weights.safetensors     continue from saved weights

Writes out/weights.safetensors (W{k}: n_{k-1} x n_k, b{k}) and out/train_loss.csv.
Exit status: 0 trained, 2 bad input.";

/// Train an MLP with the hand-written backpropagation (or libtorch) and save it.
#[derive(Parser, Debug, Clone)]
#[command(name = "train", version, after_help = EXAMPLES, allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Network, data and training flags.
    #[command(flatten)]
    pub net: NetArgs,
    /// manual (hand-written backpropagation) or torch (libtorch autograd and SGD).
    #[arg(long = "impl", default_value = "manual")]
    pub implementation: String,
    /// Start from these weights (a weights.safetensors of the same network) instead of the init.
    #[arg(long)]
    pub load: Option<PathBuf>,
}

/// Which implementation trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// The hand-written backpropagation (batched form).
    Manual,
    /// libtorch: autograd and tch's SGD.
    Torch,
}

/// A finished training run.
#[derive(Clone, Debug)]
pub struct Trained {
    /// Loss of each step's batch, before its update.
    pub losses: Vec<f64>,
    /// Loss on the whole dataset before and after training.
    pub loss_before_after: (f64, f64),
    /// Accuracy on the whole dataset after training, when the targets classify.
    pub accuracy: Option<f64>,
    /// Seconds spent in the training steps.
    pub seconds: f64,
    /// Files written.
    pub written: Vec<PathBuf>,
}

/// Trains as `setup` says with `implementation`, starting from `load` or the seeded init, and
/// writes `weights.safetensors` and `train_loss.csv` under `out`.
pub fn train(
    setup: &Setup,
    implementation: Impl,
    load: Option<&Path>,
    out: &Path,
    quiet: bool,
) -> Result<Trained> {
    let (data, batch) = setup.load_data()?;
    fsio::prepare_dir(out)?;
    match setup.spec.dtype() {
        DType::F32 => train_in::<f32>(setup, &data, batch, implementation, load, out, quiet),
        DType::F64 => train_in::<f64>(setup, &data, batch, implementation, load, out, quiet),
    }
}

fn train_in<T: Scalar>(
    setup: &Setup,
    data: &Dataset,
    batch: usize,
    implementation: Impl,
    load: Option<&Path>,
    out: &Path,
    quiet: bool,
) -> Result<Trained> {
    let spec = &setup.spec;
    let init: Params<T> = match load {
        Some(path) => weights::load(path, spec)?,
        None => Params::init(spec),
    };
    let mut mlp = Mlp::with_params(spec.clone(), init)?;
    let x: Matrix<T> = data.x.cast();
    let y: Matrix<T> = data.y.cast();
    let order = batch_order(data.len(), batch, setup.steps, setup.seed);
    let loss_on_all = |m: &Mlp<T>| spec.loss().value(m.predict(&x).as_slice(), y.as_slice()).to64();
    let before = loss_on_all(&mlp);

    let mut losses = Vec::with_capacity(setup.steps);
    let mut bar = progress_bar(setup.steps as u64, quiet);
    let (mut xb, mut yb) = (Matrix::<T>::zeros(batch, spec.n_in()), Matrix::<T>::zeros(batch, spec.n_out()));
    let start = Instant::now();
    match implementation {
        Impl::Manual => {
            let mut ws = Workspace::new(spec, batch);
            let lr = T::of(setup.lr);
            for (t, idx) in order.iter().enumerate() {
                xb.gather_rows(&x, idx);
                yb.gather_rows(&y, idx);
                losses.push(mlp.train_step(&mut ws, &xb, &yb, lr).to64());
                bar.tick_to(t as u64 + 1);
            }
        }
        #[cfg(not(feature = "torch"))]
        Impl::Torch => bail!("--impl torch: this build has no libtorch (built without the `torch` feature)"),
        #[cfg(feature = "torch")]
        Impl::Torch => {
            crate::reference::use_threads(spec, batch, setup.threads);
            let mut trainer = Trainer::new(&mlp, setup.lr)?;
            for (t, idx) in order.iter().enumerate() {
                xb.gather_rows(&x, idx);
                yb.gather_rows(&y, idx);
                losses.push(trainer.step(&matrix_to_tensor(&xb), &matrix_to_tensor(&yb)));
                bar.tick_to(t as u64 + 1);
            }
            *mlp.params_mut() = trainer.params();
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish();
    if let Some(t) = losses.iter().position(|l| !l.is_finite()) {
        bail!("training diverged: the loss is {} at step {t}; try a smaller --lr", losses[t]);
    }

    let mut config = setup.config_json(batch);
    config["impl"] = serde_json::json!(match implementation {
        Impl::Manual => "manual",
        Impl::Torch => "torch",
    });
    let weights_path = out.join("weights.safetensors");
    weights::save(&weights_path, mlp.params(), &config)?;
    let curve_path = out.join("train_loss.csv");
    let mut csv = String::from("step,loss\n");
    for (t, l) in losses.iter().enumerate() {
        csv.push_str(&format!("{t},{l:e}\n"));
    }
    fsio::write_atomic(&curve_path, csv.as_bytes())?;
    let accuracy = data.classes().map(|c| c.accuracy(&mlp.predict(&x).cast(), &data.y));
    Ok(Trained {
        losses,
        loss_before_after: (before, loss_on_all(&mlp)),
        accuracy,
        seconds,
        written: vec![weights_path, curve_path],
    })
}

/// The `train` binary: parse, train, print one summary; exit status 0, or 2 on bad input.
pub fn main_train() -> i32 {
    run_tool(|args: &TrainArgs| {
        let setup = args.net.setup()?;
        let implementation = match args.implementation.as_str() {
            "manual" => Impl::Manual,
            "torch" => Impl::Torch,
            other => bail!("--impl: unknown {other:?} (expected manual or torch)"),
        };
        let t = train(&setup, implementation, args.load.as_deref(), &args.net.out, args.net.quiet)?;
        let steps = t.losses.len();
        println!(
            "trained {} ({}, {}) for {steps} steps in {:.3} s ({:.1} µs/step): loss on the whole dataset {:.6e} -> {:.6e}{}",
            setup.spec.widths().iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-"),
            args.implementation,
            setup.spec.dtype(),
            t.seconds,
            1e6 * t.seconds / steps as f64,
            t.loss_before_after.0,
            t.loss_before_after.1,
            t.accuracy.map_or(String::new(), |a| format!(", accuracy {:.1}%", 100.0 * a)),
        );
        if !args.net.quiet {
            for p in &t.written {
                println!("wrote {}", p.display());
            }
        }
        Ok(0)
    })
}
