//! Comparing two implementations' tensors entry by entry against a tolerance — each entry's
//! round-off bound ([`crate::harness::bound`]) or a fixed `atol + rtol·|b|` — with the margin
//! (error ÷ tolerance), non-finite values that never pass for agreement, and the entry where a
//! step's disagreement began, named by layer, tensor and index (i, j).

use std::fmt;

use crate::harness::witness::WitnessErrors;
use crate::kernels::scalar::{max_of_numbers, Scalar};
use crate::model::params::Params;
use crate::model::spec::DType;

/// A fixed elementwise tolerance, as `torch.testing.assert_close`: entries `a` (manual) and `b`
/// (reference) agree when `|a − b| ≤ atol + rtol·|b|`. The harness's default is not this but the
/// round-off bound of each entry ([`crate::harness::bound`]); `compare --tolerance fixed` uses this.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tolerance {
    /// Relative part.
    pub rtol: f64,
    /// Absolute part.
    pub atol: f64,
}

impl Tolerance {
    /// The tolerance of an entry whose reference value is `b`: `atol + rtol·|b|`.
    pub fn of(&self, b: f64) -> f64 {
        self.atol + self.rtol * b.abs()
    }
}

/// One compared entry: where, both values, and its tolerance.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Entry {
    /// (i, j) in the seed's orientation (a vector or the loss: i = 0).
    pub index: (usize, usize),
    /// The implementation under test's value.
    pub manual: f64,
    /// The reference's value.
    pub torch: f64,
    /// The entry's tolerance: its round-off bound, or `atol + rtol·|torch|`.
    pub bound: f64,
}

impl Entry {
    /// |manual − torch| / bound: at most 1 when the entry agrees; ∞ for a non-finite disagreement.
    pub fn ratio(&self) -> f64 {
        ratio(self.manual, self.torch, self.bound)
    }
}

/// How two values compare.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pair {
    /// Both finite, with a finite tolerance: the ratio |a − b| / τ.
    Judged(f64),
    /// Both finite, with a tolerance that overflowed: the bound cannot certify the entry (a limit
    /// of the bound, not a blow-up of either side); the witness judges it alone.
    Uncertified,
    /// Both non-finite alike (NaN, or the same infinity, on both sides), or both finite with a
    /// tolerance that overflowed: nothing can be said, and the run stops.
    NonFinite,
    /// One finite and one not, or opposite infinities: a disagreement.
    Disagree,
}

/// `max` is the dtype's largest finite value: a finite value within its tolerance of it may
/// round to the same-signed ∞ on the other side, which is overflow, not disagreement.
fn judge(a: f64, b: f64, tol: f64, max: f64) -> Pair {
    let overflows_alike = |finite: f64, inf: f64| {
        inf.is_infinite() && inf.signum() == finite.signum() && finite.abs() + tol >= max
    };
    match (a.is_finite(), b.is_finite()) {
        (true, true) if tol.is_finite() => {
            let d = (a - b).abs();
            Pair::Judged(if d == 0.0 { 0.0 } else { d / tol })
        }
        (true, true) => Pair::Uncertified,
        (false, false) if a.is_infinite() && b.is_infinite() && a != b => Pair::Disagree,
        (false, false) => Pair::NonFinite,
        (true, false) if overflows_alike(a, b) => Pair::NonFinite,
        (false, true) if overflows_alike(b, a) => Pair::NonFinite,
        _ => Pair::Disagree,
    }
}

fn ratio(a: f64, b: f64, tol: f64) -> f64 {
    match judge(a, b, tol, f64::MAX) {
        Pair::Judged(r) => r,
        Pair::NonFinite | Pair::Uncertified => 0.0,
        Pair::Disagree => f64::INFINITY,
    }
}

