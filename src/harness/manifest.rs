//! The run manifest: a run's configuration as one serde type, written as report.json's `config`,
//! as the `config` metadata of a trace (`compare --trace`) and of the weights `train` saves, and
//! read back by `check` (from a trace written by `compare` or by `python/backprop_trace.py`) and by
//! `train --load`.
//!
//! Its JSON is a flat object whose keys appear in alphabetical order (the fields are declared so);
//! a field a run does not have is left out, and `inject_fault`, `mutant` and `targets`, where a run
//! has them, are `null` when unset. Numbers are written as serde_json writes an `f64` (shortest
//! round trip: `0.01`, `1e-8`, `0.0`).
//!
//! Reading is lenient where a trace written elsewhere may say anything (fields `check` does not
//! use are ignored when they do not parse) and strict where it matters: a field `check` uses that
//! does not parse is an error naming it (`config.layers: …`).

use anyhow::{anyhow, bail, Result};
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize, Serializer};
use std::str::FromStr;

use crate::harness::{Form, Judge};
use crate::model::activation::Activation;
use crate::model::optim::{OptimConfig, OptimizerKind};
use crate::model::spec::{parse_activations, DType, Init, Loss, Spec};

/// The activations of a manifest: one name per layer (as written), or, in a trace written
/// elsewhere, one string (`"tanh"`: every hidden layer, identity output; or `"relu,sigmoid"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ActivationNames {
    /// One name per layer k = 1..L.
    List(Vec<String>),
    /// As `--activations` takes them.
    One(String),
}

/// A run's configuration: the network, the optimizer, the training and data, and what the command
/// that ran it adds. Fields in alphabetical order, as the JSON has them; `None` is left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunManifest {
    /// φ_1..φ_L by name.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::activations")]
    pub activations: Option<ActivationNames>,
    /// RMSprop's α.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::alpha")]
    pub alpha: Option<f64>,
    /// Adam's amsgrad variant.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::amsgrad")]
    pub amsgrad: Option<bool>,
    /// Samples per step as used.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub batch_size: Option<usize>,
    /// Adam's (β₁, β₂).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::betas")]
    pub betas: Option<[f64; 2]>,
    /// Layers with bias b^k.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::bias")]
    pub bias: Option<bool>,
    /// Centered RMSprop.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::centered")]
    pub centered: Option<bool>,
    /// SGD's dampening τ.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::dampening")]
    pub dampening: Option<f64>,
    /// The dataset, as `--dataset` names it.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub dataset: Option<String>,
    /// f32 or f64.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::dtype")]
    pub dtype: Option<DType>,
    /// ε of Adam and RMSprop.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::eps")]
    pub eps: Option<f64>,
    /// `train`'s implementation: `manual` or `torch`.
    #[serde(rename = "impl", skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub implementation: Option<String>,
    /// The weight initialisation.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub init: Option<Init>,
    /// `compare`'s injected fault as STEP:LAYER:REL (`Some(None)`: none, written `null`).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient_nullable")]
    pub inject_fault: Option<Option<String>>,
    /// λ of an L2 penalty on the weights (a trace written elsewhere; see
    /// [`crate::harness::trace::Conventions`]).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::l2")]
    pub l2: Option<f64>,
    /// The cross-entropy's label smoothing ε.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::label_smoothing")]
    pub label_smoothing: Option<f64>,
    /// Widths n_0..n_L.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::layers")]
    pub layers: Option<Vec<usize>>,
    /// The loss.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::loss")]
    pub loss: Option<Loss>,
    /// Learning rate η.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::lr")]
    pub lr: Option<f64>,
    /// `compare`'s hand-written form.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub manual: Option<Form>,
    /// Momentum μ (SGD, RMSprop).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::momentum")]
    pub momentum: Option<f64>,
    /// `compare`'s planted mistake as NAME:LAYER (`Some(None)`: none, written `null`).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient_nullable")]
    pub mutant: Option<Option<String>>,
    /// SGD's Nesterov momentum.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::nesterov")]
    pub nesterov: Option<bool>,
    /// The optimizer (absent in a trace written elsewhere: plain SGD).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::optimizer")]
    pub optimizer: Option<OptimizerKind>,
    /// `"sum"` or `"mean"` (a trace written elsewhere; see
    /// [`crate::harness::trace::Conventions`]).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::reduction")]
    pub reduction: Option<String>,
    /// Samples of a built-in dataset.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub samples: Option<usize>,
    /// The seed of weights, data and batch order.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub seed: Option<u64>,
    /// Training steps.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub steps: Option<usize>,
    /// CSV target columns (`Some(None)`: not given, written `null`).
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient_nullable")]
    pub targets: Option<Option<usize>>,
    /// How entries were judged (its keys in alphabetical order too).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted",
        deserialize_with = "lenient"
    )]
    pub tolerance: Option<Judge>,
    /// Threads libtorch used.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub torch_threads: Option<usize>,
    /// `check`'s trace.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub trace: Option<String>,
    /// `train`'s share of samples held out for validation.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub val_split: Option<f64>,
    /// Weight decay λ.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "de::weight_decay")]
    pub weight_decay: Option<f64>,
}

