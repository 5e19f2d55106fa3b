//! The run's second lanes: the free reference's step, and the judging side's work (the round-off
//! bounds, the double-double witness, and the comparison of every tensor), each on a worker
//! thread or inline.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::verdict::compare_step;
use super::wide::{param_sigma, witness_reports};
use crate::harness::bound::{step_bounds_with, OptimBound, StepBounds};
use crate::harness::check::TensorReport;
use crate::harness::witness::{DdWitness, WideStep};
use crate::harness::{Judge, RunConfig};
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::manual::{Backprop, Batch};
use crate::model::params::Params;
use crate::model::spec::Spec;
use crate::reference::{RefStep, Reference};

/// How long the calling thread polls for the judging worker's answer before it sleeps: a
/// sleeping thread takes tens of microseconds to wake (more in a virtual machine), as long as a
/// small step's whole judging.
const SPIN: Duration = Duration::from_micros(50);
/// How long the judging worker polls for its next message before it sleeps: longer than the
/// default run's step (about 160 µs), so that a quiet worker never sleeps between two steps; a
/// worker that has to share its core is brought inline ([`JudgeLane`]).
const WORKER_SPIN: Duration = Duration::from_micros(250);

/// `rx.recv()`, polling for up to `spin` before it blocks.
fn receive<M>(rx: &mpsc::Receiver<M>, spin: Duration) -> Result<M, mpsc::RecvError> {
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(m) => return Ok(m),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
            Err(mpsc::TryRecvError::Empty) if start.elapsed() > spin => return rx.recv(),
            Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
        }
    }
}

/// The weights a step starts from and its batch.
type Job<T> = (Params<T>, Matrix<T>, Matrix<T>);

/// The free reference's step, which the implementation's step does not need: on the calling
/// thread, after the implementation's and the lockstep reference's steps (while the judging lane
/// compares them), or — for a large step when the run may use two threads — on a worker thread
/// that lives as long as the run, beside them: one hand-over per step.
pub(super) enum Lane<T: Scalar> {
    Inline {
        free: Reference,
    },
    Worker {
        jobs: mpsc::Sender<(Matrix<T>, Matrix<T>)>,
        results: mpsc::Receiver<(T, Params<T>)>,
        worker: JoinHandle<Reference>,
    },
}

impl<T: Scalar> Lane<T> {
    pub(super) fn new(free: Reference, worker: bool) -> Lane<T> {
        if !worker {
            return Lane::Inline { free };
        }
        let (jobs, inbox) = mpsc::channel::<(Matrix<T>, Matrix<T>)>();
        let (outbox, results) = mpsc::channel();
        // OpenMP's thread count is per thread: the worker takes its caller's.
        let torch_threads = tch::get_num_threads();
        let worker = std::thread::spawn(move || {
            tch::set_num_threads(torch_threads);
            let mut free = free;
            for (xb, yb) in inbox {
                let loss = free.step(&Batch::new(&xb, &yb));
                if outbox.send((loss, free.params())).is_err() {
                    break;
                }
            }
            free
        });
        Lane::Worker { jobs, results, worker }
    }

    /// Starts the free reference's step on the batch (`xb`, `yb`) on the worker; the inline lane
    /// takes its step in [`Lane::finish`].
    pub(super) fn start(&mut self, xb: &Matrix<T>, yb: &Matrix<T>) {
        if let Lane::Worker { jobs, .. } = self {
            jobs.send((xb.clone(), yb.clone())).expect("the lane's worker runs");
        }
    }

    /// The free reference's loss and its weights after its step on `batch` (the batch of the step
    /// last started, which the inline lane steps on as tensors).
    pub(super) fn finish(&mut self, batch: &Batch<'_, T>) -> (T, Params<T>) {
        match self {
            Lane::Inline { free } => (free.step(batch), free.params()),
            Lane::Worker { results, .. } => results.recv().expect("the lane's worker answers"),
        }
    }

    /// The free reference, back from the worker.
    pub(super) fn into_free(self) -> Reference {
        match self {
            Lane::Inline { free } => free,
            Lane::Worker { jobs, worker, .. } => {
                drop(jobs);
                worker.join().expect("the lane's worker does not panic")
            }
        }
    }
}