/// How far one tensor of the implementation under test is from the reference's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorErrors {
    /// max |a − b| over the entries where both are finite.
    pub max_abs: f64,
    /// Normwise relative error ‖a − b‖∞ / ‖b‖∞ (the absolute error when b is all zeros).
    pub rel: f64,
    /// The largest |a − b| / tolerance over the entries where both are finite: the margin; above 1
    /// the tensor fails. (A value non-finite on one side only fails too, counted in
    /// [`TensorErrors::non_finite_failures`]; its entry's ratio is ∞.)
    pub ratio: f64,
    /// The first entry (row-major) outside its tolerance.
    pub first_fail: Option<Entry>,
    /// Entries outside their tolerance.
    pub failures: usize,
    /// Entries that are non-finite on both sides alike, or overflow on one side within round-off
    /// of the other's largest finite value.
    pub non_finite: usize,
    /// Of the failures, those where a value is non-finite on one side only (or opposite
    /// infinities).
    pub non_finite_failures: usize,
    /// Entries finite on both sides whose tolerance overflowed: the bound certifies nothing there
    /// (the witness still judges them).
    pub uncertified: usize,
}

impl TensorErrors {
    /// Whether every entry is within its tolerance (entries non-finite on both sides alike do
    /// not fail, but stop the run).
    pub fn pass(&self) -> bool {
        self.failures == 0
    }
}

/// Compares two equally long row-major tensors of `cols` columns (a vector has one row), entry
/// `p` against the tolerance `tol(p, b_p)`. Non-finite values never agree with finite ones:
/// finite against ±∞ or NaN, and +∞ against −∞, fail; NaN or the same infinity on both sides, or
/// ±∞ against a finite value within its tolerance of overflowing to it, is counted in
/// [`TensorErrors::non_finite`]: nothing can be judged there, and the run stops.
pub fn compare_by<T: Scalar>(a: &[T], b: &[T], cols: usize, tol: impl Fn(usize, f64) -> f64) -> TensorErrors {
    assert_eq!(a.len(), b.len(), "compare: tensors of different sizes");
    compare_agreeing(a, b, &tol).unwrap_or_else(|| compare_each(a, b, cols, tol))
}

/// [`compare_by`] entry by entry, with every rule for non-finite values and overflowed
/// tolerances.
fn compare_each<T: Scalar>(a: &[T], b: &[T], cols: usize, tol: impl Fn(usize, f64) -> f64) -> TensorErrors {
    let mut out = TensorErrors::default();
    let mut norm_b: f64 = 0.0;
    for (p, (&x, &y)) in a.iter().zip(b).enumerate() {
        let (x, y) = (x.to64(), y.to64());
        let t = tol(p, y);
        let fail = match judge(x, y, t, T::max_value().to64()) {
            Pair::Judged(r) => {
                out.max_abs = out.max_abs.max((x - y).abs());
                out.ratio = out.ratio.max(r);
                r > 1.0
            }
            Pair::NonFinite => {
                out.non_finite += 1;
                false
            }
            Pair::Uncertified => {
                out.uncertified += 1;
                false
            }
            Pair::Disagree => {
                out.non_finite_failures += 1;
                true
            }
        };
        if y.is_finite() {
            norm_b = norm_b.max(y.abs());
        }
        if fail {
            out.failures += 1;
            if out.first_fail.is_none() {
                let c = cols.max(1);
                out.first_fail = Some(Entry { index: (p / c, p % c), manual: x, torch: y, bound: t });
            }
        }
    }
    out.rel = if norm_b > 0.0 && norm_b.is_finite() { out.max_abs / norm_b } else { out.max_abs };
    out
}

/// [`compare_by`] where every value and every tolerance is finite and every entry agrees (every
/// step of a passing run), with the same result as the entry-by-entry judgement: one loop with no
/// branch on the values, its maxima kept in [`LANES`] independent lanes (a maximum is exact, so
/// their order does not matter); `None` where some entry needs the full judgement.
fn compare_agreeing<T: Scalar>(a: &[T], b: &[T], tol: &impl Fn(usize, f64) -> f64) -> Option<TensorErrors> {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let (mut max_abs, mut ratio, mut norm_b) = ([0.0f64; LANES], [0.0f64; LANES], [0.0f64; LANES]);
    let mut agree = [true; LANES];
    let mut entry = |p: usize, l: usize| {
        let (x, y) = (a[p].to64(), b[p].to64());
        let t = tol(p, y);
        let d = (x - y).abs();
        let r = if d == 0.0 { 0.0 } else { d / t };
        // NaN fails `r <= 1.0`: a non-finite value or tolerance leaves this loop's result unused.
        agree[l] &= x.is_finite() & y.is_finite() & t.is_finite() & (r <= 1.0);
        max_abs[l] = max_of_numbers(max_abs[l], d);
        ratio[l] = max_of_numbers(ratio[l], r);
        norm_b[l] = max_of_numbers(norm_b[l], y.abs());
    };
    let full = n - n % LANES;
    for base in (0..full).step_by(LANES) {
        for l in 0..LANES {
            entry(base + l, l);
        }
    }
    for p in full..n {
        entry(p, 0);
    }
    if !agree.iter().all(|&g| g) {
        return None;
    }
    let max = |v: [f64; LANES]| v.into_iter().fold(0.0, max_of_numbers);
    let (max_abs, ratio, norm_b) = (max(max_abs), max(ratio), max(norm_b));
    let rel = if norm_b > 0.0 { max_abs / norm_b } else { max_abs };
    Some(TensorErrors { max_abs, rel, ratio, ..TensorErrors::default() })
}

