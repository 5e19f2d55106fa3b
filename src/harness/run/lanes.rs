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

/// How long a waiting side polls for its message before it sleeps: a sleeping thread takes tens
/// of microseconds to wake (more in a virtual machine), as long as a small step's whole judging.
const SPIN: Duration = Duration::from_micros(50);

/// `rx.recv()`, polling for up to [`SPIN`] before it blocks.
fn receive<M>(rx: &mpsc::Receiver<M>) -> Result<M, mpsc::RecvError> {
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(m) => return Ok(m),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
            Err(mpsc::TryRecvError::Empty) if start.elapsed() > SPIN => return rx.recv(),
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

/// [`Judging`] on a worker thread for the run's whole length when the run may use two threads,
/// or inline. On the worker the bounds and the witness run beside the implementation's and the
/// lockstep reference's steps (they take about as long at the default size), and the comparison
/// beside the free reference's step; both sides poll for [`SPIN`] before they sleep.
pub(super) enum JudgeLane<T: Scalar> {
    Inline { judging: Box<Judging>, judged: Option<Box<Judged>>, done: Option<Box<Compared<T>>> },
    Worker { jobs: mpsc::Sender<Message<T>>, results: mpsc::Receiver<Compared<T>> },
}

impl<T: Scalar> JudgeLane<T> {
    pub(super) fn new(judging: Judging, worker: bool) -> JudgeLane<T> {
        if !worker {
            return JudgeLane::Inline { judging: Box::new(judging), judged: None, done: None };
        }
        let (jobs, inbox) = mpsc::channel::<Message<T>>();
        let (outbox, results) = mpsc::channel();
        std::thread::spawn(move || {
            let mut judging = judging;
            let mut judged = None;
            while let Ok(message) = receive(&inbox) {
                match message {
                    Message::Judge((p, x, y), witness) => judged = Some(judging.step(&p, &x, &y, witness)),
                    Message::Compare(s) => {
                        let judged = judged.take().expect("a step is judged before it is compared");
                        if outbox.send(judging.compare(judged, *s)).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        JudgeLane::Worker { jobs, results }
    }

    /// Starts the judging of a step from `params` on the batch (`xb`, `yb`), with the witness's
    /// step when `witness`.
    pub(super) fn start(&mut self, params: &Params<T>, xb: &Matrix<T>, yb: &Matrix<T>, witness: bool) {
        match self {
            JudgeLane::Inline { judging, judged, .. } => {
                *judged = Some(Box::new(judging.step(params, xb, yb, witness)))
            }
            JudgeLane::Worker { jobs, .. } => jobs
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
            JudgeLane::Worker { jobs, .. } => {
                jobs.send(Message::Compare(Box::new(stepped))).expect("the judging worker runs")
            }
        }
    }

    /// The comparison of the step last handed over.
    pub(super) fn finish(&mut self) -> Compared<T> {
        match self {
            JudgeLane::Inline { done, .. } => *done.take().expect("a step was compared"),
            JudgeLane::Worker { results, .. } => receive(results).expect("the judging worker answers"),
        }
    }
}
