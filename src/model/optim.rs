//! Optimizers: how the gradient ∂E/∂W becomes the update of W, by hand, in the order and
//! arithmetic of PyTorch's `torch.optim` (and libtorch's `torch::optim`, which computes the same).
//!
//! With g = ∂E/∂θ for a parameter θ (every W^k_ij and b^k_j alike), η the learning rate, λ the
//! weight decay and t = 1, 2, … the step count (docs/backprop.md, "Optimizers"):
//!
//! - **sgd** (O1): d = g + λθ; with momentum μ: b ← d at t = 1 (no dampening on the first step),
//!   else b ← μ b + (1 − τ) d; then d ← d + μ b (Nesterov) or d ← b; θ ← θ − η d. With μ = 0 and
//!   λ = 0 this is the sheet's ΔW = −η ∂E/∂W.
//! - **adam** (O2): g ← g + λθ; m ← β₁ m + (1 − β₁) g; v ← β₂ v + (1 − β₂) g²;
//!   (amsgrad: v̂ ← max(v̂, v), used in place of v); θ ← θ − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε).
//! - **adamw** (O3): θ ← θ (1 − ηλ) first (decoupled decay), then Adam's step with λ = 0.
//! - **rmsprop** (O4): g ← g + λθ; s ← α s + (1 − α) g²; centered: ḡ ← α ḡ + (1 − α) g and
//!   r = √(s − ḡ²) + ε, else r = √s + ε (ε outside the root); with momentum μ: b ← μ b + g / r,
//!   θ ← θ − η b; else θ ← θ − η g / r.
//!
//! The state buffers carry PyTorch's names (`momentum_buffer`, `exp_avg`, `exp_avg_sq`,
//! `max_exp_avg_sq`, `square_avg`, `grad_avg`), which is how a trace records them.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::{field_bail, FieldError};
use crate::kernels::scalar::Scalar;
use crate::model::params::Params;
use crate::model::spec::Spec;

/// Which optimizer: PyTorch's `torch.optim.SGD`, `Adam`, `AdamW`, `RMSprop`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent, with optional momentum, dampening, Nesterov and weight decay (O1).
    Sgd,
    /// Adam, with optional (coupled, L2) weight decay and amsgrad (O2).
    Adam,
    /// AdamW: Adam with decoupled weight decay (O3).
    #[value(name = "adamw")]
    AdamW,
    /// RMSprop, with optional momentum, centering and weight decay (O4).
    #[value(name = "rmsprop")]
    RmsProp,
}

impl OptimizerKind {
    /// The name the command line, reports and traces use (PyTorch's, lower case).
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::RmsProp => "rmsprop",
        }
    }
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        <OptimizerKind as clap::ValueEnum>::from_str(s.trim(), true).map_err(|_| {
            anyhow::anyhow!("unknown optimizer {s:?} (expected one of: sgd, adam, adamw, rmsprop)")
        })
    }
}

/// An optimizer and its hyperparameters, with PyTorch's names and defaults. Fields that the
/// chosen optimizer does not use keep their defaults and are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OptimConfig {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Learning rate η.
    pub lr: f64,
    /// Momentum μ (sgd, rmsprop; default 0).
    pub momentum: f64,
    /// Dampening τ of the momentum (sgd; default 0).
    pub dampening: f64,
    /// Nesterov momentum (sgd; default false).
    pub nesterov: bool,
    /// Weight decay λ (default 0; adamw 0.01).
    pub weight_decay: f64,
    /// (β₁, β₂) (adam, adamw; default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// ε (adam, adamw, rmsprop; default 1e-8).
    pub eps: f64,
    /// The amsgrad variant (adam, adamw; default false).
    pub amsgrad: bool,
    /// Smoothing constant α (rmsprop; default 0.99).
    pub alpha: f64,
    /// Centered RMSprop (default false).
    pub centered: bool,
}

impl OptimConfig {
    /// `kind` with learning rate `lr` and PyTorch's defaults for everything else.
    pub fn new(kind: OptimizerKind, lr: f64) -> OptimConfig {
        OptimConfig {
            kind,
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: if kind == OptimizerKind::AdamW { 1e-2 } else { 0.0 },
            betas: (0.9, 0.999),
            eps: 1e-8,
            amsgrad: false,
            alpha: 0.99,
            centered: false,
        }
    }

    /// Plain SGD, ΔW = −η ∂E/∂W: the sheet's update.
    pub fn sgd(lr: f64) -> OptimConfig {
        OptimConfig::new(OptimizerKind::Sgd, lr)
    }

    /// Whether this is the sheet's plain update, θ ← θ − η g, with no state.
    pub fn is_plain_sgd(&self) -> bool {
        self.kind == OptimizerKind::Sgd && self.momentum == 0.0 && self.weight_decay == 0.0
    }

