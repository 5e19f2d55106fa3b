//! Training data: built-in datasets (sine, xor, two spirals, teacher) and CSV files.
//!
//! Every dataset is generated in f64 from a seed and cast to the run's dtype, so the same flags
//! give the same data on every machine.

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::field_bail;
use crate::kernels::matrix::Matrix;
use crate::kernels::scalar::Scalar;
use crate::manual::Mlp;
use crate::model::activation::Activation;
use crate::model::spec::Spec;

/// Which data to train on.
#[derive(Clone, Debug, PartialEq)]
pub enum DatasetKind {
    /// y = sin(x), x uniform in [−π, π]: 1 input, 1 target.
    Sine,
    /// The four corners of the unit square with Gaussian noise (σ = 0.1), target = x1 XOR x2 in
    /// {0, 1}: 2 inputs, 1 target.
    Xor,
    /// Two interleaved spirals, one-hot class: 2 inputs, 2 targets.
    Spirals,
    /// Inputs uniform in [−1, 1]^{n0}, targets from a random tanh "teacher" MLP of the network's
    /// own widths (seeded apart from the student): any n0 and nL.
    Teacher,
    /// A CSV file: one sample per row, the last `--targets` columns are targets, header optional.
    Csv(PathBuf),
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetKind::Sine => f.write_str("sine"),
            DatasetKind::Xor => f.write_str("xor"),
            DatasetKind::Spirals => f.write_str("spirals"),
            DatasetKind::Teacher => f.write_str("teacher"),
            DatasetKind::Csv(p) => write!(f, "csv:{}", p.display()),
        }
    }
}

impl FromStr for DatasetKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "sine" => DatasetKind::Sine,
            "xor" => DatasetKind::Xor,
            "spirals" => DatasetKind::Spirals,
            "teacher" => DatasetKind::Teacher,
            other => match other.strip_prefix("csv:") {
                Some(p) if !p.is_empty() => DatasetKind::Csv(PathBuf::from(p)),
                _ => bail!("dataset: unknown {s:?} (expected sine, xor, spirals, teacher or csv:PATH)"),
            },
        })
    }
}

/// Inputs and targets, one sample per row, in f64.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Inputs x_n (N × n0).
    pub x: Matrix<f64>,
    /// Targets ŷ_n (N × nL).
    pub y: Matrix<f64>,
}

impl Dataset {
    /// Number of samples N.
    pub fn len(&self) -> usize {
        self.x.rows()
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.x.rows() == 0
    }
    /// How the targets classify, if they do: one-hot rows (argmax), or a single {0, 1} column
    /// (threshold ½).
    pub fn classes(&self) -> Option<Classes> {
        let y = self.y.as_slice();
        if y.iter().any(|&v| v != 0.0 && v != 1.0) {
            return None;
        }
        if self.y.cols() == 1 {
            return Some(Classes::Binary);
        }
        (0..self.y.rows())
            .all(|r| self.y.row(r).iter().filter(|&&v| v == 1.0).count() == 1)
            .then_some(Classes::OneHot)
    }
}

/// Whether `data`'s targets suit `spec`'s loss: the cross-entropy needs each target row to be a
/// probability vector (entries ≥ 0 summing to 1 within 10⁻³; one-hot rows are). `name` names the
/// data in the error.
pub fn check_targets(data: &Dataset, spec: &crate::model::spec::Spec, name: &str) -> Result<()> {
    if spec.loss() != crate::model::spec::Loss::CrossEntropy {
        return Ok(());
    }
    for r in 0..data.y.rows() {
        let row = data.y.row(r);
        let sum: f64 = row.iter().sum();
        if row.iter().any(|&v| v.is_nan() || v < 0.0) || (sum - 1.0).abs() > 1e-3 {
            field_bail!(
                "loss",
                "{{loss=cross-entropy}}: target row {r} of {name} is {row:?}, not one-hot or a probability \
                 vector (entries >= 0 summing to 1)"
            );
        }
    }
    Ok(())
}

