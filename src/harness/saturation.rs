//! What "saturated" means, in one place: [`flat`] says whether one activation value sits where
//! φ' is (nearly) zero at a threshold `s`; [`saturated_pct`] is the share of a layer that does,
//! and [`saturation_rule`] and [`saturated_intervals`] put the same rule into words and onto
//! histogram axes. `compare`'s figures, the harness's per-step records and the study all use these.

use anyhow::Result;

use crate::error::field_bail;

use crate::kernels::scalar::Scalar;
use crate::model::activation::Activation;

/// Checks a saturation threshold `s`: it must lie in (0.5, 1), so that sigmoid's flat ranges
/// z < 1 − s and z > s do not meet and tanh's |z| > s leaves a linear middle. The error names
/// the field `saturation` ([`crate::error::FieldError`]).
pub fn check_threshold(s: f64) -> Result<()> {
    if !(s > 0.5 && s < 1.0) {
        field_bail!("saturation", "{{saturation}}: must lie in (0.5, 1), got {s}");
    }
    Ok(())
}

/// Whether an activation value sits where φ' is (nearly) 0 at threshold `s`: tanh |z| > s
/// (φ' = 1 − z² < 1 − s²), sigmoid z outside [1 − s, s] (φ' = z(1 − z) < 1 − s), relu z = 0,
/// elu z < −s (φ' = z + 1 < 1 − s); leaky-relu, gelu and silu never count.
pub fn flat(phi: Activation, z: f64, s: f64) -> bool {
    match phi {
        Activation::Tanh => z.abs() > s,
        Activation::Sigmoid => z < 1.0 - s || z > s,
        Activation::Relu => z == 0.0,
        Activation::Elu => z < -s,
        _ => false,
    }
}

/// The share (%) of a layer's activations that are saturated, for `z` holding `units` columns
/// (one row per sample): for tanh and sigmoid the share of values that are [`flat`]; for relu the
/// share of dead units, those flat (z = 0) for every sample; other activations do not saturate (0).
pub fn saturated_pct<T: Scalar>(phi: Activation, z: &[T], units: usize, s: f64) -> f64 {
    if z.is_empty() || units == 0 {
        return 0.0;
    }
    let share = |hits: usize, of: usize| 100.0 * hits as f64 / of as f64;
    match phi {
        Activation::Tanh | Activation::Sigmoid => {
            share(z.iter().filter(|v| flat(phi, v.to64(), s)).count(), z.len())
        }
        Activation::Relu => {
            let dead = (0..units)
                .filter(|&j| z.iter().skip(j).step_by(units).all(|v| flat(phi, v.to64(), s)))
                .count();
            share(dead, units)
        }
        _ => 0.0,
    }
}

/// What [`saturated_pct`] counts as saturated for φ, in words for captions.
pub fn saturation_rule(phi: Activation, s: f64) -> String {
    match phi {
        Activation::Tanh => format!("|z| > {s}"),
        Activation::Sigmoid => format!("z < {:.2} or z > {s}", 1.0 - s),
        Activation::Relu => "dead units, z = 0 for every sample".to_string(),
        _ => "never".to_string(),
    }
}

/// The intervals of z = φ(a) that are [`flat`] for φ at threshold `s` (tanh: |z| > s; sigmoid:
/// z < 1 − s or z > s), to shade on histograms of z; empty where saturation is not a range of
/// values (relu's dead units, the unbounded activations).
pub fn saturated_intervals(phi: Activation, s: f64) -> Vec<(f64, f64)> {
    match phi {
        Activation::Tanh => vec![(-1.0, -s), (s, 1.0)],
        Activation::Sigmoid => vec![(0.0, 1.0 - s), (s, 1.0)],
        _ => vec![],
    }
}

/// The natural range of φ's values (tanh [−1, 1], sigmoid [0, 1]), for histogram axes; `None` for
/// the unbounded activations.
pub fn value_range(phi: Activation) -> Option<(f64, f64)> {
    match phi {
        Activation::Tanh => Some((-1.0, 1.0)),
        Activation::Sigmoid => Some((0.0, 1.0)),
        _ => None,
    }
}
