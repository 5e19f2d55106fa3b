//! The `train` command: the same network, data and optimiser flags as `compare`, trained by one
//! implementation, the hand-written one or libtorch; saves the weights and the loss curve.

use anyhow::{bail, Result};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::commands::{progress_bar, run_tool_matches, NetArgs, Setup};
use crate::data::{self, Dataset};
use crate::fsio;
use crate::harness::Batches;
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::manual::{Backprop, Batch, Split, SplitWorkspace};
use crate::model::params::Params;
use crate::model::spec::{parse_activations, parse_layers, DType};
use crate::output::weights;

mod curves;

use curves::{draw_curves, write_curve_csv};

const EXAMPLES: &str = "\
Examples:
  train                                    hand-written backprop, tanh 1-16-16-1 on sine
  train --impl torch                       the same through libtorch
  train --layers 2,64,64,2 --dataset spirals --activations relu,relu,identity \\
        --loss cross-entropy --optimizer adam --lr 0.01 --steps 3000 --val-split 0.2
  train --load out/weights.safetensors     continue from saved weights

Writes out/weights.safetensors (W{k}: n_{k-1} x n_k, b{k}), out/train_loss.csv (step, epoch, loss,
val_loss, val_accuracy) and out/train_loss.png. The whole-dataset evaluations (the training accuracy
when the targets are classes, the validation loss and accuracy) run every --eval-every epochs and
after the last step.
Exit status: 0 trained, 2 bad input.";

/// Train an MLP with the hand-written backpropagation (or libtorch) and save it.
#[derive(Parser, Debug, Clone)]
#[command(name = "train", version, after_help = EXAMPLES, allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Network, data and training flags.
    #[command(flatten)]
    pub net: NetArgs,
    /// manual (hand-written backpropagation and optimizer) or torch (libtorch autograd and
    /// torch::optim).
    #[arg(long = "impl", default_value = "manual")]
    pub implementation: String,
    /// Start from these weights (a weights.safetensors of the same network) instead of the init.
    #[arg(long)]
    pub load: Option<PathBuf>,
    /// Share of the samples held out for validation (drawn with --seed), evaluated every
    /// --eval-every epochs; 0 trains on everything.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub val_split: f64,
    /// Epochs between two whole-dataset evaluations (the training accuracy when the targets are
    /// classes, the validation loss and accuracy), and after the last step. [default: the fewest
    /// epochs whose steps cost ten times an evaluation (a forward pass over the evaluated samples
    /// counted as half a step per sample); 1 when there is nothing to evaluate]
    #[arg(long)]
    pub eval_every: Option<usize>,
}

/// Which implementation trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// The hand-written backpropagation (batched form) and optimizer.
    Manual,
    /// libtorch: autograd and torch::optim.
    Torch,
}

/// One epoch's summary: a pass over the training samples (⌈N_train / batch⌉ steps); the
/// evaluations are there only after the epochs evaluated ([`eval_cadence`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// The epoch's last step.
    pub step: usize,
    /// Mean of the epoch's batch losses (each before its update).
    pub train_loss: f64,
    /// Accuracy on the training samples after the epoch, when the targets classify and the epoch
    /// is evaluated.
    pub train_accuracy: Option<f64>,
    /// Loss on the validation samples after the epoch (with a validation split).
    pub val_loss: Option<f64>,
    /// Accuracy on the validation samples after the epoch, when the targets classify.
    pub val_accuracy: Option<f64>,
}

/// A finished training run.
#[derive(Clone, Debug)]
pub struct Trained {
    /// Loss of each step's batch, before its update.
    pub losses: Vec<f64>,
    /// Loss on the training samples (the whole dataset without a split) before and after.
    pub loss_before_after: (f64, f64),
    /// Accuracy on the training samples after training, when the targets classify.
    pub accuracy: Option<f64>,
    /// Every epoch, with its validation loss and accuracy.
    pub epochs: Vec<EpochRecord>,
    /// Training and validation samples.
    pub sizes: (usize, usize),
    /// Seconds spent in the training steps (evaluations excluded).
    pub seconds: f64,
    /// Epochs between two evaluations.
    pub eval_every: usize,
    /// Seconds spent in the evaluations between the first and the last step.
    pub eval_seconds: f64,
    /// Files written.
    pub written: Vec<PathBuf>,
}

impl Trained {
    /// The epoch of the best validation accuracy (the first, on ties), when there is one.
    pub fn best_validation(&self) -> Option<&EpochRecord> {
        self.epochs.iter().filter(|e| e.val_accuracy.is_some()).fold(None, |best: Option<&EpochRecord>, e| {
            match best {
                Some(b) if b.val_accuracy >= e.val_accuracy => Some(b),
                _ => Some(e),
            }
        })
    }
}