/// Independent lanes of the comparisons' fast loops: one AVX-512 vector of f64.
const LANES: usize = 8;

/// [`compare_by`] against a fixed [`Tolerance`].
pub fn compare<T: Scalar>(a: &[T], b: &[T], cols: usize, tol: Tolerance) -> TensorErrors {
    compare_by(a, b, cols, |_, b| tol.of(b))
}

/// [`compare_by`] against per-entry tolerances (round-off bounds), as long as the tensors.
pub fn compare_bounded<T: Scalar>(a: &[T], b: &[T], cols: usize, bounds: &[f64]) -> TensorErrors {
    assert_eq!(a.len(), bounds.len(), "compare: bounds of another size");
    compare_by(a, b, cols, |p, _| bounds[p])
}

/// Which tensor of a layer: a gradient or a parameter, weight or bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorKind {
    /// The loss E (a scalar, layer 0).
    Loss,
    /// ∂E/∂W^k.
    GradW,
    /// ∂E/∂b^k.
    GradB,
    /// W^k.
    W,
    /// b^k.
    B,
}

impl TensorKind {
    /// The name used in reports and traces: `loss`, `dW`, `db`, `W`, `b`.
    pub fn name(self) -> &'static str {
        match self {
            TensorKind::Loss => "loss",
            TensorKind::GradW => "dW",
            TensorKind::GradB => "db",
            TensorKind::W => "W",
            TensorKind::B => "b",
        }
    }
}

impl fmt::Display for TensorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor's comparison: which layer (1..L; 0 for the loss) and tensor, its errors against
/// the reference entry by entry (the round-off bound or the fixed tolerance), and the witness's
/// judgement when a witness took the step.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorReport {
    /// Layer k (0 for the loss).
    pub layer: usize,
    /// Which tensor.
    pub kind: TensorKind,
    /// The errors.
    pub errors: TensorErrors,
    /// Both sides' distances from the witness and its judgement (docs/verdict.md, "The witness").
    pub witness: Option<WitnessErrors>,
}

/// Compares every tensor of two parameter (or gradient) sets, layer by layer: W^k (or ∂E/∂W^k)
/// then b^k. `grads` says whether these are gradients (names dW, db) or parameters (W, b).
/// `bounds`, when given, holds every entry's tolerance (the round-off bounds); otherwise `tol`.
pub fn compare_params<T: Scalar>(
    manual: &Params<T>,
    reference: &Params<T>,
    grads: bool,
    tol: Tolerance,
    bounds: Option<&Params<f64>>,
) -> Vec<TensorReport> {
    let (kw, kb) =
        if grads { (TensorKind::GradW, TensorKind::GradB) } else { (TensorKind::W, TensorKind::B) };
    let mut out = Vec::new();
    for (k, (m, r)) in manual.layers.iter().zip(&reference.layers).enumerate() {
        let bound = bounds.map(|b| &b.layers[k]);
        let errors = match bound {
            Some(b) => compare_bounded(m.w.as_slice(), r.w.as_slice(), m.w.cols(), b.w.as_slice()),
            None => compare(m.w.as_slice(), r.w.as_slice(), m.w.cols(), tol),
        };
        out.push(TensorReport { layer: k + 1, kind: kw, errors, witness: None });
        if let (Some(mb), Some(rb)) = (&m.b, &r.b) {
            let errors = match bound.and_then(|b| b.b.as_ref()) {
                Some(bb) => compare_bounded(mb, rb, mb.len(), bb),
                None => compare(mb, rb, mb.len(), tol),
            };
            out.push(TensorReport { layer: k + 1, kind: kb, errors, witness: None });
        }
    }
    out
}

