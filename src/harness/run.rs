//! The run: trains the implementation under test and the libtorch reference side by side from the
//! same weights on the same batches, and compares them at every step.
//!
//! Two comparisons per step:
//! - **lockstep** (the verdict): the reference computes loss, gradients and update *at the
//!   implementation's current weights*; loss, every ∂E/∂W^k, ∂E/∂b^k and the updated W^k, b^k
//!   are compared entry by entry, each against its round-off bound ([`crate::harness::bound`]) or
//!   a fixed tolerance. This isolates one step's error.
//! - **independent** (drift): a second reference follows its own trajectory from the same initial
//!   weights; W^k and b^k of the two trajectories are compared every step. Round-off makes them
//!   part slowly; this is reported and plotted against its own tolerance.
//!
//! In an f32 run a third witness, libtorch in f64 at the same weights (converted exactly), says
//! how far each side is from the more precise step, in f32 ulps.

use anyhow::{bail, Result};
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::data::Dataset;
use crate::harness::bound::{step_bounds_with, OptimBound, StepBounds};
use crate::harness::check::{
    compare, compare_bounded, compare_params, Divergence, Entry, TensorKind, TensorReport,
};
use crate::harness::trace::TraceWriter;
use crate::harness::witness::{self, DdWitness, WideStep};
use crate::harness::{
    batch_order, saturated_pct, ErrorSummary, Failing, Form, Judge, LayerStep, NonFinite, Outcome, RunConfig,
    Snapshot, StepRecord, TensorStep, Verdict, Witness,
};
use crate::manual::{Backprop, Batch, Batched, Literal, Workspace};
use crate::model::matrix::Matrix;
use crate::model::params::Params;
use crate::model::scalar::Scalar;
use crate::model::spec::{DType, Spec};
use crate::reference::{RefStep, Reference};

/// Steps of at least this many floating-point operations (6 · parameters · batch) run their
/// second lane (the free reference and the round-off bounds) on a worker thread when
/// [`RunConfig::threads`] allows: below it the hand-over costs more than it saves.
pub const OVERLAP_MIN_FLOPS: f64 = 1e6;

/// Trains the hand-written form `cfg.form` (with `cfg.mutant` planted in the literal form) and
/// libtorch for `cfg.steps` steps on `data` and compares them; fills `trace` when given.
pub fn run<T: Scalar>(
    cfg: &RunConfig,
    data: &Dataset,
    init: &Params<T>,
    trace: Option<&mut TraceWriter>,
    progress: impl FnMut(usize),
) -> Result<Outcome> {
    let mut implementation: Box<dyn Backprop<T>> = match (cfg.form, cfg.mutant) {
        (Form::Batched, None) => {
            Box::new(Batched::new(&cfg.spec, init.clone(), cfg.optim, cfg.batch_size.max(1)))
        }
        (Form::Batched, Some(_)) => {
            bail!("--mutant plants its mistake in the literal form: use --manual literal")
        }
        (Form::Literal, mutant) => Box::new(Literal::new(&cfg.spec, init.clone(), cfg.optim, mutant)),
    };
    run_with(cfg, data, init, implementation.as_mut(), trace, progress)
}

