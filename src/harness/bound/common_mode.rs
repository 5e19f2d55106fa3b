//! The parts of the typical error (`Mode::Rms`) that a product does not average out: an operand's
//! common-mode relative error (S1′), the share of a product's error that a nearly rank-one W turns
//! into common mode (S1″), and the errors such a W passes on along its largest singular direction,
//! followed with their signs as tangents (S5).

use super::rounding::product;
use super::Mode;
use crate::kernels::gemm::Op;
use crate::kernels::matrix::Matrix;

/// (S1′) in `Mode::Rms`: the common-mode part of an operand's error, one relative error
/// ρ = ‖c_row‖ / ‖v_row‖ shared by every entry of its row (c the operand's common part, entrywise),
/// passes through a product as ρ times the product itself, which a coherent sum (terms of one sign,
/// as after a few sign-like optimizer steps) keeps whole where the quadrature √(Σ W² e²) would
/// shrink it by up to √n. The larger of the two is kept in `e` (the same error seen two ways, not
/// two errors). Returns the product's carried common part ρ·|product|; nothing in `Mode::Worst`,
/// whose Σ |W| e covers it.
pub(super) fn plus_common(
    mode: Mode,
    e: &mut Matrix<f64>,
    operand_c: &Matrix<f64>,
    operand: &Matrix<f64>,
    product: &Matrix<f64>,
) -> Matrix<f64> {
    let (rows, cols) = e.shape();
    let mut c = Matrix::zeros(rows, cols);
    if mode != Mode::Rms {
        return c;
    }
    for r in 0..rows {
        let (cv, v) = (operand_c.row(r), operand.row(r));
        let num: f64 = cv.iter().map(|x| x * x).sum();
        let den: f64 = v.iter().map(|x| x * x).sum();
        if den == 0.0 || num == 0.0 {
            continue;
        }
        let rho = (num / den).sqrt();
        let pr = product.row(r);
        let er = &mut e.as_mut_slice()[r * cols..(r + 1) * cols];
        let cr = &mut c.as_mut_slice()[r * cols..(r + 1) * cols];
        for ((e, c), p) in er.iter_mut().zip(cr).zip(pr) {
            *c = rho * p.abs();
            *e = e.max(*c);
        }
    }
    c
}

/// (S1″) in `Mode::Rms`: the common-mode part of a product's error, entrywise. A product by W
/// turns into common mode the share κ of every error it makes or carries, κ = σ₁(W)²/‖W‖²_F the
/// share of W's energy in its largest singular direction: near 1 where W is nearly rank one
/// (every output the same sum up to a sign, as after sign-like optimizer steps on one sample: their
/// roundings coincide), about 4/n for a random n-wide W. The larger of that and the common part
/// carried from the operand (`carried`, from [`plus_common`]) is kept, in place.
pub(super) fn common_of(e: &Matrix<f64>, carried: &mut Matrix<f64>, kappa: f64) {
    for (c, e) in carried.as_mut_slice().iter_mut().zip(e.as_slice()) {
        *c = c.max(kappa * e).min(*e);
    }
}

/// W's largest singular direction, by power iteration on WᵀW from a fixed start.
pub(super) struct Top {
    /// κ = σ₁(W)²/‖W‖²_F for (S1″): the share of W's energy in its largest singular direction (1 for
    /// a rank-one W, about 4/n for a random n × n W). An underestimate where the iteration has not
    /// converged, so it is floored at 1/min(rows, cols), the share of the most evenly spread W.
    pub(super) kappa: f64,
    /// σ₁.
    s1: f64,
    /// The singular vectors, input side (n_{k−1}) and output side (n_k), unit length.
    u: Vec<f64>,
    v: Vec<f64>,
}

