//! Saturation measures: the share of a layer's units that sit where φ' is (nearly) zero.

use crate::model::activation::Activation;
use crate::model::scalar::Scalar;

/// The share (%) of a layer's activations that are saturated, for `z` holding `units` columns
/// (one row per sample): tanh |z| > s; sigmoid z < 1 − s or z > s; relu: the share of dead
/// units, those with z = 0 for every sample; other activations do not saturate (0).
pub fn saturated_pct<T: Scalar>(phi: Activation, z: &[T], units: usize, s: f64) -> f64 {
    if z.is_empty() || units == 0 {
        return 0.0;
    }
    let share = |hits: usize, of: usize| 100.0 * hits as f64 / of as f64;
    match phi {
        Activation::Tanh => share(z.iter().filter(|v| v.to64().abs() > s).count(), z.len()),
        Activation::Sigmoid => {
            share(z.iter().filter(|v| v.to64() < 1.0 - s || v.to64() > s).count(), z.len())
        }
        Activation::Relu => {
            let dead = (0..units).filter(|&j| z.iter().skip(j).step_by(units).all(|v| v.is_zero())).count();
            share(dead, units)
        }
        _ => 0.0,
    }
}
