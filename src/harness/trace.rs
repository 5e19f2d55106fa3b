//! The step-by-step trace, as a safetensors file a Python/Jupyter user can load.
//!
//! Layout (seed orientation: W^k is n_{k−1} × n_k; t = 0..T−1; k = 1..L; the run's dtype, sample
//! indices int64): `x` [N, n0], `y` [N, nL], `init.W{k}`, `init.b{k}`, `batch.{t}`,
//! `manual.loss` and `torch.loss` \[T\] (lockstep, before the update), `manual.step{t}.dW{k}`,
//! `.db{k}`, `.W{k}`, `.b{k}` (the last two after the update), the same under `torch.` (lockstep,
//! at the manual weights), and `torch_free.step{t}.W{k}` / `.b{k}` (the independent trajectory).
//! The metadata key `config` holds the run's configuration as a JSON object, a
//! [`RunManifest`].
//!
//! A trace recorded elsewhere (`python/backprop_trace.py`) may also carry `lr` \[T\] (f64, every
//! step's learning rate) and, in `config`, `reduction` (`"mean"`: half-sse divided by the batch's
//! sample count) and `l2` (λ/2 Σ_k ‖W^k‖² on the weights only): see [`Conventions`].

use anyhow::{anyhow, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

use crate::fsio;
use crate::harness::manifest::RunManifest;
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::model::optim::OptimConfig;
use crate::model::params::{Layer, Params};
use crate::model::spec::{DType, Spec};

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

    /// Writes the safetensors file atomically, with the run's manifest as the metadata `config`.
    pub fn write(&self, path: &Path, config: &RunManifest) -> Result<()> {
        let views = self
            .tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| anyhow!("trace tensor {name}: {e:?}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([("config".to_string(), config.to_json())]);
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

/// One recorded step of a trace written by any implementation (this crate's `compare --trace`,
/// or `python/backprop_trace.py`): what the implementation computed, as f64.
#[derive(Clone, Debug)]
pub struct RecordedStep {
    /// Step t.
    pub step: usize,
    /// The batch's sample indices.
    pub batch: Vec<usize>,
    /// E before the update, when the trace has `manual.loss`.
    pub loss: Option<f64>,
    /// Whether ∂E/∂W^k, ∂E/∂b^k are recorded ([`Recorded::grads`] reads them).
    pub has_grads: bool,
    /// Whether W^k, b^k after the update are recorded ([`Recorded::after`] reads them).
    pub has_after: bool,
    /// The step's learning rate η_t: the trace's `lr` \[T\] where it has one, else `config.lr`.
    pub lr: f64,
}

/// How a trace's loss is defined beyond the network's [`Spec`]: the conventions of code written
/// elsewhere, from `config.reduction` and `config.l2`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Conventions {
    /// `reduction = "mean"` (half-sse only): E = 1/(2m) Σ_n |ŷ_n − y_n|² over the m samples of the
    /// batch. False: the sum, the sheet's eq. (5).
    pub mean: bool,
    /// λ of the penalty λ/2 Σ_k ‖W^k‖² on the weights only (biases untouched), part of E and of
    /// ∂E/∂W^k = … + λW^k; 0 for none.
    pub l2: f64,
}

impl Conventions {
    /// Whether the loss is the plain one of the spec (sum, no penalty).
    pub fn is_plain(&self) -> bool {
        !self.mean && self.l2 == 0.0
    }

    /// The conventions a run's manifest gives: `reduction` ("sum" or "mean", half-sse only) and
    /// `l2` (≥ 0). Errors name the field.
    pub fn of(config: &RunManifest, spec: &Spec) -> Result<Conventions> {
        let mean = match config.reduction.as_deref() {
            None | Some("sum") => false,
            Some("mean") if spec.loss() == crate::model::spec::Loss::HalfSse => true,
            Some("mean") => anyhow::bail!(
                "config.reduction: \"mean\" applies to loss half-sse only ({} is a mean already)",
                spec.loss().name()
            ),
            Some(v) => anyhow::bail!("config.reduction must be \"sum\" or \"mean\", got {v:?}"),
        };
        let l2 = match config.l2 {
            None => 0.0,
            Some(l) if l.is_finite() && l >= 0.0 => l,
            Some(l) => anyhow::bail!("config.l2 must be a finite number >= 0, got {l}"),
        };
        Ok(Conventions { mean, l2 })
    }
}

/// A trace read back: the network, the data, the initial weights and every recorded step.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The network (from `config`: layers, activations, bias, loss, label_smoothing, dtype).
    pub spec: Spec,
    /// The optimizer (from `config`: lr, and optimizer with its hyperparameters; plain SGD when
    /// `optimizer` is absent).
    pub optim: OptimConfig,
    /// Inputs [N, n0] and targets [N, nL].
    pub data: crate::data::Dataset,
    /// `init.W{k}`, `init.b{k}`.
    pub init: Params<f64>,
    /// The recorded steps, in order.
    pub steps: Vec<RecordedStep>,
    /// The loss's conventions (`config.reduction`, `config.l2`).
    pub conventions: Conventions,
    // The file, from which each step's gradients and weights are read when they are needed.
    source: std::sync::Arc<Source>,
}

/// The configuration of a trace and what it says: the network, the learning rate, the optimizer
/// and the loss's conventions. Errors name the field.
fn read_config(
    at: &str,
    meta: Option<&HashMap<String, String>>,
) -> Result<(Spec, f64, OptimConfig, Conventions)> {
    let text = meta.and_then(|m| m.get("config")).ok_or_else(|| {
        anyhow!("{at}: no metadata key \"config\" (a JSON object with layers, activations, bias, loss, lr, dtype)")
    })?;
    let manifest = RunManifest::from_json(text).with_context(|| at.to_string())?;
    let spec = manifest.spec().with_context(|| at.to_string())?;
    let lr = manifest.required_lr().with_context(|| at.to_string())?;
    let optim = manifest.optim(lr).with_context(|| at.to_string())?;
    let conventions = Conventions::of(&manifest, &spec).with_context(|| at.to_string())?;
    Ok((spec, lr, optim, conventions))
}

/// Reads a trace for checking. Every problem is an error naming the tensor or config field: a
/// missing or misshapen tensor, a dtype other than the config's, a config that disagrees with the
/// shapes, an unknown activation or loss, a batch index out of range, a step with nothing to check,
/// a gradient or weight recorded for some layers only.
pub fn read(path: &Path) -> Result<Recorded> {
    let at = path.display().to_string();
    let (st, meta) = Source::open(path)?;
    let (spec, lr, optim, conventions) = read_config(&at, meta.as_ref())?;
    let (layers, depth) = (spec.widths().to_vec(), spec.depth());
    let want = wire_dtype(spec.dtype());
    let has = |name: &str| st.info(name).is_some();
    if !has("x") && has("W1") && !has("init.W1") {
        anyhow::bail!(
            "{at}: this is a weights file (W1, b1, … as `train` saves them), not a trace; record a trace with \
             python/backprop_trace.py from your own code, or `compare --trace`, and check that"
        );
    }
    let x_shape = st.info("x").ok_or_else(|| anyhow!("{at}: no tensor x"))?.shape.clone();
    let n = match x_shape.as_slice() {
        [n, n0] if *n0 == layers[0] && *n > 0 => *n,
        s => anyhow::bail!("{at}: x has shape {s:?}, config.layers needs [N, {}]", layers[0]),
    };
    let x = Matrix::from_vec(n, layers[0], st.floats("x", want, &[n, layers[0]])?);
    let y = Matrix::from_vec(n, layers[depth], st.floats("y", want, &[n, layers[depth]])?);
    param_set(&st, &spec, "init", "W", "b")?
        .then_some(())
        .ok_or_else(|| anyhow!("{at}: no tensor init.W1"))?;
    let init = load_params(&st, &spec, "init", "W", "b")?;
    let mut step_ids: Vec<usize> = st
        .names()
        .iter()
        .filter_map(|n| {
            n.strip_prefix("batch.").map(|t| {
                t.parse::<usize>().map_err(|_| anyhow!("{at}: tensor {n}: the step is not a number"))
            })
        })
        .collect::<Result<_>>()?;
    step_ids.sort_unstable();
    let Some(&last) = step_ids.last() else { anyhow::bail!("{at}: no tensor batch.0 (no step is recorded)") };
    let losses = has("manual.loss").then(|| read_losses(&st, want, last + 1)).transpose()?;
    let lrs = has("lr").then(|| read_lrs(&st, last + 1)).transpose()?;
    let varying = lrs.as_ref().is_some_and(|v| v.iter().any(|&l| l != lr));
    if (varying || !conventions.is_plain()) && !optim.is_plain_sgd() {
        let what = if varying {
            "a learning rate per step (tensor lr)"
        } else if conventions.mean {
            "config.reduction \"mean\""
        } else {
            "config.l2"
        };
        anyhow::bail!(
            "{at}: {what} is checked with plain SGD only (optimizer sgd, no momentum, weight_decay 0), the \
             config says {}",
            optim.describe()
        );
    }
    let mut steps = Vec::with_capacity(step_ids.len());
    for t in step_ids {
        let batch = read_batch(&st, t, n)?;
        let has_grads = param_set(&st, &spec, &format!("manual.step{t}"), "dW", "db")?;
        let has_after = param_set(&st, &spec, &format!("manual.step{t}"), "W", "b")?;
        let loss = losses.as_ref().map(|l| l[t]);
        if !has_grads && !has_after && loss.is_none() {
            anyhow::bail!("{at}: step {t} records nothing to check (no manual.step{t}.dW1, manual.step{t}.W1 or manual.loss)");
        }
        let lr = lrs.as_ref().map_or(lr, |v| v[t]);
        steps.push(RecordedStep { step: t, batch, loss, has_grads, has_after, lr });
    }
    let data = crate::data::Dataset { x, y };
    crate::data::check_targets(&data, &spec, "y").with_context(|| at.clone())?;
    Ok(Recorded { spec, optim, data, init, steps, conventions, source: std::sync::Arc::new(st) })
}

/// The safetensors dtype of a run's dtype.
fn wire_dtype(dtype: DType) -> Dtype {
    match dtype {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
    }
}

/// Whether the parameter set under `prefix` (`{prefix}.{w}{k}`, `{prefix}.{b}{k}`) is recorded:
/// false when none of its tensors is there, an error when some are, or when one has the wrong
/// dtype or shape (read from the header; the values are read when a step is replayed).
fn param_set(st: &Source, spec: &Spec, prefix: &str, w: &str, b: &str) -> Result<bool> {
    let at = st.path.display();
    let (layers, depth, bias) = (spec.widths(), spec.depth(), spec.bias());
    let has = |name: &str| st.info(name).is_some();
    let names: Vec<String> = (1..=depth)
        .flat_map(|k| {
            let mut v = vec![format!("{prefix}.{w}{k}")];
            if bias {
                v.push(format!("{prefix}.{b}{k}"));
            }
            v
        })
        .collect();
    let present: Vec<&String> = names.iter().filter(|n| has(n)).collect();
    let stray_bias = || (1..=depth).find(|k| !bias && has(&format!("{prefix}.{b}{k}")));
    if present.is_empty() {
        if stray_bias().is_some() {
            anyhow::bail!("{at}: {prefix}.{b}1 is recorded but config.bias is false");
        }
        return Ok(false);
    }
    if let Some(missing) = names.iter().find(|n| !has(n)) {
        anyhow::bail!("{at}: no tensor {missing} ({} is recorded: every layer's or none)", present[0]);
    }
    if let Some(k) = stray_bias() {
        anyhow::bail!("{at}: {prefix}.{b}{k} is recorded but config.bias is false");
    }
    let want = wire_dtype(spec.dtype());
    for k in 1..=depth {
        let (r, c) = (layers[k - 1], layers[k]);
        st.check(&format!("{prefix}.{w}{k}"), want, &[r, c])?;
        if bias {
            st.check(&format!("{prefix}.{b}{k}"), want, &[c])?;
        }
    }
    Ok(true)
}

/// `manual.loss`, which must cover the `need` steps recorded.
fn read_losses(st: &Source, want: Dtype, need: usize) -> Result<Vec<f64>> {
    let at = st.path.display();
    let t = st.tensor("manual.loss").map_err(|_| anyhow!("{at}: manual.loss unreadable"))?;
    let len = t.shape().iter().product::<usize>();
    if t.shape().len() != 1 || len < need {
        anyhow::bail!("{at}: manual.loss has shape {:?}, the steps recorded need [{need}]", t.shape());
    }
    st.floats("manual.loss", want, &[len])
}

/// The tensor `lr`: every step's learning rate, f64, finite and > 0, covering the `need` steps.
fn read_lrs(st: &Source, need: usize) -> Result<Vec<f64>> {
    let at = st.path.display();
    let t = st.tensor("lr").map_err(|_| anyhow!("{at}: lr unreadable"))?;
    if t.dtype() != Dtype::F64 || t.shape().len() != 1 || t.shape()[0] < need {
        anyhow::bail!(
            "{at}: lr must be an f64 vector of every step's learning rate, [{need}], is {:?} {:?}",
            t.dtype(),
            t.shape()
        );
    }
    let v: Vec<f64> =
        t.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8"))).collect();
    if let Some(i) = v.iter().position(|l| !(l.is_finite() && *l > 0.0)) {
        anyhow::bail!("{at}: lr[{i}] is {}, must be a finite number > 0", v[i]);
    }
    Ok(v)
}

/// `batch.{t}`: a non-empty int64 vector of indices into the `n` samples.
fn read_batch(st: &Source, t: usize, n: usize) -> Result<Vec<usize>> {
    let at = st.path.display();
    let name = format!("batch.{t}");
    let bt = st.tensor(&name).map_err(|_| anyhow!("{at}: {name} unreadable"))?;
    if bt.dtype() != Dtype::I64 || bt.shape().len() != 1 || bt.shape()[0] == 0 {
        anyhow::bail!(
            "{at}: {name} must be a non-empty int64 vector of sample indices, is {:?} {:?}",
            bt.dtype(),
            bt.shape()
        );
    }
    bt.data()
        .chunks_exact(8)
        .map(|c| {
            let i = i64::from_le_bytes(c.try_into().expect("8"));
            usize::try_from(i)
                .ok()
                .filter(|&i| i < n)
                .ok_or_else(|| anyhow!("{at}: {name}: index {i} is out of range (the data has {n} samples)"))
        })
        .collect()
}

/// The W^k, b^k (or dW^k, db^k) stored under `prefix`, read from the file now; `read` has checked
/// that they are all there with the config's dtype and shapes.
fn load_params(st: &Source, spec: &Spec, prefix: &str, w: &str, b: &str) -> Result<Params<f64>> {
    let want = wire_dtype(spec.dtype());
    let widths = spec.widths();
    let layers = (1..=spec.depth())
        .map(|k| {
            let (r, c) = (widths[k - 1], widths[k]);
            Ok(Layer {
                w: Matrix::from_vec(r, c, st.floats(&format!("{prefix}.{w}{k}"), want, &[r, c])?),
                b: if spec.bias() { Some(st.floats(&format!("{prefix}.{b}{k}"), want, &[c])?) } else { None },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Params { layers })
}

impl Recorded {
    /// ∂E/∂W^k, ∂E/∂b^k of the `i`-th recorded step (`steps[i]`), when recorded: read from the
    /// trace's file now (a trace's steps are not held in memory).
    pub fn grads(&self, i: usize) -> Result<Option<Params<f64>>> {
        let s = &self.steps[i];
        s.has_grads
            .then(|| load_params(&self.source, &self.spec, &format!("manual.step{}", s.step), "dW", "db"))
            .transpose()
    }

    /// W^k, b^k after the update of the `i`-th recorded step, when recorded: read from the file now.
    pub fn after(&self, i: usize) -> Result<Option<Params<f64>>> {
        let s = &self.steps[i];
        s.has_after
            .then(|| load_params(&self.source, &self.spec, &format!("manual.step{}", s.step), "W", "b"))
            .transpose()
    }
}

/// A safetensors file read as it is needed: its header parsed and checked at opening, each
/// tensor's bytes read from the file when asked for, so that a trace larger than memory can be
/// checked step by step.
struct Source {
    path: std::path::PathBuf,
    file: std::sync::Mutex<std::fs::File>,
    // Where the tensors' data begins (8 + the header's length).
    data_start: u64,
    infos: HashMap<String, safetensors::tensor::TensorInfo>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({}, {} tensors)", self.path.display(), self.infos.len())
    }
}

/// A tensor read whole: its dtype, shape and little-endian bytes.
struct Loaded {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Loaded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> &[u8] {
        &self.data
    }
}

impl Source {
    /// Opens `path`, reads and checks the header (every tensor's bytes lie in the file and match
    /// its dtype and shape); returns the source and the header's metadata.
    fn open(path: &Path) -> Result<(Source, Option<HashMap<String, String>>)> {
        use std::io::Read;
        let at = path.display();
        let not = |why: &str| anyhow!("{at}: not a safetensors file ({why})");
        let mut file = std::fs::File::open(path).map_err(|e| anyhow!("{at}: cannot read ({e})"))?;
        let len = file.metadata().map_err(|e| anyhow!("{at}: cannot read ({e})"))?.len();
        let mut n = [0u8; 8];
        if len < 8 || file.read_exact(&mut n).is_err() {
            return Err(not("shorter than its header"));
        }
        let n = u64::from_le_bytes(n);
        if n > 100_000_000 || 8 + n > len {
            return Err(not("its header length is out of range"));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header).map_err(|e| anyhow!("{at}: cannot read ({e})"))?;
        let header = std::str::from_utf8(&header).map_err(|_| not("its header is not UTF-8"))?;
        let meta: safetensors::tensor::Metadata =
            serde_json::from_str(header).map_err(|e| not(&format!("its header: {e}")))?;
        let data_len = len - 8 - n;
        let mut infos = HashMap::new();
        for (name, info) in meta.tensors() {
            let (start, end) = info.data_offsets;
            let count = info.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let bytes = count.and_then(|c| c.checked_mul(info.dtype.size()));
            if end < start || end as u64 > data_len || bytes != Some(end - start) {
                return Err(not(&format!("tensor {name}'s data does not fit its shape or the file")));
            }
            infos.insert(name, info.clone());
        }
        let source =
            Source { path: path.to_path_buf(), file: std::sync::Mutex::new(file), data_start: 8 + n, infos };
        Ok((source, meta.metadata().clone()))
    }

    fn names(&self) -> Vec<&String> {
        self.infos.keys().collect()
    }

    fn info(&self, name: &str) -> Option<&safetensors::tensor::TensorInfo> {
        self.infos.get(name)
    }

    /// The tensor `name`, read from the file.
    fn tensor(&self, name: &str) -> Result<Loaded> {
        use std::io::{Read, Seek, SeekFrom};
        let at = self.path.display();
        let info = self.info(name).ok_or_else(|| anyhow!("{at}: no tensor {name}"))?;
        let (start, end) = info.data_offsets;
        let mut data = vec![0u8; end - start];
        let mut file = self.file.lock().map_err(|_| anyhow!("{at}: a read failed before"))?;
        file.seek(SeekFrom::Start(self.data_start + start as u64))
            .and_then(|_| file.read_exact(&mut data))
            .map_err(|e| anyhow!("{at}: cannot read {name} ({e})"))?;
        Ok(Loaded { dtype: info.dtype, shape: info.shape.clone(), data })
    }

    /// An error unless `name` is there with dtype `want` and shape `shape`.
    fn check(&self, name: &str, want: Dtype, shape: &[usize]) -> Result<()> {
        let at = self.path.display();
        let info = self.info(name).ok_or_else(|| anyhow!("{at}: no tensor {name}"))?;
        if info.dtype != want {
            anyhow::bail!("{at}: {name} is {:?}, config.dtype says {}", info.dtype, dtype_name(want));
        }
        if info.shape != shape {
            anyhow::bail!("{at}: {name} has shape {:?}, config.layers needs {shape:?}", info.shape);
        }
        Ok(())
    }

    /// The float tensor `name` (dtype `want`, shape `shape`) as f64.
    fn floats(&self, name: &str, want: Dtype, shape: &[usize]) -> Result<Vec<f64>> {
        self.check(name, want, shape)?;
        let t = self.tensor(name)?;
        Ok(match want {
            Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4")) as f64)
                .collect(),
            _ => t.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8"))).collect(),
        })
    }
}

fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::F32 => "f32",
        _ => "f64",
    }
}
