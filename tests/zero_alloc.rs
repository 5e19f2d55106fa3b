//! The steady-state training step allocates nothing of its own: every buffer is allocated once,
//! in the workspace, and reused. Proven with a counting global allocator that counts the
//! allocations made on the test's own thread while steps run.
//!
//! The one exception is inside the GEMM crate, which allocates a packing buffer per call for some
//! shapes (it takes no caller-provided workspace); those are counted apart, via
//! `backprop::kernels::gemm::in_gemm`, and printed.

use backprop::manual::{Backprop, Batch, Batched, Split};
use backprop::{Activation, DType, Matrix, Params, Scalar, Spec};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static IN_GEMM: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

fn count() {
    if COUNTING.with(Cell::get) {
        let slot = if backprop::kernels::gemm::in_gemm() { &IN_GEMM } else { &ALLOCATIONS };
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread by `f`: (outside the GEMM crate, inside it).
fn allocations_in(f: impl FnOnce()) -> (usize, usize) {
    let before = (ALLOCATIONS.load(Ordering::Relaxed), IN_GEMM.load(Ordering::Relaxed));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.load(Ordering::Relaxed) - before.0, IN_GEMM.load(Ordering::Relaxed) - before.1)
}

fn steady_state_allocations<T: Scalar>(spec: Spec, batches: &[usize]) -> (usize, usize) {
    steady_state_allocations_with::<T>(spec, batches, None)
}

/// The [`Batched`] form's [`Backprop::step`] with `optim` (its state allocated when it is made);
/// without, plain SGD.
fn steady_state_allocations_with<T: Scalar>(
    spec: Spec,
    batches: &[usize],
    optim: Option<backprop::OptimConfig>,
) -> (usize, usize) {
    let max = *batches.iter().max().unwrap();
    let cfg = optim.unwrap_or(backprop::OptimConfig::sgd(1e-3));
    let mut mlp = Batched::new(&spec, Params::<T>::init(&spec), cfg, max);
    let x = Matrix::<T>::from_fn(max, spec.n_in(), |i, j| T::of(((i * 3 + j) % 7) as f64 / 7.0 - 0.5));
    let y = Matrix::<T>::from_fn(max, spec.n_out(), |i, j| T::of(((i + 2 * j) % 5) as f64 / 5.0 - 0.5));
    let (mut xb, mut yb) = (x.clone(), y.clone());
    let mut step = |mlp: &mut Batched<T>, n: usize| {
        xb.set_rows(n);
        yb.set_rows(n);
        xb.as_mut_slice().copy_from_slice(&x.as_slice()[..n * spec.n_in()]);
        yb.as_mut_slice().copy_from_slice(&y.as_slice()[..n * spec.n_out()]);
        mlp.step(&Batch::new(&xb, &yb));
    };
    // Warm-up: whatever the GEMM crate keeps per thread is set up by the first steps.
    for &n in batches {
        step(&mut mlp, n);
    }
    allocations_in(|| {
        for _ in 0..5 {
            for &n in batches {
                step(&mut mlp, n);
            }
        }
    })
}

#[test]
fn a_training_step_allocates_nothing_of_its_own_once_warm() {
    for phi in Activation::ALL {
        for bias in [true, false] {
            for dtype in [DType::F32, DType::F64] {
                let spec = Spec::new(vec![3, 16, 8, 2], vec![phi, phi, Activation::Identity])
                    .unwrap()
                    .with_bias(bias)
                    .with_dtype(dtype);
                // Full batches and a shorter last mini-batch, as an epoch has.
                let (own, gemm) = match dtype {
                    DType::F32 => steady_state_allocations::<f32>(spec, &[32, 32, 7]),
                    DType::F64 => steady_state_allocations::<f64>(spec, &[32, 32, 7]),
                };
                assert_eq!(own, 0, "{phi}, bias {bias}, {dtype}: {own} allocations in 15 steady-state steps");
                let _ = gemm;
            }
        }
    }
}

#[test]
fn the_benchmark_sizes_allocate_nothing_of_their_own_once_warm() {
    for case in backprop::commands::sizes::cases() {
        let spec = backprop::commands::sizes::case_spec::<f32>(&case).unwrap();
        let depth = spec.depth();
        let (own, gemm) = steady_state_allocations::<f32>(spec, &[case.batch]);
        assert_eq!(
            own, 0,
            "{:?}, batch {}: {own} allocations in 5 steady-state steps",
            case.widths, case.batch
        );
        eprintln!(
            "{:?} batch {}: the GEMM crate allocated {gemm} times in 5 steps ({} GEMM calls)",
            case.widths,
            case.batch,
            5 * (2 * depth - 1)
        );
    }
}

#[test]
fn every_optimizer_and_the_cross_entropy_step_without_allocating_once_warm() {
    use backprop::{Loss, OptimConfig, OptimizerKind};
    let mut configs = vec![];
    for kind in [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW, OptimizerKind::RmsProp] {
        let mut c = OptimConfig::new(kind, 1e-3);
        if kind != OptimizerKind::Adam && kind != OptimizerKind::AdamW {
            c.momentum = 0.9;
        }
        c.amsgrad = kind == OptimizerKind::AdamW;
        c.centered = kind == OptimizerKind::RmsProp;
        c.weight_decay = 1e-2;
        configs.push(c);
    }
    for c in configs {
        for dtype in [DType::F32, DType::F64] {
            let spec =
                Spec::new(vec![3, 16, 8, 4], vec![Activation::Tanh, Activation::Tanh, Activation::Identity])
                    .unwrap()
                    .with_loss(Loss::CrossEntropy)
                    .with_label_smoothing(0.1)
                    .with_dtype(dtype);
            let (own, _) = match dtype {
                DType::F32 => steady_state_allocations_with::<f32>(spec, &[32, 32, 7], Some(c)),
                DType::F64 => steady_state_allocations_with::<f64>(spec, &[32, 32, 7], Some(c)),
            };
            assert_eq!(own, 0, "{}, {dtype}: {own} allocations in 15 steady-state steps", c.describe());
        }
    }
}

/// The batch split over two threads allocates nothing of its own on the calling thread once warm
/// (the blocks' buffers are made with the workspace; rayon's `join` hands work over on the stack).
#[test]
fn the_split_step_allocates_nothing_of_its_own_once_warm() {
    let spec =
        Spec::new(vec![64, 256, 256, 10], vec![Activation::Tanh, Activation::Tanh, Activation::Identity])
            .unwrap();
    let mut mlp = Split::new(&spec, Params::<f64>::init(&spec), backprop::OptimConfig::sgd(1e-3), 128, 2);
    let x = Matrix::<f64>::from_fn(128, 64, |i, j| ((i * 3 + j) % 7) as f64 / 7.0 - 0.5);
    let y = Matrix::<f64>::from_fn(128, 10, |i, j| ((i + 2 * j) % 5) as f64 / 5.0 - 0.5);
    let batch = Batch::new(&x, &y);
    for _ in 0..3 {
        mlp.step(&batch);
    }
    let (own, _) = allocations_in(|| {
        for _ in 0..5 {
            mlp.step(&batch);
        }
    });
    assert_eq!(own, 0, "{own} allocations in 5 steady-state split steps");
}

/// A whole epoch of `train`'s loop (the batch order's reshuffle, the gathering of every batch, the
/// steps, the epoch's record and its whole-dataset evaluation) allocates nothing of its own on the
/// loop's thread once the first epoch has grown every buffer: counted from the end of epoch 1 to
/// the end of epoch 2, on the thread that runs the loop (the pool's, when the batch is split).
#[test]
fn a_whole_train_epoch_allocates_nothing_of_its_own_once_warm() {
    use backprop::commands::train::{train_manual, TrainArgs};
    use clap::Parser;
    let cases: [&[&str]; 4] = [
        &["--layers", "1,16,16,1", "--dataset", "sine", "--samples", "300", "--dtype", "f32"],
        &[
            "--layers",
            "2,32,32,2",
            "--dataset",
            "spirals",
            "--samples",
            "400",
            "--activations",
            "tanh,tanh,identity",
            "--loss",
            "cross-entropy",
            "--optimizer",
            "adam",
        ],
        &["--layers", "2,16,1", "--dataset", "xor", "--samples", "200", "--batch-size", "0"],
        &[
            "--layers",
            "64,256,256,10",
            "--dataset",
            "teacher",
            "--samples",
            "600",
            "--batch-size",
            "128",
            "--threads",
            "2",
        ],
    ];
    for case in cases {
        let args = TrainArgs::try_parse_from(["train"].iter().chain(case)).unwrap();
        let mut setup = args.net.setup().unwrap();
        let (data, _) = setup.load_data().unwrap();
        let (train, val) = backprop::data::split(&data, 0.2, setup.seed).unwrap();
        let batch = match setup.batch_size {
            Some(0) => train.len(),
            b => b.unwrap_or(backprop::commands::DEFAULT_BATCH),
        };
        setup.steps = 3 * train.len().div_ceil(batch);
        let (mut before, mut counted) = ((0, 0), None);
        let mut at_epoch = |e: usize| {
            let now = (ALLOCATIONS.load(Ordering::Relaxed), IN_GEMM.load(Ordering::Relaxed));
            if e == 1 {
                before = now;
                COUNTING.with(|c| c.set(true));
            } else if e == 2 {
                COUNTING.with(|c| c.set(false));
                counted = Some((now.0 - before.0, now.1 - before.1));
            }
        };
        let epochs = match setup.spec.dtype() {
            DType::F32 => train_manual::<f32>(&setup, &train, val.as_ref(), Some(1), &mut at_epoch),
            DType::F64 => train_manual::<f64>(&setup, &train, val.as_ref(), Some(1), &mut at_epoch),
        }
        .unwrap();
        assert_eq!(epochs.len(), 3, "{case:?}");
        assert!(epochs[1].val_loss.is_some(), "{case:?}: epoch 2 is evaluated");
        let (own, gemm) = counted.expect("two epochs ran");
        assert_eq!(own, 0, "{case:?}: {own} allocations in the second epoch");
        eprintln!("{case:?}: the GEMM crate allocated {gemm} times in the second epoch");
    }
}
