//! A finite-difference check of the manual gradients, in the manner of `torch.autograd.gradcheck`:
//! central differences in f64, entry by entry.

use anyhow::{bail, Result};

use crate::kernels::matrix::Matrix;
use crate::manual::Mlp;
use crate::model::params::Params;

/// The result of [`gradcheck`]: the largest disagreement between the analytic gradient (eqs (6),
/// (7)) and the central difference (E(w + h) − E(w − h)) / 2h.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Number of parameters checked.
    pub checked: usize,
    /// max |analytic − numeric|.
    pub max_abs_err: f64,
    /// The worst entry's position in [`crate::Params::flat`] order, with both values.
    pub worst: (usize, f64, f64),
}

/// Checks the literal manual gradient of `mlp` on the batch (`x`, `y`) against central
/// differences with step `h`; an error when some entry differs by more than
/// `atol + rtol·|numeric|`, naming the layer, tensor and entry.
pub fn gradcheck(
    mlp: &Mlp<f64>,
    x: &Matrix<f64>,
    y: &Matrix<f64>,
    h: f64,
    atol: f64,
    rtol: f64,
) -> Result<GradcheckReport> {
    let (_, grads) = mlp.gradients_literal(x, y);
    gradcheck_of(&grads, mlp, x, y, h, atol, rtol)
}

/// [`gradcheck`] of a given gradient (for instance one computed by other code) against the
/// central differences of `mlp`'s loss.
pub fn gradcheck_of(
    grads: &Params<f64>,
    mlp: &Mlp<f64>,
    x: &Matrix<f64>,
    y: &Matrix<f64>,
    h: f64,
    atol: f64,
    rtol: f64,
) -> Result<GradcheckReport> {
    grads.check_shapes(mlp.spec())?;
    let analytic = grads.flat();
    let mut probe = mlp.clone();
    let base = mlp.params().flat();
    let mut flat = base.clone();
    let loss_at = |probe: &mut Mlp<f64>, flat: &[f64]| {
        probe.params_mut().set_flat(flat);
        probe.gradients_literal(x, y).0
    };
    let mut report = GradcheckReport { checked: base.len(), max_abs_err: 0.0, worst: (0, 0.0, 0.0) };
    for p in 0..base.len() {
        flat[p] = base[p] + h;
        let plus = loss_at(&mut probe, &flat);
        flat[p] = base[p] - h;
        let minus = loss_at(&mut probe, &flat);
        flat[p] = base[p];
        let numeric = (plus - minus) / (2.0 * h);
        let err = (analytic[p] - numeric).abs();
        if err > report.max_abs_err || err.is_nan() {
            report.max_abs_err = err;
            report.worst = (p, analytic[p], numeric);
        }
        if err.is_nan() || err > atol + rtol * numeric.abs() {
            bail!(
                "gradcheck: {} analytic {analytic:e} vs numeric {numeric:e} (difference {err:e})",
                name_flat(mlp, p),
                analytic = analytic[p]
            );
        }
    }
    Ok(report)
}

/// Names the parameter at position `p` of [`crate::Params::flat`], e.g. `W2[3,0]` or `b1[4]`.
pub fn name_flat<T>(mlp: &Mlp<T>, mut p: usize) -> String
where
    T: crate::kernels::scalar::Scalar,
{
    for (k, layer) in mlp.params().layers.iter().enumerate() {
        let nw = layer.w.as_slice().len();
        if p < nw {
            return format!("layer {}, W{}[{},{}]", k + 1, k + 1, p / layer.w.cols(), p % layer.w.cols());
        }
        p -= nw;
        if let Some(b) = &layer.b {
            if p < b.len() {
                return format!("layer {}, b{}[{}]", k + 1, k + 1, p);
            }
            p -= b.len();
        }
    }
    format!("entry {p} past the end")
}
