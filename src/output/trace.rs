//! The step-by-step trace, as a safetensors file a Python/Jupyter user can load.
//!
//! Layout (seed orientation: W^k is n_{k−1} × n_k; t = 0..T−1; k = 1..L; the run's dtype, sample
//! indices int64): `x` [N, n0], `y` [N, nL], `init.W{k}`, `init.b{k}`, `batch.{t}`,
//! `manual.loss` and `torch.loss` \[T\] (lockstep, before the update), `manual.step{t}.dW{k}`,
//! `.db{k}`, `.W{k}`, `.b{k}` (the last two after the update), the same under `torch.` (lockstep,
//! at the manual weights), and `torch_free.step{t}.W{k}` / `.b{k}` (the independent trajectory).
//! The metadata key `config` holds the run's configuration as a JSON object.

use anyhow::{anyhow, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

use crate::model::params::Params;
use crate::model::scalar::Scalar;
use crate::model::spec::DType;
use crate::output::fsio;

/// Tensors gathered during a run, written once at the end.
#[derive(Default)]
pub struct TraceWriter {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

fn dtype_of<T: Scalar>() -> Dtype {
    match T::DTYPE {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
    }
}

fn le_bytes<T: Scalar>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(values));
    for &v in values {
        match T::DTYPE {
            DType::F32 => out.extend_from_slice(&(v.to64() as f32).to_le_bytes()),
            DType::F64 => out.extend_from_slice(&v.to64().to_le_bytes()),
        }
    }
    out
}

impl TraceWriter {
    /// An empty trace.
    pub fn new() -> TraceWriter {
        TraceWriter::default()
    }

    /// Adds a floating-point tensor of the given shape.
    pub fn add<T: Scalar>(&mut self, name: String, shape: Vec<usize>, values: &[T]) {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        self.tensors.push((name, dtype_of::<T>(), shape, le_bytes(values)));
    }

    /// Adds an int64 vector (sample indices).
    pub fn add_indices(&mut self, name: String, idx: &[usize]) {
        let bytes = idx.iter().flat_map(|&i| (i as i64).to_le_bytes()).collect();
        self.tensors.push((name, Dtype::I64, vec![idx.len()], bytes));
    }

    /// Adds every W^k (and b^k) of `params` as `{prefix}.{W|dW}{k}` and `{prefix}.{b|db}{k}`.
    pub fn add_params<T: Scalar>(&mut self, prefix: &str, params: &Params<T>, grads: bool) {
        let (w, b) = if grads { ("dW", "db") } else { ("W", "b") };
        for (k, layer) in params.layers.iter().enumerate() {
            let (r, c) = layer.w.shape();
            self.add(format!("{prefix}.{w}{}", k + 1), vec![r, c], layer.w.as_slice());
            if let Some(bias) = &layer.b {
                self.add(format!("{prefix}.{b}{}", k + 1), vec![bias.len()], bias);
            }
        }
    }

    /// Writes the safetensors file atomically, with `config` (a JSON object) as metadata.
    pub fn write(&self, path: &Path, config: &serde_json::Value) -> Result<()> {
        let views = self
            .tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| anyhow!("trace tensor {name}: {e:?}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([("config".to_string(), config.to_string())]);
        let bytes = safetensors::serialize(views, &Some(metadata)).map_err(|e| anyhow!("trace: {e:?}"))?;
        fsio::write_atomic(path, &bytes)
    }
}

/// Bytes a trace of `steps` steps would take for a network of `params` parameters (weights and
/// biases) and `weights` weights, `n` samples with `n_in + n_out` columns, batches of `batch`:
/// 5 copies of the parameters per step (manual and torch gradients and updates, and the free
/// trajectory's weights), the batch indices, the data and the initial weights.
pub fn estimate_bytes(steps: usize, params: usize, batch: usize, n: usize, cols: usize, elem: usize) -> u128 {
    let per_step = 5 * params as u128 * elem as u128 + batch as u128 * 8 + 2 * elem as u128;
    steps as u128 * per_step + (n * cols + params) as u128 * elem as u128
}