    /// Refuses what PyTorch refuses (and what makes no sense): errors are [`FieldError`]s naming
    /// the field and value.
    pub fn validate(&self) -> Result<()> {
        let finite_nonneg = |name: &'static str, v: f64| -> Result<()> {
            if !v.is_finite() || v < 0.0 {
                let e = format!("{{{name}}}: must be a finite number >= 0, got {v}");
                return Err(FieldError::new(name, e).into());
            }
            Ok(())
        };
        if !self.lr.is_finite() || self.lr <= 0.0 {
            field_bail!("lr", "{{lr}}: must be a finite number > 0, got {}", self.lr);
        }
        finite_nonneg("momentum", self.momentum)?;
        finite_nonneg("weight_decay", self.weight_decay)?;
        finite_nonneg("eps", self.eps)?;
        finite_nonneg("alpha", self.alpha)?;
        if !self.dampening.is_finite() {
            field_bail!("dampening", "{{dampening}}: must be a finite number, got {}", self.dampening);
        }
        let (b1, b2) = self.betas;
        for (i, b) in [(1, b1), (2, b2)] {
            if !(0.0..1.0).contains(&b) {
                field_bail!("betas", "{{betas}}: beta{i} must lie in [0, 1), got {b}");
            }
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            field_bail!(
                "nesterov",
                "{{nesterov}}: needs {{momentum}} > 0 and {{dampening}} 0 (got momentum {}, dampening {})",
                self.momentum,
                self.dampening
            );
        }
        if self.kind == OptimizerKind::AdamW && self.lr * self.weight_decay > 1.0 {
            field_bail!(
                "weight_decay",
                "{{weight_decay}}: adamw scales the weights by 1 − lr·weight_decay = {} each step; keep \
                 lr·weight_decay <= 1",
                1.0 - self.lr * self.weight_decay
            );
        }
        Ok(())
    }

    /// The state buffers this optimizer keeps per parameter, by PyTorch's names, in three slots by
    /// role (`None` where the configuration keeps none): sgd momentum_buffer, –, –; adam and adamw
    /// exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad); rmsprop square_avg, momentum_buffer
    /// (momentum), grad_avg (centered).
    pub fn state_slots(&self) -> [Option<&'static str>; 3] {
        let on = |name, yes: bool| yes.then_some(name);
        match self.kind {
            OptimizerKind::Sgd => [on("momentum_buffer", self.momentum != 0.0), None, None],
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                [Some("exp_avg"), Some("exp_avg_sq"), on("max_exp_avg_sq", self.amsgrad)]
            }
            OptimizerKind::RmsProp => [
                Some("square_avg"),
                on("momentum_buffer", self.momentum > 0.0),
                on("grad_avg", self.centered),
            ],
        }
    }

    /// One line for reports: `adam (lr 0.001, betas 0.9, 0.999, eps 1e-8)`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("lr {}", self.lr)];
        match self.kind {
            OptimizerKind::Sgd => {
                if self.momentum != 0.0 {
                    parts.push(format!("momentum {}", self.momentum));
                    if self.dampening != 0.0 {
                        parts.push(format!("dampening {}", self.dampening));
                    }
                    if self.nesterov {
                        parts.push("nesterov".into());
                    }
                }
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                parts.push(format!("betas {}, {}", self.betas.0, self.betas.1));
                parts.push(format!("eps {:e}", self.eps));
                if self.amsgrad {
                    parts.push("amsgrad".into());
                }
            }
            OptimizerKind::RmsProp => {
                parts.push(format!("alpha {}", self.alpha));
                parts.push(format!("eps {:e}", self.eps));
                if self.momentum != 0.0 {
                    parts.push(format!("momentum {}", self.momentum));
                }
                if self.centered {
                    parts.push("centered".into());
                }
            }
        }
        if self.weight_decay != 0.0 {
            parts.push(format!("weight decay {}", self.weight_decay));
        }
        format!("{} ({})", self.kind, parts.join(", "))
    }
}

