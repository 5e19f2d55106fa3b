//! The forward and backward pass of the bound (`Mode::Worst`) or of the typical error
//! (`Mode::Rms`): the layers' forward bounds in order, δ^L and the loss, then per layer from the
//! top the gradient's bounds (B7) and δ^{k−1} (B6).

use super::common_mode::{common_of, plus_common, top_direction, Tangents, Top};
use super::forward::{forward_layer, Forward};
use super::output::{cross_entropy_output, squared_output};
use super::rounding::{
    abs, carry, carry_sums, gam_dot, join, plus_rounding, plus_scaled, plus_value, product, product_error,
};
use super::Mode;
use crate::kernels::gemm::Op;
use crate::kernels::matrix::Matrix;
use crate::model::params::{Layer, Params};
use crate::model::spec::{Loss, Spec};

/// One pass's results: e(E) or σ(E), e or σ of every gradient entry, the gradient's values when
/// asked for, and Z^k.
pub(super) struct Pass {
    pub(super) loss: f64,
    pub(super) grads: Params<f64>,
    pub(super) values: Option<Params<f64>>,
    pub(super) activations: Vec<Matrix<f64>>,
}

/// What the pass reads off each W^k besides W^k itself: |W^k|, and in `Mode::Rms` its largest
/// singular direction, (S1″) and (S5).
struct Weights {
    abs: Vec<Matrix<f64>>,
    tops: Vec<Option<Top>>,
    /// κ of (S1″) per layer, 0 in `Mode::Worst`.
    kappa: Vec<f64>,
}

impl Weights {
    fn of(mode: Mode, p: &Params<f64>) -> Weights {
        let abs = p.layers.iter().map(|l| abs(&l.w)).collect();
        // (S1″) and (S5): each W's largest singular direction.
        let tops: Vec<Option<Top>> =
            p.layers.iter().map(|l| (mode == Mode::Rms).then(|| top_direction(&l.w))).collect();
        let kappa = tops.iter().map(|t| t.as_ref().map_or(0.0, |t| t.kappa)).collect();
        Weights { abs, tops, kappa }
    }
}

/// δ^k of the batch (one sample per row) with its error e(δ^k) or σ(δ^k), and in `Mode::Rms` the
/// common-mode part of that error (S1″).
struct Delta {
    value: Matrix<f64>,
    error: Matrix<f64>,
    common: Matrix<f64>,
}

/// The forward and backward pass of the bound (`Mode::Worst`) or of the typical error
/// (`Mode::Rms`), unscaled.
#[allow(clippy::too_many_arguments)]
pub(super) fn pass(
    mode: Mode,
    spec: &Spec,
    p: &Params<f64>,
    x: &Matrix<f64>,
    y: &Matrix<f64>,
    values: bool,
    u: f64,
    tiny: f64,
) -> Pass {
    let n = x.rows();
    let depth = spec.depth();
    let weights = Weights::of(mode, p);
    let layers = forward_pass(mode, spec, p, &weights, x, u, tiny);

    let out = &layers[depth - 1];
    let (delta, e_delta, e_loss) = match spec.loss() {
        Loss::CrossEntropy => cross_entropy_output(mode, out, y, spec.label_smoothing(), u, tiny),
        loss => squared_output(mode, loss, out, y, u, tiny),
    };
    // (S1″): δ^L's error takes the common-mode share of the output layer's e(A^L).
    let c_delta = Matrix::from_vec(
        e_delta.rows(),
        e_delta.cols(),
        e_delta.as_slice().iter().zip(out.share.as_slice()).map(|(e, s)| e * s).collect(),
    );
    let mut delta = Delta { value: delta, error: e_delta, common: c_delta };

    let g_batch = gam_dot(mode, n, u);
    let mut grads = Params::<f64>::zeros(spec);
    let mut grad_values = values.then(|| Params::<f64>::zeros(spec));
    for k in (1..=depth).rev() {
        let (z_prev, ez_prev) = match k {
            1 => (x, None),
            _ => (&layers[k - 2].z, Some(&layers[k - 2].ez)),
        };
        let value = grad_values.as_mut().map(|gv| &mut gv.layers[k - 1]);
        gradient_bounds(mode, z_prev, ez_prev, &delta, g_batch, tiny, &mut grads.layers[k - 1], value);
        if k > 1 {
            delta = delta_below(mode, delta, &p.layers[k - 1].w, &weights, k - 1, &layers[k - 2], u, tiny);
        }
    }
    let activations = layers.into_iter().map(|l| l.z).collect();
    Pass { loss: e_loss, grads, values: grad_values, activations }
}

/// The forward bounds of every layer in order, (B1)–(B3), with the (S5) tangents started at each
/// W and carried through the layers above.
fn forward_pass(
    mode: Mode,
    spec: &Spec,
    p: &Params<f64>,
    weights: &Weights,
    x: &Matrix<f64>,
    u: f64,
    tiny: f64,
) -> Vec<Forward> {
    let n = x.rows();
    let mut tangents = Tangents { live: Vec::new() };
    let mut layers: Vec<Forward> = Vec::with_capacity(spec.depth());
    // The input x is exact: no error, no common part.
    let zero = Matrix::zeros(n, x.cols());
    for (k, layer) in p.layers.iter().enumerate() {
        let floor = weights.tops[k]
            .as_ref()
            .and_then(|top| tangents.through(&layer.w, top, layers.last().map(|l| &l.ez), n));
        let cz_prev = layers.last().map(Forward::cz);
        let (z_prev, ez_prev, cz_prev) = match (layers.last(), &cz_prev) {
            (Some(prev), Some(cz)) => (&prev.z, &prev.ez, cz),
            _ => (x, &zero, &zero),
        };
        let phi = spec.activations()[k];
        let (abs_w, kappa) = (&weights.abs[k], weights.kappa[k]);
        let fwd =
            forward_layer(mode, phi, z_prev, ez_prev, cz_prev, layer, abs_w, kappa, floor.as_ref(), u, tiny);
        tangents.through_phi(&fwd.d);
        layers.push(fwd);
    }
    layers
}