impl TensorReport {
    /// `loss`, or the tensor and its layer: `dW2`, `db2`, `W2`, `b2`.
    pub fn name(&self) -> String {
        tensor_name(self.layer, self.kind)
    }

    /// Whether the tensor passes both judgements: every entry within its tolerance, and the
    /// witness's normwise test (when a witness took the step).
    pub fn pass(&self) -> bool {
        self.errors.pass() && self.witness_pass()
    }

    /// Whether the witness's judgement passes (true when no witness took the step).
    pub fn witness_pass(&self) -> bool {
        self.witness.as_ref().is_none_or(|w| w.pass())
    }

    /// Which judgement failed: `bound` (the entry's tolerance: its round-off bound or the fixed
    /// one), `witness`, or both.
    pub fn failed_by(&self) -> &'static str {
        match (self.errors.pass(), self.witness_pass()) {
            (false, false) => "bound and witness",
            (false, true) => "bound",
            (true, false) => "witness",
            (true, true) => "none",
        }
    }
}

/// `loss`, or a tensor and its layer: `dW2`, `db2`, `W2`, `b2` (layer 0 is the loss).
pub fn tensor_name(layer: usize, kind: TensorKind) -> String {
    if layer == 0 {
        kind.name().to_string()
    } else {
        format!("{}{}", kind.name(), layer)
    }
}

/// Where two implementations part: step, layer, tensor, entry, both values and the tolerance.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Divergence {
    /// Training step t (from 0).
    pub step: usize,
    /// Layer k (from 1; 0 for the loss).
    pub layer: usize,
    /// `loss`, `dW`, `db`, `W` or `b`.
    pub tensor: &'static str,
    /// Entry (i, j) in the seed's orientation (a bias or the loss: i = 0).
    pub index: (usize, usize),
    /// The implementation under test's value.
    pub manual: f64,
    /// The reference's value.
    pub torch: f64,
    /// The entry's tolerance (its round-off bound, or the fixed tolerance).
    pub bound: f64,
    /// |manual − torch| / bound (∞ for a disagreement on a non-finite value).
    pub ratio: f64,
    /// Which judgement failed: `bound`, `witness`, `bound and witness` (`tolerance` with a fixed
    /// one).
    pub judgement: &'static str,
    /// The witness's value of the entry, when a witness took the step.
    pub witness: Option<f64>,
    /// The tensor's witness margin ‖m − w‖ / max(K_T‖t − w‖, K_S‖σ‖), when a witness took the step.
    pub witness_ratio: Option<f64>,
    /// ‖manual − witness‖ and ‖torch − witness‖ of the tensor, when a witness took the step.
    pub witness_distances: Option<(f64, f64)>,
}

impl Divergence {
    fn of(step: usize, r: &TensorReport) -> Option<Divergence> {
        if r.pass() {
            return None;
        }
        let w = r.witness.as_ref();
        let witness_ratio = w.filter(|w| w.judged).map(|w| w.ratio);
        let witness_distances = w.filter(|w| w.judged).map(|w| (w.manual, w.torch));
        // The bound's first failing entry; or, where only the witness failed, the entry farthest
        // from it.
        let (index, manual, torch, bound, ratio, witness) =
            match (r.errors.first_fail, w.and_then(|w| w.worst)) {
                (Some(e), _) => (e.index, e.manual, e.torch, e.bound, e.ratio(), None),
                (None, Some(worst)) => (worst.0, worst.1, worst.2, f64::NAN, f64::NAN, Some(worst.3)),
                (None, None) => return None,
            };
        Some(Divergence {
            step,
            layer: r.layer,
            tensor: r.kind.name(),
            index,
            manual,
            torch,
            bound,
            ratio,
            judgement: r.failed_by(),
            witness,
            witness_ratio,
            witness_distances,
        })
    }

    /// The first failing entry of the first failing tensor, in the order given.
    pub fn first(step: usize, reports: &[TensorReport]) -> Option<Divergence> {
        reports.iter().find_map(|r| Divergence::of(step, r))
    }