/// The judging side of a step, from the weights it starts from and its batch: the round-off
/// bounds (with the optimizer's share, when it is not plain SGD) and, when asked, the
/// double-double witness of an f64 run; then, once the implementation and the lockstep reference
/// have stepped, the comparison of every tensor against them (steps 1–4 of the run but the
/// steps themselves). None of it touches libtorch.
pub(super) struct Judging {
    spec: Spec,
    judge: Judge,
    lr: f64,
    optim: Option<OptimBound>,
    witness: Option<DdWitness>,
}

/// A step's bounds, the updated parameters' tolerances from the optimizer's bound, and the
/// witness's step when it took one.
type Judged = (StepBounds, Option<Params<f64>>, Option<WideStep>);

/// What the judging side compares once the implementation under test and the lockstep reference
/// have taken a step from the same weights.
pub(super) struct StepResults<T: Scalar> {
    /// The implementation's loss, gradients and updated weights.
    pub loss: T,
    pub grads: Params<T>,
    pub params: Params<T>,
    /// The lockstep reference's step.
    pub r: RefStep<T>,
    /// The f32 run's witness step (libtorch in f64), when it judges this step.
    pub wide: Option<WideStep>,
    /// Whether a witness judges this step.
    pub witnessed: bool,
}

/// A compared step: its bounds, one report per tensor, the lockstep reference's step (handed
/// back), and whether a witness judged it.
pub(super) struct Compared<T: Scalar> {
    pub bounds: StepBounds,
    pub reports: Vec<TensorReport>,
    pub r: RefStep<T>,
    pub witnessed: bool,
}

impl Judging {
    pub(super) fn new(cfg: &RunConfig, optim: Option<OptimBound>, witness: Option<DdWitness>) -> Judging {
        Judging { spec: cfg.spec.clone(), judge: cfg.judge, lr: cfg.optim.lr, optim, witness }
    }

    fn step<T: Scalar>(
        &mut self,
        params: &Params<T>,
        xb: &Matrix<T>,
        yb: &Matrix<T>,
        witness: bool,
    ) -> Judged {
        let bounds = step_bounds_with(&self.spec, params, xb, yb, self.optim.is_some());
        let optim_tol = self.optim.as_mut().map(|o| {
            let values = bounds.values.as_ref().expect("asked for the gradient's values");
            o.update(&params.cast(), values, &bounds.grads)
        });
        let wide = match &mut self.witness {
            Some(w) if witness => Some(w.step(&params.cast(), &xb.cast(), &yb.cast())),
            _ => None,
        };
        (bounds, optim_tol, wide)
    }

    /// Step 4: every tensor of the step `s` against its bound (or the fixed tolerance), and
    /// against the witness when it judges the step.
    fn compare<T: Scalar>(&self, judged: Judged, s: StepResults<T>) -> Compared<T> {
        let (bounds, optim_tol, dd_step) = judged;
        let wide = match (s.wide, dd_step) {
            _ if !s.witnessed => None,
            (Some(w), _) => Some(w),
            (None, dd) => dd,
        };
        let param_bounds = match &optim_tol {
            Some(tol) => tol.clone(),
            None => bounds.update(&s.grads, &s.params, self.lr),
        };
        let mut reports = compare_step(self.judge, &bounds, &param_bounds, s.loss, &s.grads, &s.params, &s.r);
        if let Some(w) = &wide {
            let ps = param_sigma(&bounds, optim_tol.as_ref(), &s.grads, &s.params, self.lr);
            witness_reports(
                &mut reports,
                Some(s.loss),
                Some(&s.grads),
                Some(&s.params),
                &s.r,
                w,
                &bounds,
                &ps,
            );
        }
        Compared { bounds, reports, r: s.r, witnessed: wide.is_some() }
    }
}

/// A message to the judging worker: a step to judge from its weights and batch (with the
/// witness's step when the flag says so), then that step's results to compare.
pub(super) enum Message<T: Scalar> {
    Judge(Job<T>, bool),
    Compare(Box<StepResults<T>>),
}

