//! What the network is: one description from which both the manual MLP and the libtorch reference
//! are built, validated once.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::field_bail;
use crate::model::activation::Activation;

/// Networks with more parameters than this (8 GiB of f64 per copy of the weights) are refused
/// before anything is allocated.
pub const MAX_PARAMS: u128 = 1 << 30;

/// The loss E of a batch of outputs y_n against targets ŷ_n.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// E = ½ Σ_n |ŷ_n − y(x_n)|², the seed's eq. (5) (summed over the batch, not averaged).
    HalfSse,
    /// E = (1 / (N·n_L)) Σ_n |ŷ_n − y(x_n)|², the mean over every output entry, as torch's
    /// `mse_loss` with its default reduction.
    Mse,
    /// E = −(1/N) Σ_n Σ_c t̃_nc log softmax(a^L_n)_c over the output layer's pre-activations (its
    /// activation must be the identity), targets one-hot or probabilities, optionally smoothed;
    /// as `torch.nn.CrossEntropyLoss` with its default (mean) reduction.
    CrossEntropy,
}

pub use crate::kernels::scalar::DType;

/// How the initial weights are drawn (biases of every scheme: uniform ±1/√n_{k−1}, as torch's
/// `nn.Linear`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// torch's `nn.Linear` default: W ~ U(−1/√n_{k−1}, 1/√n_{k−1}).
    Torch,
    /// Glorot & Bengio (2010): W ~ U(−r, r), r = √(6 / (n_{k−1} + n_k)).
    Xavier,
    /// He et al. (2015), fan-in mode: W ~ N(0, 2 / n_{k−1}).
    He,
}