    /// Where a step's disagreement began. A wrong forward pass shows in the loss: the loss, if
    /// it fails. Otherwise the backward pass runs from layer L down, and a mistake in δ^k spoils
    /// ∂E/∂W^k and every layer below it: the failing gradient (∂E/∂W^k before ∂E/∂b^k) of the
    /// layer nearest the output. With every gradient right, the failing updated W^k or b^k
    /// nearest the output. The entry is that tensor's first failing one.
    pub fn origin(step: usize, reports: &[TensorReport]) -> Option<Divergence> {
        let failing = |kinds: &[TensorKind]| {
            reports
                .iter()
                .filter(|r| kinds.contains(&r.kind) && !r.pass())
                .max_by_key(|r| (r.layer, r.kind == TensorKind::GradW || r.kind == TensorKind::W))
        };
        failing(&[TensorKind::Loss])
            .or_else(|| failing(&[TensorKind::GradW, TensorKind::GradB]))
            .or_else(|| failing(&[TensorKind::W, TensorKind::B]))
            .and_then(|r| Divergence::of(step, r))
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name =
            if self.layer == 0 { self.tensor.to_string() } else { format!("{}{}", self.tensor, self.layer) };
        let times = |r: f64| match r {
            r if !r.is_finite() => "beyond".to_string(),
            r if r >= 1e4 => format!("{r:.1e}×"),
            r => format!("{r:.3}×"),
        };
        write!(
            f,
            "step {}, layer {}, {}[{},{}]: manual {:e} vs torch {:e}",
            self.step, self.layer, name, self.index.0, self.index.1, self.manual, self.torch,
        )?;
        if self.ratio.is_finite() || self.ratio.is_infinite() {
            write!(
                f,
                " (difference {:e}, {} its tolerance {:.1e})",
                (self.manual - self.torch).abs(),
                times(self.ratio),
                self.bound
            )?;
        }
        if let Some(w) = self.witness {
            write!(f, ", witness {w:e}")?;
        }
        if let (Some(r), Some((m, t))) = (self.witness_ratio, self.witness_distances) {
            if r > 1.0 {
                write!(
                    f,
                    "; witness: ‖manual − witness‖ = {m:.2e} is {} what the reference's own distance ‖torch − witness‖ = {t:.2e} allows",
                    times(r)
                )?;
            }
        }
        if self.judgement == "witness" {
            write!(f, " (the round-off bound alone passes it)")?;
        }
        Ok(())
    }
}

