//! The loss E and its gradient with respect to the network's output, ∂E/∂y, where δ^L starts.

use crate::model::scalar::Scalar;
use crate::model::spec::Loss;

impl Loss {
    /// The contribution of one output entry `y` with target `t` to E, for a batch of `count`
    /// output entries (N·n_L): ½(y − t)² for eq. (5), (y − t)² / count for the mean squared error.
    pub fn term<T: Scalar>(self, y: T, t: T, count: usize) -> T {
        let d = y - t;
        match self {
            Loss::HalfSse => T::of(0.5) * d * d,
            Loss::Mse => d * d / T::of(count as f64),
        }
    }

    /// ∂E/∂y for one output entry: y − t for eq. (5), 2(y − t) / count for the mean squared error.
    pub fn grad<T: Scalar>(self, y: T, t: T, count: usize) -> T {
        let d = y - t;
        match self {
            Loss::HalfSse => d,
            Loss::Mse => T::of(2.0) * d / T::of(count as f64),
        }
    }

    /// E over a batch of outputs and targets, given as equally long row-major slices.
    pub fn value<T: Scalar>(self, outputs: &[T], targets: &[T]) -> T {
        assert_eq!(outputs.len(), targets.len());
        let sum = outputs.iter().zip(targets).fold(T::zero(), |e, (&y, &t)| e + (y - t) * (y - t));
        match self {
            Loss::HalfSse => T::of(0.5) * sum,
            Loss::Mse => sum / T::of(outputs.len() as f64),
        }
    }
}
