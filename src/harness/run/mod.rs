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

use anyhow::Result;

use crate::data::Dataset;
use crate::harness::bound::{OptimBound, StepBounds};
use crate::harness::check::{compare_params, TensorReport};
use crate::harness::trace::TraceWriter;
use crate::harness::witness::DdWitness;
use crate::harness::{batch_order, saturated_pct, Form, Outcome, RunConfig, Snapshot, StepRecord};
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::manual::{Backprop, Batch, Batched, Literal, Workspace};
use crate::model::params::Params;
use crate::model::spec::{DType, Spec};
use crate::reference::{RefStep, Reference};

mod lanes;
mod verdict;
mod wide;

use lanes::{Compared, JudgeLane, Judging, Lane, StepResults};
pub(crate) use verdict::{conclude, judge_step, new_outcome, record, stops};
pub use wide::WITNESS_MAX_FLOPS;
use wide::{add_witness, witness_every, witness_summary};
pub(crate) use wide::{all_finite, distance, frob, param_sigma, wide_of, witness_reports};

/// Steps of at least this many floating-point operations (6 · parameters · batch) run the free
/// reference's step on a worker thread of its own when [`RunConfig::threads`] allows: below it the
/// hand-over costs more than it saves. (The judging side — the round-off bounds, the
/// double-double witness and the comparison of every tensor — takes a worker thread at every size
/// when the run may use two: at the default size it takes about 70% as long as the two
/// implementations' steps together, and comes back inline where that thread has to wait for a
/// core.)
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
            crate::error::field_bail!(
                "mutant",
                "{{mutant}} plants its mistake in the literal form: use {{manual=literal}}"
            )
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
    check_run(cfg, data, init)?;
    let x: Matrix<T> = data.x.cast();
    let y: Matrix<T> = data.y.cast();
    let order = batch_order(data.len(), cfg.batch_size, cfg.steps, cfg.shuffle_seed);
    let max_batch = order.iter().map(Vec::len).max().unwrap_or(1);

    implementation.set_params(init);
    let mut params = init.clone();
    let mut grads = Params::<T>::zeros(spec);
    let mut sides = Sides::<T>::new(cfg, init, max_batch)?;
    // For the snapshots; its buffers grow on first use, so a run without snapshots pays nothing.
    let mut full_ws = Workspace::<T>::new(spec, 0);
    let (mut xb, mut yb) =
        (Matrix::<T>::zeros(max_batch, spec.n_in()), Matrix::<T>::zeros(max_batch, spec.n_out()));
    let mut before = Params::<T>::zeros(spec);

    if let Some(tr) = trace.as_deref_mut() {
        tr.add("x".into(), vec![x.rows(), x.cols()], x.as_slice());
        tr.add("y".into(), vec![y.rows(), y.cols()], y.as_slice());
        tr.add_params("init", init, false);
    }

    let mut out = new_outcome(implementation.describe(), cfg.steps, init.cast());
    // 0 in the report: step 0 alone.
    out.witness_every = sides.every.unwrap_or(0);
    let mut manual_losses = Vec::with_capacity(cfg.steps);
    let mut torch_losses = Vec::with_capacity(cfg.steps);

    for (t, idx) in order.iter().enumerate() {
        if cfg.snapshot_steps.contains(&t) {
            out.snapshots.push(snapshot(&mut full_ws, &params, &x, t));
        }
        xb.gather_rows(&x, idx);
        yb.gather_rows(&y, idx);
        let weight_norms: Vec<f64> = params.layers.iter().map(|l| frob(l.w.as_slice())).collect();
        if !sides.plain {
            before.copy_from(&params);
        }
        let mut batch = Batch::new(&xb, &yb);
        let s = sides.step(cfg, t, implementation, &mut params, &mut batch, &mut grads, &mut out);

        // 4. Compare; 5. record.
        let rec = judge(cfg, &mut out, t, &s, &grads, &params, &before, &weight_norms);
        let unjudged = judge_step(&mut out, t, &s.reports);
        if let Some(tr) = trace.as_deref_mut() {
            trace_step(tr, t, idx, implementation, &grads, &params, &s);
        }
        manual_losses.push(s.loss);
        torch_losses.push(s.r.loss);
        out.records.push(rec);
        out.steps_run = t + 1;
        progress(t + 1);

        // 6. Stop where either side went non-finite: nothing after it can be compared.
        let manual_ok = s.loss.is_finite() && all_finite(&grads) && all_finite(&params);
        let torch_ok = s.r.loss.is_finite()
            && all_finite(&s.r.grads)
            && all_finite(&s.r.params)
            && s.free_loss.is_finite()
            && all_finite(&s.free_params);
        if stops(&mut out, t, manual_ok, torch_ok, unjudged) {
            break;
        }
    }

    if let Some(tr) = trace {
        tr.add("manual.loss".into(), vec![manual_losses.len()], &manual_losses);
        tr.add("torch.loss".into(), vec![torch_losses.len()], &torch_losses);
    }
    let witnessed = sides.witness.is_some();
    finish(&mut out, spec, data, &x, &y, &params, sides.lane.into_free(), witnessed);
    Ok(out)
}

