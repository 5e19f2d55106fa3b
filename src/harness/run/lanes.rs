//! The run's second lanes: the free reference's step with the round-off bounds, and the
//! double-double witness, each on a worker thread for a large step or inline.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::harness::bound::{step_bounds_with, OptimBound, StepBounds};
use crate::harness::witness::{DdWitness, WideStep};
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::manual::{Backprop, Batch};
use crate::model::params::Params;
use crate::model::spec::Spec;
use crate::reference::Reference;

/// The second lane of a step: the free reference's own step and the round-off bounds, neither of
/// which the implementation's step needs. Computed on the calling thread, or — for a large step
/// when the run may use two threads — on a worker thread that lives as long as the run, beside the
/// implementation's and the lockstep reference's steps: one hand-over per step, nothing spins.
pub(super) enum Lane<T: Scalar> {
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
pub(super) type LaneResult<T> = (StepBounds, Option<Params<f64>>, T, Params<T>);

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
    pub(super) fn new(spec: &Spec, free: Reference, optim: Option<OptimBound>, worker: bool) -> Lane<T> {
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
    pub(super) fn start(&mut self, params: &Params<T>, xb: &Matrix<T>, yb: &Matrix<T>, batch: &Batch<'_, T>) {
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
    pub(super) fn finish(&mut self) -> LaneResult<T> {
        match self {
            Lane::Inline { done, .. } => *done.take().expect("a step was started"),
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

/// The double-double witness of an f64 run, stepping beside the rest of the step on a worker
/// thread (one hand-over per step, nothing spins), or inline.
pub(super) enum DdLane {
    Inline { witness: Box<DdWitness>, done: Option<WideStep> },
    Worker { jobs: mpsc::Sender<LaneJob<f64>>, results: mpsc::Receiver<WideStep>, pending: bool },
}

impl DdLane {
    pub(super) fn new(witness: DdWitness, worker: bool) -> DdLane {
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
    pub(super) fn start<T: Scalar>(&mut self, params: &Params<T>, xb: &Matrix<T>, yb: &Matrix<T>) {
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
    pub(super) fn finish(&mut self) -> Option<WideStep> {
        match self {
            DdLane::Inline { done, .. } => done.take(),
            DdLane::Worker { results, pending, .. } => {
                std::mem::take(pending).then(|| results.recv().expect("the witness's worker answers"))
            }
        }
    }
}