/// [`run`] with any implementation of [`Backprop`] under test, started from `init`: a network
/// type of your own is checked step by step against libtorch, with the same verdict.
///
/// ```
/// use backprop::data::Dataset;
/// use backprop::harness::{run_with, Form, Judge, RunConfig, Verdict};
/// use backprop::manual::{Backprop, Batch};
/// use backprop::{Activation, Matrix, OptimConfig, Params, Spec, Workspace};
/// use std::borrow::Cow;
///
/// /// A user's network: here the crate's batched form, with its gradient scaled by 1 + 1e-6, and
/// /// plain SGD with η = 0.01 written out.
/// struct Mine(Workspace<f64>, Params<f64>);
/// impl Backprop<f64> for Mine {
///     fn describe(&self) -> String { "mine".into() }
///     fn params(&self) -> Cow<'_, Params<f64>> { Cow::Borrowed(&self.1) }
///     fn set_params(&mut self, p: &Params<f64>) { self.1.copy_from(p); }
///     fn forward(&mut self, x: &Matrix<f64>, out: &mut Matrix<f64>) {
///         *out = self.0.forward(&self.1, x).clone();
///     }
///     fn gradients(&mut self, b: &Batch<'_, f64>, g: &mut Params<f64>) -> f64 {
///         let loss = self.0.gradients(&self.1, b.x, b.y);
///         g.clone_from(self.0.grads());
///         for l in &mut g.layers { l.w.as_mut_slice().iter_mut().for_each(|v| *v *= 1.0 + 1e-6); }
///         loss
///     }
///     fn update(&mut self, g: &Params<f64>) {
///         self.1.sgd_update(g, 0.01);
///     }
/// }
///
/// let spec = Spec::new(vec![2, 8, 1], vec![Activation::Tanh, Activation::Identity])?;
/// let data = Dataset { x: Matrix::from_fn(16, 2, |i, j| (i * 2 + j) as f64 / 32.0),
///                      y: Matrix::from_fn(16, 1, |i, _| (i as f64).sin()) };
/// let cfg = RunConfig { spec: spec.clone(), optim: OptimConfig::sgd(0.01), steps: 3, batch_size: 8, shuffle_seed: 0,
///     judge: Judge::round_off(), drift_tol: 1.0, fault: None, form: Form::Batched, mutant: None,
///     snapshot_steps: vec![], saturation: 0.97, witness_every: 0, threads: 1 };
/// let init = Params::init(&spec);
/// let mut mine = Mine(Workspace::new(&spec, 8), init.clone());
/// let out = run_with(&cfg, &data, &init, &mut mine, None, |_| {})?;
/// assert_eq!(out.verdict, Verdict::NotEquivalent);
/// assert_eq!(out.first_divergence.unwrap().step, 0);
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn run_with<T: Scalar>(
    cfg: &RunConfig,
    data: &Dataset,
    init: &Params<T>,
    implementation: &mut dyn Backprop<T>,
    mut trace: Option<&mut TraceWriter>,
    mut progress: impl FnMut(usize),
) -> Result<Outcome> {
    let spec = &cfg.spec;
    let depth = spec.depth();
    if let Some(f) = cfg.fault {
        if f.layer > depth {
            bail!("--inject-fault: layer {} does not exist (the network has {depth} layers)", f.layer);
        }
    }
    init.check_shapes(spec)?;
    spec.check_loss()?;
    cfg.optim.validate()?;
    crate::data::check_targets(data, spec, "the data")?;
    let x: Matrix<T> = data.x.cast();
    let y: Matrix<T> = data.y.cast();
    let order = batch_order(data.len(), cfg.batch_size, cfg.steps, cfg.shuffle_seed);
    let max_batch = order.iter().map(Vec::len).max().unwrap_or(1);

    implementation.set_params(init);
    let mut params = init.clone();
    let mut grads = Params::<T>::zeros(spec);
    let mut lockstep = Reference::new(spec, init, &cfg.optim)?;
    let free = Reference::new(spec, init, &cfg.optim)?;
    // The witness: libtorch in f64 for an f32 run, double-double for an f64 run; with a fixed
    // tolerance, none (the fixed test is torch.testing.assert_close's, alone).
    let round_off = cfg.judge.tolerance().is_none();
    let mut witness = match T::DTYPE {
        DType::F32 => {
            Some(Reference::new(&spec.clone().with_dtype(DType::F64), &init.cast::<f64>(), &cfg.optim)?)
        }
        DType::F64 => None,
    };
    let mut dd_witness = (T::DTYPE == DType::F64 && round_off)
        .then(|| DdLane::new(DdWitness::new(spec, cfg.optim), cfg.threads > 1));
    let every = witness_every(cfg, spec, max_batch, T::DTYPE);
    // For the snapshots; its buffers grow on first use, so a run without snapshots pays nothing.
    let mut full_ws = Workspace::<T>::new(spec, 0);
    let (mut xb, mut yb) =
        (Matrix::<T>::zeros(max_batch, spec.n_in()), Matrix::<T>::zeros(max_batch, spec.n_out()));
    let plain = cfg.optim.is_plain_sgd();
    let optim_bound = (!plain).then(|| OptimBound::new::<T>(cfg.optim, spec));
    let overlap = cfg.threads > 1 && 6.0 * spec.param_count() as f64 * max_batch as f64 >= OVERLAP_MIN_FLOPS;
    let mut lane = Lane::<T>::new(spec, free, optim_bound, overlap);
    let mut before = Params::<T>::zeros(spec);

    if let Some(tr) = trace.as_deref_mut() {
        tr.add("x".into(), vec![x.rows(), x.cols()], x.as_slice());
        tr.add("y".into(), vec![y.rows(), y.cols()], y.as_slice());
        tr.add_params("init", init, false);
    }

    let mut out = new_outcome(implementation.describe(), cfg.steps, init.cast());
    // 0 in the report: step 0 alone.
    out.witness_every = every.unwrap_or(0);
    let mut manual_losses = Vec::with_capacity(cfg.steps);
    let mut torch_losses = Vec::with_capacity(cfg.steps);

    for (t, idx) in order.iter().enumerate() {
        if cfg.snapshot_steps.contains(&t) {
            out.snapshots.push(snapshot(&mut full_ws, &params, &x, t));
        }
        xb.gather_rows(&x, idx);
        yb.gather_rows(&y, idx);

        // 1. The references start from the implementation's weights, before its step moves them;
        //    the round-off bounds are computed from the same weights and batch.
        lockstep.set_params(&params);
        if let Some(w) = &mut witness {
            w.set_params(&params);
        }
        let weight_norms: Vec<f64> = params.layers.iter().map(|l| frob(l.w.as_slice())).collect();

        // 2. The free reference's step and the round-off bounds start, from the same weights (on
        //    a second thread for a large step);
        // 3. the implementation under test takes its step (with the injected fault, if any), and
        //    the lockstep reference (and the f64 witness) take theirs.
        // The double-double witness of an f64 run, from the same weights (a stateful witness
        // takes every step; it is judged on the witnessed ones): first, since it is the longest
        // (on a worker thread when the run may use two).
        let witnessed = round_off && every.map_or(t == 0, |n| t % n == 0);
        // A stateful optimizer's witness follows every step, unless it takes step 0 alone.
        let follow = !plain && every.is_some();
        if let Some(dd) = dd_witness.as_mut().filter(|_| witnessed || follow) {
            dd.start(&params, &xb, &yb);
        }
        let mut batch = Batch::new(&xb, &yb);
        Backprop::<T>::prepare(&lockstep, &mut batch);
        lane.start(&params, &xb, &yb, &batch);
        if !plain {
            before.copy_from(&params);
        }
        // A planted mistake that computes what the correct formula computes is reported as such:
        // the correct gradients at the same weights, against the implementation's (where no fault
        // is injected into them at this step).
        let correct = cfg
            .mutant
            .filter(|_| out.mutant_changed != Some(true) && cfg.fault.is_none_or(|f| f.step != t))
            .map(|_| crate::manual::literal::gradients(spec, &params, &xb, &yb).1);
        let loss_m = step_under_test(implementation, cfg, t, &mut params, &batch, &mut grads);
        if let Some(correct) = correct {
            out.mutant_changed = Some(correct != grads);
        }
        let r = RefStep::of(&mut lockstep, &batch);
        let w64: Option<RefStep<f64>> =
            witness.as_mut().map(|w| RefStep::of(w, &Batch::new(&xb.cast(), &yb.cast())));
        let (bounds, optim_tol, free_loss, free_params) = lane.finish();
        let dd_step = dd_witness.as_mut().and_then(DdLane::finish);
        let wide: Option<WideStep> = match (&w64, dd_step) {
            _ if !witnessed => None,
            (Some(w), _) => Some(wide_of(w)),
            (None, dd) => dd,
        };

        // 4. Compare.
        let param_bounds = match &optim_tol {
            Some(tol) => tol.clone(),
            None => bounds.update(&grads, &params, cfg.optim.lr),
        };
        let mut reports = compare_step(cfg.judge, &bounds, &param_bounds, loss_m, &grads, &params, &r);
        if let Some(w) = &wide {
            let ps = param_sigma(&bounds, optim_tol.as_ref(), &grads, &params, cfg.optim.lr);
            witness_reports(&mut reports, Some(loss_m), Some(&grads), Some(&params), &r, w, &bounds, &ps);
            out.witness_steps += 1;
        }
        let drift = compare_params(
            &params,
            &free_params,
            false,
            crate::harness::check::Tolerance { rtol: 0.0, atol: 0.0 },
            None,
        );

        // 5. Record.
        let mut rec = record(t, &reports, loss_m, &r, free_loss, &bounds, cfg.judge);
        if let Some(w) = &w64 {
            add_witness(&mut rec, loss_m, &grads, &params, &r, w);
        }
        for rep in &drift {
            let l = &mut rec.layers[rep.layer - 1];
            l.drift_rel = l.drift_rel.max(rep.errors.rel);
            out.max_drift = out.max_drift.max(rep.errors.rel);
        }
        for (k, l) in rec.layers.iter_mut().enumerate() {
            l.grad_norm = frob(grads.layers[k].w.as_slice());
            // ‖ΔW^k‖ / ‖W^k‖: η‖∂E/∂W^k‖ for plain SGD, the optimizer's actual step otherwise.
            let step_norm = if plain {
                cfg.optim.lr * l.grad_norm
            } else {
                distance(before.layers[k].w.as_slice(), params.layers[k].w.as_slice())
            };
            l.update_ratio = step_norm / weight_norms[k];
            let z = bounds.activations[k].as_slice();
            l.saturated_pct = saturated_pct(spec.activations()[k], z, spec.widths()[k + 1], cfg.saturation);
        }
        let unjudged = judge_step(&mut out, t, &reports);

        if let Some(tr) = trace.as_deref_mut() {
            tr.add_indices(format!("batch.{t}"), idx);
            tr.add_params(&format!("manual.step{t}"), &grads, true);
            tr.add_params(&format!("manual.step{t}"), &params, false);
            for (name, state) in implementation.optimizer_state() {
                tr.add_params(&format!("manual.step{t}.state.{name}"), state, false);
            }
            tr.add_params(&format!("torch.step{t}"), &r.grads, true);
            tr.add_params(&format!("torch.step{t}"), &r.params, false);
            tr.add_params(&format!("torch_free.step{t}"), &free_params, false);
        }
        manual_losses.push(loss_m);
        torch_losses.push(r.loss);
        out.records.push(rec);
        out.steps_run = t + 1;
        progress(t + 1);

        // 6. Stop where either side went non-finite: nothing after it can be compared.
        let manual_ok = loss_m.is_finite() && all_finite(&grads) && all_finite(&params);
        let torch_ok = r.loss.is_finite()
            && all_finite(&r.grads)
            && all_finite(&r.params)
            && free_loss.is_finite()
            && all_finite(&free_params);
        if stops(&mut out, t, manual_ok, torch_ok, unjudged) {
            break;
        }
    }

    if let Some(tr) = trace {
        tr.add("manual.loss".into(), vec![manual_losses.len()], &manual_losses);
        tr.add("torch.loss".into(), vec![torch_losses.len()], &torch_losses);
    }

    // The final losses: each side by its own forward pass.
    let out_m = {
        let mut ws = Workspace::<T>::new(spec, x.rows());
        ws.forward(&params, &x).clone()
    };
    let free = lane.into_free();
    let out_t: Matrix<T> = free.predict(&x);
    out.final_loss = (
        spec.loss().value(out_m.as_slice(), y.as_slice(), spec.n_out(), spec.label_smoothing()).to64(),
        free.loss(&x, &y),
    );
    out.accuracy =
        data.classes().map(|c| (c.accuracy(&out_m.cast(), &data.y), c.accuracy(&out_t.cast(), &data.y)));
    out.final_params = params.cast();
    out.witness = witness.as_ref().map(|_| witness_summary(&out.records));
    conclude(&mut out);
    Ok(out)
}