/// The hand-written optimizer: a configuration and its state, one buffer of each kind per
/// parameter (allocated once, at construction).
#[derive(Clone, Debug)]
pub struct Optimizer<T> {
    cfg: OptimConfig,
    /// Steps taken (PyTorch's `state["step"]`).
    t: u64,
    /// The state, in the slots of [`OptimConfig::state_slots`].
    slots: [Option<(&'static str, Params<T>)>; 3],
}

impl<T: Scalar> Optimizer<T> {
    /// The optimizer `cfg` for `spec`'s parameters, with zeroed state.
    pub fn new(cfg: OptimConfig, spec: &Spec) -> Optimizer<T> {
        let slots = cfg.state_slots().map(|name| name.map(|n| (n, Params::zeros(spec))));
        Optimizer { cfg, t: 0, slots }
    }

    /// The configuration.
    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// The state after the last step, by PyTorch's names, in the parameters' shapes.
    pub fn state(&self) -> Vec<(&'static str, &Params<T>)> {
        self.slots.iter().flatten().map(|(n, p)| (*n, p)).collect()
    }

    /// One update of `params` by `grads` (O1)–(O4); allocates nothing.
    pub fn step(&mut self, params: &mut Params<T>, grads: &Params<T>) {
        self.t += 1;
        let c = self.cfg;
        // The per-step scalars, in f64 as PyTorch computes them (Python floats, C++ doubles).
        let t = self.t as f64;
        // Adam's bias corrections (two powers, which SGD and RMSprop need not pay for).
        let corrected = matches!(c.kind, OptimizerKind::Adam | OptimizerKind::AdamW);
        let bc1 = if corrected { 1.0 - c.betas.0.powf(t) } else { 1.0 };
        let bc2_sqrt = if corrected { (1.0 - c.betas.1.powf(t)).sqrt() } else { 1.0 };
        let sc = Scalars {
            lr: T::of(c.lr),
            wd: T::of(c.weight_decay),
            mom: T::of(c.momentum),
            one_minus_damp: T::of(1.0 - c.dampening),
            b1: T::of(c.betas.0),
            one_minus_b1: T::of(1.0 - c.betas.0),
            b2: T::of(c.betas.1),
            one_minus_b2: T::of(1.0 - c.betas.1),
            step_size: T::of(c.lr / bc1),
            bc2_sqrt: T::of(bc2_sqrt),
            eps: T::of(c.eps),
            alpha: T::of(c.alpha),
            one_minus_alpha: T::of(1.0 - c.alpha),
            decay: T::of(1.0 - c.lr * c.weight_decay),
        };
        let first = self.t == 1;
        let slots = &mut self.slots;
        // Plain elementwise loops: vectorised for this CPU, the same bits on every level.
        crate::kernels::simd::dispatch(
            #[inline(always)]
            || {
                for k in 0..params.layers.len() {
                    for bias in [false, true] {
                        let p = params.layers[k].part_mut(bias);
                        let g = grads.layers[k].part(bias);
                        // The three slots are distinct elements: borrowed at once.
                        let [s0, s1, s2] = &mut *slots;
                        let b0 = s0.as_mut().map(|(_, buf)| buf.layers[k].part_mut(bias));
                        let b1 = s1.as_mut().map(|(_, buf)| buf.layers[k].part_mut(bias));
                        let b2 = s2.as_mut().map(|(_, buf)| buf.layers[k].part_mut(bias));
                        match c.kind {
                            OptimizerKind::Sgd => sgd(&c, &sc, first, p, g, b0),
                            OptimizerKind::Adam | OptimizerKind::AdamW => {
                                adam(&c, &sc, p, g, b0.expect("exp_avg"), b1.expect("exp_avg_sq"), b2)
                            }
                            OptimizerKind::RmsProp => rmsprop(&c, &sc, p, g, b0.expect("square_avg"), b1, b2),
                        }
                    }
                }
            },
        );
    }
}

/// The step's constants in the run's type.
struct Scalars<T> {
    lr: T,
    wd: T,
    mom: T,
    one_minus_damp: T,
    b1: T,
    one_minus_b1: T,
    b2: T,
    one_minus_b2: T,
    step_size: T,
    bc2_sqrt: T,
    eps: T,
    alpha: T,
    one_minus_alpha: T,
    decay: T,
}

/// (O1), as `torch.optim.SGD` (single-tensor form).
#[inline(always)]
fn sgd<T: Scalar>(c: &OptimConfig, s: &Scalars<T>, first: bool, p: &mut [T], g: &[T], buf: Option<&mut [T]>) {
    match buf {
        None => {
            for (p, &g) in p.iter_mut().zip(g) {
                let d = if c.weight_decay != 0.0 { g + s.wd * *p } else { g };
                *p = *p - s.lr * d;
            }
        }
        Some(buf) => {
            for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
                let mut d = if c.weight_decay != 0.0 { g + s.wd * *p } else { g };
                // The first step copies d into the buffer: no dampening.
                *b = if first { d } else { s.mom * *b + s.one_minus_damp * d };
                d = if c.nesterov { d + s.mom * *b } else { *b };
                *p = *p - s.lr * d;
            }
        }
    }
}

/// (O2), (O3), as `torch.optim.Adam` and `AdamW` (single-tensor form).
#[inline(always)]
fn adam<T: Scalar>(
    c: &OptimConfig,
    s: &Scalars<T>,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    mut vmax: Option<&mut [T]>,
) {
    let decoupled = c.kind == OptimizerKind::AdamW;
    for i in 0..p.len() {
        let mut gi = g[i];
        if decoupled {
            if c.weight_decay != 0.0 {
                p[i] = p[i] * s.decay;
            }
        } else if c.weight_decay != 0.0 {
            gi = gi + s.wd * p[i];
        }
        m[i] = s.b1 * m[i] + s.one_minus_b1 * gi;
        v[i] = s.b2 * v[i] + s.one_minus_b2 * gi * gi;
        let second = match vmax.as_deref_mut() {
            Some(vmax) => {
                if v[i] > vmax[i] {
                    vmax[i] = v[i];
                }
                vmax[i]
            }
            None => v[i],
        };
        let denom = second.sqrt() / s.bc2_sqrt + s.eps;
        p[i] = p[i] - s.step_size * (m[i] / denom);
    }
}

/// (O4), as `torch.optim.RMSprop` (single-tensor form).
#[inline(always)]
fn rmsprop<T: Scalar>(
    c: &OptimConfig,
    s: &Scalars<T>,
    p: &mut [T],
    g: &[T],
    sq: &mut [T],
    mut buf: Option<&mut [T]>,
    mut gavg: Option<&mut [T]>,
) {
    for i in 0..p.len() {
        let gi = if c.weight_decay != 0.0 { g[i] + s.wd * p[i] } else { g[i] };
        sq[i] = s.alpha * sq[i] + s.one_minus_alpha * gi * gi;
        let r = match gavg.as_deref_mut() {
            Some(ga) => {
                ga[i] = s.alpha * ga[i] + s.one_minus_alpha * gi;
                (sq[i] - ga[i] * ga[i]).sqrt() + s.eps
            }
            None => sq[i].sqrt() + s.eps,
        };
        match buf.as_deref_mut() {
            Some(b) => {
                b[i] = s.mom * b[i] + gi / r;
                p[i] = p[i] - s.lr * b[i];
            }
            None => p[i] = p[i] - s.lr * (gi / r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::activation::Activation;

    fn spec() -> Spec {
        Spec::new(vec![2, 3, 1], vec![Activation::Tanh, Activation::Identity]).unwrap()
    }

    /// Plain SGD is the sheet's update, bit for bit.
    #[test]
    fn plain_sgd_is_the_sheet_update() {
        let s = spec();
        let p0 = Params::<f64>::init(&s);
        let mut g = Params::<f64>::init(&s.clone().with_seed(9));
        g.layers[0].w[(0, 0)] = 0.5;
        let (mut a, mut b) = (p0.clone(), p0.clone());
        a.sgd_update(&g, 0.1);
        Optimizer::new(OptimConfig::sgd(0.1), &s).step(&mut b, &g);
        assert_eq!(a.flat(), b.flat());
    }

    /// Adam's first step moves every entry with a gradient well above ε by η·sign(g) (the
    /// bias corrections cancel: m̂ = g, v̂ = g²).
    #[test]
    fn adam_first_step_is_lr_times_sign() {
        let s = spec();
        let p0 = Params::<f64>::init(&s);
        let g = Params::<f64>::init(&s.clone().with_seed(3));
        let mut p = p0.clone();
        let mut opt = Optimizer::new(OptimConfig::new(OptimizerKind::Adam, 1e-3), &s);
        opt.step(&mut p, &g);
        for ((a, b), gi) in p0.flat().iter().zip(p.flat()).zip(g.flat()) {
            assert!((a - b - 1e-3 * gi.signum()).abs() < 1e-9, "{a} {b} {gi}");
        }
        assert_eq!(opt.state().iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["exp_avg", "exp_avg_sq"]);
    }

    #[test]
    fn refuses_what_pytorch_refuses() {
        let mut c = OptimConfig::new(OptimizerKind::Sgd, 0.1);
        c.nesterov = true;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "nesterov: needs momentum > 0 and dampening 0 (got momentum 0, dampening 0)"
        );
        c.momentum = 0.9;
        assert!(c.validate().is_ok());
        c.dampening = 0.1;
        assert!(c.validate().is_err());
        let mut a = OptimConfig::new(OptimizerKind::Adam, 0.1);
        a.betas = (0.9, 1.0);
        assert!(a.validate().unwrap_err().to_string().contains("beta2"));
        a.betas = (0.9, 0.99);
        a.eps = -1.0;
        let e = a.validate().unwrap_err();
        assert_eq!(e.downcast_ref::<FieldError>().map(FieldError::field), Some("eps"));
    }
}
