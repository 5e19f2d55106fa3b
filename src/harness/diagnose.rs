//! Why a trace disagrees with libtorch at step 0, when the cause is a mis-description rather than
//! a mistake in the backpropagation: the trace's step 0 is replayed in libtorch (in f64) under the
//! common mis-descriptions, and the first one that explains what the trace recorded to round-off
//! is named with the recorder argument (`python/backprop_trace.py`) that fixes it.
//!
//! Tried, in order: the loss and gradients off by a factor m (the batch's sample count: a mean
//! recorded as a sum, or the reverse) or 2/(m·n_L) (torch's `mse_loss` recorded as half-sse);
//! every weight transposed (torch's `Linear.weight` recorded as the sheet's W^k, which only square
//! layers let through the recorder's shape check); another output activation; the update's
//! learning rate off by m (the (η/m)·Σ∇ of code that averages in its update).

use anyhow::Result;

use crate::harness::trace::{Recorded, RecordedStep};
use crate::model::activation::Activation;
use crate::model::params::Params;
use crate::model::spec::{DType, Loss, Spec};
use crate::reference::{RefStep, Reference};

/// Every entry of `p` (weights, then biases, layer by layer).
fn flat(p: &Params<f64>) -> Vec<f64> {
    p.layers
        .iter()
        .flat_map(|l| l.w.as_slice().iter().chain(l.b.iter().flatten()).copied().collect::<Vec<_>>())
        .collect()
}

/// Whether `a` is `b` to round-off: max |a − b| ≤ tol · max(max |b|, tiny).
fn agree(a: &[f64], b: &[f64], tol: f64) -> bool {
    let scale = b.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * scale)
}

/// libtorch's step 0 of `rec` (in f64) for `spec` from `init`, at the trace's conventions.
fn torch_step(rec: &Recorded, spec: &Spec, init: &Params<f64>, s: &RecordedStep) -> Result<RefStep<f64>> {
    let mut optim = rec.optim;
    optim.lr = s.lr;
    let spec = spec.clone().with_dtype(DType::F64);
    let mut r =
        Reference::new(&spec, init, &optim)?.with_conventions(rec.conventions.mean, rec.conventions.l2);
    let mut xb = crate::kernels::matrix::Matrix::<f64>::zeros(0, spec.n_in());
    let mut yb = crate::kernels::matrix::Matrix::<f64>::zeros(0, spec.n_out());
    xb.gather_rows(&rec.data.x, &s.batch);
    yb.gather_rows(&rec.data.y, &s.batch);
    Ok(RefStep::of(&mut r, &crate::manual::Batch::new(&xb, &yb)))
}

/// Whether step 0's recorded loss and gradients are libtorch's `r` times `factor`.
fn explains(loss: Option<f64>, grads: Option<&Params<f64>>, r: &RefStep<f64>, factor: f64, tol: f64) -> bool {
    let loss_ok = loss.is_none_or(|l| agree(&[l], &[r.loss * factor], tol));
    let grads_ok = grads.is_none_or(|g| {
        let want: Vec<f64> = flat(&r.grads).iter().map(|v| v * factor).collect();
        agree(&flat(g), &want, tol)
    });
    (loss.is_some() || grads.is_some()) && loss_ok && grads_ok
}