impl RunManifest {
    /// The network's fields: layers, activations, bias, loss, label_smoothing and dtype (not the
    /// initialisation, which only a trained run has).
    pub fn of_spec(spec: &Spec) -> RunManifest {
        RunManifest {
            layers: Some(spec.widths().to_vec()),
            activations: Some(ActivationNames::List(
                spec.activations().iter().map(|a| a.name().to_string()).collect(),
            )),
            bias: Some(spec.bias()),
            loss: Some(spec.loss()),
            label_smoothing: Some(spec.label_smoothing()),
            dtype: Some(spec.dtype()),
            ..RunManifest::default()
        }
    }

    /// With the optimizer's fields, by PyTorch's names: `optimizer`, `lr`, `weight_decay`, and the
    /// hyperparameters the optimizer takes (the others are left out).
    pub fn with_optim(mut self, c: &OptimConfig) -> RunManifest {
        self.optimizer = Some(c.kind);
        self.lr = Some(c.lr);
        self.weight_decay = Some(c.weight_decay);
        match c.kind {
            OptimizerKind::Sgd => {
                self.momentum = Some(c.momentum);
                self.dampening = Some(c.dampening);
                self.nesterov = Some(c.nesterov);
            }
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                self.betas = Some([c.betas.0, c.betas.1]);
                self.eps = Some(c.eps);
                self.amsgrad = Some(c.amsgrad);
            }
            OptimizerKind::RmsProp => {
                self.alpha = Some(c.alpha);
                self.eps = Some(c.eps);
                self.momentum = Some(c.momentum);
                self.centered = Some(c.centered);
            }
        }
        self
    }

    /// Reads a manifest from JSON text. Errors name the field that does not parse.
    pub fn from_json(text: &str) -> Result<RunManifest> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| anyhow!("config is not JSON ({e})"))?;
        if !value.is_object() {
            bail!("config is not a JSON object");
        }
        // From the parsed value, so that errors carry the field's name and no text position.
        RunManifest::deserialize(value).map_err(|e| anyhow!("{e}"))
    }

    /// The JSON text on one line (a trace's metadata).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a manifest serialises")
    }

    /// The network it describes: `layers`, `activations`, `bias`, `loss`, `dtype` and the optional
    /// `label_smoothing`. Errors name the field.
    pub fn spec(&self) -> Result<Spec> {
        let missing = |name: &str| anyhow!("config has no field {name:?}");
        let layers = self.layers.clone().ok_or_else(|| missing("layers"))?;
        if layers.len() < 2 {
            bail!("config.layers needs at least two widths, got {layers:?}");
        }
        let depth = layers.len() - 1;
        let activations = match self.activations.as_ref().ok_or_else(|| missing("activations"))? {
            ActivationNames::One(s) => parse_activations(s, depth)?,
            ActivationNames::List(names) => names
                .iter()
                .enumerate()
                .map(|(k, n)| n.parse::<Activation>().map_err(|e| anyhow!("config.activations[{k}]: {e}")))
                .collect::<Result<_>>()?,
        };
        let bias = self.bias.ok_or_else(|| missing("bias"))?;
        let loss = self.loss.ok_or_else(|| missing("loss"))?;
        let dtype = self.dtype.ok_or_else(|| missing("dtype"))?;
        let spec = Spec::new(layers, activations)
            .map_err(|e| e.context("config"))?
            .with_bias(bias)
            .with_loss(loss)
            .with_label_smoothing(self.label_smoothing.unwrap_or(0.0))
            .with_dtype(dtype);
        spec.check_loss().map_err(|e| e.context("config"))?;
        Ok(spec)
    }

    /// The learning rate, which a trace must give: a finite number > 0.
    pub fn required_lr(&self) -> Result<f64> {
        let lr = self.lr.ok_or_else(|| anyhow!("config has no field \"lr\""))?;
        if !(lr.is_finite() && lr > 0.0) {
            bail!("config.lr must be a finite number > 0");
        }
        Ok(lr)
    }

    /// The optimizer it describes with learning rate `lr` (missing `optimizer`: plain SGD; missing
    /// hyperparameters: PyTorch's defaults), validated.
    pub fn optim(&self, lr: f64) -> Result<OptimConfig> {
        let mut c = OptimConfig::new(self.optimizer.unwrap_or(OptimizerKind::Sgd), lr);
        c.momentum = self.momentum.unwrap_or(c.momentum);
        c.dampening = self.dampening.unwrap_or(c.dampening);
        c.weight_decay = self.weight_decay.unwrap_or(c.weight_decay);
        c.eps = self.eps.unwrap_or(c.eps);
        c.alpha = self.alpha.unwrap_or(c.alpha);
        c.nesterov = self.nesterov.unwrap_or(c.nesterov);
        c.amsgrad = self.amsgrad.unwrap_or(c.amsgrad);
        c.centered = self.centered.unwrap_or(c.centered);
        if let Some([b1, b2]) = self.betas {
            c.betas = (b1, b2);
        }
        c.validate().map_err(|e| e.context("config"))?;
        Ok(c)
    }
}

