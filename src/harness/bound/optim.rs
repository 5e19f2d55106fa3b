//! The optimizer's share of the bound (B11): a shadow of SGD's, Adam's, AdamW's or RMSprop's state
//! in f64, beside a running bound on how far one correct implementation's state may be from it.

use super::rounding::gamma;
#[cfg(doc)]
use super::StepBounds;
use super::SAFETY;
use crate::kernels::scalar::Scalar;
use crate::model::optim::{OptimConfig, OptimizerKind};
use crate::model::params::Params;
use crate::model::spec::Spec;

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
    fn get(&self, s: usize, at: At) -> (f64, f64) {
        match (&self.value[s], &self.error[s]) {
            (Some(v), Some(e)) => (v.layers[at.k].part(at.bias)[at.i], e.layers[at.k].part(at.bias)[at.i]),
            _ => (0.0, 0.0),
        }
    }

    fn set(&mut self, s: usize, at: At, (v, e): (f64, f64)) {
        if let (Some(vs), Some(es)) = (&mut self.value[s], &mut self.error[s]) {
            vs.layers[at.k].part_mut(at.bias)[at.i] = v;
            es.layers[at.k].part_mut(at.bias)[at.i] = e;
        }
    }

    /// e(θ') of one entry, advancing its state: the gradient g (within `e_g`) with coupled weight
    /// decay added, then the optimizer's own step.
    fn entry(&mut self, k: usize, bias: bool, i: usize, theta: f64, g: f64, e_g: f64) -> f64 {
        let c = self.cfg;
        let wd = c.weight_decay;
        let g2 = gamma(2, self.u);
        // g + λθ (coupled weight decay): one product and one sum.
        let coupled = wd != 0.0 && c.kind != OptimizerKind::AdamW;
        let (g, e_g) =
            if coupled { (g + wd * theta, e_g + g2 * (g.abs() + wd * theta.abs())) } else { (g, e_g) };
        let at = At { k, bias, i };
        match c.kind {
            OptimizerKind::Sgd => self.sgd_entry(at, theta, g, e_g),
            OptimizerKind::Adam | OptimizerKind::AdamW => self.adam_entry(at, theta, g, e_g),
            OptimizerKind::RmsProp => self.rmsprop_entry(at, theta, g, e_g),
        }
    }

    /// (O1): θ' = θ − η d, d = g or, with momentum, the buffer b ← μ b + (1 − τ) g (g itself at
    /// t = 1), or g + μ b with Nesterov's.
    fn sgd_entry(&mut self, at: At, theta: f64, g: f64, e_g: f64) -> f64 {
        let c = self.cfg;
        let (u, lr) = (self.u, c.lr);
        let g2 = gamma(2, u);
        let (d, e_d) = if c.momentum == 0.0 {
            (g, e_g)
        } else {
            let (b, e_b) = self.get(0, at);
            let (mu, damp) = (c.momentum, 1.0 - c.dampening);
            let nb = if self.t == 1 {
                (g, e_g)
            } else {
                let v = mu * b + damp * g;
                (v, mu * e_b + damp.abs() * e_g + gamma(3, u) * (mu * b.abs() + (damp * g).abs()))
            };
            self.set(0, at, nb);
            if c.nesterov {
                (g + mu * nb.0, e_g + mu * nb.1 + g2 * (g.abs() + mu * nb.0.abs()))
            } else {
                nb
            }
        };
        let new = theta - lr * d;
        lr * e_d + u * (2.0 * lr * d.abs() + new.abs())
    }

    /// (O2), (O3): m and v (and amsgrad's running maximum of v) advanced with their errors, then
    /// θ' = θ(1 − ηλ for AdamW) − (η/(1 − β₁ᵗ)) m / (√v/√(1 − β₂ᵗ) + ε), its quotient and root bounded
    /// by [`quotient_error`] and [`sqrt_error`].
    fn adam_entry(&mut self, at: At, theta: f64, g: f64, e_g: f64) -> f64 {
        let c = self.cfg;
        let (u, lr, wd) = (self.u, c.lr, c.weight_decay);
        let (g2, g4) = (gamma(2, u), gamma(4, u));
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
        let (m, e_m) = self.get(0, at);
        let nm = b1 * m + (1.0 - b1) * g;
        // Either m·β₁ + (1 − β₁)g (libtorch) or m + (1 − β₁)(g − m) (torch.optim's lerp).
        let e_nm = b1 * e_m + (1.0 - b1) * e_g + g4 * (m.abs() + g.abs() + nm.abs());
        self.set(0, at, (nm, e_nm));
        let (v, e_v) = self.get(1, at);
        let nv = b2 * v + (1.0 - b2) * g * g;
        let e_nv = b2 * e_v
            + (1.0 - b2) * (2.0 * g.abs() * e_g + e_g * e_g)
            + g4 * (b2 * v + (1.0 - b2) * g * g + nv);
        self.set(1, at, (nv, e_nv));
        let (second, e_second) = if c.amsgrad {
            let (vm, e_vm) = self.get(2, at);
            let n = (vm.max(nv), e_vm.max(e_nv));
            self.set(2, at, n);
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

    /// (O4): s ← α s + (1 − α) g² (and, centered, ḡ ← α ḡ + (1 − α) g, the variance s − ḡ²), then
    /// g/(√var + ε), through a momentum buffer when there is one, and θ' = θ − η d.
    fn rmsprop_entry(&mut self, at: At, theta: f64, g: f64, e_g: f64) -> f64 {
        let c = self.cfg;
        let (u, lr, alpha) = (self.u, c.lr, c.alpha);
        let (g2, g4) = (gamma(2, u), gamma(4, u));
        let (s, e_s) = self.get(0, at);
        let ns = alpha * s + (1.0 - alpha) * g * g;
        let e_ns = alpha * e_s
            + (1.0 - alpha) * (2.0 * g.abs() * e_g + e_g * e_g)
            + g4 * (alpha * s + (1.0 - alpha) * g * g + ns);
        self.set(0, at, (ns, e_ns));
        let (var, e_var) = if c.centered {
            let (ga, e_ga) = self.get(2, at);
            let nga = alpha * ga + (1.0 - alpha) * g;
            let e_nga = alpha * e_ga + (1.0 - alpha) * e_g + g4 * (ga.abs() + g.abs() + nga.abs());
            self.set(2, at, (nga, e_nga));
            (ns - nga * nga, e_ns + 2.0 * nga.abs() * e_nga + e_nga * e_nga + gamma(3, u) * (ns + nga * nga))
        } else {
            (ns, e_ns)
        };
        let r = var.max(0.0).sqrt() + c.eps;
        let e_r = sqrt_error(var, e_var, u) + g2 * r;
        let floor = if c.eps > 0.0 { c.eps * (1.0 - 4.0 * u) } else { 0.0 };
        let q = g / r;
        let e_q = quotient_error(g, e_g, r, e_r, floor) + u * q.abs();
        let (d, e_d) = if c.momentum > 0.0 {
            let (b, e_b) = self.get(1, at);
            let nb = c.momentum * b + q;
            let e_nb = c.momentum * e_b + e_q + g2 * (c.momentum * b.abs() + q.abs());
            self.set(1, at, (nb, e_nb));
            (nb, e_nb)
        } else {
            (q, e_q)
        };
        let new = theta - lr * d;
        lr * e_d + u * (2.0 * lr * d.abs() + new.abs())
    }
}

/// One entry of the parameters: layer `k`'s W (or with `bias` b), flattened index `i`.
#[derive(Clone, Copy)]
struct At {
    k: usize,
    bias: bool,
    i: usize,
}