/// The bounds of layer k's gradient from δ^k and the layer below's z^{k−1} (`z_prev`, with its
/// error `ez_prev`; none for the exact input), into `grads`; with `value`, the gradient itself.
#[allow(clippy::too_many_arguments)]
fn gradient_bounds(
    mode: Mode,
    z_prev: &Matrix<f64>,
    ez_prev: Option<&Matrix<f64>>,
    delta: &Delta,
    g_batch: f64,
    tiny: f64,
    grads: &mut Layer<f64>,
    value: Option<&mut Layer<f64>>,
) {
    let n = z_prev.rows();
    let (delta, e_delta) = (&delta.value, &delta.error);
    // (B7): ∂E/∂W^k_ij = Σ_n z^{k−1}_ni δ^k_nj, eq. (6):
    // e ≤ Σ_n |z_ni| (e(δ_nj) + γ_N |δ_nj|) + e(z_ni) (|δ_nj| + e(δ_nj)).
    // (S1), (S2) in quadrature: √(Σ_n z_ni² (σ(δ_nj)² + (γ̃_N δ_nj)²)) and √(Σ_n σ(z_ni)² (|δ_nj| + σ(δ_nj))²)
    // joined in quadrature.
    let e_sum = plus_rounding(mode, e_delta, g_batch, delta);
    let mut egw = carry(mode, &abs(z_prev), Op::T, &e_sum, Op::N);
    // The input x is exact: no e(z^0) term.
    if let Some(ez_prev) = ez_prev {
        let from_z = carry(mode, ez_prev, Op::T, &plus_scaled(e_delta, 1.0, delta), Op::N);
        for (e, f) in egw.as_mut_slice().iter_mut().zip(from_z.as_slice()) {
            *e = join(mode, *e, *f);
        }
    }
    egw.as_mut_slice().iter_mut().for_each(|e| *e += n as f64 * tiny);
    if mode == Mode::Rms {
        plus_value(mode, egw.as_mut_slice(), g_batch, product(z_prev, Op::T, delta, Op::N).as_slice());
    }
    if let Some(l) = value {
        l.w = product(z_prev, Op::T, delta, Op::N);
        if let Some(b) = &mut l.b {
            delta.column_sums(b);
        }
    }
    grads.w = egw;
    if let Some(egb) = &mut grads.b {
        carry_sums(mode, &e_sum, egb);
        egb.iter_mut().for_each(|e| *e += n as f64 * tiny);
        if mode == Mode::Rms {
            let mut sums = vec![0.0; egb.len()];
            delta.column_sums(&mut sums);
            plus_value(mode, egb, g_batch, &sums);
        }
    }
}

/// δ^{k−1} from δ^k through W^k (`w`, layer index `k` − 1 = `index` in `weights`) and the layer
/// below's φ', (B6), with the common parts of its error (S1″).
#[allow(clippy::too_many_arguments)]
fn delta_below(
    mode: Mode,
    delta: Delta,
    w: &Matrix<f64>,
    weights: &Weights,
    index: usize,
    below: &Forward,
    u: f64,
    tiny: f64,
) -> Delta {
    let Delta { value: delta, error: e_delta, common: c_delta } = delta;
    // (B6): s = Δ^k (W^k)ᵀ, eq. (7): e(s) ≤ Σ_i |W_ji| (e(δ_i) + γ_{n_k} |δ_i|);
    // δ^{k−1} = φ'(a^{k−1}) ⊙ s: e ≤ |φ'| e(s) + |s| e(φ') + e(φ') e(s) + u |δ^{k−1}|.
    let g_width = gam_dot(mode, w.cols(), u);
    let mut es =
        carry(mode, &plus_rounding(mode, &e_delta, g_width, &delta), Op::N, &weights.abs[index], Op::T);
    let s = product(&delta, Op::N, w, Op::T);
    let mut cs = plus_common(mode, &mut es, &c_delta, &delta, &s);
    plus_value(mode, es.as_mut_slice(), g_width, s.as_slice());
    common_of(&es, &mut cs, weights.kappa[index]);
    let (rows, cols) = s.shape();
    let mut nd = Matrix::zeros(rows, cols);
    let mut ned = Matrix::zeros(rows, cols);
    let mut ncd = Matrix::zeros(rows, cols);
    let (s, es, cs) = (s.as_slice(), es.as_slice(), cs.as_slice());
    let (d, ed, share) = (below.d.as_slice(), below.ed.as_slice(), below.share.as_slice());
    let (nd_s, ned_s, ncd_s) = (nd.as_mut_slice(), ned.as_mut_slice(), ncd.as_mut_slice());
    for q in 0..rows * cols {
        let (sv, esv, dv, edv) = (s[q], es[q], d[q], ed[q]);
        nd_s[q] = dv * sv;
        let esv = esv + cols as f64 * tiny;
        ned_s[q] = product_error(mode, dv, edv, sv, esv, u) + tiny;
        // (S1″): the common parts of e(s) and of e(φ') = share · e(φ').
        ncd_s[q] = join(mode, dv.abs() * cs[q], sv.abs() * edv * share[q]).min(ned_s[q]);
    }
    Delta { value: nd, error: ned, common: ncd }
}
