//! A catalogue of classic backpropagation mistakes, planted one at a time into the literal form
//! ([`super::literal`]) through its [`Hooks`]: what a wrong backprop looks like to the harness, and a test that the
//! harness catches each one, at the step where it first changes anything, named at its layer.

use anyhow::Result;
use std::fmt;

use super::literal::{self, Hooks};
use crate::error::field_bail;
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::model::activation::Activation;
use crate::model::params::Params;
use crate::model::spec::Spec;

/// One classic mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutantKind {
    /// φ'_k evaluated at z^k instead of a^k, in layer k.
    PhiPrimeOfZ,
    /// δ^k without the factor φ'_k(a^k), in layer k.
    SkipPhiPrime,
    /// δ^L from ŷ − y instead of y − ŷ (the sign of ∂E/∂y flipped).
    FlipOutputDelta,
    /// δ^k computed through W^{k+1} after W^{k+1} was already updated (the in-place order bug).
    StaleWeights,
    /// ∂E/∂b^k from the first sample of the batch only.
    BiasGradFirstSample,
    /// Every gradient divided by the batch size while the loss is the sum.
    MeanNotSum,
}

impl MutantKind {
    /// Every mutant, in the order `--mutant list` prints them.
    pub const ALL: [MutantKind; 6] = [
        MutantKind::PhiPrimeOfZ,
        MutantKind::SkipPhiPrime,
        MutantKind::FlipOutputDelta,
        MutantKind::StaleWeights,
        MutantKind::BiasGradFirstSample,
        MutantKind::MeanNotSum,
    ];

    /// The name `--mutant` takes.
    pub fn name(self) -> &'static str {
        match self {
            MutantKind::PhiPrimeOfZ => "phi-prime-of-z",
            MutantKind::SkipPhiPrime => "skip-phi-prime",
            MutantKind::FlipOutputDelta => "flip-output-delta",
            MutantKind::StaleWeights => "stale-weights",
            MutantKind::BiasGradFirstSample => "bias-grad-first-sample",
            MutantKind::MeanNotSum => "mean-not-sum",
        }
    }

    /// What the mistake changes, in the sheet's notation.
    pub fn what(self) -> &'static str {
        match self {
            MutantKind::PhiPrimeOfZ => {
                "δ^k = φ'_k(z^k) Σ_i W^{k+1}_ji δ^{k+1}_i: φ' at the output z^k instead of a^k"
            }
            MutantKind::SkipPhiPrime => {
                "δ^k = Σ_i W^{k+1}_ji δ^{k+1}_i: the factor φ'_k(a^k) of (7) left out"
            }
            MutantKind::FlipOutputDelta => "δ^L = φ'_L(a^L)(ŷ − y): the sign of ∂E/∂y flipped (layer L)",
            MutantKind::StaleWeights => {
                "δ^k through W^{k+1} − η∂E/∂W^{k+1}: the weights above updated before δ^k used them"
            }
            MutantKind::BiasGradFirstSample => {
                "∂E/∂b^k = δ^k of the batch's first sample only, not Σ_n δ^k_n"
            }
            MutantKind::MeanNotSum => "every ∂E/∂W^k, ∂E/∂b^k divided by N while E is the sum (layer L)",
        }
    }

    /// Whether the mistake sits in one chosen layer (`NAME:LAYER`); the others are at layer L.
    pub fn takes_layer(self) -> bool {
        !matches!(self, MutantKind::FlipOutputDelta | MutantKind::MeanNotSum)
    }
}

/// A mistake planted at a layer k (1..L).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mutant {
    /// Which mistake.
    pub kind: MutantKind,
    /// Where: the layer whose gradient it spoils first (the layer the harness should name).
    pub layer: usize,
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.layer)
    }
}