/// The default number of epochs between two whole-dataset evaluations: the fewest whose steps
/// cost at least ten times one evaluation. An evaluation is a forward pass over `evaluated`
/// samples (the training samples when the targets are classes, plus the validation samples),
/// counted as half a training step's work per sample (the forward pass is a third of a step's
/// products, and the share of its activations is larger in small networks); an epoch is
/// `per_epoch` steps of `batch` samples. 1 when nothing is evaluated.
pub fn eval_cadence(evaluated: usize, per_epoch: usize, batch: usize) -> usize {
    let epoch_samples = (per_epoch * batch).max(1);
    (5 * evaluated).div_ceil(epoch_samples).max(1)
}

/// Trains as `setup` says with `implementation`, starting from `load` or the seeded init, holding
/// out `val_split` of the samples for validation, evaluating every `eval_every` epochs (default
/// [`eval_cadence`]), and writes `weights.safetensors`, `train_loss.csv` and `train_loss.png`
/// under `out`.
pub fn train(
    setup: &Setup,
    implementation: Impl,
    load: Option<&Path>,
    val_split: f64,
    eval_every: Option<usize>,
    out: &Path,
    quiet: bool,
) -> Result<Trained> {
    let (data, _) = setup.load_data()?;
    let (train_set, val_set) = data::split(&data, val_split, setup.seed)?;
    let batch = train_batch(setup, &train_set)?;
    let run = Run { setup, data: &train_set, val: val_set.as_ref(), batch, eval_every, quiet };
    match setup.spec.dtype() {
        DType::F32 => train_in::<f32>(&run, implementation, load, out),
        DType::F64 => train_in::<f64>(&run, implementation, load, out),
    }
}

/// The batch size `setup` asks for on `train_set`: an error when larger than it, 0 the full batch.
fn train_batch(setup: &Setup, train_set: &Dataset) -> Result<usize> {
    let n = train_set.len();
    Ok(match setup.batch_size {
        Some(b) if b > n => {
            bail!("--batch-size {b} is larger than the training set ({n} samples); use 0 for the full batch")
        }
        Some(0) => n,
        Some(b) => b,
        None => crate::commands::DEFAULT_BATCH.min(n),
    })
}

/// What one training run is given: the settings, the training and validation samples, the batch
/// size, and the epochs between evaluations as asked for.
struct Run<'a> {
    setup: &'a Setup,
    data: &'a Dataset,
    val: Option<&'a Dataset>,
    batch: usize,
    eval_every: Option<usize>,
    quiet: bool,
}

impl Run<'_> {
    fn per_epoch(&self) -> usize {
        self.data.len().div_ceil(self.batch.max(1))
    }
    fn eval_every(&self) -> usize {
        self.eval_every.unwrap_or_else(|| {
            let classes = self.data.classes().map_or(0, |_| self.data.len());
            eval_cadence(classes + self.val.map_or(0, Dataset::len), self.per_epoch(), self.batch)
        })
    }
}

/// A dataset in the run's type, beside the f64 original: cast once for the whole run.
struct Evaluated<'a, T> {
    data: &'a Dataset,
    classes: Option<data::Classes>,
    x: Matrix<T>,
    y: Matrix<T>,
}