/// [`Judging`] on a worker thread when the run may use two threads, or inline. On the worker the
/// bounds and the witness run beside the implementation's and the lockstep reference's steps
/// (they take about as long at the default size), and the comparison beside the free
/// reference's step; the calling thread polls for [`SPIN`] before it sleeps, the worker for
/// [`WORKER_SPIN`]. Where the calling thread
/// waits for the worker longer than the worker takes to judge, over [`STRIKES`] windows of
/// [`WINDOW`] steps in a row (the worker waits for a core beside another busy process), the lane
/// brings the judging back inline for the rest of the run: the same results, since the judging is the same computation on either
/// thread.
pub(super) enum JudgeLane<T: Scalar> {
    Inline {
        judging: Box<Judging>,
        judged: Option<Box<Judged>>,
        done: Option<Box<Compared<T>>>,
    },
    Worker(Box<JudgeWorker<T>>),
    /// Only while the judging comes back from the worker.
    Returning,
}

/// The judging worker, its channels, and the window's tally of time waited for it and time it
/// took.
pub(super) struct JudgeWorker<T: Scalar> {
    jobs: mpsc::Sender<Message<T>>,
    results: mpsc::Receiver<(Compared<T>, Duration)>,
    worker: JoinHandle<Judging>,
    waited: Duration,
    worked: Duration,
    steps: usize,
    /// Windows in a row in which the calling thread waited longer than the worker worked.
    strikes: usize,
}

/// Steps over which the judging worker's waits are weighed against its work.
const WINDOW: usize = 32;
/// Late windows in a row after which the judging comes back inline.
const STRIKES: usize = 3;