/// The hidden layers' activations of the whole dataset at step t (before its update).
fn snapshot<T: Scalar>(ws: &mut Workspace<T>, params: &Params<T>, x: &Matrix<T>, t: usize) -> Snapshot {
    ws.forward(params, x);
    let z = (1..params.layers.len())
        .map(|k| ws.activations(k).as_slice().iter().map(|v| v.to64()).collect())
        .collect();
    Snapshot { step: t, z }
}

/// The second lane of a step: the free reference's own step and the round-off bounds, neither of
/// which the implementation's step needs. Computed on the calling thread, or — for a large step
/// when the run may use two threads — on a worker thread that lives as long as the run, beside the
/// implementation's and the lockstep reference's steps: one hand-over per step, nothing spins.
enum Lane<T: Scalar> {
    Inline {
        free: Reference,
        spec: Spec,
        optim: Box<Option<OptimBound>>,
        done: Option<Box<LaneResult<T>>>,
    },
    Worker {
        jobs: mpsc::Sender<LaneJob<T>>,
        results: mpsc::Receiver<LaneResult<T>>,
        worker: JoinHandle<Reference>,
    },
}

/// The weights a step starts from and its batch.
type LaneJob<T> = (Params<T>, Matrix<T>, Matrix<T>);
/// The step's bounds, the updated parameters' tolerances from the optimizer's bound (when the
/// optimizer is not plain SGD), the free reference's loss and its weights after its step.
type LaneResult<T> = (StepBounds, Option<Params<f64>>, T, Params<T>);

