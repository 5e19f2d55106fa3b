//! The network sizes of the performance table (the bench, the criterion bench, the allocation test).

use anyhow::Result;

use crate::kernels::scalar::Scalar;
use crate::model::activation::Activation;
use crate::model::spec::Spec;

/// One benchmark size: tanh hidden layers, identity output.
#[derive(Clone, Debug)]
pub struct Case {
    /// Widths n0..nL.
    pub widths: Vec<usize>,
    /// Samples per step.
    pub batch: usize,
    /// The target ratio torch time / manual time.
    pub target: f64,
}

/// The sizes of the performance table.
pub fn cases() -> Vec<Case> {
    vec![
        Case { widths: vec![2, 16, 1], batch: 32, target: 50.0 },
        Case { widths: vec![2, 32, 32, 1], batch: 64, target: 20.0 },
        Case { widths: vec![64, 256, 256, 256, 10], batch: 128, target: 2.0 },
        Case { widths: vec![784, 1024, 1024, 10], batch: 256, target: 1.1 },
    ]
}

/// The spec of a benchmark case in dtype `T`.
pub fn case_spec<T: Scalar>(case: &Case) -> Result<Spec> {
    let depth = case.widths.len() - 1;
    let mut acts = vec![Activation::Tanh; depth];
    acts[depth - 1] = Activation::Identity;
    Ok(Spec::new(case.widths.clone(), acts)?.with_dtype(T::DTYPE).with_seed(1))
}

/// Floating-point operations of one SGD step: 2 per weight and sample in each of the forward
/// product, the backward product and the weight-gradient product.
pub fn flops(spec: &Spec, batch: usize) -> f64 {
    6.0 * spec.param_count() as f64 * batch as f64
}