impl<T: Scalar> JudgeLane<T> {
    pub(super) fn new(judging: Judging, worker: bool) -> JudgeLane<T> {
        if !worker {
            return JudgeLane::Inline { judging: Box::new(judging), judged: None, done: None };
        }
        let (jobs, inbox) = mpsc::channel::<Message<T>>();
        let (outbox, results) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            let mut judging = judging;
            let mut judged = None;
            let mut worked = Duration::ZERO;
            while let Ok(message) = receive(&inbox, WORKER_SPIN) {
                let start = Instant::now();
                match message {
                    Message::Judge((p, x, y), witness) => judged = Some(judging.step(&p, &x, &y, witness)),
                    Message::Compare(s) => {
                        let judged = judged.take().expect("a step is judged before it is compared");
                        let compared = judging.compare(judged, *s);
                        worked += start.elapsed();
                        if outbox.send((compared, std::mem::take(&mut worked))).is_err() {
                            break;
                        }
                        continue;
                    }
                }
                worked += start.elapsed();
            }
            judging
        });
        JudgeLane::Worker(Box::new(JudgeWorker {
            jobs,
            results,
            worker,
            waited: Duration::ZERO,
            worked: Duration::ZERO,
            steps: 0,
            strikes: 0,
        }))
    }

    /// Starts the judging of a step from `params` on the batch (`xb`, `yb`), with the witness's
    /// step when `witness`.
    pub(super) fn start(&mut self, params: &Params<T>, xb: &Matrix<T>, yb: &Matrix<T>, witness: bool) {
        match self {
            JudgeLane::Inline { judging, judged, .. } => {
                *judged = Some(Box::new(judging.step(params, xb, yb, witness)))
            }
            JudgeLane::Returning => unreachable!("the judging is back before the next step"),
            JudgeLane::Worker(w) => w
                .jobs
                .send(Message::Judge((params.clone(), xb.clone(), yb.clone()), witness))
                .expect("the judging worker runs"),
        }
    }

    /// Hands over the results of the step last started, to compare.
    pub(super) fn compare(&mut self, stepped: StepResults<T>) {
        match self {
            JudgeLane::Inline { judging, judged, done } => {
                let j = judged.take().expect("a step was started");
                *done = Some(Box::new(judging.compare(*j, stepped)));
            }
            JudgeLane::Worker(w) => {
                w.jobs.send(Message::Compare(Box::new(stepped))).expect("the judging worker runs")
            }
            JudgeLane::Returning => unreachable!("the judging is back before the next step"),
        }
    }

    /// The comparison of the step last handed over.
    pub(super) fn finish(&mut self) -> Compared<T> {
        let w = match self {
            JudgeLane::Inline { done, .. } => return *done.take().expect("a step was compared"),
            JudgeLane::Worker(w) => w,
            JudgeLane::Returning => unreachable!("the judging is back before the next step"),
        };
        let start = Instant::now();
        let (compared, worked) = receive(&w.results, SPIN).expect("the judging worker answers");
        w.waited += start.elapsed();
        w.worked += worked;
        w.steps += 1;
        if w.steps == WINDOW {
            // One late window is a hiccup (a page fault, another thread's moment); the worker
            // goes after STRIKES in a row.
            w.strikes = if w.waited > w.worked { w.strikes + 1 } else { 0 };
            (w.waited, w.worked, w.steps) = (Duration::ZERO, Duration::ZERO, 0);
            if w.strikes == STRIKES {
                self.bring_inline();
            }
        }
        compared
    }

    /// The judging back from the worker, inline from the next step on.
    fn bring_inline(&mut self) {
        if let JudgeLane::Worker(w) = std::mem::replace(self, JudgeLane::Returning) {
            let JudgeWorker { jobs, worker, .. } = *w;
            drop(jobs);
            let judging = worker.join().expect("the judging worker does not panic");
            *self = JudgeLane::Inline { judging: Box::new(judging), judged: None, done: None };
        }
    }

    /// Whether the judging runs on the worker thread.
    #[cfg(test)]
    pub(super) fn on_worker(&self) -> bool {
        matches!(self, JudgeLane::Worker(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{Form, Judge};
    use crate::model::activation::Activation;
    use crate::model::optim::{OptimConfig, OptimizerKind};

    /// The judging brought back from the worker in the middle of a run carries on exactly where
    /// the worker left it (Adam's bound and the witness's optimizer state included): step by step
    /// the same reports as a lane inline from the start.
    #[test]
    fn judging_brought_back_inline_carries_on() {
        let spec = Spec::new(vec![2, 6, 1], vec![Activation::Tanh, Activation::Identity]).unwrap();
        let optim = OptimConfig::new(OptimizerKind::Adam, 0.01);
        let cfg = RunConfig {
            spec: spec.clone(),
            optim,
            steps: 12,
            batch_size: 8,
            shuffle_seed: 0,
            judge: Judge::round_off(),
            drift_tol: 1.0,
            fault: None,
            form: Form::Batched,
            mutant: None,
            snapshot_steps: vec![],
            saturation: 0.97,
            witness_every: 0,
            threads: 2,
        };
        let lane = |worker| {
            let judging = Judging::new(
                &cfg,
                Some(OptimBound::new::<f64>(optim, &spec)),
                Some(DdWitness::new(&spec, optim)),
            );
            JudgeLane::<f64>::new(judging, worker)
        };
        let (mut inline, mut moved) = (lane(false), lane(true));
        let x = Matrix::from_fn(8, 2, |i, j| ((i * 2 + j) as f64 * 0.7).sin());
        let y = Matrix::from_fn(8, 1, |i, _| (i as f64 * 0.3).cos());
        let mut params = Params::<f64>::init(&spec);
        for t in 0..12 {
            assert_eq!(moved.on_worker(), t < 5);
            let (loss, grads) = crate::manual::literal::gradients(&spec, &params, &x, &y);
            let before = params.clone();
            params.sgd_update(&grads, 0.01);
            let mut out = Vec::new();
            for lane in [&mut inline, &mut moved] {
                lane.start(&before, &x, &y, true);
                let r = RefStep { loss, grads: grads.clone(), params: params.clone() };
                lane.compare(StepResults {
                    loss,
                    grads: grads.clone(),
                    params: params.clone(),
                    r,
                    wide: None,
                    witnessed: true,
                });
                let c = lane.finish();
                out.push((c.reports, c.witnessed));
            }
            assert!(out[1].1 && out[1].0.iter().all(|r| r.witness.is_some()), "step {t}: witnessed");
            assert_eq!(out[0], out[1], "step {t}");
            if t == 4 {
                moved.bring_inline();
            }
        }
    }
}