/// The run's checks of its configuration, weights and data, before anything is made.
fn check_run<T: Scalar>(cfg: &RunConfig, data: &Dataset, init: &Params<T>) -> Result<()> {
    let spec = &cfg.spec;
    let depth = spec.depth();
    if let Some(f) = cfg.fault {
        f.check_layer(depth)?;
    }
    init.check_shapes(spec)?;
    spec.check_loss()?;
    cfg.optim.validate()?;
    crate::data::check_targets(data, spec, "the data")?;
    Ok(())
}

/// Everything that steps beside the implementation under test: the lockstep reference, the
/// witnesses, the free reference's lane, and the judging lane (the round-off bounds, the
/// double-double witness, and the comparison).
struct Sides<T: Scalar> {
    lockstep: Reference,
    /// libtorch in f64, the witness of an f32 run.
    witness: Option<Reference>,
    /// The free reference.
    lane: Lane<T>,
    /// The round-off bounds and the double-double witness of an f64 run.
    judging: JudgeLane<T>,
    every: Option<usize>,
    round_off: bool,
    plain: bool,
}

/// One step's results on every side.
struct Stepped<T> {
    loss: T,
    r: RefStep<T>,
    w64: Option<RefStep<f64>>,
    bounds: StepBounds,
    free_loss: T,
    free_params: Params<T>,
    reports: Vec<TensorReport>,
}

impl<T: Scalar> Sides<T> {
    fn new(cfg: &RunConfig, init: &Params<T>, max_batch: usize) -> Result<Sides<T>> {
        let spec = &cfg.spec;
        let lockstep = Reference::new(spec, init, &cfg.optim)?;
        let free = Reference::new(spec, init, &cfg.optim)?;
        // The witness: libtorch in f64 for an f32 run, double-double for an f64 run; with a fixed
        // tolerance, none (the fixed test is torch.testing.assert_close's, alone).
        let round_off = cfg.judge.tolerance().is_none();
        let witness = match T::DTYPE {
            DType::F32 => {
                Some(Reference::new(&spec.clone().with_dtype(DType::F64), &init.cast::<f64>(), &cfg.optim)?)
            }
            DType::F64 => None,
        };
        let dd_witness = (T::DTYPE == DType::F64 && round_off).then(|| DdWitness::new(spec, cfg.optim));
        let every = witness_every(cfg, spec, max_batch, T::DTYPE);
        let plain = cfg.optim.is_plain_sgd();
        let optim_bound = (!plain).then(|| OptimBound::new::<T>(cfg.optim, spec));
        let overlap =
            cfg.threads > 1 && 6.0 * spec.param_count() as f64 * max_batch as f64 >= OVERLAP_MIN_FLOPS;
        let lane = Lane::<T>::new(free, overlap);
        let judging = JudgeLane::new(Judging::new(cfg, optim_bound, dd_witness), cfg.threads > 1);
        Ok(Sides { lockstep, witness, lane, judging, every, round_off, plain })
    }

    /// Steps 1–4 of step `t` from `params` on `batch`: every side's step, and the comparison.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        cfg: &RunConfig,
        t: usize,
        implementation: &mut dyn Backprop<T>,
        params: &mut Params<T>,
        batch: &mut Batch<'_, T>,
        grads: &mut Params<T>,
        out: &mut Outcome,
    ) -> Stepped<T> {
        let spec = &cfg.spec;
        // 1. The references start from the implementation's weights, before its step moves them;
        //    the round-off bounds are computed from the same weights and batch.
        self.lockstep.set_params(params);
        if let Some(w) = &mut self.witness {
            w.set_params(params);
        }
        // 2. The judging starts: the round-off bounds, with the double-double witness of an f64
        //    run, from the same weights and batch, on a worker thread when the run may use two
        //    (a stateful optimizer's witness takes every step; it is judged on the witnessed
        //    ones). The free reference starts on its own worker for a large step.
        // 3. The implementation under test takes its step (with the injected fault, if any), and
        //    the lockstep reference (and the f64 witness) take theirs.
        // 4. The judging side compares them while the free reference takes its step.
        let witnessed = self.round_off && self.every.map_or(t == 0, |n| t.is_multiple_of(n));
        // A stateful optimizer's witness follows every step, unless it takes step 0 alone.
        let follow = !self.plain && self.every.is_some();
        self.judging.start(params, batch.x, batch.y, witnessed || follow);
        Backprop::<T>::prepare(&self.lockstep, batch);
        self.lane.start(batch.x, batch.y);
        // A planted mistake that computes what the correct formula computes is reported as such:
        // the correct gradients at the same weights, against the implementation's (where no fault
        // is injected into them at this step).
        let correct = cfg
            .mutant
            .filter(|_| out.mutant_changed != Some(true) && cfg.fault.is_none_or(|f| f.step != t))
            .map(|_| crate::manual::literal::gradients(spec, params, batch.x, batch.y).1);
        let loss = step_under_test(implementation, cfg, t, params, batch, grads);
        if let Some(correct) = correct {
            out.mutant_changed = Some(correct != *grads);
        }
        let r = RefStep::of(&mut self.lockstep, batch);
        let w64: Option<RefStep<f64>> =
            self.witness.as_mut().map(|w| RefStep::of(w, &Batch::new(&batch.x.cast(), &batch.y.cast())));
        let wide = w64.as_ref().filter(|_| witnessed).map(wide_of);
        self.judging.compare(StepResults {
            loss,
            grads: grads.clone(),
            params: params.clone(),
            r,
            wide,
            witnessed,
        });
        let (free_loss, free_params) = self.lane.finish(batch);
        let Compared { bounds, reports, r, witnessed } = self.judging.finish();
        if witnessed {
            out.witness_steps += 1;
        }
        Stepped { loss, r, w64, bounds, free_loss, free_params, reports }
    }
}

