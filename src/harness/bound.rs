//! Round-off bounds: for every entry the harness compares, how far apart two correct
//! implementations may be after one step, computed from the step's own magnitudes.
//!
//! A running error analysis in the manner of Higham (*Accuracy and Stability of Numerical
//! Algorithms*, ch. 3): each quantity q of the step carries a bound e(q) on how far one correct
//! implementation's computed q may be from the exact one, to first order in the unit u of the
//! run's dtype. The bounds are built from absolute values of the terms, never from the result,
//! so an entry computed by cancellation (1 − z² of a saturated tanh, a sum of large terms of both
//! signs, W − η∂E/∂W with a large step) gets the slack its conditioning demands, while a
//! well-conditioned entry keeps a few ulps of its value. The derivation, with the numbers
//! (B1)–(B8) cited below, is in docs/verdict.md.
//!
//! Two correct implementations are each within e(q) of the exact value, so they are within
//! 2·e(q) of each other; the tolerance is [`SAFETY`]·2·e(q).
//!
//! Everything here is computed in f64 from the step's inputs (the weights both sides start from,
//! the batch), whatever the run's dtype: the bounds need a digit of accuracy, not the last one.

use crate::kernels::gemm::{gemm, Op};
use crate::model::activation::Activation;
use crate::model::matrix::Matrix;
use crate::model::optim::{OptimConfig, OptimizerKind};
use crate::model::params::{Layer, Params};
use crate::model::scalar::Scalar;
use crate::model::spec::{Loss, Spec};

/// The factor between the first-order bound on two correct implementations' difference and the
/// tolerance: room for the second-order terms the analysis drops and for activations a little
/// less accurate than [`ULPS`] says.
pub const SAFETY: f64 = 2.0;

/// Ulps (of [`Activation::value_scale`] and [`Activation::derivative_scale`]) within which
/// either side evaluates φ and φ': this crate's vectorised exp, expm1, tanh and σ are within 2.8
/// ulps of the exact value (measured against a double-double reference in tests/activations.rs),
/// libm's within 1, libtorch's (SLEEF) within 1 to 3.5.
pub const ULPS: f64 = 4.0;

/// The typical error of an activation, in ulps, for the estimate σ (S2): an accurate φ errs by at
/// most an ulp or three (this crate's tanh 2.55, SLEEF's up to 3.5) and by about one as a rule,
/// independently from unit to unit; a saturated unit's 1 − z² inherits it whole.
pub const ULPS_TYPICAL: f64 = 1.0;

/// The tolerance of every compared entry of one step: [`SAFETY`]·2·e, entry by entry, in the
/// seed's layout. Those of the updated parameters come from [`StepBounds::update`], once the
/// implementation has taken its step.
#[derive(Clone, Debug)]
pub struct StepBounds {
    /// Of the loss E (B5).
    pub loss: f64,
    /// Of ∂E/∂W^k and ∂E/∂b^k (B7).
    pub grads: Params<f64>,
    /// ∂E/∂W^k and ∂E/∂b^k themselves, computed in f64 by the bound's own pass (only when asked
    /// for, by [`step_bounds_with`]).
    pub values: Option<Params<f64>>,
    /// Z^k of the batch (k = 1..L, one sample per row), in f64, as the bound's forward pass
    /// computed them: what the saturation measures read.
    pub activations: Vec<Matrix<f64>>,
    /// σ(E): the typical size of one correct implementation's error in the loss ((S1)–(S3) of
    /// docs/verdict.md), the witness's floor.
    pub loss_sigma: f64,
    /// σ of every ∂E/∂W^k and ∂E/∂b^k entry, the same way.
    pub sigma: Params<f64>,
    /// ε of the run's dtype.
    eps: f64,
    /// The subnormal spacing of the run's dtype.
    tiny: f64,
}

/// γ_n = n·u / (1 − n·u): the relative error bound of a sum or dot product of n terms in any
/// order (Higham, Lemma 3.1).
fn gamma(n: usize, u: f64) -> f64 {
    let nu = n as f64 * u;
    if nu < 1.0 {
        nu / (1.0 - nu)
    } else {
        f64::INFINITY
    }
}

fn abs(m: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(m.rows(), m.cols(), m.as_slice().iter().map(|v| v.abs()).collect())
}

/// `e + g·|v|`, entrywise: an error bound plus the rounding of a sum that uses the value.
fn plus_scaled(e: &Matrix<f64>, g: f64, v: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(
        e.rows(),
        e.cols(),
        e.as_slice().iter().zip(v.as_slice()).map(|(e, v)| e + g * v.abs()).collect(),
    )
}

/// Two independent error terms together: their sum (Worst) or √(a² + b²) (Rms, (S1)).
#[inline(always)]
fn join(mode: Mode, a: f64, b: f64) -> f64 {
    match mode {
        Mode::Worst => a + b,
        Mode::Rms => a.hypot(b),
    }
}

/// The error of a product p·q rounded once, (B6): |p| e(q) and |q| e(p) joined, its rounding u|pq|,
/// and the second-order e(p)·e(q) added whole (where both values round to zero, a saturated unit
/// under a vanishing δ, it is all there is).
#[inline(always)]
fn product_error(mode: Mode, p: f64, ep: f64, q: f64, eq: f64, u: f64) -> f64 {
    join(mode, join(mode, p.abs() * eq, q.abs() * ep), u * (p * q).abs()) + ep * eq
}

/// [`plus_scaled`] by mode: `e + g·|v|` (Worst) or √(e² + (g·v)²) (Rms), entrywise.
fn plus_rounding(mode: Mode, e: &Matrix<f64>, g: f64, v: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(
        e.rows(),
        e.cols(),
        e.as_slice().iter().zip(v.as_slice()).map(|(e, v)| join(mode, *e, g * v.abs())).collect(),
    )
}

