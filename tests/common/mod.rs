//! Helpers shared by the integration tests.
#![allow(dead_code)]

use backprop::harness::check::{TensorKind, TensorReport};
#[cfg(feature = "torch")]
use backprop::{
    harness::bound::step_bounds,
    harness::check::{compare, compare_bounded, compare_params, Divergence, Tolerance},
    manual::Batch,
    reference::RefStep,
    Mlp, Reference, Workspace,
};
use backprop::{Activation, DType, Loss, Matrix, Scalar, Spec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A batch of `n` inputs in [−1, 1] and targets in [−1, 1], seeded.
pub fn batch<T: Scalar>(spec: &Spec, n: usize, seed: u64) -> (Matrix<T>, Matrix<T>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let x = Matrix::from_fn(n, spec.n_in(), |_, _| T::of(rng.gen_range(-1.0..1.0)));
    let y = Matrix::from_fn(n, spec.n_out(), |_, _| T::of(rng.gen_range(-1.0..1.0)));
    (x, y)
}

/// Largest errors seen per tensor kind over a set of comparisons (normwise relative), and the
/// largest error ÷ tolerance of any entry.
#[derive(Default, Debug, Clone)]
pub struct Worst {
    pub loss: f64,
    pub grad: f64,
    pub weight: f64,
    pub ratio: f64,
}

impl Worst {
    pub fn absorb(&mut self, reports: &[TensorReport]) {
        for r in reports {
            let slot = match r.kind {
                TensorKind::Loss => &mut self.loss,
                TensorKind::GradW | TensorKind::GradB => &mut self.grad,
                TensorKind::W | TensorKind::B => &mut self.weight,
            };
            *slot = slot.max(r.errors.rel);
            self.ratio = self.ratio.max(r.errors.ratio);
        }
    }
    pub fn merge(&mut self, o: &Worst) {
        self.loss = self.loss.max(o.loss);
        self.grad = self.grad.max(o.grad);
        self.weight = self.weight.max(o.weight);
        self.ratio = self.ratio.max(o.ratio);
    }
}

/// Runs `steps` lockstep SGD steps of literal, batched and libtorch from the same weights and
/// compares loss, every gradient and every updated parameter at every step, literal and batched
/// against libtorch and against each other, each entry against its round-off bound (`tol`
/// None) or a fixed tolerance. Returns the worst errors, or the divergence, named by step, layer,
/// tensor and entry.
#[cfg(feature = "torch")]
pub fn lockstep<T: Scalar>(
    spec: &Spec,
    n: usize,
    steps: usize,
    lr: f64,
    tol: Option<Tolerance>,
) -> Result<Worst, String> {
    // Small networks: one libtorch thread, as the commands choose (tests run in parallel).
    tch::set_num_threads(1);
    let mut manual = Mlp::<T>::new(spec.clone()).map_err(|e| e.to_string())?;
    let mut reference =
        Reference::new(spec, manual.params(), &backprop::OptimConfig::sgd(lr)).map_err(|e| e.to_string())?;
    let mut ws = Workspace::new(spec, n);
    let (x, y) = batch::<T>(spec, n, spec.seed());
    let mut worst = Worst::default();
    let fixed = tol.unwrap_or(Tolerance { rtol: 0.0, atol: 0.0 });
    let lr_t = T::of(lr);
    for step in 0..steps {
        let bounds = step_bounds(spec, manual.params(), &x, &y);
        reference.set_params(manual.params());
        let r = RefStep::of(&mut reference, &Batch::new(&x, &y));
        let (loss_lit, grads_lit) = manual.gradients_literal(&x, &y);
        let loss_bat = ws.gradients(manual.params(), &x, &y);
        let mut updated_lit = manual.clone();
        updated_lit.sgd_step(&grads_lit, lr_t);
        manual.sgd_step(ws.grads(), lr_t);

        for (which, loss, grads, params) in [
            ("literal", loss_lit, &grads_lit, updated_lit.params()),
            ("batched", loss_bat, ws.grads(), manual.params()),
        ] {
            let param_bounds = bounds.update(grads, params, lr);
            let (gb, pb) =
                if tol.is_some() { (None, None) } else { (Some(&bounds.grads), Some(&param_bounds)) };
            let errors = match tol {
                Some(t) => compare(&[loss], &[r.loss], 1, t),
                None => compare_bounded(&[loss], &[r.loss], 1, &[bounds.loss]),
            };
            let mut reports = vec![TensorReport { layer: 0, kind: TensorKind::Loss, errors, witness: None }];
            reports.extend(compare_params(grads, &r.grads, true, fixed, gb));
            reports.extend(compare_params(params, &r.params, false, fixed, pb));
            if let Some(d) = Divergence::origin(step, &reports) {
                return Err(format!("{which} vs libtorch, {spec:?}: {d}"));
            }
            worst.absorb(&reports);
        }
        let gb = if tol.is_some() { None } else { Some(&bounds.grads) };
        let between = compare_params(&grads_lit, ws.grads(), true, fixed, gb);
        if let Some(d) = Divergence::origin(step, &between) {
            return Err(format!("literal vs batched, {spec:?}: {d}"));
        }
    }
    Ok(worst)
}

/// The spread of architectures the equivalence tests sweep: depth 1..6, widths including 1.
pub fn architectures() -> Vec<Vec<usize>> {
    vec![
        vec![3, 1],
        vec![1, 1],
        vec![2, 5, 1],
        vec![4, 1, 3],
        vec![3, 8, 6, 2],
        vec![1, 7, 1, 5, 2],
        vec![5, 9, 4, 6, 3, 2],
        vec![2, 6, 1, 6, 5, 4, 3],
    ]
}

/// A spec from its parts, with a hidden-layer activation φ and an identity or φ output.
pub fn spec(
    widths: &[usize],
    phi: Activation,
    out_phi: bool,
    bias: bool,
    loss: Loss,
    dtype: DType,
    seed: u64,
) -> Spec {
    let depth = widths.len() - 1;
    let mut acts = vec![phi; depth];
    if !out_phi && depth > 1 {
        acts[depth - 1] = Activation::Identity;
    }
    Spec::new(widths.to_vec(), acts)
        .unwrap()
        .with_bias(bias)
        .with_loss(loss)
        .with_dtype(dtype)
        .with_seed(seed)
}

/// A fresh, empty directory for one test's outputs.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("backprop-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the `compare` binary with `args` and `--out dir --quiet`; returns (exit code, stdout, stderr).
#[cfg(feature = "torch")]
pub fn run_compare(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    run_tool(env!("CARGO_BIN_EXE_compare"), dir, args)
}

/// Runs `check TRACE ARGS --out dir --quiet`; returns (exit code, stdout, stderr).
#[cfg(feature = "torch")]
pub fn run_check(trace: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec![trace.to_str().expect("a UTF-8 trace path")];
    all.extend_from_slice(args);
    run_tool(env!("CARGO_BIN_EXE_check"), dir, &all)
}

/// Runs the `train` binary as [`run_compare`] runs `compare`.
pub fn run_train(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    run_tool(env!("CARGO_BIN_EXE_train"), dir, args)
}

fn run_tool(exe: &str, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(exe)
        .args(args)
        .arg("--out")
        .arg(dir)
        .arg("--quiet")
        .output()
        .unwrap_or_else(|e| panic!("running {exe}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads and parses `dir/report.json`.
pub fn report(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json parses")
}

/// Decodes `path` and checks its size and that it holds a real picture: many distinct colours
/// (anti-aliased text and lines) and a fair share of non-white pixels.
pub fn assert_picture(path: &std::path::Path, width: u32, min_height: u32) -> u32 {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.width, width, "{}", path.display());
    assert!(info.height >= min_height, "{}: height {}", path.display(), info.height);
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
    let pixels: Vec<[u8; 3]> =
        buf[..info.buffer_size()].chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    let distinct: std::collections::HashSet<_> = pixels.iter().collect();
    let non_white = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
    assert!(distinct.len() > 100, "{}: only {} colours", path.display(), distinct.len());
    assert!(non_white * 100 > pixels.len(), "{}: {non_white} non-white pixels", path.display());
    info.height
}

/// The lockstep run the verdict tests use: `spec` trained with `optim` for `steps` steps of `batch`
/// samples (batch order seeded by the spec's seed), judged by round-off, one thread.
pub fn run_config(
    spec: &Spec,
    optim: backprop::OptimConfig,
    steps: usize,
    batch: usize,
) -> backprop::harness::RunConfig {
    use backprop::harness::{Form, Judge, RunConfig};
    RunConfig {
        spec: spec.clone(),
        optim,
        steps,
        batch_size: batch,
        shuffle_seed: spec.seed(),
        judge: Judge::round_off(),
        drift_tol: 1.0,
        fault: None,
        form: Form::Batched,
        mutant: None,
        snapshot_steps: vec![],
        saturation: 0.97,
        witness_every: 0,
        threads: 1,
    }
}

/// The Python that the setup script installed PyTorch into (or `BACKPROP_PYTHON`).
pub fn python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("BACKPROP_PYTHON") {
        return std::path::PathBuf::from(p);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let torch = std::fs::canonicalize(root.join(".libtorch"))
        .expect(".libtorch missing: run `bash scripts/setup-libtorch.sh` (README, Quick start)");
    torch.ancestors().nth(4).unwrap().join("bin/python")
}

/// Runs `scripts/replay_trace.py TRACE` with that Python: (success, stdout and stderr).
pub fn replay_in_pytorch(trace: &std::path::Path) -> (bool, String) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/replay_trace.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(trace)
        .output()
        .expect("running the replay script");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}