/// Serialises through a JSON value, whose keys come out in alphabetical order.
fn sorted<S: Serializer, T: Serialize>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(v).map_err(serde::ser::Error::custom)?.serialize(s)
}

/// A field no reader depends on: None when absent or when it does not parse.
fn lenient<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// [`lenient`], keeping `null` apart from absent: `Some(None)`.
fn lenient_nullable<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// A field a reader depends on: an error naming it (`config.NAME: …`) when it does not parse.
fn strict<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
    name: &str,
    what: &str,
) -> Result<Option<T>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    serde_json::from_value(v.clone())
        .map(Some)
        .map_err(|_| D::Error::custom(format!("config.{name} must be {what}, got {v}")))
}

/// A name a reader depends on, parsed as the command line parses it (any case, trimmed).
fn named<'de, D: Deserializer<'de>, T: FromStr>(d: D, name: &str) -> Result<Option<T>, D::Error>
where
    T::Err: std::fmt::Display,
{
    let s: String = strict(d, name, "a string")?.unwrap_or_default();
    s.parse().map(Some).map_err(|e| D::Error::custom(format!("config.{name}: {e}")))
}

/// The strict fields' readers, one per field, each naming its field.
mod de {
    use super::*;

    macro_rules! strict_fields {
        ($($name:ident: $t:ty, $what:literal;)*) => {$(
            pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
                strict(d, stringify!($name), $what)
            }
        )*};
    }
    strict_fields! {
        activations: ActivationNames, "a list of names";
        alpha: f64, "a number";
        amsgrad: bool, "true or false";
        betas: [f64; 2], "a list of two numbers";
        bias: bool, "true or false";
        centered: bool, "true or false";
        dampening: f64, "a number";
        eps: f64, "a number";
        l2: f64, "a finite number >= 0";
        label_smoothing: f64, "a number";
        layers: Vec<usize>, "a list of widths";
        lr: f64, "a number";
        momentum: f64, "a number";
        nesterov: bool, "true or false";
        reduction: String, "\"sum\" or \"mean\"";
        weight_decay: f64, "a number";
    }

    macro_rules! named_fields {
        ($($name:ident: $t:ty;)*) => {$(
            pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
                named(d, stringify!($name))
            }
        )*};
    }
    named_fields! {
        dtype: DType;
        loss: Loss;
        optimizer: OptimizerKind;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The optimizer's fields read back to the same configuration.
    #[test]
    fn optimizer_round_trip() {
        for kind in [OptimizerKind::Sgd, OptimizerKind::Adam, OptimizerKind::AdamW, OptimizerKind::RmsProp] {
            let mut c = OptimConfig::new(kind, 0.01);
            c.momentum = if kind == OptimizerKind::Adam || kind == OptimizerKind::AdamW { 0.0 } else { 0.5 };
            c.centered = kind == OptimizerKind::RmsProp;
            c.amsgrad = kind == OptimizerKind::AdamW;
            let m = RunManifest::default().with_optim(&c);
            let back = RunManifest::from_json(&m.to_json()).unwrap();
            assert_eq!(back, m);
            assert_eq!(back.optim(back.required_lr().unwrap()).unwrap(), c);
        }
    }

    /// The keys come out in alphabetical order, as a JSON object's keys sort.
    #[test]
    fn keys_are_alphabetical() {
        let spec = Spec::new(vec![2, 3, 2], vec![Activation::Tanh, Activation::Identity]).unwrap();
        let mut m = RunManifest::of_spec(&spec).with_optim(&OptimConfig::new(OptimizerKind::Adam, 0.1));
        m.tolerance = Some(Judge::Fixed { rtol: 1e-3, atol: 1e-9 });
        m.inject_fault = Some(None);
        m.targets = Some(Some(2));
        m.implementation = Some("manual".into());
        let text = m.to_json();
        let sorted =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap()).unwrap();
        assert_eq!(text, sorted);
        assert!(text.contains("\"inject_fault\":null"), "{text}");
        assert_eq!(RunManifest::from_json(&text).unwrap(), m);
    }

    /// A field a reader uses names itself when it does not parse; others are ignored.
    #[test]
    fn errors_name_the_field() {
        let e = RunManifest::from_json(r#"{"layers": "2,1"}"#).unwrap_err().to_string();
        assert!(e.starts_with("config.layers must be a list of widths"), "{e}");
        let e = RunManifest::from_json(r#"{"loss": "l1"}"#).unwrap_err().to_string();
        assert!(e.starts_with("config.loss: unknown loss"), "{e}");
        let m = RunManifest::from_json(r#"{"seed": "x", "init": "kaiming", "loss": "MSE"}"#).unwrap();
        assert_eq!((m.seed, m.init, m.loss), (None, None, Some(Loss::Mse)));
    }
}