/// Splits `data` into training and validation samples: a `share` of them (rounded, at least one)
/// drawn at random with `seed` for validation, the rest for training, each in the original order.
/// `share` 0 keeps everything for training. Errors when `share` is outside [0, 1) or a side would
/// be empty.
pub fn split(data: &Dataset, share: f64, seed: u64) -> Result<(Dataset, Option<Dataset>)> {
    if !(0.0..1.0).contains(&share) {
        field_bail!("val_split", "{{val_split}}: must lie in [0, 1), got {share}");
    }
    if share == 0.0 {
        return Ok((data.clone(), None));
    }
    let n = data.len();
    let n_val = ((share * n as f64).round() as usize).max(1);
    if n_val >= n {
        field_bail!("val_split", "{{val_split}} {share}: {n} samples leave none for training");
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x05a1_da7e);
    rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut rng);
    let mut val_idx = order[..n_val].to_vec();
    let mut train_idx = order[n_val..].to_vec();
    val_idx.sort_unstable();
    train_idx.sort_unstable();
    let take = |idx: &[usize]| {
        let mut x = Matrix::zeros(idx.len(), data.x.cols());
        let mut y = Matrix::zeros(idx.len(), data.y.cols());
        x.gather_rows(&data.x, idx);
        y.gather_rows(&data.y, idx);
        Dataset { x, y }
    };
    Ok((take(&train_idx), Some(take(&val_idx))))
}

/// How targets encode classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classes {
    /// One column of 0/1; an output above ½ predicts 1.
    Binary,
    /// One 1 per row; the largest output predicts the class.
    OneHot,
}

impl Classes {
    /// The share of rows of `out` that predict the class of `target`.
    pub fn accuracy(self, out: &Matrix<f64>, target: &Matrix<f64>) -> f64 {
        self.accuracy_in(out, target)
    }

    /// [`Classes::accuracy`] of outputs in any dtype, read in place.
    pub fn accuracy_in<T: Scalar>(self, out: &Matrix<T>, target: &Matrix<f64>) -> f64 {
        fn argmax<U: Scalar>(r: &[U]) -> usize {
            r.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |b, (i, &v)| if v.to64() > b.1 { (i, v.to64()) } else { b })
                .0
        }
        let hits = (0..out.rows())
            .filter(|&r| match self {
                Classes::Binary => (out[(r, 0)].to64() > 0.5) == (target[(r, 0)] == 1.0),
                Classes::OneHot => argmax(out.row(r)) == argmax(target.row(r)),
            })
            .count();
        hits as f64 / out.rows().max(1) as f64
    }
}