fn lane_step<T: Scalar>(
    spec: &Spec,
    free: &mut Reference,
    optim: &mut Option<OptimBound>,
    params: &Params<T>,
    xb: &Matrix<T>,
    yb: &Matrix<T>,
    batch: Option<&Batch<'_, T>>,
) -> LaneResult<T> {
    let bounds = step_bounds_with(spec, params, xb, yb, optim.is_some());
    let optim_tol = optim.as_mut().map(|o| {
        let values = bounds.values.as_ref().expect("asked for the gradient's values");
        o.update(&params.cast(), values, &bounds.grads)
    });
    let free_loss = match batch {
        Some(batch) => free.step(batch),
        None => free.step(&Batch::new(xb, yb)),
    };
    (bounds, optim_tol, free_loss, free.params())
}

impl<T: Scalar> Lane<T> {
    fn new(spec: &Spec, free: Reference, optim: Option<OptimBound>, worker: bool) -> Lane<T> {
        if !worker {
            return Lane::Inline { free, spec: spec.clone(), optim: Box::new(optim), done: None };
        }
        let (jobs, inbox) = mpsc::channel::<LaneJob<T>>();
        let (outbox, results) = mpsc::channel();
        let spec = spec.clone();
        // OpenMP's thread count is per thread: the worker takes its caller's.
        let torch_threads = tch::get_num_threads();
        let worker = std::thread::spawn(move || {
            tch::set_num_threads(torch_threads);
            let (mut free, mut optim) = (free, optim);
            for (params, xb, yb) in inbox {
                if outbox.send(lane_step(&spec, &mut free, &mut optim, &params, &xb, &yb, None)).is_err() {
                    break;
                }
            }
            free
        });
        Lane::Worker { jobs, results, worker }
    }

    /// Starts the lane's work for a step from `params` on the batch (`xb`, `yb`).
    /// `batch` is (`xb`, `yb`) as tensors, which the inline lane steps on; a worker converts its
    /// own copy.
    fn start(&mut self, params: &Params<T>, xb: &Matrix<T>, yb: &Matrix<T>, batch: &Batch<'_, T>) {
        match self {
            Lane::Inline { free, spec, optim, done } => {
                *done = Some(Box::new(lane_step(spec, free, optim, params, xb, yb, Some(batch))))
            }
            Lane::Worker { jobs, .. } => {
                jobs.send((params.clone(), xb.clone(), yb.clone())).expect("the lane's worker runs")
            }
        }
    }

    /// The lane's results for the step last started.
    fn finish(&mut self) -> LaneResult<T> {
        match self {
            Lane::Inline { done, .. } => *done.take().expect("a step was started"),
            Lane::Worker { results, .. } => results.recv().expect("the lane's worker answers"),
        }
    }

    /// The free reference, back from the worker.
    fn into_free(self) -> Reference {
        match self {
            Lane::Inline { free, .. } => free,
            Lane::Worker { jobs, worker, .. } => {
                drop(jobs);
                worker.join().expect("the lane's worker does not panic")
            }
        }
    }
}