/// The likely cause of a disagreement at step 0, as one sentence naming the recorder argument to
/// change; None when the trace does not start at step 0, when step 0 agrees with libtorch to
/// round-off, or when no mis-description explains it (then the backpropagation itself is the
/// suspect).
pub fn likely_cause(rec: &Recorded) -> Result<Option<String>> {
    let s = &rec.steps[0];
    if s.step != 0 {
        return Ok(None);
    }
    let spec = &rec.spec;
    let tol = 1e4 * crate::harness::check::epsilon(spec.dtype());
    let (grads, after) = (rec.grads(0)?, rec.after(0)?);
    let explains =
        |g: Option<&Params<f64>>, r: &RefStep<f64>, factor: f64| explains(s.loss, g, r, factor, tol);
    let base = torch_step(rec, spec, &rec.init, s)?;
    let updated = |r: &RefStep<f64>| after.as_ref().is_none_or(|a| agree(&flat(a), &flat(&r.params), tol));
    if explains(grads.as_ref(), &base, 1.0) && updated(&base) {
        return Ok(None);
    }
    let (m, n_out) = (s.batch.len() as f64, spec.n_out() as f64);
    // The reduction: loss and gradients off by a factor.
    if rec.conventions.l2 == 0.0 && s.batch.len() > 1 {
        let mut factors: Vec<(f64, String)> = Vec::new();
        if spec.loss() == Loss::HalfSse {
            if rec.conventions.mean {
                factors.push((m, "the loss and its gradients are sums over the batch, the trace says means: pass reduction=\"sum\" to Recorder (the default)".into()));
            } else {
                factors.push((1.0 / m, format!("the loss and its gradients are means over the batch (÷ {m}), the trace says sums: pass reduction=\"mean\" to Recorder")));
            }
            factors.push((
                2.0 / (m * n_out) * if rec.conventions.mean { m } else { 1.0 },
                "the loss is the mean over every entry without the ½ (torch's mse_loss): pass loss=\"mse\" to Recorder".into(),
            ));
        } else if spec.loss() == Loss::Mse {
            factors.push((
                m * n_out / 2.0,
                "the loss is ½ Σ |ŷ − y|², not torch's mse_loss: pass loss=\"half-sse\" to Recorder".into(),
            ));
            factors.push((
                n_out / 2.0,
                "the loss is ½ Σ |ŷ − y|² over the batch's mean: pass loss=\"half-sse\", reduction=\"mean\" to Recorder".into(),
            ));
        }
        if let Some((_, why)) = factors.into_iter().find(|(f, _)| explains(grads.as_ref(), &base, *f)) {
            return Ok(Some(why));
        }
    }
    // The layout: every weight transposed (square layers only pass the recorder's shape check).
    let widths = spec.widths();
    if widths.windows(2).all(|w| w[0] == w[1]) {
        let t = |p: &Params<f64>| {
            let mut p = p.clone();
            p.layers.iter_mut().for_each(|l| l.w = l.w.transpose());
            p
        };
        let r = torch_step(rec, spec, &t(&rec.init), s)?;
        if explains(grads.as_ref().map(t).as_ref(), &r, 1.0) {
            return Ok(Some("the weights are in torch's layout (Linear.weight is n_k × n_(k−1), the trace's W^k is n_(k−1) × n_k): pass layout=\"torch\" to Recorder".into()));
        }
    }
    // The output activation.
    let depth = spec.depth();
    let last = spec.activations()[depth - 1];
    if spec.loss() != Loss::CrossEntropy {
        for a in Activation::ALL {
            if a == last {
                continue;
            }
            let mut acts = spec.activations().to_vec();
            acts[depth - 1] = a;
            let other = Spec::new(widths.to_vec(), acts.clone())?
                .with_bias(spec.bias())
                .with_loss(spec.loss())
                .with_dtype(spec.dtype());
            let r = torch_step(rec, &other, &rec.init, s)?;
            if explains(grads.as_ref(), &r, 1.0) {
                let names: Vec<String> = acts.iter().map(|a| format!("\"{}\"", a.name())).collect();
                return Ok(Some(format!(
                    "the output layer's activation is {}, the trace says {}: pass activations=[{}] to Recorder",
                    a.name(),
                    last.name(),
                    names.join(", ")
                )));
            }
        }
    }
    // The update's learning rate off by m: the gradients agree, the step is lr·m or lr/m.
    if let (Some(after), true) =
        (&after, explains(grads.as_ref(), &base, 1.0) || (s.loss.is_none() && grads.is_none()))
    {
        let start = flat(&rec.init);
        let g = flat(&base.grads);
        for (c, why) in [
            (1.0 / m, format!("the update steps by lr/{m} (the (η/m)·Σ∇ of a mean taken in the update): pass lr=η/m, the step's own, to Recorder (or rec.step(..., lr=η/m) where m varies)")),
            (m, format!("the update steps by lr·{m}: pass lr=η·m, the step's own, to Recorder (or rec.step(..., lr=...))")),
        ] {
            let want: Vec<f64> = start.iter().zip(&g).map(|(w, g)| w - c * s.lr * g).collect();
            if agree(&flat(after), &want, tol) {
                return Ok(Some(why));
            }
        }
    }
    Ok(None)
}
