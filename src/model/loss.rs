//! The loss E and its gradient with respect to the network's output, ∂E/∂y, where δ^L starts.
//!
//! Every loss is computed sample by sample (one row of the batch's outputs and targets), so the
//! batched and the literal forms share the same formulas:
//! - `half-sse`: E = ½ Σ_n |ŷ_n − y(x_n)|², eq. (5); ∂E/∂y = y − ŷ.
//! - `mse`: E = (1/(N·n_L)) Σ_n |ŷ_n − y(x_n)|²; ∂E/∂y = 2(y − ŷ)/(N·n_L).
//! - `cross-entropy` (the output activation is the identity, so y = a^L are the logits):
//!   with the smoothed targets t̃_c = (1 − ε) t_c + ε/C (ε the label smoothing, C = n_L),
//!   E = −(1/N) Σ_n Σ_c t̃_nc log softmax(a_n)_c, evaluated with the log-sum-exp shifted by
//!   the row's largest logit m: log softmax(a)_c = a_c − m − ln Σ_j e^(a_j − m). Its gradient
//!   (docs/backprop.md, "Cross-entropy"):
//!   ∂E/∂a_c = (softmax(a)_c · Σ_j t̃_j − t̃_c) / N, which is (softmax(a) − t̃)/N when the
//!   targets of a row sum to 1. As `torch.nn.CrossEntropyLoss` with probability targets and
//!   `reduction="mean"`.

use crate::kernels::scalar::Scalar;
use crate::model::spec::Loss;

impl Loss {
    /// E's share of one sample: outputs `y` (n_L), targets `t` (n_L), in a batch of `batch`
    /// samples; `smoothing` is the cross-entropy's label smoothing ε (ignored by the others).
    pub fn sample_value<T: Scalar>(self, y: &[T], t: &[T], batch: usize, smoothing: f64) -> T {
        debug_assert_eq!(y.len(), t.len());
        match self {
            Loss::HalfSse => T::of(0.5) * sum_sq(y, t),
            Loss::Mse => sum_sq(y, t) / T::of((batch * y.len()) as f64),
            Loss::CrossEntropy => {
                let (m, s) = shifted_sum_exp(y);
                let lse = m + s.ln();
                let c = y.len();
                let mut e = T::zero();
                for (&yj, &tj) in y.iter().zip(t) {
                    e = e + smoothed(tj, smoothing, c) * (lse - yj);
                }
                e / T::of(batch as f64)
            }
        }
    }

    /// ∂E/∂y of one sample into `g` (n_L), for a batch of `batch` samples: y − ŷ for eq. (5),
    /// 2(y − ŷ)/(N·n_L) for the mean squared error, (softmax(y)·Σ t̃ − t̃)/N for the cross-entropy.
    pub fn sample_grad<T: Scalar>(self, y: &[T], t: &[T], batch: usize, smoothing: f64, g: &mut [T]) {
        debug_assert!(y.len() == t.len() && y.len() == g.len());
        match self {
            Loss::HalfSse => {
                for ((g, &y), &t) in g.iter_mut().zip(y).zip(t) {
                    *g = y - t;
                }
            }
            Loss::Mse => {
                let count = T::of((batch * y.len()) as f64);
                for ((g, &y), &t) in g.iter_mut().zip(y).zip(t) {
                    *g = T::of(2.0) * (y - t) / count;
                }
            }
            Loss::CrossEntropy => {
                let (m, s) = shifted_sum_exp(y);
                let c = y.len();
                let total = t.iter().fold(T::zero(), |acc, &tj| acc + smoothed(tj, smoothing, c));
                let n = T::of(batch as f64);
                for ((g, &y), &t) in g.iter_mut().zip(y).zip(t) {
                    let p = (y - m).exp() / s;
                    *g = (p * total - smoothed(t, smoothing, c)) / n;
                }
            }
        }
    }

    /// ∂E/∂y of rows of a batch of `batch` samples (row-major, rows of `n_out` entries; all of the
    /// batch's rows, or a block of them) into `g`: the same values as [`Loss::sample_grad`] row by
    /// row, in one pass over the entries for the squared losses.
    pub fn batch_grad<T: Scalar>(
        self,
        outputs: &[T],
        targets: &[T],
        n_out: usize,
        batch: usize,
        smoothing: f64,
        g: &mut [T],
    ) {
        debug_assert!(outputs.len() == targets.len() && outputs.len() == g.len());
        match self {
            Loss::HalfSse => {
                for ((g, &y), &t) in g.iter_mut().zip(outputs).zip(targets) {
                    *g = y - t;
                }
            }
            Loss::Mse => {
                let count = T::of((batch * n_out) as f64);
                for ((g, &y), &t) in g.iter_mut().zip(outputs).zip(targets) {
                    *g = T::of(2.0) * (y - t) / count;
                }
            }
            Loss::CrossEntropy => {
                let n = n_out.max(1);
                for ((y, t), g) in outputs.chunks(n).zip(targets.chunks(n)).zip(g.chunks_mut(n)) {
                    self.sample_grad(y, t, batch, smoothing, g);
                }
            }
        }
    }