/// The double-double witness of an f64 run, stepping beside the rest of the step on a worker
/// thread (one hand-over per step, nothing spins), or inline.
enum DdLane {
    Inline { witness: Box<DdWitness>, done: Option<WideStep> },
    Worker { jobs: mpsc::Sender<LaneJob<f64>>, results: mpsc::Receiver<WideStep>, pending: bool },
}

impl DdLane {
    fn new(witness: DdWitness, worker: bool) -> DdLane {
        if !worker {
            return DdLane::Inline { witness: Box::new(witness), done: None };
        }
        let (jobs, inbox) = mpsc::channel::<LaneJob<f64>>();
        let (outbox, results) = mpsc::channel();
        std::thread::spawn(move || {
            let mut witness = witness;
            for (p, x, y) in inbox {
                if outbox.send(witness.step(&p, &x, &y)).is_err() {
                    break;
                }
            }
        });
        DdLane::Worker { jobs, results, pending: false }
    }

    /// Starts the witness's step from `params` on the batch.
    fn start<T: Scalar>(&mut self, params: &Params<T>, xb: &Matrix<T>, yb: &Matrix<T>) {
        match self {
            DdLane::Inline { witness, done } => {
                *done = Some(witness.step(&params.cast(), &xb.cast(), &yb.cast()))
            }
            DdLane::Worker { jobs, pending, .. } => {
                jobs.send((params.cast(), xb.cast(), yb.cast())).expect("the witness's worker runs");
                *pending = true;
            }
        }
    }

    /// The step last started, if one was.
    fn finish(&mut self) -> Option<WideStep> {
        match self {
            DdLane::Inline { done, .. } => done.take(),
            DdLane::Worker { results, pending, .. } => {
                std::mem::take(pending).then(|| results.recv().expect("the witness's worker answers"))
            }
        }
    }
}

/// Step 2 of a run: the implementation's gradients and update; at the fault's step its gradient of
/// one layer is scaled by (1 + rel) before the update (which, with an optimizer, carries it into
/// the state too).
fn step_under_test<T: Scalar>(
    implementation: &mut dyn Backprop<T>,
    cfg: &RunConfig,
    t: usize,
    params: &mut Params<T>,
    batch: &Batch<'_, T>,
    grads: &mut Params<T>,
) -> T {
    let loss = implementation.gradients(batch, grads);
    if let Some(fault) = cfg.fault.filter(|f| f.step == t) {
        let layer = &mut grads.layers[fault.layer - 1];
        let scale = T::one() + T::of(fault.rel);
        layer.w.as_mut_slice().iter_mut().for_each(|v| *v = *v * scale);
        layer.b.iter_mut().flatten().for_each(|v| *v = *v * scale);
    }
    implementation.update(grads);
    params.copy_from(&implementation.params());
    loss
}

/// Step 4: the loss, every gradient and every updated parameter, against the bounds or the fixed
/// tolerance.
fn compare_step<T: Scalar>(
    judge: Judge,
    bounds: &StepBounds,
    param_bounds: &Params<f64>,
    loss: T,
    grads: &Params<T>,
    params: &Params<T>,
    r: &RefStep<T>,
) -> Vec<TensorReport> {
    let fixed = judge.tolerance();
    let tol = fixed.unwrap_or(crate::harness::check::Tolerance { rtol: 0.0, atol: 0.0 });
    let (loss_errors, gb, pb) = match fixed {
        Some(tol) => (compare(&[loss], &[r.loss], 1, tol), None, None),
        None => {
            (compare_bounded(&[loss], &[r.loss], 1, &[bounds.loss]), Some(&bounds.grads), Some(param_bounds))
        }
    };
    let mut reports =
        vec![TensorReport { layer: 0, kind: TensorKind::Loss, errors: loss_errors, witness: None }];
    reports.extend(compare_params(grads, &r.grads, true, tol, gb));
    reports.extend(compare_params(params, &r.params, false, tol, pb));
    reports
}