/// Step 5: step `t`'s record, with the drift of the free reference and each layer's norms.
#[allow(clippy::too_many_arguments)]
fn judge<T: Scalar>(
    cfg: &RunConfig,
    out: &mut Outcome,
    t: usize,
    s: &Stepped<T>,
    grads: &Params<T>,
    params: &Params<T>,
    before: &Params<T>,
    weight_norms: &[f64],
) -> StepRecord {
    let spec = &cfg.spec;
    let drift = compare_params(
        params,
        &s.free_params,
        false,
        crate::harness::check::Tolerance { rtol: 0.0, atol: 0.0 },
        None,
    );
    let mut rec = record(t, &s.reports, s.loss, &s.r, s.free_loss, &s.bounds, cfg.judge);
    if let Some(w) = &s.w64 {
        add_witness(&mut rec, s.loss, grads, params, &s.r, w);
    }
    for rep in &drift {
        let l = &mut rec.layers[rep.layer - 1];
        l.drift_rel = l.drift_rel.max(rep.errors.rel);
        out.max_drift = out.max_drift.max(rep.errors.rel);
    }
    for (k, l) in rec.layers.iter_mut().enumerate() {
        l.grad_norm = frob(grads.layers[k].w.as_slice());
        // ‖ΔW^k‖ / ‖W^k‖: η‖∂E/∂W^k‖ for plain SGD, the optimizer's actual step otherwise.
        let step_norm = if cfg.optim.is_plain_sgd() {
            cfg.optim.lr * l.grad_norm
        } else {
            distance(before.layers[k].w.as_slice(), params.layers[k].w.as_slice())
        };
        l.update_ratio = step_norm / weight_norms[k];
        let z = s.bounds.activations[k].as_slice();
        l.saturated_pct = saturated_pct(spec.activations()[k], z, spec.widths()[k + 1], cfg.saturation);
    }
    rec
}

/// Step `t` in the trace: its batch, both sides' gradients and weights, the optimizer's state.
fn trace_step<T: Scalar>(
    tr: &mut TraceWriter,
    t: usize,
    idx: &[usize],
    implementation: &dyn Backprop<T>,
    grads: &Params<T>,
    params: &Params<T>,
    s: &Stepped<T>,
) {
    tr.add_indices(format!("batch.{t}"), idx);
    tr.add_params(&format!("manual.step{t}"), grads, true);
    tr.add_params(&format!("manual.step{t}"), params, false);
    for (name, state) in implementation.optimizer_state() {
        tr.add_params(&format!("manual.step{t}.state.{name}"), state, false);
    }
    tr.add_params(&format!("torch.step{t}"), &s.r.grads, true);
    tr.add_params(&format!("torch.step{t}"), &s.r.params, false);
    tr.add_params(&format!("torch_free.step{t}"), &s.free_params, false);
}

/// The final losses (each side by its own forward pass), accuracies and weights, and the verdict.
#[allow(clippy::too_many_arguments)]
fn finish<T: Scalar>(
    out: &mut Outcome,
    spec: &Spec,
    data: &Dataset,
    x: &Matrix<T>,
    y: &Matrix<T>,
    params: &Params<T>,
    free: Reference,
    witnessed: bool,
) {
    let out_m = {
        let mut ws = Workspace::<T>::new(spec, x.rows());
        ws.forward(params, x).clone()
    };
    let out_t: Matrix<T> = free.predict(x);
    out.final_loss = (
        spec.loss().value(out_m.as_slice(), y.as_slice(), spec.n_out(), spec.label_smoothing()).to64(),
        free.loss(x, y),
    );
    out.accuracy =
        data.classes().map(|c| (c.accuracy(&out_m.cast(), &data.y), c.accuracy(&out_t.cast(), &data.y)));
    out.final_params = params.cast();
    out.witness = witnessed.then(|| witness_summary(&out.records));
    conclude(out);
}

/// The hidden layers' activations of the whole dataset at step t (before its update).
fn snapshot<T: Scalar>(ws: &mut Workspace<T>, params: &Params<T>, x: &Matrix<T>, t: usize) -> Snapshot {
    ws.forward(params, x);
    let z = (1..params.layers.len())
        .map(|k| ws.activations(k).as_slice().iter().map(|v| v.to64()).collect())
        .collect();
    Snapshot { step: t, z }
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