    /// E over a batch of outputs and targets, given as equally long row-major slices of rows of
    /// `n_out` entries. The squared losses sum every square first and scale once, as torch
    /// writes them (so both overflow, or neither, at the same batch); the cross-entropy sums its
    /// samples' shares.
    pub fn value<T: Scalar>(self, outputs: &[T], targets: &[T], n_out: usize, smoothing: f64) -> T {
        self.value_in(outputs, targets, n_out, outputs.len() / n_out.max(1), smoothing)
    }

    /// The share of E of rows of a batch of `batch` samples (all of them: [`Loss::value`]; a block
    /// of them: the block's share, normalised by the whole batch).
    pub fn value_in<T: Scalar>(
        self,
        outputs: &[T],
        targets: &[T],
        n_out: usize,
        batch: usize,
        smoothing: f64,
    ) -> T {
        assert_eq!(outputs.len(), targets.len());
        match self {
            Loss::HalfSse => T::of(0.5) * sum_sq(outputs, targets),
            Loss::Mse => sum_sq(outputs, targets) / T::of((batch * n_out) as f64),
            Loss::CrossEntropy => outputs
                .chunks(n_out.max(1))
                .zip(targets.chunks(n_out.max(1)))
                .fold(T::zero(), |e, (y, t)| e + self.sample_value(y, t, batch, smoothing)),
        }
    }
}

fn sum_sq<T: Scalar>(y: &[T], t: &[T]) -> T {
    y.iter().zip(t).fold(T::zero(), |s, (&y, &t)| s + (y - t) * (y - t))
}

/// The smoothed target t̃ = (1 − ε) t + ε/C.
fn smoothed<T: Scalar>(t: T, smoothing: f64, classes: usize) -> T {
    if smoothing == 0.0 {
        t
    } else {
        T::of(1.0 - smoothing) * t + T::of(smoothing / classes as f64)
    }
}

/// The row's largest entry m and Σ_j e^(y_j − m) (at least 1, so its logarithm is finite).
fn shifted_sum_exp<T: Scalar>(y: &[T]) -> (T, T) {
    let m = y.iter().fold(T::neg_infinity(), |m, &v| if v > m { v } else { m });
    let s = y.iter().fold(T::zero(), |s, &v| s + (v - m).exp());
    (m, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cross-entropy's gradient is the derivative of its value (central differences), with
    /// and without label smoothing, for one-hot and soft targets.
    #[test]
    fn cross_entropy_gradient_is_the_derivative_of_the_value() {
        for (t, eps) in [([0.0, 1.0, 0.0], 0.0), ([0.2, 0.5, 0.3], 0.0), ([1.0, 0.0, 0.0], 0.1)] {
            let y = [0.3f64, -1.2, 2.5];
            let mut g = [0.0; 3];
            Loss::CrossEntropy.sample_grad(&y, &t, 4, eps, &mut g);
            for j in 0..3 {
                let h = 1e-6;
                let (mut up, mut down) = (y, y);
                up[j] += h;
                down[j] -= h;
                let fd = (Loss::CrossEntropy.sample_value(&up, &t, 4, eps)
                    - Loss::CrossEntropy.sample_value(&down, &t, 4, eps))
                    / (2.0 * h);
                assert!((fd - g[j]).abs() < 1e-8, "j={j}: {fd} vs {}", g[j]);
            }
        }
    }

    /// Logits far beyond exp's range give finite values (the shifted log-sum-exp).
    #[test]
    fn cross_entropy_is_stable_for_huge_logits() {
        let y = [1000.0f32, -1000.0];
        let e = Loss::CrossEntropy.sample_value(&y, &[0.0, 1.0], 1, 0.0);
        assert_eq!(e, 2000.0);
        let mut g = [0.0f32; 2];
        Loss::CrossEntropy.sample_grad(&y, &[0.0, 1.0], 1, 0.0, &mut g);
        assert_eq!(g, [1.0, -1.0]);
    }
}