/// Step 5: one step's record.
pub(crate) fn record<T: Scalar>(
    t: usize,
    reports: &[TensorReport],
    loss_m: T,
    r: &RefStep<T>,
    free_loss: T,
    bounds: &StepBounds,
    judge: Judge,
) -> StepRecord {
    let depth = r.grads.layers.len();
    let bias = r.grads.layers.first().is_some_and(|l| l.b.is_some());
    // Every tensor of the step, in one order (metrics.csv's columns); a partial trace leaves some
    // unchecked.
    let mut slots = vec![(0, TensorKind::Loss)];
    for kinds in [[TensorKind::GradW, TensorKind::GradB], [TensorKind::W, TensorKind::B]] {
        for k in 1..=depth {
            slots.push((k, kinds[0]));
            if bias {
                slots.push((k, kinds[1]));
            }
        }
    }
    let mut rec = StepRecord {
        step: t,
        manual_loss: loss_m.to64(),
        torch_loss: r.loss.to64(),
        torch_free_loss: free_loss.to64(),
        loss_abs: reports.iter().find(|r| r.kind == TensorKind::Loss).map_or(f64::NAN, |r| r.errors.max_abs),
        loss_bound: judge.tolerance().map_or(bounds.loss, |tol| tol.of(r.loss.to64())),
        layers: vec![LayerStep::default(); depth],
        tensors: slots
            .into_iter()
            .map(|(layer, kind)| match reports.iter().find(|rep| rep.layer == layer && rep.kind == kind) {
                Some(rep) => {
                    let w = rep.witness.as_ref().filter(|w| w.judged);
                    TensorStep {
                        name: rep.name(),
                        max_abs: rep.errors.max_abs,
                        rel: rep.errors.rel,
                        ratio: rep.errors.ratio,
                        pass: rep.pass(),
                        checked: true,
                        manual_ulp: None,
                        torch_ulp: None,
                        witness_ratio: w.map(|w| w.ratio),
                        witness_manual: w.map(|w| w.manual_rel()),
                        witness_torch: w.map(|w| w.torch_rel()),
                    }
                }
                None => TensorStep {
                    name: crate::harness::check::tensor_name(layer, kind),
                    max_abs: f64::NAN,
                    rel: f64::NAN,
                    ratio: f64::NAN,
                    pass: true,
                    checked: false,
                    manual_ulp: None,
                    torch_ulp: None,
                    witness_ratio: None,
                    witness_manual: None,
                    witness_torch: None,
                },
            })
            .collect(),
    };
    for rep in reports.iter().filter(|r| r.layer > 0) {
        let l = &mut rec.layers[rep.layer - 1];
        let e = &rep.errors;
        match rep.kind {
            TensorKind::GradW | TensorKind::GradB => {
                if let Some(w) = rep.witness.as_ref().filter(|w| w.judged) {
                    l.grad_witness_ratio = l.grad_witness_ratio.max(w.ratio);
                }
                l.grad_abs = l.grad_abs.max(e.max_abs);
                l.grad_rel = l.grad_rel.max(e.rel);
                l.grad_ratio = l.grad_ratio.max(e.ratio);
            }
            _ => {
                if let Some(w) = rep.witness.as_ref().filter(|w| w.judged) {
                    l.weight_witness_ratio = l.weight_witness_ratio.max(w.ratio);
                }
                l.weight_abs = l.weight_abs.max(e.max_abs);
                l.weight_rel = l.weight_rel.max(e.rel);
                l.weight_ratio = l.weight_ratio.max(e.ratio);
            }
        }
    }
    rec
}

/// The run's maxima, per kind.
pub(crate) fn absorb(out: &mut Outcome, reports: &[TensorReport]) {
    fn slot(s: &mut ErrorSummary, kind: TensorKind) -> &mut f64 {
        match kind {
            TensorKind::Loss => &mut s.loss,
            TensorKind::GradW | TensorKind::GradB => &mut s.grad,
            TensorKind::W | TensorKind::B => &mut s.weight,
        }
    }
    for rep in reports {
        let e = &rep.errors;
        for (summary, v) in
            [(&mut out.max_abs, e.max_abs), (&mut out.max_rel, e.rel), (&mut out.max_ratio, e.ratio)]
        {
            let s = slot(summary, rep.kind);
            *s = s.max(v);
        }
        if let Some(w) = rep.witness.as_ref().filter(|w| w.judged) {
            let s = slot(&mut out.max_witness_ratio, rep.kind);
            *s = s.max(w.ratio);
        }
        out.uncertified += e.uncertified;
    }
}

/// Every failing tensor of a step.
pub(crate) fn failing(reports: &[TensorReport]) -> Vec<Failing> {
    reports
        .iter()
        .filter(|r| !r.pass())
        .filter_map(|r| {
            let w = r.witness.as_ref();
            let first = r.errors.first_fail.or_else(|| {
                w.and_then(|w| w.worst).map(|(index, manual, torch, _)| Entry {
                    index,
                    manual,
                    torch,
                    bound: f64::NAN,
                })
            })?;
            Some(Failing {
                name: r.name(),
                layer: r.layer,
                failures: r.errors.failures,
                max_ratio: r.errors.ratio,
                first,
                judgement: r.failed_by(),
                witness_ratio: w.filter(|w| w.judged).map(|w| w.ratio),
            })
        })
        .collect()
}

/// An empty outcome for `implementation`, starting from `init`.
pub(crate) fn new_outcome(implementation: String, steps: usize, init: Params<f64>) -> Outcome {
    Outcome {
        verdict: Verdict::Equivalent,
        equivalent: true,
        implementation,
        checked: None,
        steps_run: 0,
        first_divergence: None,
        failing: Vec::new(),
        non_finite: NonFinite::default(),
        max_abs: ErrorSummary::default(),
        max_rel: ErrorSummary::default(),
        max_ratio: ErrorSummary::default(),
        max_witness_ratio: ErrorSummary::default(),
        witness_steps: 0,
        mutant_changed: None,
        witness_every: 0,
        uncertified: 0,
        reference_overflow: Vec::new(),
        max_drift: 0.0,
        final_loss: (f64::NAN, f64::NAN),
        accuracy: None,
        witness: None,
        records: Vec::with_capacity(steps),
        snapshots: Vec::new(),
        final_params: init,
    }
}