/// Loads or generates a dataset for a network of input width `n_in` and output width `n_out`.
/// `samples` is the size of a built-in dataset; `targets` the number of target columns of a CSV.
pub fn load(
    kind: &DatasetKind,
    spec: &Spec,
    samples: usize,
    targets: Option<usize>,
    seed: u64,
) -> Result<Dataset> {
    let (n_in, n_out) = (spec.n_in(), spec.n_out());
    let fixed = |name: &str, i: usize, o: usize| -> Result<()> {
        if (n_in, n_out) != (i, o) {
            field_bail!(
                "layers",
                "dataset {name} has {i} input(s) and {o} target(s), but {{layers}} has n0 = {n_in} and nL = {n_out}"
            );
        }
        Ok(())
    };
    if !matches!(kind, DatasetKind::Csv(_)) && samples == 0 {
        field_bail!("samples", "{{samples}}: must be at least 1");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xda7a);
    let data = match kind {
        DatasetKind::Sine => {
            fixed("sine", 1, 1)?;
            let x = Matrix::from_fn(samples, 1, |_, _| {
                rng.gen_range(-std::f64::consts::PI..std::f64::consts::PI)
            });
            let y = Matrix::from_fn(samples, 1, |i, _| x[(i, 0)].sin());
            Dataset { x, y }
        }
        DatasetKind::Xor => {
            fixed("xor", 2, 1)?;
            let corners: Vec<(f64, f64)> =
                (0..samples).map(|i| ((i % 2) as f64, ((i / 2) % 2) as f64)).collect();
            let x = Matrix::from_fn(samples, 2, |i, j| {
                let c = if j == 0 { corners[i].0 } else { corners[i].1 };
                c + 0.1 * rng.sample::<f64, _>(StandardNormal)
            });
            let y = Matrix::from_fn(samples, 1, |i, _| ((corners[i].0 != corners[i].1) as u8) as f64);
            Dataset { x, y }
        }
        DatasetKind::Spirals => {
            fixed("spirals", 2, 2)?;
            let mut x = Matrix::zeros(samples, 2);
            let mut y = Matrix::zeros(samples, 2);
            for i in 0..samples {
                let class = i % 2;
                let t = (i / 2) as f64 / (samples.div_ceil(2)) as f64;
                let r = 0.1 + 0.9 * t;
                let theta = 3.0 * std::f64::consts::PI * t + class as f64 * std::f64::consts::PI;
                x[(i, 0)] = r * theta.cos() + 0.02 * rng.sample::<f64, _>(StandardNormal);
                x[(i, 1)] = r * theta.sin() + 0.02 * rng.sample::<f64, _>(StandardNormal);
                y[(i, class)] = 1.0;
            }
            Dataset { x, y }
        }
        DatasetKind::Teacher => {
            let depth = spec.depth();
            let mut acts = vec![Activation::Tanh; depth];
            acts[depth - 1] = Activation::Identity;
            let teacher_spec = Spec::new(spec.widths().to_vec(), acts)?
                .with_bias(true)
                .with_init(crate::model::spec::Init::Xavier)
                .with_seed(seed.wrapping_add(0x7eac4e5));
            let teacher = Mlp::<f64>::new(teacher_spec)?;
            let x = Matrix::from_fn(samples, n_in, |_, _| rng.gen_range(-1.0..1.0));
            let y = teacher.predict(&x);
            Dataset { x, y }
        }
        DatasetKind::Csv(path) => {
            let targets = targets.unwrap_or(n_out);
            if targets != n_out {
                field_bail!(
                    "targets",
                    "{{targets}} {targets} does not match the output width nL = {n_out} of {{layers}}"
                );
            }
            load_csv(path, n_in, n_out)?
        }
    };
    Ok(data)
}

/// Reads a CSV of `n_in + n_out` numeric columns, the last `n_out` being targets. A first row
/// that does not parse as numbers is a header. Errors name the file and line.
pub fn load_csv(path: &Path, n_in: usize, n_out: usize) -> Result<Dataset> {
    let text = std::fs::read(path).with_context(|| format!("dataset csv:{}: cannot read", path.display()))?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_slice());
    let want = n_in + n_out;
    let mut rows: Vec<f64> = Vec::new();
    let mut n = 0;
    let mut header_seen = false;
    for (line0, record) in reader.records().enumerate() {
        let line = line0 + 1;
        let at = || format!("{}:{line}", path.display());
        let record = record.with_context(|| format!("{}: not valid CSV", at()))?;
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let parsed: Vec<Option<f64>> = record.iter().map(|c| c.trim().parse::<f64>().ok()).collect();
        if n == 0 && !header_seen && parsed.iter().any(Option::is_none) {
            header_seen = true;
            continue;
        }
        if record.len() != want {
            bail!(
                "{}: {} columns, expected {want} (n0 = {n_in} inputs + nL = {n_out} targets)",
                at(),
                record.len()
            );
        }
        for (c, (cell, v)) in record.iter().zip(parsed).enumerate() {
            match v {
                Some(v) if v.is_finite() => rows.push(v),
                Some(_) => bail!("{}: column {} is {cell:?}, not a finite number", at(), c + 1),
                None => bail!("{}: column {} ({cell:?}) is not a number", at(), c + 1),
            }
        }
        n += 1;
    }
    if n == 0 {
        bail!("{}: no data rows{}", path.display(), if header_seen { " (only a header)" } else { "" });
    }
    let x = Matrix::from_fn(n, n_in, |i, j| rows[i * want + j]);
    let y = Matrix::from_fn(n, n_out, |i, j| rows[i * want + n_in + j]);
    Ok(Dataset { x, y })
}