/// The machine epsilon of a dtype.
pub fn epsilon(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => f32::EPSILON as f64,
        DType::F64 => f64::EPSILON,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(a: f64, b: f64, tol: f64) -> TensorErrors {
        compare_by(&[a], &[b], 1, |_, _| tol)
    }

    #[test]
    fn non_finite_values_are_never_agreement() {
        let (inf, nan) = (f64::INFINITY, f64::NAN);
        // Finite against ±∞ or NaN, and opposite infinities: disagreements, whatever the tolerance.
        for (a, b) in [(1.0, inf), (inf, 1.0), (1.0, -inf), (inf, -inf), (-inf, inf), (nan, 1.0), (1.0, nan)]
        {
            let e = one(a, b, 1e300);
            assert!(!e.pass() && e.non_finite_failures == 1, "{a} vs {b}: {e:?}");
            assert_eq!(e.first_fail.unwrap().ratio(), inf);
        }
        // Alike on both sides: not a failure, but nothing judged (the run stops there).
        for (a, b) in [(nan, nan), (inf, inf), (-inf, -inf), (nan, inf)] {
            let e = one(a, b, 1.0);
            assert!(e.pass() && e.non_finite == 1, "{a} vs {b}: {e:?}");
        }
        // A finite value within its tolerance of the largest f64 against the same-signed ∞:
        // overflow on one side, within round-off; counted as non-finite, not as a failure.
        let e = one(f64::MAX * 0.999, inf, f64::MAX * 0.01);
        assert!(e.pass() && e.non_finite == 1, "{e:?}");
        assert!(!one(1e300, inf, 1.0).pass());
        // A tolerance that overflowed certifies nothing, and is no blow-up of either side.
        let e = one(1.0, 2.0, inf);
        assert_eq!((e.uncertified, e.non_finite, e.pass()), (1, 0, true));
    }

    /// The agreeing case's loop gives what the entry-by-entry judgement gives, whenever it
    /// answers: over lengths around its lanes, with every kind of entry mixed in.
    #[test]
    fn the_fast_loop_agrees_with_the_full_judgement() {
        use proptest::prelude::*;
        let value = prop_oneof![
            8 => -1e3f64..1e3,
            1 => Just(f64::INFINITY),
            1 => Just(f64::NAN),
            1 => Just(0.0),
        ];
        let entry = (value.clone(), prop_oneof![4 => Just(None), 1 => value.prop_map(Some)], 0.0f64..2.0);
        proptest!(|(entries in proptest::collection::vec(entry, 0..40))| {
            // b = a, or b = a shifted by a share of a unit tolerance (some entries fail), or b of its own.
            let a: Vec<f64> = entries.iter().map(|e| e.0).collect();
            let b: Vec<f64> = entries.iter().map(|e| e.1.unwrap_or(e.0 + 0.9 * e.2)).collect();
            let tol: Vec<f64> = entries.iter().map(|e| if e.2 > 1.9 { f64::INFINITY } else { 1.0 }).collect();
            let full = compare_each(&a, &b, 3, |p, _| tol[p]);
            if let Some(fast) = compare_agreeing(&a, &b, &|p, _| tol[p]) {
                prop_assert!(full.pass() && full.non_finite == 0 && full.uncertified == 0);
                prop_assert_eq!(fast, full);
            } else {
                prop_assert!(!full.pass() || full.non_finite > 0 || full.uncertified > 0);
            }
            let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
            let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
            let fast = compare_agreeing(&a32, &b32, &|_, y| 1e-3 + 1e-3 * y.abs());
            let full = compare_each(&a32, &b32, 3, |_, y| 1e-3 + 1e-3 * y.abs());
            prop_assert_eq!(fast.is_some(), full.pass() && full.non_finite == 0 && full.uncertified == 0);
            if let Some(fast) = fast {
                prop_assert_eq!(fast, full);
            }
        });
    }

    #[test]
    fn the_margin_is_error_over_tolerance() {
        let e = one(1.0, 1.5, 1.0);
        assert_eq!((e.ratio, e.pass()), (0.5, true));
        let e = one(1.0, 3.0, 1.0);
        assert_eq!((e.ratio, e.pass(), e.failures), (2.0, false, 1));
        assert_eq!(e.first_fail.unwrap().ratio(), 2.0);
        // Zero tolerance: only exact equality passes.
        assert!(one(0.0, 0.0, 0.0).pass() && !one(0.0, 1e-300, 0.0).pass());
    }

    fn report(layer: usize, kind: TensorKind, fail: bool) -> TensorReport {
        let errors = if fail { one(0.0, 1.0, 0.1) } else { one(0.0, 0.0, 0.1) };
        TensorReport { layer, kind, errors, witness: None }
    }

    #[test]
    fn the_origin_is_the_failing_gradient_nearest_the_output() {
        use TensorKind::*;
        let origin = |rs: &[TensorReport]| Divergence::origin(3, rs).map(|d| (d.layer, d.tensor));
        // δ^2 wrong: ∂E/∂W^2 and everything below fails; the origin is layer 2, not layer 1.
        let rs = [
            report(0, Loss, false),
            report(1, GradW, true),
            report(1, GradB, true),
            report(2, GradW, true),
            report(2, GradB, true),
            report(3, GradW, false),
            report(1, W, true),
            report(2, W, true),
        ];
        assert_eq!(origin(&rs), Some((2, "dW")));
        assert_eq!(Divergence::first(3, &rs).map(|d| d.layer), Some(1), "first in order is layer 1");
        // Only a bias gradient: named.
        assert_eq!(origin(&[report(2, GradW, false), report(2, GradB, true)]), Some((2, "db")));
        // The forward pass: the loss.
        assert_eq!(origin(&[report(0, Loss, true), report(2, GradW, true)]), Some((0, "loss")));
        // Gradients right, an update wrong: the updated parameter nearest the output.
        assert_eq!(
            origin(&[report(1, GradW, false), report(1, W, true), report(2, B, true)]),
            Some((2, "b"))
        );
        assert_eq!(origin(&[report(1, GradW, false)]), None);
    }
}