impl Mutant {
    /// Parses `NAME` or `NAME:LAYER` for a network of `depth` layers with or without bias.
    /// Without a layer: L − 1 for the mistakes in a hidden layer's δ (L when L = 1), L for the
    /// others. Errors name the value and what is allowed.
    pub fn parse(s: &str, depth: usize, bias: bool) -> Result<Mutant> {
        let (name, layer) = match s.split_once(':') {
            Some((n, l)) => {
                let l: usize = l.trim().parse().map_err(|_| {
                    let e = format!("{{mutant}} {s:?}: LAYER must be a number from 1 to {depth}");
                    anyhow::Error::new(crate::error::FieldError::new("mutant.layer", e))
                })?;
                (n.trim(), Some(l))
            }
            None => (s.trim(), None),
        };
        let Some(kind) = MutantKind::ALL.into_iter().find(|k| k.name() == name) else {
            let names: Vec<&str> = MutantKind::ALL.iter().map(|k| k.name()).collect();
            field_bail!(
                "mutant",
                "{{mutant}} {s:?}: unknown mistake (one of: {}; or list)",
                names.join(", ")
            );
        };
        let default = match kind {
            MutantKind::PhiPrimeOfZ | MutantKind::SkipPhiPrime | MutantKind::StaleWeights => depth.max(2) - 1,
            _ => depth,
        };
        let layer = layer.unwrap_or(default);
        if !kind.takes_layer() && layer != depth {
            field_bail!(
                "mutant.layer",
                "{{mutant}} {s:?}: {} sits at the output layer {depth}; give no layer",
                kind.name()
            );
        }
        if layer == 0 || layer > depth {
            field_bail!(
                "mutant.layer",
                "{{mutant}} {s:?}: layer {layer} does not exist (the network has {depth} layers)"
            );
        }
        if kind == MutantKind::StaleWeights && depth < 2 {
            field_bail!("mutant", "{{mutant}} {s:?}: stale-weights needs at least two layers");
        }
        if kind == MutantKind::StaleWeights && layer == depth {
            field_bail!(
                "mutant.layer",
                "{{mutant}} {s:?}: stale-weights needs a layer below the output (1 to {})",
                depth - 1
            );
        }
        if kind == MutantKind::BiasGradFirstSample && !bias {
            field_bail!("mutant", "{{mutant}} {s:?}: the network has no bias (drop {{bias=false}})");
        }
        Ok(Mutant { kind, layer })
    }

    /// The catalogue as `--mutant list` prints it.
    pub fn catalogue() -> String {
        let mut s = String::from(
            "Mistakes --mutant NAME[:LAYER] plants in the literal backprop (--manual literal):\n",
        );
        for k in MutantKind::ALL {
            s.push_str(&format!("  {:<24}{}\n", k.name(), k.what()));
        }
        s
    }
}

/// [`literal::gradients`] with one classic mistake planted (`lr` is η, which only `stale-weights`
/// uses; `None` is the correct form): the literal form with the mutant's [`Hooks`].
pub fn gradients_with<T: Scalar>(
    spec: &Spec,
    params: &Params<T>,
    x: &Matrix<T>,
    y: &Matrix<T>,
    lr: T,
    mutant: Option<Mutant>,
) -> (T, Params<T>) {
    match mutant {
        Some(mutant) => literal::gradients_hooked(spec, params, x, y, &Planted { mutant, lr }),
        None => literal::gradients(spec, params, x, y),
    }
}

/// A mutant planted in the literal form, with η for `stale-weights`.
struct Planted<T> {
    mutant: Mutant,
    lr: T,
}

impl<T> Planted<T> {
    fn at(&self, kind: MutantKind, k: usize) -> bool {
        self.mutant.kind == kind && self.mutant.layer == k
    }
}

impl<T: Scalar> Hooks<T> for Planted<T> {
    fn phi_prime(&self, k: usize, phi: Activation, a: T, z: T) -> T {
        if self.at(MutantKind::SkipPhiPrime, k) {
            T::one()
        } else if self.at(MutantKind::PhiPrimeOfZ, k) {
            phi.derivative(z, phi.apply(z))
        } else {
            phi.derivative(a, z)
        }
    }

    fn output_grad(&self, dy: &mut [T]) {
        if self.mutant.kind == MutantKind::FlipOutputDelta {
            dy.iter_mut().for_each(|d| *d = -*d);
        }
    }

    fn bias_sample(&self, k: usize, n: usize) -> bool {
        n == 0 || !self.at(MutantKind::BiasGradFirstSample, k)
    }

    fn weights_below(&self, k: usize, w: &Matrix<T>, grad_w: &Matrix<T>) -> Option<Matrix<T>> {
        // δ^{k−1} through W^k as already updated by η.
        if !self.at(MutantKind::StaleWeights, k - 1) {
            return None;
        }
        let mut updated = w.clone();
        for (w, &g) in updated.as_mut_slice().iter_mut().zip(grad_w.as_slice()) {
            *w = *w - self.lr * g;
        }
        Some(updated)
    }

    fn finish(&self, grads: &mut Params<T>, n: usize) {
        if self.mutant.kind == MutantKind::MeanNotSum {
            let n = T::of(n as f64);
            for l in &mut grads.layers {
                l.w.as_mut_slice().iter_mut().for_each(|g| *g = *g / n);
                l.b.iter_mut().flatten().for_each(|g| *g = *g / n);
            }
        }
    }
}