impl<'a, T: Scalar> Evaluated<'a, T> {
    fn new(data: &'a Dataset) -> Evaluated<'a, T> {
        Evaluated { data, classes: data.classes(), x: data.x.cast(), y: data.y.cast() }
    }

    /// Loss and accuracy (when the targets classify) of the current model; its outputs go to `out`.
    fn of(
        &self,
        learner: &mut dyn Backprop<T>,
        spec: &crate::model::spec::Spec,
        out: &mut Matrix<T>,
    ) -> (f64, Option<f64>) {
        learner.forward(&self.x, out);
        let loss = spec.loss().value(out.as_slice(), self.y.as_slice(), spec.n_out(), spec.label_smoothing());
        (loss.to64(), self.classes.map(|c| c.accuracy_in(out, &self.data.y)))
    }
}

/// What the training loop found.
struct Looped<T> {
    losses: Vec<f64>,
    epochs: Vec<EpochRecord>,
    seconds: f64,
    eval_seconds: f64,
    before: f64,
    after: f64,
    accuracy: Option<f64>,
    params: Params<T>,
}

/// The training loop: the run's steps, an epoch record after every epoch, with the evaluations
/// every `eval_every` epochs and after the last step; `at_epoch(e)` after epoch `e`'s record. The
/// steps' batches come from one reshuffled permutation and are gathered into two reused
/// matrices, so that once every buffer has grown to its size (the first epoch and evaluation) the
/// loop allocates nothing but what the step itself may.
fn train_loop<T: Scalar>(
    learner: &mut dyn Backprop<T>,
    run: &Run,
    at_epoch: &mut (dyn FnMut(usize) + Send),
) -> Result<Looped<T>> {
    let (spec, data, batch, steps) = (&run.setup.spec, run.data, run.batch, run.setup.steps);
    let (per_epoch, eval_every) = (run.per_epoch(), run.eval_every());
    let train_set = Evaluated::<T>::new(data);
    let val_set = run.val.map(Evaluated::<T>::new);
    let (x, y) = (&train_set.x, &train_set.y);
    let mut out = Matrix::<T>::zeros(0, spec.n_out());
    let before = train_set.of(learner, spec, &mut out).0;
    let mut losses = Vec::with_capacity(steps);
    let mut epochs = Vec::with_capacity(steps.div_ceil(per_epoch.max(1)));
    let mut bar = progress_bar(steps as u64, run.quiet);
    let mut batches = Batches::fast(data.len(), batch, run.setup.seed);
    let (mut xb, mut yb) = (Matrix::<T>::zeros(batch, spec.n_in()), Matrix::<T>::zeros(batch, spec.n_out()));
    let (mut seconds, mut eval_seconds) = (0.0, 0.0);
    let mut epoch_start = 0;
    for t in 0..steps {
        let idx = batches.next_batch();
        xb.gather_rows(x, idx);
        yb.gather_rows(y, idx);
        let start = Instant::now();
        let loss = learner.step(&Batch::new(&xb, &yb)).to64();
        seconds += start.elapsed().as_secs_f64();
        losses.push(loss);
        bar.tick_to(t as u64 + 1);
        if !loss.is_finite() {
            bail!("training diverged: the loss is {loss} at step {t}; try a smaller --lr");
        }
        if (t + 1) % per_epoch == 0 || t + 1 == steps {
            let epoch_losses = &losses[epoch_start..];
            let train_loss = epoch_losses.iter().sum::<f64>() / epoch_losses.len() as f64;
            let epoch = epochs.len() + 1;
            let mut record = EpochRecord {
                epoch,
                step: t,
                train_loss,
                train_accuracy: None,
                val_loss: None,
                val_accuracy: None,
            };
            if epoch % eval_every == 0 || t + 1 == steps {
                let start = Instant::now();
                if train_set.classes.is_some() {
                    record.train_accuracy = Some(train_set.of(learner, spec, &mut out).1.unwrap_or(f64::NAN));
                }
                if let Some(v) = &val_set {
                    let (l, a) = v.of(learner, spec, &mut out);
                    (record.val_loss, record.val_accuracy) = (Some(l), a);
                }
                if t + 1 < steps {
                    eval_seconds += start.elapsed().as_secs_f64();
                }
            }
            epochs.push(record);
            epoch_start = t + 1;
            at_epoch(epoch);
        }
    }
    bar.finish();
    let (after, accuracy) = train_set.of(learner, spec, &mut out);
    Ok(Looped {
        losses,
        epochs,
        seconds,
        eval_seconds,
        before,
        after,
        accuracy,
        params: learner.params().into_owned(),
    })
}

/// The hand-written side's training loop as [`train`] runs it, on `data` (validation samples
/// `val`), with nothing written or printed: `at_epoch(e)` is called after each epoch `e` (and its
/// evaluation, when it has one). Returns the epochs' records.
pub fn train_manual<T: Scalar>(
    setup: &Setup,
    data: &Dataset,
    val: Option<&Dataset>,
    eval_every: Option<usize>,
    at_epoch: &mut (dyn FnMut(usize) + Send),
) -> Result<Vec<EpochRecord>> {
    let batch = train_batch(setup, data)?;
    let run = Run { setup, data, val, batch, eval_every, quiet: true };
    Ok(manual_loop(&run, Params::<T>::init(&setup.spec), at_epoch)?.epochs)
}

/// The hand-written side ([`Split`]: the batch split over the threads of the pool it runs in)
/// trained from `init`.
fn manual_loop<T: Scalar>(
    run: &Run,
    init: Params<T>,
    at_epoch: &mut (dyn FnMut(usize) + Send),
) -> Result<Looped<T>> {
    let (spec, batch) = (&run.setup.spec, run.batch);
    init.check_shapes(spec)?;
    let threads = SplitWorkspace::<T>::threads_for(spec, batch, run.setup.threads);
    let mut manual = Split::new(spec, init, run.setup.optim, batch, threads);
    let mut go = || train_loop(&mut manual, run, at_epoch);
    if threads > 1 {
        // Inside the pool the hand-over of a block to the other thread is a steal by a worker that
        // is awake, not a wake-up (SplitWorkspace).
        rayon::ThreadPoolBuilder::new().num_threads(threads).build()?.install(go)
    } else {
        go()
    }
}

fn train_in<T: Scalar>(run: &Run, implementation: Impl, load: Option<&Path>, out: &Path) -> Result<Trained> {
    let (setup, data, val, batch) = (run.setup, run.data, run.val, run.batch);
    let spec = &setup.spec;
    let init: Params<T> = match load {
        Some(path) => weights::load(path, spec).map_err(load_error)?,
        None => Params::init(spec),
    };
    // Only now, with the weights read: a --load that does not fit writes nothing, --out included.
    fsio::prepare_dir(out)?;
    let per_epoch = run.per_epoch();

    let looped: Looped<T> = match implementation {
        Impl::Manual => manual_loop(run, init, &mut |_| {})?,
        #[cfg(not(feature = "torch"))]
        Impl::Torch => bail!("--impl torch: this build has no libtorch (built without the `torch` feature)"),
        #[cfg(feature = "torch")]
        Impl::Torch => {
            crate::reference::use_threads(spec, batch, setup.threads);
            let mut torch = crate::reference::Reference::new(spec, &init, &setup.optim)?;
            train_loop(&mut torch, run, &mut |_| {})?
        }
    };
    let Looped { losses, epochs, seconds, eval_seconds, before, after, accuracy, params } = looped;

    // The share of all samples held out (the flag's value as realised: it gives the same split).
    let n_val = val.map_or(0, Dataset::len);
    let config = crate::harness::manifest::RunManifest {
        implementation: Some(
            match implementation {
                Impl::Manual => "manual",
                Impl::Torch => "torch",
            }
            .to_string(),
        ),
        val_split: Some(n_val as f64 / (data.len() + n_val) as f64),
        ..setup.manifest(batch)
    };
    let weights_path = out.join("weights.safetensors");
    let curve_path = out.join("train_loss.csv");
    let png_path = out.join("train_loss.png");
    let title = format!(
        "Training {} ({}) with {}: {} training samples{}",
        spec.widths().iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-"),
        match implementation {
            Impl::Manual => "hand-written",
            Impl::Torch => "libtorch",
        },
        setup.optim.describe(),
        data.len(),
        val.map_or(String::new(), |v| format!(", {} validation samples", v.len()))
    );
    // The weights and the CSV are written on a second thread while the PNG is drawn: for a long
    // run of a small network, the CSV and the PNG each cost a noticeable share of the steps' time.
    std::thread::scope(|s| -> Result<()> {
        let files = s.spawn(|| {
            weights::save(&weights_path, &params, &config)?;
            fsio::write_with(&curve_path, |tmp| {
                let mut csv = std::io::BufWriter::new(std::fs::File::create(tmp)?);
                write_curve_csv(&mut csv, &losses, &epochs, per_epoch)?;
                csv.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                Ok(())
            })
        });
        draw_curves(&png_path, &title, &losses, &epochs, spec.loss().name(), run.eval_every())?;
        files.join().map_err(|_| anyhow::anyhow!("writing {} panicked", curve_path.display()))?
    })?;
    Ok(Trained {
        losses,
        loss_before_after: (before, after),
        accuracy,
        epochs,
        sizes: (data.len(), val.map_or(0, Dataset::len)),
        seconds,
        eval_every: run.eval_every(),
        eval_seconds,
        written: vec![weights_path, curve_path, png_path],
    })
}

/// A weights file's error (which names the file) as the flag that gave it: `--load FILE: …`.
fn load_error(e: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!("--load {}", super::one_line(&e))
}

/// `--load FILE`: the network flags not given on the command line (`given` says which were) are
/// the file's (its widths, activations, bias, dtype, loss and label smoothing, from its metadata),
/// and so is the dataset unless `--dataset` is given; a network flag given that says otherwise is
/// an error naming both.
fn adopt_network(net: &mut NetArgs, path: &Path, given: impl Fn(&str) -> bool) -> Result<()> {
    let Some(saved) = weights::saved(path).map_err(load_error)? else {
        return Ok(());
    };
    let file = &saved.spec;
    let at = path.display();
    let differ = |flag: &str, mine: &str, theirs: &str| {
        anyhow::anyhow!(
            "--{flag} {mine}: the weights in {at} are for --{flag} {theirs}; drop --{flag} to use the file's"
        )
    };
    let join = |v: Vec<String>| v.join(",");
    let widths = join(file.widths().iter().map(|w| w.to_string()).collect());
    let acts = join(file.activations().iter().map(|a| a.name().to_string()).collect());
    if given("layers") && parse_layers(&net.layers)? != file.widths() {
        return Err(differ("layers", &net.layers, &widths));
    }
    if given("activations") && parse_activations(&net.activations, file.depth())? != file.activations() {
        return Err(differ("activations", &net.activations, &acts));
    }
    if (given("bias") || given("no_bias")) && net.no_bias == file.bias() {
        let name = |b: bool| if b { "bias" } else { "no-bias" };
        bail!(
            "--{}: the weights in {at} are for --{}; drop it to use the file's",
            name(!file.bias()),
            name(file.bias())
        );
    }
    if given("dtype") && net.dtype != file.dtype() {
        return Err(differ("dtype", net.dtype.name(), file.dtype().name()));
    }
    if given("loss") && net.loss != file.loss() {
        return Err(differ("loss", net.loss.name(), file.loss().name()));
    }
    net.layers = widths;
    net.activations = acts;
    (net.bias, net.no_bias) = (file.bias(), !file.bias());
    net.dtype = file.dtype();
    net.loss = file.loss();
    if !given("label_smoothing") {
        net.label_smoothing = file.label_smoothing();
    }
    // The data it was trained on, unless other data is asked for.
    if let (false, Some(dataset)) = (given("dataset"), saved.dataset) {
        net.dataset = dataset;
        if let (false, Some(samples)) = (given("samples"), saved.samples) {
            net.samples = samples;
        }
    }
    Ok(())
}

/// The `train` binary: parse, train, print one summary; exit status 0, or 2 on bad input.
pub fn main_train() -> i32 {
    run_tool_matches(|args: &TrainArgs, matches| {
        let mut net = args.net.clone();
        if let Some(path) = &args.load {
            let given = |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
            adopt_network(&mut net, path, given)?;
        }
        let setup = net.setup()?;
        let implementation = match args.implementation.as_str() {
            "manual" => Impl::Manual,
            "torch" => Impl::Torch,
            other => bail!("--impl: unknown {other:?} (expected manual or torch)"),
        };
        if args.eval_every == Some(0) {
            bail!("--eval-every: must be at least 1 (epochs between two evaluations)");
        }
        let t = train(
            &setup,
            implementation,
            args.load.as_deref(),
            args.val_split,
            args.eval_every,
            &args.net.out,
            args.net.quiet,
        )?;
        let steps = t.losses.len();
        println!(
            "trained {} ({}, {}, {}) for {steps} steps in {:.3} s ({:.1} µs/step): loss on the {} {:.6e} -> {:.6e}{}",
            setup.spec.widths().iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-"),
            args.implementation,
            setup.spec.dtype(),
            setup.optim.kind,
            t.seconds,
            1e6 * t.seconds / steps as f64,
            if t.sizes.1 > 0 { format!("training set ({} samples)", t.sizes.0) } else { "whole dataset".to_string() },
            t.loss_before_after.0,
            t.loss_before_after.1,
            t.accuracy.map_or(String::new(), |a| format!(", accuracy {:.1}%", 100.0 * a)),
        );
        if t.sizes.1 > 0 || t.accuracy.is_some() {
            println!(
                "evaluated every {} epoch(s) and after the last step: {:.3} s in the evaluations before it, {:.1}% of \
                 the steps' time",
                t.eval_every,
                t.eval_seconds,
                100.0 * t.eval_seconds / t.seconds.max(f64::MIN_POSITIVE)
            );
        }
        if let Some(best) = t.best_validation() {
            println!(
                "best validation accuracy {:.1}% ({} samples) after epoch {} of {} (step {}), validation loss there {:.4e}",
                100.0 * best.val_accuracy.unwrap_or(f64::NAN),
                t.sizes.1,
                best.epoch,
                t.epochs.len(),
                best.step,
                best.val_loss.unwrap_or(f64::NAN)
            );
        } else if let Some(last) = t.epochs.last().filter(|e| e.val_loss.is_some()) {
            println!("validation loss after the last epoch {:.4e}", last.val_loss.unwrap_or(f64::NAN));
        }
        if !args.net.quiet {
            for p in &t.written {
                println!("wrote {}", p.display());
            }
        }
        Ok(0)
    })
}