pub(super) fn top_direction(w: &Matrix<f64>) -> Top {
    let (rows, cols) = w.shape();
    let frob: f64 = w.as_slice().iter().map(|v| v * v).sum();
    if frob == 0.0 || !frob.is_finite() {
        return Top { kappa: 1.0, s1: 0.0, u: vec![0.0; rows], v: vec![0.0; cols] };
    }
    // A fixed start with no symmetry that a sign pattern could be orthogonal to.
    let mut v: Vec<f64> =
        (0..cols).map(|j| 1.0 + ((j as f64 + 1.0) * 0.618_033_988_749_895).fract()).collect();
    let mut wv = vec![0.0; rows];
    let mut s1 = 0.0f64;
    // Ten iterations at most, until σ₁² moves by less than 10⁻³: κ is needed to a few per cent, and
    // a nearly rank-one W (where it matters) converges in two.
    for _ in 0..10 {
        let last = s1;
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            break;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        for (i, o) in wv.iter_mut().enumerate() {
            *o = w.row(i).iter().zip(&v).map(|(a, b)| a * b).sum();
        }
        s1 = wv.iter().map(|x| x * x).sum::<f64>();
        if (s1 - last).abs() <= 1e-3 * s1 {
            break;
        }
        v.iter_mut().for_each(|x| *x = 0.0);
        for (i, o) in wv.iter().enumerate() {
            for (x, a) in v.iter_mut().zip(w.row(i)) {
                *x += a * o;
            }
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    let root = s1.sqrt();
    if root > 0.0 {
        wv.iter_mut().for_each(|x| *x /= root);
    }
    Top { kappa: (s1 / frob).clamp(1.0 / rows.min(cols).max(1) as f64, 1.0), s1: root, u: wv, v }
}

/// (S5) in `Mode::Rms`: the errors a nearly rank-one W passes on, followed with their signs. The
/// error that reaches a^k through W's largest singular direction is σ₁ (u·e(z^{k−1})) v: one random
/// amplitude per sample, of typical size σ₁ √(Σ_i u_i² σ(z_i)²), along a fixed signed direction v.
/// From there it is carried exactly to first order, a tangent: through φ as φ'(a) ⊙ t, through the
/// next product as t·W. Where later weights line up with it (sign patterns built by sign-like
/// optimizer steps from the same activations' signs) it passes a product as Σ_i |W_ij| |t_i|, not
/// as the quadrature — what (S1) and (S1′) cannot see. Each layer starts one tangent; they are
/// independent and join in quadrature, and σ(a^k) is floored by them.
pub(super) struct Tangents {
    /// Per tangent: its direction in z-space (N × n_k, signed) and its amplitude per sample.
    pub(super) live: Vec<(Matrix<f64>, Vec<f64>)>,
}

impl Tangents {
    /// Moves every tangent through W^k, starts the one W^k makes from e(z^{k−1}) (`ez_prev`, none
    /// at k = 1, whose input is exact), and returns the floor they set on σ(a^k).
    pub(super) fn through(
        &mut self,
        w: &Matrix<f64>,
        top: &Top,
        ez_prev: Option<&Matrix<f64>>,
        n: usize,
    ) -> Option<Matrix<f64>> {
        let n_out = w.cols();
        let mut moved: Vec<(Matrix<f64>, Vec<f64>)> =
            self.live.drain(..).map(|(t, amp)| (product(&t, Op::N, w, Op::N), amp)).collect();
        if let Some(ez) = ez_prev {
            let amp = (0..n)
                .map(|r| {
                    top.s1 * ez.row(r).iter().zip(&top.u).map(|(e, u)| (e * u).powi(2)).sum::<f64>().sqrt()
                })
                .collect();
            moved.push((Matrix::from_fn(n, n_out, |_, j| top.v[j]), amp));
        }
        self.live = moved;
        if self.live.is_empty() {
            return None;
        }
        let mut floor: Matrix<f64> = Matrix::zeros(n, n_out);
        for (t, amp) in &self.live {
            for (r, a) in amp.iter().enumerate() {
                let fr = &mut floor.as_mut_slice()[r * n_out..(r + 1) * n_out];
                for (f, tv) in fr.iter_mut().zip(t.row(r)) {
                    *f += (a * tv).powi(2);
                }
            }
        }
        floor.as_mut_slice().iter_mut().for_each(|v| *v = v.sqrt());
        Some(floor)
    }

    /// Carries every tangent through φ: t ← φ'(a) ⊙ t.
    pub(super) fn through_phi(&mut self, d: &Matrix<f64>) {
        for (t, _) in &mut self.live {
            t.as_mut_slice().iter_mut().zip(d.as_slice()).for_each(|(t, d)| *t *= d);
        }
    }
}
