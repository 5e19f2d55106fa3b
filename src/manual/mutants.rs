//! A catalogue of classic backpropagation mistakes, planted one at a time into the literal form
//! ([`super::literal`]): what a wrong backprop looks like to the harness, and a test that the
//! harness catches each one, at the step where it first changes anything, named at its layer.

use anyhow::Result;
use std::fmt;

use crate::error::field_bail;

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