/// Folds step t's comparisons into the outcome: the run's maxima, and — at the first step with a
/// failing entry — the origin and every failing tensor. A step where some entry cannot be judged
/// (non-finite alike on both sides, or overflowing within round-off on one) is where the run blew
/// up: values non-finite on one side only are its consequences there, not a disagreement. Returns
/// whether some entry could not be judged.
pub(crate) fn judge_step(out: &mut Outcome, t: usize, reports: &[TensorReport]) -> bool {
    absorb(out, reports);
    let unjudged = reports.iter().any(|r| r.errors.non_finite > 0);
    // A value non-finite on the manual side alone, where the witness is finite and the reference
    // agrees with it, is the manual side's mistake, blow-up or not.
    let manual_wrong = reports.iter().any(|r| r.witness.as_ref().is_some_and(|w| w.manual_non_finite > 0));
    // The reference alone went non-finite where the manual side and the witness agree: its
    // overflow, named, and no disagreement.
    for r in reports {
        if r.witness.as_ref().is_some_and(|w| w.torch_overflow > 0) {
            out.reference_overflow.push(format!("step {t}, {}", r.name()));
        }
    }
    let overflow_only = |r: &TensorReport| {
        r.witness
            .as_ref()
            .is_some_and(|w| w.torch_overflow > 0 && w.torch_overflow == r.errors.non_finite_failures)
            && r.errors.failures == r.errors.non_finite_failures
    };
    let blow_up_only =
        !manual_wrong && reports.iter().all(|r| r.errors.failures == r.errors.non_finite_failures);
    let disagreement = reports.iter().any(|r| !r.pass() && !overflow_only(r));
    if !disagreement {
        return unjudged || reports.iter().any(overflow_only);
    }
    if out.first_divergence.is_none() && !(unjudged && blow_up_only) {
        let judged: Vec<TensorReport> = reports.iter().filter(|r| !overflow_only(r)).cloned().collect();
        if let Some(d) = Divergence::origin(t, &judged) {
            out.first_divergence = Some(d);
            out.failing = failing(&judged);
        }
    }
    unjudged
}

/// Whether the run stops after step t: where either side went non-finite, or an entry could not be
/// judged, nothing after it can be compared. Non-finite values alike on both sides are no
/// agreement: the verdict becomes "agree until non-finite" (unless a step failed already).
pub(crate) fn stops(out: &mut Outcome, t: usize, manual_ok: bool, torch_ok: bool, unjudged: bool) -> bool {
    if !manual_ok {
        out.non_finite.manual = Some(t);
    }
    if !torch_ok {
        out.non_finite.torch = Some(t);
    }
    let stop = !manual_ok || !torch_ok || unjudged;
    if stop && out.first_divergence.is_none() {
        out.verdict = Verdict::AgreeUntilNonFinite { step: t };
    }
    stop
}

/// The verdict once the run is over.
pub(crate) fn conclude(out: &mut Outcome) {
    if out.first_divergence.is_some() {
        out.verdict = Verdict::NotEquivalent;
    }
    out.equivalent = out.verdict == Verdict::Equivalent;
}

/// Every how many steps the witness takes the step: 1 (every step) unless a step costs more than
/// [`WITNESS_MAX_FLOPS`] and the configuration leaves it to the run (`witness_every` 0); None for
/// step 0 alone.
fn witness_every(cfg: &RunConfig, spec: &Spec, batch: usize, dtype: DType) -> Option<usize> {
    if cfg.witness_every > 0 {
        return Some(cfg.witness_every);
    }
    let flops = 6.0 * spec.param_count() as f64 * batch as f64;
    if dtype == DType::F32 || flops <= WITNESS_MAX_FLOPS {
        Some(1)
    } else if cfg.optim.is_plain_sgd() {
        Some((flops / WITNESS_MAX_FLOPS).ceil() as usize)
    } else {
        // A stateful optimizer's witness would have to take every step to keep its state: step 0
        // alone, where the state is known exactly (zero).
        None
    }
}

/// The double-double witness of an f64 run costs about 2.5 ns per floating-point operation of
/// the step (6 · parameters · batch), some hundred times the step itself on a large network.
/// Steps above this take it by default on a subset: plain SGD every ⌈flops / 10⁶⌉-th step from
/// step 0, a stateful optimizer at step 0 alone. f32 runs (whose witness is libtorch in f64, about
/// twice a step) take it at every step.
pub const WITNESS_MAX_FLOPS: f64 = 1e6;

fn scaled(p: &Params<f64>, f: f64) -> Params<f64> {
    let mut out = p.clone();
    for l in &mut out.layers {
        l.w.as_mut_slice().iter_mut().for_each(|v| *v *= f);
        l.b.iter_mut().flatten().for_each(|v| *v *= f);
    }
    out
}

