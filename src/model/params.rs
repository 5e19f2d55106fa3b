//! The trainable parameters w = {W^1..W^L} (and b^1..b^L), and their seeded initialisation.
//!
//! The same type holds gradients ∂E/∂W^k, ∂E/∂b^k: they have the parameters' shapes.

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::model::spec::{Init, Spec};

/// One layer's parameters: `W^k` (`n_{k−1} × n_k`, the seed's orientation) and `b^k` (`n_k`) when
/// the network has biases.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer<T> {
    /// `W^k`: row i is input unit i, column j output unit j.
    pub w: Matrix<T>,
    /// `b^k`, present exactly when the spec has bias.
    pub b: Option<Vec<T>>,
}

impl<T: Scalar> Layer<T> {
    /// One of the layer's tensors, flattened: W^k row-major, or (with `bias`) b^k (empty when the
    /// layer has none). What the optimizers walk entry by entry.
    pub fn part(&self, bias: bool) -> &[T] {
        if bias {
            self.b.as_deref().unwrap_or(&[])
        } else {
            self.w.as_slice()
        }
    }

    /// [`Layer::part`], mutable.
    pub fn part_mut(&mut self, bias: bool) -> &mut [T] {
        if bias {
            self.b.as_deref_mut().unwrap_or(&mut [])
        } else {
            self.w.as_mut_slice()
        }
    }
}

/// Parameters (or gradients) of every layer; `layers[k − 1]` is layer k.
#[derive(Clone, Debug, PartialEq)]
pub struct Params<T> {
    /// Layers 1..L.
    pub layers: Vec<Layer<T>>,
}

impl<T: Scalar> Params<T> {
    /// All zeros, in the shapes of `spec`.
    pub fn zeros(spec: &Spec) -> Params<T> {
        let layers = spec
            .widths()
            .windows(2)
            .map(|p| Layer { w: Matrix::zeros(p[0], p[1]), b: spec.bias().then(|| vec![T::zero(); p[1]]) })
            .collect();
        Params { layers }
    }

    /// Freshly initialised weights, reproducible from `spec.seed()` alone, on any machine: a
    /// ChaCha8 stream, drawn in f64 (then rounded to `T`), layer by layer, W^k row-major then b^k.
    /// So an f32 and an f64 network of the same spec start from the same weights, up to rounding.
    pub fn init(spec: &Spec) -> Params<T> {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed());
        let mut params = Params::zeros(spec);
        for layer in &mut params.layers {
            let (fan_in, fan_out) = layer.w.shape();
            let (fan_in, fan_out) = (fan_in as f64, fan_out as f64);
            for w in layer.w.as_mut_slice() {
                *w = T::of(match spec.init() {
                    Init::Torch => rng.gen_range(-1.0..1.0) / fan_in.sqrt(),
                    Init::Xavier => rng.gen_range(-1.0..1.0) * (6.0 / (fan_in + fan_out)).sqrt(),
                    Init::He => rng.sample::<f64, _>(StandardNormal) * (2.0 / fan_in).sqrt(),
                });
            }
            if let Some(b) = &mut layer.b {
                for v in b {
                    *v = T::of(rng.gen_range(-1.0..1.0) / fan_in.sqrt());
                }
            }
        }
        params
    }

    /// Checks that these parameters have exactly the shapes `spec` describes; errors name the
    /// first layer and tensor that differ.
    pub fn check_shapes(&self, spec: &Spec) -> Result<()> {
        if self.layers.len() != spec.depth() {
            bail!("parameters have {} layers, the spec {}", self.layers.len(), spec.depth());
        }
        for (k, (layer, p)) in self.layers.iter().zip(spec.widths().windows(2)).enumerate() {
            let k = k + 1;
            if layer.w.shape() != (p[0], p[1]) {
                bail!("W{k} is {:?}, the spec needs {}×{}", layer.w.shape(), p[0], p[1]);
            }
            match (&layer.b, spec.bias()) {
                (Some(b), true) if b.len() != p[1] => {
                    bail!("b{k} has {} entries, the spec needs {}", b.len(), p[1])
                }
                (Some(_), false) => bail!("b{k} is present but the spec has no bias"),
                (None, true) => bail!("b{k} is missing but the spec has bias"),
                _ => {}
            }
        }
        Ok(())
    }

    /// The SGD update of eq. (6)'s gradient, ΔW^k = −η ∂E/∂W^k (and Δb^k = −η ∂E/∂b^k), in place.
    pub fn sgd_update(&mut self, grads: &Params<T>, lr: T) {
        crate::kernels::simd::dispatch(
            #[inline(always)]
            || {
                for (p, g) in self.layers.iter_mut().zip(&grads.layers) {
                    for (w, &dw) in p.w.as_mut_slice().iter_mut().zip(g.w.as_slice()) {
                        *w = *w - lr * dw;
                    }
                    if let (Some(b), Some(db)) = (&mut p.b, &g.b) {
                        for (b, &db) in b.iter_mut().zip(db) {
                            *b = *b - lr * db;
                        }
                    }
                }
            },
        )
    }

    /// Copies every entry of `other` (the same shapes) into `self`, allocating nothing.
    pub fn copy_from(&mut self, other: &Params<T>) {
        for (l, o) in self.layers.iter_mut().zip(&other.layers) {
            l.w.as_mut_slice().copy_from_slice(o.w.as_slice());
            if let (Some(b), Some(ob)) = (&mut l.b, &o.b) {
                b.copy_from_slice(ob);
            }
        }
    }

    /// Every entry, layer by layer, W^k row-major then b^k (the order [`Params::set_flat`] reads).
    pub fn flat(&self) -> Vec<T> {
        let mut out = Vec::new();
        for l in &self.layers {
            out.extend_from_slice(l.w.as_slice());
            if let Some(b) = &l.b {
                out.extend_from_slice(b);
            }
        }
        out
    }

    /// Overwrites every entry from `flat`, in the order of [`Params::flat`].
    pub fn set_flat(&mut self, flat: &[T]) {
        let mut it = flat.iter().copied();
        for l in &mut self.layers {
            for w in l.w.as_mut_slice() {
                *w = it.next().expect("set_flat: too few entries");
            }
            for b in l.b.iter_mut().flatten() {
                *b = it.next().expect("set_flat: too few entries");
            }
        }
        assert!(it.next().is_none(), "set_flat: too many entries");
    }

    /// Casts every entry to another scalar type.
    pub fn cast<U: Scalar>(&self) -> Params<U> {
        Params {
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    w: l.w.cast(),
                    b: l.b.as_ref().map(|b| b.iter().map(|&v| U::of(v.to64())).collect()),
                })
                .collect(),
        }
    }
}
