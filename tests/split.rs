//! The batch split over threads ([`SplitWorkspace`]) computes the batch's loss and gradient: with
//! one block bit for bit what the batched form computes, with several within the round-off bound
//! of two correct implementations (the blocks only change the order of the sum over samples), for
//! every loss, odd batch sizes and more blocks than there are cores; and the same bits on every
//! run, however the threads are scheduled.

use backprop::harness::bound::step_bounds;
use backprop::manual::SplitWorkspace;
use backprop::{Activation, DType, Loss, Matrix, Params, Spec, Workspace};

fn batch(spec: &Spec, n: usize) -> (Matrix<f64>, Matrix<f64>) {
    let x = Matrix::from_fn(n, spec.n_in(), |i, j| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0);
    let c = spec.n_out();
    let y = Matrix::from_fn(n, c, |i, j| if (i + j) % c == 0 { 1.0 } else { 0.0 });
    (x, y)
}

#[test]
fn split_gradients_are_the_batch_gradients() {
    for loss in [Loss::HalfSse, Loss::Mse, Loss::CrossEntropy] {
        let spec =
            Spec::new(vec![3, 24, 16, 4], vec![Activation::Tanh, Activation::Gelu, Activation::Identity])
                .unwrap()
                .with_loss(loss)
                .with_dtype(DType::F64);
        let p = Params::<f64>::init(&spec);
        for n in [1, 7, 32, 33] {
            let (x, y) = batch(&spec, n);
            let mut whole = Workspace::new(&spec, n);
            let e = whole.gradients(&p, &x, &y);
            let bounds = step_bounds(&spec, &p, &x, &y);

            let mut one = SplitWorkspace::new(&spec, n, 1);
            assert_eq!(one.gradients(&p, &x, &y), e, "{loss}, N = {n}");
            assert_eq!(one.grads().flat(), whole.grads().flat(), "{loss}, N = {n}: one block");

            for blocks in [2, 3, 5] {
                let mut split = SplitWorkspace::new(&spec, n, blocks);
                let es = split.gradients(&p, &x, &y);
                assert!((es - e).abs() <= bounds.loss, "{loss}, N = {n}, {blocks} blocks: E {es} vs {e}");
                let tol = bounds.grads.flat();
                for ((a, b), t) in split.grads().flat().iter().zip(whole.grads().flat()).zip(&tol) {
                    assert!(
                        (a - b).abs() <= *t,
                        "{loss}, N = {n}, {blocks} blocks: {a} vs {b} (tolerance {t})"
                    );
                }
                // Again: the same bits.
                let again = split.grads().flat();
                assert_eq!(split.gradients(&p, &x, &y), es);
                assert_eq!(split.grads().flat(), again);
            }
        }
    }
}