/// Adds the witness's judgement to every report of a step, by layer and kind: the loss, the
/// gradients and the updated parameters, each where the implementation under test has it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn witness_reports<T: Scalar>(
    reports: &mut [TensorReport],
    loss_m: Option<T>,
    grads: Option<&Params<T>>,
    params: Option<&Params<T>>,
    r: &RefStep<T>,
    w: &WideStep,
    bounds: &StepBounds,
    param_sigma: &Params<f64>,
) {
    for rep in reports.iter_mut() {
        let k = rep.layer.saturating_sub(1);
        let parts = match rep.kind {
            TensorKind::Loss => {
                let Some(l) = loss_m else { continue };
                rep.witness = Some(witness::judge(
                    &[l],
                    &[r.loss],
                    &[w.loss.hi],
                    &[w.loss.lo],
                    &[bounds.loss_sigma],
                    1,
                ));
                continue;
            }
            TensorKind::GradW | TensorKind::GradB => {
                grads.map(|m| (m, &r.grads, &w.grads, &w.grads_lo, &bounds.sigma))
            }
            TensorKind::W | TensorKind::B => {
                params.map(|m| (m, &r.params, &w.params, &w.params_lo, param_sigma))
            }
        };
        let Some((m, t, hi, lo, sigma)) = parts else { continue };
        let bias = matches!(rep.kind, TensorKind::GradB | TensorKind::B);
        let cols = if bias { m.layers[k].part(true).len() } else { m.layers[k].w.cols() };
        rep.witness = Some(witness::judge(
            m.layers[k].part(bias),
            t.layers[k].part(bias),
            hi.layers[k].part(bias),
            lo.layers[k].part(bias),
            sigma.layers[k].part(bias),
            cols,
        ));
    }
}

/// The witness step of an f32 run (libtorch in f64) as a [`WideStep`].
pub(crate) fn wide_of(w: &RefStep<f64>) -> WideStep {
    WideStep::from_f64(w.loss, w.grads.clone(), w.params.clone())
}

/// The floor σ of the updated parameters: (S4) for plain SGD; a stateful optimizer's rigorous
/// bound (B11) otherwise.
pub(crate) fn param_sigma<T: Scalar>(
    bounds: &StepBounds,
    optim_tol: Option<&Params<f64>>,
    grads: &Params<T>,
    params: &Params<T>,
    lr: f64,
) -> Params<f64> {
    match optim_tol {
        Some(tol) => scaled(tol, 1.0 / (2.0 * crate::harness::bound::SAFETY)),
        None => bounds.update_sigma(grads, params, lr),
    }
}

/// The distance of `v` from `w` in f32 ulps of `w`.
fn ulps_f32(v: f64, w: f64) -> f64 {
    if v == w {
        return 0.0;
    }
    if !v.is_finite() || !w.is_finite() {
        return f64::INFINITY;
    }
    let tiny = f32::MIN_POSITIVE as f64;
    let ulp = if w.abs() < tiny {
        tiny * f32::EPSILON as f64
    } else {
        2f64.powi(w.abs().log2().floor() as i32 - 23)
    };
    (v - w).abs() / ulp
}

fn max_ulps<T: Scalar>(v: &[T], w: &[f64]) -> f64 {
    v.iter().zip(w).map(|(&v, &w)| ulps_f32(v.to64(), w)).fold(0.0, f64::max)
}

/// Fills each tensor's distance from the f64 witness, per side, in the order of
/// [`compare_step`]'s reports.
fn add_witness<T: Scalar>(
    rec: &mut StepRecord,
    loss_m: T,
    grads: &Params<T>,
    params: &Params<T>,
    r: &RefStep<T>,
    w: &RefStep<f64>,
) {
    let mut pairs = vec![(ulps_f32(loss_m.to64(), w.loss), ulps_f32(r.loss.to64(), w.loss))];
    for (m, t, w) in [(grads, &r.grads, &w.grads), (params, &r.params, &w.params)] {
        for k in 0..m.layers.len() {
            let (ml, tl, wl) = (&m.layers[k], &t.layers[k], &w.layers[k]);
            pairs.push((
                max_ulps(ml.w.as_slice(), wl.w.as_slice()),
                max_ulps(tl.w.as_slice(), wl.w.as_slice()),
            ));
            if let (Some(mb), Some(tb), Some(wb)) = (&ml.b, &tl.b, &wl.b) {
                pairs.push((max_ulps(mb, wb), max_ulps(tb, wb)));
            }
        }
    }
    // The same order as compare_step's reports: the loss, the gradients layer by layer (W then
    // b), then the updated parameters.
    for (ts, (m, t)) in rec.tensors.iter_mut().zip(pairs) {
        ts.manual_ulp = Some(m);
        ts.torch_ulp = Some(t);
    }
}

fn witness_summary(records: &[StepRecord]) -> Vec<Witness> {
    let mut out: Vec<Witness> = Vec::new();
    for rec in records {
        for (i, ts) in rec.tensors.iter().enumerate() {
            if out.len() <= i {
                out.push(Witness { name: ts.name.clone(), manual_max_ulp: 0.0, torch_max_ulp: 0.0 });
            }
            let w = &mut out[i];
            w.manual_max_ulp = w.manual_max_ulp.max(ts.manual_ulp.unwrap_or(0.0));
            w.torch_max_ulp = w.torch_max_ulp.max(ts.torch_ulp.unwrap_or(0.0));
        }
    }
    out
}

/// ‖a − b‖ (Frobenius).
pub(crate) fn distance<T: Scalar>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x.to64() - y.to64()).powi(2)).sum::<f64>().sqrt()
}

pub(crate) fn frob<T: Scalar>(v: &[T]) -> f64 {
    v.iter().map(|&x| x.to64() * x.to64()).sum::<f64>().sqrt()
}

pub(crate) fn all_finite<T: Scalar>(p: &Params<T>) -> bool {
    p.layers
        .iter()
        .all(|l| l.w.as_slice().iter().all(|v| v.is_finite()) && l.b.iter().flatten().all(|v| v.is_finite()))
}
