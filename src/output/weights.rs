//! Saving and loading trained weights as safetensors: `W{k}` (n_{k−1} × n_k, the seed's
//! orientation) and `b{k}`, in the network's dtype, with the spec as JSON metadata.

use anyhow::{bail, Context, Result};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

use crate::harness::manifest::RunManifest;
use crate::harness::trace::TraceWriter;
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::model::params::{Layer, Params};
use crate::model::spec::{DType, Spec};

/// Writes `params` to `path` atomically, with the run's manifest as metadata.
pub fn save<T: Scalar>(path: &Path, params: &Params<T>, config: &RunManifest) -> Result<()> {
    let mut w = TraceWriter::new();
    for (k, layer) in params.layers.iter().enumerate() {
        let (r, c) = layer.w.shape();
        w.add(format!("W{}", k + 1), vec![r, c], layer.w.as_slice());
        if let Some(b) = &layer.b {
            w.add(format!("b{}", k + 1), vec![b.len()], b);
        }
    }
    w.write(path, config)
}

/// What a weights file says of itself, from the run configuration `train` writes as its metadata.
#[derive(Clone, Debug)]
pub struct Saved {
    /// The network (widths, activations, bias, loss, label smoothing, dtype).
    pub spec: Spec,
    /// `--dataset` it was trained on.
    pub dataset: Option<String>,
    /// `--samples` of that dataset.
    pub samples: Option<usize>,
}

/// The network and data a weights file was saved with; None when it carries no readable run
/// configuration (weights written by other tools).
pub fn saved(path: &Path) -> Result<Option<Saved>> {
    let at = || path.display();
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", at()))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a safetensors file ({e:?})", at()))?;
    let Some(config) = meta.metadata().as_ref().and_then(|m| m.get("config")) else { return Ok(None) };
    let Ok(config) = RunManifest::from_json(config) else { return Ok(None) };
    let Ok(spec) = config.spec() else { return Ok(None) };
    Ok(Some(Saved { spec, dataset: config.dataset, samples: config.samples }))
}

/// Reads weights for `spec` from `path`; errors name the file and the tensor whose name, shape
/// or dtype does not fit.
pub fn load<T: Scalar>(path: &Path, spec: &Spec) -> Result<Params<T>> {
    let at = || path.display();
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", at()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a safetensors file ({e:?})", at()))?;
    let want = match T::DTYPE {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
    };
    let read = |name: &str, shape: &[usize]| -> Result<Vec<T>> {
        let t =
            st.tensor(name).map_err(|_| anyhow::anyhow!("{}: no tensor {name} (the spec needs it)", at()))?;
        if t.shape() != shape {
            bail!("{}: {name} has shape {:?}, the spec needs {:?}", at(), t.shape(), shape);
        }
        if t.dtype() != want {
            bail!("{}: {name} is {:?}, the run is {}", at(), t.dtype(), T::DTYPE);
        }
        let width = std::mem::size_of::<T>();
        Ok(t.data()
            .chunks_exact(width)
            .map(|c| match T::DTYPE {
                DType::F32 => T::of(f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64),
                DType::F64 => T::of(f64::from_le_bytes(c.try_into().expect("8 bytes"))),
            })
            .collect())
    };
    let mut layers = Vec::with_capacity(spec.depth());
    for (k, p) in spec.widths().windows(2).enumerate() {
        let k = k + 1;
        let w = Matrix::from_vec(p[0], p[1], read(&format!("W{k}"), &[p[0], p[1]])?);
        let b = if spec.bias() { Some(read(&format!("b{k}"), &[p[1]])?) } else { None };
        layers.push(Layer { w, b });
    }
    let expected = spec.depth() * if spec.bias() { 2 } else { 1 };
    if st.len() != expected {
        let extra: Vec<String> = st
            .names()
            .into_iter()
            .filter(|n| {
                !(1..=spec.depth()).any(|k| **n == format!("W{k}") || (spec.bias() && **n == format!("b{k}")))
            })
            .cloned()
            .collect();
        bail!(
            "{}: unexpected tensors {extra:?} for a network of {} layers{}",
            at(),
            spec.depth(),
            if spec.bias() { "" } else { " without bias" }
        );
    }
    Ok(Params { layers })
}