/// (S1′) in `Mode::Rms`: the common-mode part of an operand's error, one relative error
/// ρ = ‖c_row‖ / ‖v_row‖ shared by every entry of its row (c the operand's common part, entrywise),
/// passes through a product as ρ times the product itself, which a coherent sum (terms of one sign,
/// as after a few sign-like optimizer steps) keeps whole where the quadrature √(Σ W² e²) would
/// shrink it by up to √n. The larger of the two is kept in `e` (the same error seen two ways, not
/// two errors). Returns the product's carried common part ρ·|product|; nothing in `Mode::Worst`,
/// whose Σ |W| e covers it.
fn plus_common(
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
fn common_of(e: &Matrix<f64>, carried: &mut Matrix<f64>, kappa: f64) {
    for (c, e) in carried.as_mut_slice().iter_mut().zip(e.as_slice()) {
        *c = c.max(kappa * e).min(*e);
    }
}

/// W's largest singular direction, by power iteration on WᵀW from a fixed start.
struct Top {
    /// κ = σ₁(W)²/‖W‖²_F for (S1″): the share of W's energy in its largest singular direction (1 for
    /// a rank-one W, about 4/n for a random n × n W). An underestimate where the iteration has not
    /// converged, so it is floored at 1/min(rows, cols), the share of the most evenly spread W.
    kappa: f64,
    /// σ₁.
    s1: f64,
    /// The singular vectors, input side (n_{k−1}) and output side (n_k), unit length.
    u: Vec<f64>,
    v: Vec<f64>,
}

fn top_direction(w: &Matrix<f64>) -> Top {
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
struct Tangents {
    /// Per tangent: its direction in z-space (N × n_k, signed) and its amplitude per sample.
    live: Vec<(Matrix<f64>, Vec<f64>)>,
}

impl Tangents {
    /// Moves every tangent through W^k, starts the one W^k makes from e(z^{k−1}) (`ez_prev`, none
    /// at k = 1, whose input is exact), and returns the floor they set on σ(a^k).
    fn through(
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
    fn through_phi(&mut self, d: &Matrix<f64>) {
        for (t, _) in &mut self.live {
            t.as_mut_slice().iter_mut().zip(d.as_slice()).for_each(|(t, d)| *t *= d);
        }
    }
}

/// C = op(A)·op(B) into a fresh matrix.
fn product(a: &Matrix<f64>, op_a: Op, b: &Matrix<f64>, op_b: Op) -> Matrix<f64> {
    let m = if op_a == Op::N { a.rows() } else { a.cols() };
    let n = if op_b == Op::N { b.cols() } else { b.rows() };
    let mut c = Matrix::zeros(m, n);
    gemm(1.0, a, op_a, b, op_b, 0.0, &mut c);
    c
}

/// Which estimate a pass computes: the rigorous worst case e(q), or the typical size σ(q) of one
/// correct implementation's error (docs/verdict.md, "The witness").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every error term by its absolute value, sums of n terms by γ_n = nu/(1 − nu): (B1)–(B10).
    Worst,
    /// (S1)–(S3): independent errors add in quadrature, through a product (√(Σ W² e²) in place of
    /// Σ |W| e) and wherever two terms of one quantity's error meet ([`join`]); a sum of n terms
    /// rounds by √n·u (Higham and Mary's probabilistic γ̃_n, λ = 1); relu and the identity are exact.
    Rms,
}

/// γ_n of a sum of n terms, worst-case or probabilistic.
fn gam(mode: Mode, n: usize, u: f64) -> f64 {
    match mode {
        Mode::Worst => gamma(n, u),
        Mode::Rms => (n as f64).sqrt() * u,
    }
}

/// The typical rounding of a dot product's or a batch sum's n terms (S2): each of its n roundings
/// is at most u times a partial sum and, spread evenly, has a standard deviation u/√3, so the sum's
/// error has a standard deviation of u/√3 · √(Σ_k S_k²) ≤ u√(n/3) (‖terms‖₂ + |S|/√3) (partial
/// sums S_k drift as (k/n) S plus a random walk of the terms).
fn gam_dot(mode: Mode, n: usize, u: f64) -> f64 {
    match mode {
        Mode::Worst => gamma(n, u),
        Mode::Rms => (n as f64 / 3.0).sqrt() * u,
    }
}

/// (S2) in `Mode::Rms`: a recursive sum's partial sums carry its value too, so each entry's error
/// `e` grows by g·|S|/√3 for the sum's value S (g = [`gam_dot`]); nothing in `Mode::Worst`, whose
/// γ_n already bounds every partial sum by the terms.
fn plus_value(mode: Mode, e: &mut [f64], g: f64, values: &[f64]) {
    if mode == Mode::Rms {
        let g = g / 3f64.sqrt();
        for (e, v) in e.iter_mut().zip(values) {
            *e = join(mode, *e, g * v.abs());
        }
    }
}

/// An error carried through a product of two nonnegative factors: A·B (Worst) or √((A∘A)·(B∘B))
/// (Rms), each factor transposed as `op` says.
fn carry(mode: Mode, a: &Matrix<f64>, op_a: Op, b: &Matrix<f64>, op_b: Op) -> Matrix<f64> {
    match mode {
        Mode::Worst => product(a, op_a, b, op_b),
        Mode::Rms => {
            let mut c = product(&squares(a), op_a, &squares(b), op_b);
            c.as_mut_slice().iter_mut().for_each(|v| *v = v.sqrt());
            c
        }
    }
}

fn squares(m: &Matrix<f64>) -> Matrix<f64> {
    Matrix::from_vec(m.rows(), m.cols(), m.as_slice().iter().map(|v| v * v).collect())
}

/// The column sums of errors: Σ_n e (Worst) or √(Σ_n e²) (Rms).
fn carry_sums(mode: Mode, e: &Matrix<f64>, out: &mut [f64]) {
    match mode {
        Mode::Worst => e.column_sums(out),
        Mode::Rms => {
            squares(e).column_sums(out);
            out.iter_mut().for_each(|v| *v = v.sqrt());
        }
    }
}

/// One layer's forward quantities and their bounds, f64.
struct Forward {
    /// Z^k and e(Z^k) (B2).
    z: Matrix<f64>,
    ez: Matrix<f64>,
    /// φ'_k(A^k) and e(φ'_k) (B3).
    d: Matrix<f64>,
    ed: Matrix<f64>,
    /// `Mode::Rms`: the common-mode share of e(A^k), entrywise in [0, 1] (S1″); e(Z^k) and e(φ'_k)
    /// come from e(A^k), and take its share.
    share: Matrix<f64>,
}

impl Forward {
    /// The common-mode part of e(Z^k), entrywise (S1″).
    fn cz(&self) -> Matrix<f64> {
        let v = self.ez.as_slice().iter().zip(self.share.as_slice()).map(|(e, s)| e * s).collect();
        Matrix::from_vec(self.ez.rows(), self.ez.cols(), v)
    }
}

/// The largest |f(a ± e) − f(a)|: what an error e in a may do to f, kinks and curvature included.
fn spread(f: impl Fn(f64) -> f64, a: f64, e: f64) -> f64 {
    let f0 = f(a);
    let d = (f(a - e) - f0).abs().max((f(a + e) - f0).abs());
    if d.is_nan() {
        0.0
    } else {
        d
    }
}

/// Whether a's error may carry it past a kink of φ, or is too large for the Taylor terms: there
/// the change is measured, φ(a ± e(a)) − φ(a), instead.
#[inline(always)]
fn near_kink(phi: Activation, av: f64, e: f64) -> bool {
    phi.kink().is_some_and(|k| (av - k).abs() <= e) || e > 1e-3 * (1.0 + av.abs())
}

/// (B2) and (B3) of one entry: e(z) and e(φ'), from a, e(a), z = φ(a), d = φ'(a).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn element_bounds(
    phi: Activation,
    av: f64,
    e: f64,
    zv: f64,
    dv: f64,
    eps: f64,
    normal: f64,
    near: bool,
) -> (f64, f64) {
    let curvature = phi.second_derivative(av, zv).abs();
    // Near a kink the two sides may take different branches, and a large e(a) reaches past
    // what the Taylor terms describe: there the change is measured, φ(a ± e(a)) − φ(a).
    // (B2): e(z) ≤ |φ'(a)| e(a) + ½|φ''(a)| e(a)² (or, at a kink, |φ(a ± e(a)) − φ(a)|)
    // + ULPS ulps of the terms φ rounds.
    let mut carried_z = dv.abs() * e + 0.5 * curvature * e * e;
    if near {
        carried_z = carried_z.max(spread(|a| phi.apply(a), av, e));
    }
    let ezv = carried_z + ULPS * eps * phi.value_scale(av, zv) + normal;
    // (B3): φ' from z (sigmoid, tanh) carries e(z); from a, e(a); plus its own rounding.
    let carried = if phi.derivative_from_value() {
        match phi {
            Activation::Tanh => 2.0 * zv.abs() * ezv,
            _ => (1.0 - 2.0 * zv).abs() * ezv,
        }
    } else if near {
        (curvature * e).max(spread(|a| phi.derivative(a, phi.apply(a)), av, e))
    } else {
        curvature * e
    };
    (ezv, carried + ULPS * eps * phi.derivative_scale(av, zv, dv) + normal)
}

/// [`element_bounds`] of every entry of a layer, each with its own `near`: the smooth form in
/// vectorised loops, then the entries near a kink again.
#[allow(clippy::too_many_arguments)]
fn layer_bounds(
    phi: Activation,
    a: &[f64],
    ea: &[f64],
    z: &[f64],
    d: &[f64],
    ez: &mut [f64],
    ed: &mut [f64],
    eps: f64,
    normal: f64,
) {
    let n = ez.len();
    let (a, ea, z, d, ed) = (&a[..n], &ea[..n], &z[..n], &d[..n], &mut ed[..n]);
    // Every entry as if no kink were near: one straight loop per φ, compiled for the widest SIMD
    // the CPU has. No fused multiply-adds are formed, so every instruction set gives the same
    // bits.
    crate::kernels::simd::dispatch(
        #[inline(always)]
        || {
            macro_rules! fixed {
                ($($phi:ident),*) => {
                    match phi {
                        $(Activation::$phi => {
                            for p in 0..n {
                                (ez[p], ed[p]) =
                                    element_bounds(Activation::$phi, a[p], ea[p], z[p], d[p], eps, normal, false);
                            }
                        })*
                    }
                };
            }
            fixed!(Identity, Sigmoid, Tanh, Relu, LeakyRelu, Elu, Softplus, Gelu, Silu);
        },
    );
    // Then the few entries near a kink (or with a large e(a)) again, with the measured spread
    // (counted first: a count vectorises, a search for the first does not).
    if a.iter().zip(ea).filter(|&(&av, &e)| near_kink(phi, av, e)).count() > 0 {
        for p in 0..n {
            if near_kink(phi, a[p], ea[p]) {
                (ez[p], ed[p]) = element_bounds(phi, a[p], ea[p], z[p], d[p], eps, normal, true);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_layer(
    mode: Mode,
    phi: Activation,
    z_prev: &Matrix<f64>,
    ez_prev: &Matrix<f64>,
    cz_prev: &Matrix<f64>,
    layer: &Layer<f64>,
    abs_w: &Matrix<f64>,
    kappa: f64,
    floor: Option<&Matrix<f64>>,
    u: f64,
    tiny: f64,
) -> Forward {
    let eps = 2.0 * u;
    // Below the smallest normal number an exp-based φ or φ' keeps no relative accuracy: libraries
    // flush such results to zero or round them on a coarser grid. Its absolute error is this.
    let normal = tiny / eps;
    let n_in = z_prev.cols() + usize::from(layer.b.is_some());
    let g = gam_dot(mode, n_in, u);
    // (B1): a^k_j = Σ_i W_ij z^{k−1}_i + b_j, eq. (2): e(a) ≤ Σ_i |W_ij| (e(z_i) + γ_n |z_i|) + γ_n |b_j|.
    let mut a = Matrix::zeros(z_prev.rows(), layer.w.cols());
    gemm(1.0, z_prev, Op::N, &layer.w, Op::N, 0.0, &mut a);
    let mut ea = carry(mode, &plus_rounding(mode, ez_prev, g, z_prev), Op::N, abs_w, Op::N);
    let mut ca = plus_common(mode, &mut ea, cz_prev, z_prev, &a);
    match &layer.b {
        Some(b) => {
            a.add_to_rows(b);
            let eb: Vec<f64> = b.iter().map(|b| g * b.abs() + n_in as f64 * tiny).collect();
            ea.add_to_rows(&eb);
        }
        None => ea.as_mut_slice().iter_mut().for_each(|e| *e += n_in as f64 * tiny),
    }
    plus_value(mode, ea.as_mut_slice(), g, a.as_slice());
    if let Some(f) = floor {
        for (e, f) in ea.as_mut_slice().iter_mut().zip(f.as_slice()) {
            *e = e.max(*f);
        }
    }
    common_of(&ea, &mut ca, kappa);
    let share = Matrix::from_vec(
        ca.rows(),
        ca.cols(),
        ca.as_slice().iter().zip(ea.as_slice()).map(|(c, e)| if *e > 0.0 { c / e } else { 0.0 }).collect(),
    );
    let (rows, cols) = a.shape();
    // z = φ(a) and φ'(a) for the whole layer at once, by the vectorised loops.
    let mut z = Matrix::zeros(rows, cols);
    phi.forward_slice(a.as_slice(), z.as_mut_slice());
    let mut d = Matrix::from_vec(rows, cols, vec![1.0; rows * cols]);
    phi.backward_slice(a.as_slice(), z.as_slice(), d.as_mut_slice());
    let (mut ez, mut ed) = (Matrix::zeros(rows, cols), Matrix::zeros(rows, cols));
    layer_bounds(
        phi,
        a.as_slice(),
        ea.as_slice(),
        z.as_slice(),
        d.as_slice(),
        ez.as_mut_slice(),
        ed.as_mut_slice(),
        // The activation's own error: ULPS ulps (Worst) or ULPS_TYPICAL (Rms).
        match mode {
            Mode::Worst => eps,
            // (S3): relu and the identity are exact, their φ and φ' alike.
            Mode::Rms if matches!(phi, Activation::Relu | Activation::Identity) => 0.0,
            Mode::Rms => eps * ULPS_TYPICAL / ULPS,
        },
        normal,
    );
    Forward { z, ez, d, ed, share }
}

/// (B4), (B5) for the squared losses: ∂E/∂y and E from d = y − ŷ, each d rounded once; with
/// (B6) at k = L, δ^L = φ'_L(a^L) ∂E/∂y. Returns δ^L, e(δ^L) and e(E).
fn squared_output(
    mode: Mode,
    loss: Loss,
    out: &Forward,
    y: &Matrix<f64>,
    u: f64,
    tiny: f64,
) -> (Matrix<f64>, Matrix<f64>, f64) {
    let count = out.z.as_slice().len();
    let scale = match loss {
        Loss::Mse => 2.0 / count as f64,
        _ => 1.0,
    };
    let mut e_loss = 0.0;
    let mut sum_sq = 0.0;
    let (rows, cols) = out.z.shape();
    let mut delta = Matrix::zeros(rows, cols);
    let mut e_delta = Matrix::zeros(rows, cols);
    for q in 0..rows * cols {
        let (zv, ezv) = (out.z.as_slice()[q], out.ez.as_slice()[q]);
        let diff = zv - y.as_slice()[q];
        let e_diff = join(mode, ezv, u * diff.abs());
        sum_sq += diff * diff;
        e_loss += match mode {
            Mode::Worst => diff.abs() * e_diff,
            Mode::Rms => (diff * e_diff).powi(2),
        };
        // (B4): ∂E/∂y = d (or 2d/(N n_L)), and (B6) at k = L: δ^L = φ'_L(a^L) ∂E/∂y.
        let g = scale * diff;
        let eg = join(mode, scale * e_diff, 2.0 * u * g.abs());
        let (dv, edv) = (out.d.as_slice()[q], out.ed.as_slice()[q]);
        delta.as_mut_slice()[q] = dv * g;
        e_delta.as_mut_slice()[q] = product_error(mode, dv, edv, g, eg, u) + tiny;
    }
    // (B5): per-sample sums of squares, then the sum over samples (either order).
    if mode == Mode::Rms {
        e_loss = e_loss.sqrt();
        if !e_loss.is_finite() {
            // The squares overflowed: the worst case's sum instead.
            e_loss = (0..rows * cols)
                .map(|q| {
                    let diff = out.z.as_slice()[q] - y.as_slice()[q];
                    diff.abs() * (out.ez.as_slice()[q] + u * diff.abs())
                })
                .sum();
        }
    }
    let e_loss = match loss {
        Loss::Mse => scale * e_loss + gam(mode, count + 3, u) * sum_sq / count as f64,
        _ => e_loss + gam(mode, count + 3, u) * 0.5 * sum_sq,
    };
    (delta, e_delta, e_loss)
}

/// (B9), (B10) for the cross-entropy over the logits a = z^L (identity output): per sample, with
/// m = max_c a_c, s = Σ_c e^(a_c − m), p = softmax(a), t̃ = (1 − ε) t + ε/C and S = Σ_c t̃_c:
/// - (B9) δ^L_c = (S p_c − t̃_c)/N. A change of a moves p_c by p_c (da_c − Σ_j p_j da_j), so
///   e(p_c) ≤ p_c (e(a_c) + Σ_j p_j e(a_j)) plus its rounding: u|a_c − m| from the shift, ULPS
///   ulps of exp (and of the log that libtorch's log-softmax takes first), γ_C of the sum s;
///   e(δ_c) ≤ (p_c e(S) + S e(p_c) + e(t̃_c) + u S p_c + u |S p_c − t̃_c|)/N + u |δ_c|.
/// - (B10) E = −(1/N) Σ_n Σ_c t̃_nc ℓ_nc, ℓ = a − m − ln s: e(ℓ_c) ≤ e(a_c) + Σ_j p_j e(a_j) +
///   u (|a_c − m| + |ℓ_c|) + e(ln s), e(ln s) ≤ γ_C + ULPS·ε (1 + ln s); then the sum of N·C
///   terms, γ_{NC+2}.
fn cross_entropy_output(
    mode: Mode,
    out: &Forward,
    y: &Matrix<f64>,
    smoothing: f64,
    u: f64,
    tiny: f64,
) -> (Matrix<f64>, Matrix<f64>, f64) {
    let (rows, c) = out.z.shape();
    let eps = 2.0 * u;
    let ulp_fn = match mode {
        Mode::Worst => ULPS,
        Mode::Rms => ULPS_TYPICAL,
    } * eps;
    let n = rows as f64;
    let g_c = gam(mode, c + 2, u);
    let normal = tiny / eps;
    let mut delta = Matrix::zeros(rows, c);
    let mut e_delta = Matrix::zeros(rows, c);
    let (mut e_loss, mut sum_abs) = (0.0, 0.0);
    for r in 0..rows {
        let a = out.z.row(r);
        let ea = out.ez.row(r);
        let t = y.row(r);
        let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = a.iter().map(|&v| (v - m).exp()).sum();
        let ln_s = s.ln();
        let p: Vec<f64> = a.iter().map(|&v| (v - m).exp() / s).collect();
        let pe: f64 = p.iter().zip(ea).map(|(p, e)| p * e).sum();
        let tt: Vec<f64> = t.iter().map(|&t| (1.0 - smoothing) * t + smoothing / c as f64).collect();
        let e_tt: Vec<f64> = t
            .iter()
            .map(|&t| {
                if smoothing == 0.0 {
                    0.0
                } else {
                    gamma(3, u) * ((1.0 - smoothing) * t.abs() + smoothing / c as f64)
                }
            })
            .collect();
        let s_t: f64 = tt.iter().sum();
        let e_s_t: f64 = e_tt.iter().sum::<f64>() + gam(mode, c, u) * tt.iter().map(|v| v.abs()).sum::<f64>();
        let e_ln_s = g_c + ulp_fn * (1.0 + ln_s);
        for j in 0..c {
            let shift = (a[j] - m).abs();
            let rel = u * shift + (ulp_fn + u) * (1.0 + ln_s) + g_c + ulp_fn + 2.0 * u;
            let e_p = p[j] * (ea[j] + pe + rel) + normal;
            let d = (s_t * p[j] - tt[j]) / n;
            delta[(r, j)] = d;
            e_delta[(r, j)] = (p[j] * e_s_t
                + s_t.abs() * e_p
                + e_tt[j]
                + u * (s_t * p[j]).abs()
                + u * (s_t * p[j] - tt[j]).abs())
                / n
                + u * d.abs()
                + tiny;
            let ell = a[j] - m - ln_s;
            let e_ell = ea[j] + pe + u * (shift + ell.abs()) + e_ln_s;
            let term = (tt[j].abs() * e_ell + e_tt[j] * ell.abs()) / n;
            e_loss += if mode == Mode::Rms { term * term } else { term };
            sum_abs += (tt[j] * ell).abs() / n;
        }
    }
    if mode == Mode::Rms {
        e_loss = e_loss.sqrt();
    }
    (delta, e_delta, e_loss + gam(mode, rows * c + 2, u) * sum_abs)
}

/// The tolerances of one lockstep step at `params` on the batch (`x`, `y`), for a run in `T`:
/// the loss and the gradients; [`StepBounds::update`] adds the updated parameters'. See the module doc and docs/verdict.md.
pub fn step_bounds<T: Scalar>(spec: &Spec, params: &Params<T>, x: &Matrix<T>, y: &Matrix<T>) -> StepBounds {
    step_bounds_with(spec, params, x, y, false)
}

/// [`step_bounds`], and with `values` also the gradient itself, in f64 ([`StepBounds::values`]):
/// what an optimizer's bound ([`OptimBound`]) runs its shadow state on.
pub fn step_bounds_with<T: Scalar>(
    spec: &Spec,
    params: &Params<T>,
    x: &Matrix<T>,
    y: &Matrix<T>,
    values: bool,
) -> StepBounds {
    // The unit roundoff u = ε/2: fl(x ∘ y) = (x ∘ y)(1 + δ), |δ| ≤ u, for each arithmetic
    // operation; an activation's error is counted in ulps, and one ulp of v is at most ε|v|.
    let eps = T::epsilon().to64();
    let u = eps / 2.0;
    // The spacing of the subnormals: the absolute error of a result that underflows.
    let tiny = T::min_positive_value().to64() * eps;
    let p: Params<f64> = params.cast();
    let x: Matrix<f64> = x.cast();
    let y: Matrix<f64> = y.cast();
    let worst = pass(Mode::Worst, spec, &p, &x, &y, values, u, tiny);
    let typical = pass(Mode::Rms, spec, &p, &x, &y, false, u, tiny);

    let both = 2.0 * SAFETY;
    let mut grads = worst.grads;
    for l in &mut grads.layers {
        l.w.as_mut_slice().iter_mut().for_each(|v| *v *= both);
        l.b.iter_mut().flatten().for_each(|v| *v *= both);
    }
    StepBounds {
        loss: both * worst.loss,
        grads,
        values: worst.values,
        activations: worst.activations,
        loss_sigma: typical.loss,
        sigma: typical.grads,
        eps,
        tiny,
    }
}

/// One pass's results: e(E) or σ(E), e or σ of every gradient entry, the gradient's values when
/// asked for, and Z^k.
struct Pass {
    loss: f64,
    grads: Params<f64>,
    values: Option<Params<f64>>,
    activations: Vec<Matrix<f64>>,
}

/// The forward and backward pass of the bound (`Mode::Worst`) or of the typical error
/// (`Mode::Rms`), unscaled.
#[allow(clippy::too_many_arguments)]
fn pass(
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

    let abs_w: Vec<Matrix<f64>> = p.layers.iter().map(|l| abs(&l.w)).collect();
    // (S1″) and (S5): each W's largest singular direction.
    let tops: Vec<Option<Top>> =
        p.layers.iter().map(|l| (mode == Mode::Rms).then(|| top_direction(&l.w))).collect();
    let kappa: Vec<f64> = tops.iter().map(|t| t.as_ref().map_or(0.0, |t| t.kappa)).collect();
    let mut tangents = Tangents { live: Vec::new() };
    let mut layers: Vec<Forward> = Vec::with_capacity(depth);
    for (k, layer) in p.layers.iter().enumerate() {
        let floor =
            tops[k].as_ref().and_then(|top| tangents.through(&layer.w, top, layers.last().map(|l| &l.ez), n));
        let fwd = match layers.last() {
            None => {
                let zero = Matrix::zeros(n, x.cols());
                forward_layer(
                    mode,
                    spec.activations()[k],
                    x,
                    &zero,
                    &zero,
                    layer,
                    &abs_w[k],
                    kappa[k],
                    floor.as_ref(),
                    u,
                    tiny,
                )
            }
            Some(prev) => forward_layer(
                mode,
                spec.activations()[k],
                &prev.z,
                &prev.ez,
                &prev.cz(),
                layer,
                &abs_w[k],
                kappa[k],
                floor.as_ref(),
                u,
                tiny,
            ),
        };
        tangents.through_phi(&fwd.d);
        layers.push(fwd);
    }

    let out = &layers[depth - 1];
    let (mut delta, mut e_delta, e_loss) = match spec.loss() {
        Loss::CrossEntropy => cross_entropy_output(mode, out, y, spec.label_smoothing(), u, tiny),
        loss => squared_output(mode, loss, out, y, u, tiny),
    };
    // (S1″): δ^L's error takes the common-mode share of the output layer's e(A^L).
    let mut c_delta = Matrix::from_vec(
        e_delta.rows(),
        e_delta.cols(),
        e_delta.as_slice().iter().zip(out.share.as_slice()).map(|(e, s)| e * s).collect(),
    );

    let g_batch = gam_dot(mode, n, u);
    let mut grads = Params::<f64>::zeros(spec);
    let mut grad_values = values.then(|| Params::<f64>::zeros(spec));
    for k in (1..=depth).rev() {
        let (z_prev, ez_prev) = match k {
            1 => (x, None),
            _ => (&layers[k - 2].z, Some(&layers[k - 2].ez)),
        };
        // (B7): ∂E/∂W^k_ij = Σ_n z^{k−1}_ni δ^k_nj, eq. (6):
        // e ≤ Σ_n |z_ni| (e(δ_nj) + γ_N |δ_nj|) + e(z_ni) (|δ_nj| + e(δ_nj)).
        // (S1), (S2) in quadrature: √(Σ_n z_ni² (σ(δ_nj)² + (γ̃_N δ_nj)²)) and √(Σ_n σ(z_ni)² (|δ_nj| + σ(δ_nj))²)
        // joined in quadrature.
        let e_sum = plus_rounding(mode, &e_delta, g_batch, &delta);
        let mut egw = carry(mode, &abs(z_prev), Op::T, &e_sum, Op::N);
        // The input x is exact: no e(z^0) term.
        if let Some(ez_prev) = ez_prev {
            let from_z = carry(mode, ez_prev, Op::T, &plus_scaled(&e_delta, 1.0, &delta), Op::N);
            for (e, f) in egw.as_mut_slice().iter_mut().zip(from_z.as_slice()) {
                *e = join(mode, *e, *f);
            }
        }
        egw.as_mut_slice().iter_mut().for_each(|e| *e += n as f64 * tiny);
        if mode == Mode::Rms {
            plus_value(mode, egw.as_mut_slice(), g_batch, product(z_prev, Op::T, &delta, Op::N).as_slice());
        }
        if let Some(gv) = &mut grad_values {
            let l = &mut gv.layers[k - 1];
            l.w = product(z_prev, Op::T, &delta, Op::N);
            if let Some(b) = &mut l.b {
                delta.column_sums(b);
            }
        }
        let layer = &p.layers[k - 1];
        grads.layers[k - 1].w = egw;
        if let Some(egb) = &mut grads.layers[k - 1].b {
            carry_sums(mode, &e_sum, egb);
            egb.iter_mut().for_each(|e| *e += n as f64 * tiny);
            if mode == Mode::Rms {
                let mut sums = vec![0.0; egb.len()];
                delta.column_sums(&mut sums);
                plus_value(mode, egb, g_batch, &sums);
            }
        }
        if k > 1 {
            // (B6): s = Δ^k (W^k)ᵀ, eq. (7): e(s) ≤ Σ_i |W_ji| (e(δ_i) + γ_{n_k} |δ_i|);
            // δ^{k−1} = φ'(a^{k−1}) ⊙ s: e ≤ |φ'| e(s) + |s| e(φ') + e(φ') e(s) + u |δ^{k−1}|.
            let g_width = gam_dot(mode, layer.w.cols(), u);
            let mut es =
                carry(mode, &plus_rounding(mode, &e_delta, g_width, &delta), Op::N, &abs_w[k - 1], Op::T);
            let s = product(&delta, Op::N, &layer.w, Op::T);
            let mut cs = plus_common(mode, &mut es, &c_delta, &delta, &s);
            plus_value(mode, es.as_mut_slice(), g_width, s.as_slice());
            common_of(&es, &mut cs, kappa[k - 1]);
            let below = &layers[k - 2];
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
            delta = nd;
            e_delta = ned;
            c_delta = ncd;
        }
    }
    let activations = layers.into_iter().map(|l| l.z).collect();
    Pass { loss: e_loss, grads, values: grad_values, activations }
}

impl StepBounds {
    /// The tolerances of the updated W^k, b^k (B8), from an implementation's gradient `grads`
    /// (∂E/∂W, as it used it) and its updated parameters `updated`, W' = W − η ∂E/∂W:
    /// e(W') ≤ η e(∂E/∂W) + 2u η |∂E/∂W| + u |W'|, so the tolerance is η times the gradient's
    /// plus [`SAFETY`]·2·(2u η |∂E/∂W| + u |W'|).
    pub fn update<T: Scalar>(&self, grads: &Params<T>, updated: &Params<T>, lr: f64) -> Params<f64> {
        let (u, both) = (self.eps / 2.0, 2.0 * SAFETY);
        let one = |tau_g: f64, g: T, w: T| {
            lr * tau_g + both * (2.0 * u * lr * g.to64().abs() + u * w.to64().abs() + self.tiny)
        };
        let mut out = self.grads.clone();
        for ((o, g), w) in out.layers.iter_mut().zip(&grads.layers).zip(&updated.layers) {
            for ((t, &g), &w) in o.w.as_mut_slice().iter_mut().zip(g.w.as_slice()).zip(w.w.as_slice()) {
                *t = one(*t, g, w);
            }
            if let (Some(ob), Some(gb), Some(wb)) = (&mut o.b, &g.b, &w.b) {
                for ((t, &g), &w) in ob.iter_mut().zip(gb).zip(wb) {
                    *t = one(*t, g, w);
                }
            }
        }
        out
    }
}

impl StepBounds {
    /// σ of the updated W^k, b^k under plain SGD, (S4): η σ(∂E/∂W) + u (2η|∂E/∂W| + |W'|), from an
    /// implementation's gradient and updated parameters.
    pub fn update_sigma<T: Scalar>(&self, grads: &Params<T>, updated: &Params<T>, lr: f64) -> Params<f64> {
        let u = self.eps / 2.0;
        let one = |s: f64, g: T, w: T| lr * s + u * (2.0 * lr * g.to64().abs() + w.to64().abs()) + self.tiny;
        let mut out = self.sigma.clone();
        for ((o, g), w) in out.layers.iter_mut().zip(&grads.layers).zip(&updated.layers) {
            for ((t, &g), &w) in o.w.as_mut_slice().iter_mut().zip(g.w.as_slice()).zip(w.w.as_slice()) {
                *t = one(*t, g, w);
            }
            if let (Some(ob), Some(gb), Some(wb)) = (&mut o.b, &g.b, &w.b) {
                for ((t, &g), &w) in ob.iter_mut().zip(gb).zip(wb) {
                    *t = one(*t, g, w);
                }
            }
        }
        out
    }
}

/// The optimizer's share of the bound (B11): a shadow of the optimizer's state, run in f64 on the
/// gradients of [`StepBounds::values`], beside a running bound on how far one correct
/// implementation's state may be from it. State carried over from earlier steps carries its
/// error with it: e(m_t) = β₁ e(m_{t−1}) + (1 − β₁) e(g_t) + rounding, and so on for every buffer
/// of (O1)–(O4) ([`crate::model::optim`]); a quotient m / (√v + ε) takes the exact bound of a
/// perturbed quotient, e(a/b) ≤ e(a)/b₋ + |a| e(b)/(b b₋) with b₋ = b − e(b), and a square
/// root e(√v) ≤ e(v)/(√v + √(v − e(v))), so a gradient buried in its own round-off (v near 0, the
/// first Adam step η·sign(g)) gets the slack its conditioning demands. docs/verdict.md derives it.
#[derive(Clone, Debug)]
pub struct OptimBound {
    cfg: OptimConfig,
    t: u64,
    u: f64,
    tiny: f64,
    /// Shadow values and error bounds of each state buffer, in the slots of
    /// [`OptimConfig::state_slots`].
    value: [Option<Params<f64>>; 3],
    error: [Option<Params<f64>>; 3],
}

/// e(√v) for v known within e: the larger of √(v + e) − √v = e/(√(v + e) + √v) and
/// √v − √(v − e) (= e/(√v + √(v − e)) for v ≥ e, else at most √v), plus the root's own rounding.
fn sqrt_error(v: f64, e: f64, u: f64) -> f64 {
    let v = v.max(0.0);
    let root = v.sqrt();
    if e == 0.0 {
        return u * root;
    }
    let up = e / ((v + e).sqrt() + root);
    let down = if v >= e { e / (root + (v - e).sqrt()) } else { root };
    up.max(down) + u * root
}

/// e(a/b) for a within e_a and b > 0 within e_b: e_a/b₋ + |a|·e_b/(b·b₋), b₋ = b − e_b (at least
/// `floor`).
fn quotient_error(a: f64, e_a: f64, b: f64, e_b: f64, floor: f64) -> f64 {
    let lo = (b - e_b).max(floor);
    if lo <= 0.0 || b <= 0.0 {
        return f64::INFINITY;
    }
    e_a / lo + a.abs() * e_b / (b * lo)
}

impl OptimBound {
    /// The bound of optimizer `cfg` on `spec`'s parameters, for a run in `T`, before its first step.
    pub fn new<T: Scalar>(cfg: OptimConfig, spec: &Spec) -> OptimBound {
        let eps = T::epsilon().to64();
        let slots = cfg.state_slots();
        let make = || slots.map(|name| name.map(|_| Params::<f64>::zeros(spec)));
        OptimBound {
            cfg,
            t: 0,
            u: eps / 2.0,
            tiny: T::min_positive_value().to64() * eps,
            value: make(),
            error: make(),
        }
    }

    /// One step from the parameters `params` with the gradient `grads` (f64 values) whose
    /// entries carry the tolerances `grad_tol` ([`StepBounds::grads`]): advances the shadow state,
    /// and returns the tolerance of every updated parameter, [`SAFETY`]·2·e(θ').
    pub fn update(
        &mut self,
        params: &Params<f64>,
        grads: &Params<f64>,
        grad_tol: &Params<f64>,
    ) -> Params<f64> {
        self.t += 1;
        let both = 2.0 * SAFETY;
        let mut out = grad_tol.clone();
        for k in 0..params.layers.len() {
            for bias in [false, true] {
                let (theta, g, tol) =
                    (params.layers[k].part(bias), grads.layers[k].part(bias), grad_tol.layers[k].part(bias));
                for i in 0..theta.len() {
                    let e = self.entry(k, bias, i, theta[i], g[i], tol[i] / both);
                    out.layers[k].part_mut(bias)[i] = both * e + self.tiny;
                }
            }
        }
        out
    }

    /// Reads and writes slot `s`'s value and error at one entry.
    fn get(&self, s: usize, k: usize, bias: bool, i: usize) -> (f64, f64) {
        match (&self.value[s], &self.error[s]) {
            (Some(v), Some(e)) => (v.layers[k].part(bias)[i], e.layers[k].part(bias)[i]),
            _ => (0.0, 0.0),
        }
    }

    fn set(&mut self, s: usize, k: usize, bias: bool, i: usize, (v, e): (f64, f64)) {
        if let (Some(vs), Some(es)) = (&mut self.value[s], &mut self.error[s]) {
            vs.layers[k].part_mut(bias)[i] = v;
            es.layers[k].part_mut(bias)[i] = e;
        }
    }

    /// e(θ') of one entry, advancing its state.
    fn entry(&mut self, k: usize, bias: bool, i: usize, theta: f64, g: f64, e_g: f64) -> f64 {
        let c = self.cfg;
        let u = self.u;
        let (lr, wd) = (c.lr, c.weight_decay);
        let g2 = gamma(2, u);
        let g4 = gamma(4, u);
        // g + λθ (coupled weight decay): one product and one sum.
        let coupled = wd != 0.0 && c.kind != OptimizerKind::AdamW;
        let (g, e_g) =
            if coupled { (g + wd * theta, e_g + g2 * (g.abs() + wd * theta.abs())) } else { (g, e_g) };
        match c.kind {
            OptimizerKind::Sgd => {
                let (d, e_d) = if c.momentum == 0.0 {
                    (g, e_g)
                } else {
                    let (b, e_b) = self.get(0, k, bias, i);
                    let (mu, damp) = (c.momentum, 1.0 - c.dampening);
                    let nb = if self.t == 1 {
                        (g, e_g)
                    } else {
                        let v = mu * b + damp * g;
                        (v, mu * e_b + damp.abs() * e_g + gamma(3, u) * (mu * b.abs() + (damp * g).abs()))
                    };
                    self.set(0, k, bias, i, nb);
                    if c.nesterov {
                        (g + mu * nb.0, e_g + mu * nb.1 + g2 * (g.abs() + mu * nb.0.abs()))
                    } else {
                        nb
                    }
                };
                let new = theta - lr * d;
                lr * e_d + u * (2.0 * lr * d.abs() + new.abs())
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let (b1, b2) = c.betas;
                let t = self.t as f64;
                let (bc1, bc2_sqrt) = (1.0 - b1.powf(t), (1.0 - b2.powf(t)).sqrt());
                // AdamW's decoupled decay θ(1 − ηλ): the factor and the product each rounded once.
                let (theta_d, e_theta) = if c.kind == OptimizerKind::AdamW && wd != 0.0 {
                    let v = theta * (1.0 - lr * wd);
                    (v, g2 * v.abs())
                } else {
                    (theta, 0.0)
                };
                let (m, e_m) = self.get(0, k, bias, i);
                let nm = b1 * m + (1.0 - b1) * g;
                // Either m·β₁ + (1 − β₁)g (libtorch) or m + (1 − β₁)(g − m) (torch.optim's lerp).
                let e_nm = b1 * e_m + (1.0 - b1) * e_g + g4 * (m.abs() + g.abs() + nm.abs());
                self.set(0, k, bias, i, (nm, e_nm));
                let (v, e_v) = self.get(1, k, bias, i);
                let nv = b2 * v + (1.0 - b2) * g * g;
                let e_nv = b2 * e_v
                    + (1.0 - b2) * (2.0 * g.abs() * e_g + e_g * e_g)
                    + g4 * (b2 * v + (1.0 - b2) * g * g + nv);
                self.set(1, k, bias, i, (nv, e_nv));
                let (second, e_second) = if c.amsgrad {
                    let (vm, e_vm) = self.get(2, k, bias, i);
                    let n = (vm.max(nv), e_vm.max(e_nv));
                    self.set(2, k, bias, i, n);
                    n
                } else {
                    (nv, e_nv)
                };
                let q = second.max(0.0).sqrt();
                let e_q = sqrt_error(second, e_second, u);
                let den = q / bc2_sqrt + c.eps;
                let e_den = e_q / bc2_sqrt + gamma(3, u) * den;
                let step = lr / bc1;
                let floor = if c.eps > 0.0 { c.eps * (1.0 - 4.0 * u) } else { 0.0 };
                let upd = step * nm / den;
                let e_upd = step * quotient_error(nm, e_nm, den, e_den, floor) + gamma(3, u) * upd.abs();
                let new = theta_d - upd;
                e_theta + e_upd + u * new.abs()
            }
            OptimizerKind::RmsProp => {
                let alpha = c.alpha;
                let (s, e_s) = self.get(0, k, bias, i);
                let ns = alpha * s + (1.0 - alpha) * g * g;
                let e_ns = alpha * e_s
                    + (1.0 - alpha) * (2.0 * g.abs() * e_g + e_g * e_g)
                    + g4 * (alpha * s + (1.0 - alpha) * g * g + ns);
                self.set(0, k, bias, i, (ns, e_ns));
                let (var, e_var) = if c.centered {
                    let (ga, e_ga) = self.get(2, k, bias, i);
                    let nga = alpha * ga + (1.0 - alpha) * g;
                    let e_nga = alpha * e_ga + (1.0 - alpha) * e_g + g4 * (ga.abs() + g.abs() + nga.abs());
                    self.set(2, k, bias, i, (nga, e_nga));
                    (
                        ns - nga * nga,
                        e_ns + 2.0 * nga.abs() * e_nga + e_nga * e_nga + gamma(3, u) * (ns + nga * nga),
                    )
                } else {
                    (ns, e_ns)
                };
                let r = var.max(0.0).sqrt() + c.eps;
                let e_r = sqrt_error(var, e_var, u) + g2 * r;
                let floor = if c.eps > 0.0 { c.eps * (1.0 - 4.0 * u) } else { 0.0 };
                let q = g / r;
                let e_q = quotient_error(g, e_g, r, e_r, floor) + u * q.abs();
                let (d, e_d) = if c.momentum > 0.0 {
                    let (b, e_b) = self.get(1, k, bias, i);
                    let nb = c.momentum * b + q;
                    let e_nb = c.momentum * e_b + e_q + g2 * (c.momentum * b.abs() + q.abs());
                    self.set(1, k, bias, i, (nb, e_nb));
                    (nb, e_nb)
                } else {
                    (q, e_q)
                };
                let new = theta - lr * d;
                lr * e_d + u * (2.0 * lr * d.abs() + new.abs())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// κ of (S1″): 1 for a rank-one W (a sign pattern s tᵀ whose t sums to zero included, which
    /// an all-ones start would miss), 1/n for an orthogonal n × n W, and about 4/n for a random one.
    #[test]
    fn the_rank_one_share_tells_a_sign_pattern_from_a_random_matrix() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let n = 64;
        let s: Vec<f64> = (0..n).map(|_| if rng.gen_bool(0.5) { 1.0 } else { -1.0 }).collect();
        let t: Vec<f64> = (0..n).map(|j| if j % 2 == 0 { 0.3 } else { -0.3 }).collect();
        let sign = Matrix::from_fn(n, n, |i, j| s[i] * t[j]);
        let rank_one_share = |w: &Matrix<f64>| top_direction(w).kappa;
        assert!((rank_one_share(&sign) - 1.0).abs() < 1e-9, "{}", rank_one_share(&sign));
        let eye = Matrix::from_fn(n, n, |i, j| f64::from(u8::from(i == j)));
        assert!((rank_one_share(&eye) - 1.0 / n as f64).abs() < 1e-12);
        let random = Matrix::from_fn(n, n, |_, _| rng.gen_range(-1.0..1.0));
        let k = rank_one_share(&random);
        assert!((1.0 / n as f64..=8.0 / n as f64).contains(&k), "{k}");
        // A sign-pattern step on top of a random W of the same size dominates it.
        let stepped = Matrix::from_fn(n, n, |i, j| 0.125 * random[(i, j)] + sign[(i, j)]);
        assert!(rank_one_share(&stepped) > 0.8, "{}", rank_one_share(&stepped));
    }

    /// The layer's two passes (vectorised, one loop per φ; then the entries near a kink) give
    /// every entry the bits of the one-entry formula with its own `near`, kinks and large errors
    /// included: the vectorised form is the per-entry derivation of docs/verdict.md, (B2), (B3).
    #[test]
    fn the_layer_loop_is_the_entry_formula_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (eps, normal) = (f64::EPSILON, 1e-300);
        for phi in Activation::ALL {
            let n = 203;
            let a: Vec<f64> = (0..n)
                .map(|p| match p % 4 {
                    0 => 0.0,
                    1 => rng.gen_range(-1e-9..1e-9),
                    2 => rng.gen_range(-30.0..30.0),
                    _ => SOFTPLUS_NEAR + rng.gen_range(-1e-6..1e-6),
                })
                .collect();
            let ea: Vec<f64> =
                (0..n).map(|p| if p % 7 == 0 { 0.5 } else { rng.gen_range(0.0..1e-8) }).collect();
            let z: Vec<f64> = a.iter().map(|&v| phi.apply(v)).collect();
            let d: Vec<f64> = a.iter().zip(&z).map(|(&v, &w)| phi.derivative(v, w)).collect();
            let (mut ez, mut ed) = (vec![f64::NAN; n], vec![f64::NAN; n]);
            layer_bounds(phi, &a, &ea, &z, &d, &mut ez, &mut ed, eps, normal);
            let mut nears = 0;
            for p in 0..n {
                let near = near_kink(phi, a[p], ea[p]);
                nears += usize::from(near);
                let (want_z, want_d) = element_bounds(phi, a[p], ea[p], z[p], d[p], eps, normal, near);
                assert_eq!(
                    (ez[p].to_bits(), ed[p].to_bits()),
                    (want_z.to_bits(), want_d.to_bits()),
                    "{phi} at {p}"
                );
            }
            assert!(nears > 0, "{phi}: some entries must be near a kink or have a large error");
        }
    }

    const SOFTPLUS_NEAR: f64 = crate::model::activation::SOFTPLUS_THRESHOLD;
}