/// `Display` and `FromStr` through clap's `ValueEnum` (the names the command line takes), so the
/// command line, reports and traces spell every variant the same way.
macro_rules! value_names {
    ($($ty:ty),+) => {$(
        impl $ty {
            /// The name used on the command line, in reports and in traces.
            pub fn name(self) -> &'static str {
                <$ty as clap::ValueEnum>::value_variants()
                    .iter()
                    .position(|v| *v == self)
                    .map_or("", |i| Self::NAMES[i])
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $ty {
            type Err = anyhow::Error;
            fn from_str(s: &str) -> Result<Self> {
                <$ty as clap::ValueEnum>::from_str(s.trim(), true).map_err(|_| {
                    let names: Vec<&str> = <$ty as clap::ValueEnum>::value_variants().iter().map(|v| v.name()).collect();
                    anyhow::anyhow!("unknown {} {s:?} (expected one of: {})", stringify!($ty).to_lowercase(), names.join(", "))
                })
            }
        }
    )+};
}

impl Loss {
    const NAMES: [&'static str; 3] = ["half-sse", "mse", "cross-entropy"];
}
impl DType {
    const NAMES: [&'static str; 2] = ["f32", "f64"];
}
impl Init {
    const NAMES: [&'static str; 3] = ["torch", "xavier", "he"];
}
value_names!(Loss, DType, Init);

/// A multilayer perceptron: widths n_0..n_L, one activation per layer k = 1..L, bias on or off,
/// the loss, the dtype, the weight initialisation and its seed.
///
/// Build one with [`Spec::new`], which validates it; the fields are read-only afterwards.
///
/// ```
/// use backprop::{Activation, Spec};
/// let spec = Spec::new(vec![2, 16, 1], vec![Activation::Tanh, Activation::Identity]).unwrap();
/// assert_eq!(spec.depth(), 2);
/// assert_eq!(spec.param_count(), 2 * 16 + 16 + 16 * 1 + 1);
/// assert!(Spec::new(vec![2, 0, 1], vec![Activation::Tanh; 2]).is_err());
/// ```
/// Serialises (for reports and trace metadata) but does not deserialise: a spec is only ever
/// made by [`Spec::new`], so it is always valid.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spec {
    widths: Vec<usize>,
    activations: Vec<Activation>,
    bias: bool,
    loss: Loss,
    label_smoothing: f64,
    dtype: DType,
    init: Init,
    seed: u64,
}

impl Spec {
    /// A network of the given widths n_0..n_L and L activations, with bias, the seed's loss (5),
    /// f64, torch's default initialisation and seed 0. Errors name the bad value.
    pub fn new(widths: Vec<usize>, activations: Vec<Activation>) -> Result<Spec> {
        let spec = Spec {
            widths,
            activations,
            bias: true,
            loss: Loss::HalfSse,
            label_smoothing: 0.0,
            dtype: DType::F64,
            init: Init::Torch,
            seed: 0,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Bias on or off (the seed's network has none).
    pub fn with_bias(mut self, bias: bool) -> Spec {
        self.bias = bias;
        self
    }
    /// The loss.
    pub fn with_loss(mut self, loss: Loss) -> Spec {
        self.loss = loss;
        self
    }
    /// The cross-entropy's label smoothing ε: targets t̃ = (1 − ε) t + ε/C. Checked by
    /// [`Spec::check_loss`].
    pub fn with_label_smoothing(mut self, smoothing: f64) -> Spec {
        self.label_smoothing = smoothing;
        self
    }
    /// The dtype.
    pub fn with_dtype(mut self, dtype: DType) -> Spec {
        self.dtype = dtype;
        self
    }
    /// The weight initialisation scheme.
    pub fn with_init(mut self, init: Init) -> Spec {
        self.init = init;
        self
    }
    /// The seed of the weight initialisation.
    pub fn with_seed(mut self, seed: u64) -> Spec {
        self.seed = seed;
        self
    }

    fn validate(&self) -> Result<()> {
        let w = &self.widths;
        if w.len() < 2 {
            bail!("layers: need at least an input and an output width (n0,...,nL with L >= 1), got {:?}", w);
        }
        if let Some(k) = w.iter().position(|&n| n == 0) {
            bail!("layers: width n{k} is 0; every width must be at least 1");
        }
        if self.activations.len() != self.depth() {
            bail!(
                "activations: {} given for {} layers (one per layer k = 1..L)",
                self.activations.len(),
                self.depth()
            );
        }
        // In u128, so that even absurd widths give a number, not an overflow.
        let params: u128 = w
            .windows(2)
            .map(|p| p[0] as u128 * p[1] as u128 + if self.bias { p[1] as u128 } else { 0 })
            .sum();
        if params > MAX_PARAMS {
            bail!(
                "layers: {params} parameters would need {:.1} GB per copy of the weights (f64); the limit is {MAX_PARAMS}",
                params as f64 * 8.0 / 1e9
            );
        }
        Ok(())
    }

    /// Widths n_0..n_L.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }
    /// Number of layers L.
    pub fn depth(&self) -> usize {
        self.widths.len() - 1
    }
    /// Input width n_0.
    pub fn n_in(&self) -> usize {
        self.widths[0]
    }
    /// Output width n_L.
    pub fn n_out(&self) -> usize {
        self.widths[self.depth()]
    }
    /// Activations φ_1..φ_L (index k − 1 for layer k).
    pub fn activations(&self) -> &[Activation] {
        &self.activations
    }
    /// Whether layers carry a bias b^k.
    pub fn bias(&self) -> bool {
        self.bias
    }
    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }
    /// The cross-entropy's label smoothing ε (0: none).
    pub fn label_smoothing(&self) -> f64 {
        self.label_smoothing
    }
    /// Whether the loss fits the network: the cross-entropy needs an identity output layer of at
    /// least two units (its softmax acts on a^L); label smoothing needs the cross-entropy and lies
    /// in [0, 1]. Errors are [`crate::error::FieldError`]s naming the field.
    pub fn check_loss(&self) -> Result<()> {
        let eps = self.label_smoothing;
        if !(0.0..=1.0).contains(&eps) {
            field_bail!("label_smoothing", "{{label_smoothing}}: must lie in [0, 1], got {eps}");
        }
        if self.loss != Loss::CrossEntropy {
            if eps != 0.0 {
                field_bail!(
                    "label_smoothing",
                    "{{label_smoothing}}: applies to {{loss=cross-entropy}} only (the loss is {})",
                    self.loss
                );
            }
            return Ok(());
        }
        let out = self.activations[self.depth() - 1];
        if out != Activation::Identity {
            field_bail!(
                "loss",
                "{{loss=cross-entropy}}: the output layer's activation must be identity (the softmax acts on \
                 a^L), got {out}"
            );
        }
        if self.n_out() < 2 {
            field_bail!(
                "loss",
                "{{loss=cross-entropy}}: needs at least two output units (classes), got nL = {}",
                self.n_out()
            );
        }
        Ok(())
    }
    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The initialisation scheme.
    pub fn init(&self) -> Init {
        self.init
    }
    /// The initialisation seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Number of trainable parameters (weights, and biases when on).
    pub fn param_count(&self) -> usize {
        // Validated to be at most MAX_PARAMS, so this fits.
        self.widths.windows(2).map(|p| p[0] * p[1] + if self.bias { p[1] } else { 0 }).sum()
    }

    /// Bytes the batched workspace needs for batches of `batch` samples: A^k, Z^k and Δ^k for
    /// every layer, plus the gradients.
    pub fn workspace_bytes(&self, batch: usize) -> u128 {
        let elem: u128 = match self.dtype {
            DType::F32 => 4,
            DType::F64 => 8,
        };
        let units: u128 = self.widths[1..].iter().map(|&n| n as u128).sum();
        (3 * batch as u128 * units + self.param_count() as u128) * elem
    }
}

/// The name among `valid` nearest a mistyped `bad` (at most two edits, a transposition counting as
/// one; case ignored), if any: the "did you mean" of every error about a name.
pub fn nearest<'a>(bad: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let bad = bad.trim().to_ascii_lowercase();
    valid
        .into_iter()
        .map(|v| (strsim::damerau_levenshtein(&bad, v), v))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// Parses a layer spec such as `2,16,16,1` into widths n_0..n_L. Errors name the bad entry.
///
/// ```
/// assert_eq!(backprop::model::spec::parse_layers("2, 16,1").unwrap(), vec![2, 16, 1]);
/// assert!(backprop::model::spec::parse_layers("2,x,1").is_err());
/// ```
pub fn parse_layers(s: &str) -> Result<Vec<usize>> {
    if s.trim().is_empty() {
        bail!("layers: empty; expected widths such as 2,16,16,1");
    }
    s.split(',')
        .enumerate()
        .map(|(k, part)| {
            let part = part.trim();
            part.parse::<usize>().map_err(|_| {
                anyhow::anyhow!("layers: entry {} ({part:?}) is not a non-negative integer", k + 1)
            })
        })
        .collect()
}

/// Parses an activation list for a network of `depth` layers: either one name per layer, or a
/// single name, which (when L > 1) every hidden layer uses while the output layer is identity.
///
/// ```
/// use backprop::{model::spec::parse_activations, Activation::*};
/// assert_eq!(parse_activations("tanh", 3).unwrap(), vec![Tanh, Tanh, Identity]);
/// assert_eq!(parse_activations("tanh", 1).unwrap(), vec![Tanh]);
/// assert_eq!(parse_activations("relu,sigmoid", 2).unwrap(), vec![Relu, Sigmoid]);
/// ```
pub fn parse_activations(s: &str, depth: usize) -> Result<Vec<Activation>> {
    let list = s
        .split(',')
        .map(|name| name.parse::<Activation>().map_err(|e| anyhow::anyhow!("activations: {e}")))
        .collect::<Result<Vec<_>>>()?;
    match list.len() {
        1 if depth > 1 => {
            let mut all = vec![list[0]; depth - 1];
            all.push(Activation::Identity);
            Ok(all)
        }
        n if n == depth => Ok(list),
        n => bail!("activations: {n} given for {depth} layers (give one name, or one per layer)"),
    }
}

#[cfg(test)]
mod names {
    use super::*;
    use clap::ValueEnum;

    /// `name()` spells every variant as the command line takes it, and parses back.
    #[test]
    fn names_match_the_command_line() {
        fn check<T: ValueEnum + FromStr + fmt::Display + PartialEq + fmt::Debug>() {
            for v in T::value_variants() {
                let cli = v.to_possible_value().unwrap();
                assert_eq!(cli.get_name(), v.to_string());
                assert_eq!(v.to_string().parse::<T>().ok().as_ref(), Some(v));
            }
        }
        check::<Loss>();
        check::<DType>();
        check::<Init>();
    }
}
