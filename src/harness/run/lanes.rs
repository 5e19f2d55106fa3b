//! The run's second lanes: the free reference's step, and the judging side's work (the round-off
//! bounds and the double-double witness), each on a worker thread or inline.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::harness::bound::{step_bounds_with, OptimBound, StepBounds};
use crate::harness::witness::{DdWitness, WideStep};
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::manual::{Backprop, Batch};
use crate::model::params::Params;
use crate::model::spec::Spec;
use crate::reference::Reference;

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
/// thread, or — for a large step when the run may use two threads — on a worker thread that
/// lives as long as the run, beside the implementation's and the lockstep reference's steps: one
/// hand-over per step, nothing spins.
pub(super) enum Lane<T: Scalar> {
    Inline {
        free: Reference,
        done: Option<(T, Params<T>)>,
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
            return Lane::Inline { free, done: None };
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

    /// Starts the free reference's step on the batch (`xb`, `yb`). `batch` is (`xb`, `yb`) as
    /// tensors, which the inline lane steps on; a worker converts its own copy.
    pub(super) fn start(&mut self, xb: &Matrix<T>, yb: &Matrix<T>, batch: &Batch<'_, T>) {
        match self {
            Lane::Inline { free, done } => *done = Some((free.step(batch), free.params())),
            Lane::Worker { jobs, .. } => jobs.send((xb.clone(), yb.clone())).expect("the lane's worker runs"),
        }
    }

    /// The free reference's loss and its weights after the step last started.
    pub(super) fn finish(&mut self) -> (T, Params<T>) {
        match self {
            Lane::Inline { done, .. } => done.take().expect("a step was started"),
            Lane::Worker { results, .. } => results.recv().expect("the lane's worker answers"),
        }
    }

    /// The free reference, back from the worker.
    pub(super) fn into_free(self) -> Reference {
        match self {
            Lane::Inline { free, .. } => free,
            Lane::Worker { jobs, worker, .. } => {
                drop(jobs);
                worker.join().expect("the lane's worker does not panic")
            }
        }
    }
}

/// The judging side of a step, from the weights it starts from and its batch: the round-off
/// bounds (with the optimizer's share, when it is not plain SGD) and, when asked, the
/// double-double witness of an f64 run. None of it touches libtorch, and the implementations'
/// steps need none of it until they are compared.
pub(super) struct Judging {
    spec: Spec,
    optim: Option<OptimBound>,
    witness: Option<DdWitness>,
}

/// A step's bounds, the updated parameters' tolerances from the optimizer's bound, and the
/// witness's step when it took one.
pub(super) type Judged = (StepBounds, Option<Params<f64>>, Option<WideStep>);

impl Judging {
    pub(super) fn new(spec: &Spec, optim: Option<OptimBound>, witness: Option<DdWitness>) -> Judging {
        Judging { spec: spec.clone(), optim, witness }
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
}

/// [`Judging`] on a worker thread for the run's whole length when the run may use two threads
/// (one hand-over per step, nothing spins; the bounds and the witness take as long as the two
/// implementations' steps at the default size, and run beside them), or inline.
pub(super) enum JudgeLane<T: Scalar> {
    Inline { judging: Box<Judging>, done: Option<Box<Judged>> },
    Worker { jobs: mpsc::Sender<(Job<T>, bool)>, results: mpsc::Receiver<Judged> },
}

impl<T: Scalar> JudgeLane<T> {
    pub(super) fn new(judging: Judging, worker: bool) -> JudgeLane<T> {
        if !worker {
            return JudgeLane::Inline { judging: Box::new(judging), done: None };
        }
        let (jobs, inbox) = mpsc::channel::<(Job<T>, bool)>();
        let (outbox, results) = mpsc::channel();
        std::thread::spawn(move || {
            let mut judging = judging;
            while let Ok(((p, x, y), witness)) = receive(&inbox) {
                if outbox.send(judging.step(&p, &x, &y, witness)).is_err() {
                    break;
                }
            }
        });
        JudgeLane::Worker { jobs, results }
    }

    /// Starts the judging of a step from `params` on the batch (`xb`, `yb`), with the witness's
    /// step when `witness`.
    pub(super) fn start(&mut self, params: &Params<T>, xb: &Matrix<T>, yb: &Matrix<T>, witness: bool) {
        match self {
            JudgeLane::Inline { judging, done } => {
                *done = Some(Box::new(judging.step(params, xb, yb, witness)))
            }
            JudgeLane::Worker { jobs, .. } => jobs
                .send(((params.clone(), xb.clone(), yb.clone()), witness))
                .expect("the judging worker runs"),
        }
    }

    /// The judging of the step last started.
    pub(super) fn finish(&mut self) -> Judged {
        match self {
            JudgeLane::Inline { done, .. } => *done.take().expect("a step was started"),
            JudgeLane::Worker { results, .. } => receive(results).expect("the judging worker answers"),
        }
    }
}
