//! Comparing two implementations' tensors: error measures, a tolerance test in the manner of
//! `torch.testing.assert_close`, and the first entry that fails it, named by layer, tensor and
//! index (i, j).

use std::fmt;

use crate::model::params::Params;
use crate::model::scalar::Scalar;
use crate::model::spec::DType;

/// An elementwise tolerance: entries `a` (manual) and `b` (reference) agree when
/// `|a − b| ≤ atol + rtol·|b|`, as `torch.testing.assert_close`. In [`compare`], equal values
/// (equal infinities, and NaN against NaN) always agree.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tolerance {
    /// Relative part.
    pub rtol: f64,
    /// Absolute part.
    pub atol: f64,
}

impl Tolerance {
    /// Whether `a` is close to the reference value `b`.
    pub fn close(&self, a: f64, b: f64) -> bool {
        (a - b).abs() <= self.atol + self.rtol * b.abs()
    }
}

/// How far one tensor of the manual implementation is from the reference's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorErrors {
    /// max_ij |a_ij − b_ij| over entries that differ (∞ where one side alone is NaN).
    pub max_abs: f64,
    /// Normwise relative error ‖a − b‖∞ / ‖b‖∞ (the absolute error when b is all zeros).
    pub rel: f64,
    /// The first entry (row-major) outside the tolerance: ((i, j), manual, reference).
    pub first_fail: Option<((usize, usize), f64, f64)>,
}

/// Compares two equally long row-major tensors of `cols` columns (a vector has one row).
pub fn compare<T: Scalar>(a: &[T], b: &[T], cols: usize, tol: Tolerance) -> TensorErrors {
    assert_eq!(a.len(), b.len(), "compare: tensors of different sizes");
    let mut out = TensorErrors::default();
    let mut norm_b: f64 = 0.0;
    for (p, (&x, &y)) in a.iter().zip(b).enumerate() {
        let (x, y) = (x.to64(), y.to64());
        // Equal values agree, infinities of one sign and NaN against NaN included (as
        // assert_close with equal_nan): both sides went non-finite in the same place.
        let same = x == y || (x.is_nan() && y.is_nan());
        let diff = if same { 0.0 } else { (x - y).abs() };
        out.max_abs = if diff.is_nan() { f64::INFINITY } else { out.max_abs.max(diff) };
        if y.is_finite() {
            norm_b = norm_b.max(y.abs());
        }
        if out.first_fail.is_none() && !same && !tol.close(x, y) {
            out.first_fail = Some(((p / cols.max(1), p % cols.max(1)), x, y));
        }
    }
    out.rel = if norm_b > 0.0 && norm_b.is_finite() { out.max_abs / norm_b } else { out.max_abs };
    out
}

/// Which tensor of a layer: a gradient or a parameter, weight or bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorKind {
    /// The loss E (a scalar, layer 0).
    Loss,
    /// ∂E/∂W^k.
    GradW,
    /// ∂E/∂b^k.
    GradB,
    /// W^k.
    W,
    /// b^k.
    B,
}

impl TensorKind {
    /// The name used in reports and traces: `loss`, `dW`, `db`, `W`, `b`.
    pub fn name(self) -> &'static str {
        match self {
            TensorKind::Loss => "loss",
            TensorKind::GradW => "dW",
            TensorKind::GradB => "db",
            TensorKind::W => "W",
            TensorKind::B => "b",
        }
    }
}

impl fmt::Display for TensorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor's comparison: which layer (1..L; 0 for the loss) and tensor, and its errors.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorReport {
    /// Layer k (0 for the loss).
    pub layer: usize,
    /// Which tensor.
    pub kind: TensorKind,
    /// The errors.
    pub errors: TensorErrors,
}

/// Compares every tensor of two parameter (or gradient) sets, layer by layer: W^k (or ∂E/∂W^k)
/// then b^k. `grads` says whether these are gradients (names dW, db) or parameters (W, b).
pub fn compare_params<T: Scalar>(
    manual: &Params<T>,
    reference: &Params<T>,
    grads: bool,
    tol: Tolerance,
) -> Vec<TensorReport> {
    let (kw, kb) =
        if grads { (TensorKind::GradW, TensorKind::GradB) } else { (TensorKind::W, TensorKind::B) };
    let mut out = Vec::new();
    for (k, (m, r)) in manual.layers.iter().zip(&reference.layers).enumerate() {
        let errors = compare(m.w.as_slice(), r.w.as_slice(), m.w.cols(), tol);
        out.push(TensorReport { layer: k + 1, kind: kw, errors });
        if let (Some(mb), Some(rb)) = (&m.b, &r.b) {
            out.push(TensorReport { layer: k + 1, kind: kb, errors: compare(mb, rb, mb.len(), tol) });
        }
    }
    out
}

/// Where two implementations first part: step, layer, tensor, entry and both values.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Divergence {
    /// Training step t (from 0).
    pub step: usize,
    /// Layer k (from 1; 0 for the loss).
    pub layer: usize,
    /// `loss`, `dW`, `db`, `W` or `b`.
    pub tensor: &'static str,
    /// Entry (i, j) in the seed's orientation (a bias or the loss: i = 0).
    pub index: (usize, usize),
    /// The manual implementation's value.
    pub manual: f64,
    /// The reference's value.
    pub torch: f64,
}

impl Divergence {
    /// The first failing entry of a list of tensor reports, if any.
    pub fn first(step: usize, reports: &[TensorReport]) -> Option<Divergence> {
        reports.iter().find_map(|r| {
            r.errors.first_fail.map(|(index, manual, torch)| Divergence {
                step,
                layer: r.layer,
                tensor: r.kind.name(),
                index,
                manual,
                torch,
            })
        })
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name =
            if self.layer == 0 { self.tensor.to_string() } else { format!("{}{}", self.tensor, self.layer) };
        write!(
            f,
            "step {}, layer {}, {}[{},{}]: manual {:e} vs torch {:e} (difference {:e})",
            self.step,
            self.layer,
            name,
            self.index.0,
            self.index.1,
            self.manual,
            self.torch,
            (self.manual - self.torch).abs()
        )
    }
}

/// The machine epsilon of a dtype.
pub fn epsilon(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => f32::EPSILON as f64,
        DType::F64 => f64::EPSILON,
    }
}
