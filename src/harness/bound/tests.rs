//! The rank-one share κ of (S1″), and the layer loop against the one-entry formula of (B2), (B3).

use super::common_mode::top_direction;
use super::forward::{element_bounds, layer_bounds, near_kink};
use crate::kernels::matrix::Matrix;
use crate::model::activation::Activation;
use rand::{Rng, SeedableRng};

/// κ of (S1″): 1 for a rank-one W (a sign pattern s tᵀ whose t sums to zero included, which
/// an all-ones start would miss), 1/n for an orthogonal n × n W, and about 4/n for a random one.
#[test]
fn the_rank_one_share_tells_a_sign_pattern_from_a_random_matrix() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let n = 64;
    let s: Vec<f64> = (0..n).map(|_| if rng.gen_bool(0.5) { 1.0 } else { -1.0 }).collect();
    let t: Vec<f64> = (0..n).map(|j| if j % 2 == 0 { 0.3 } else { -0.3 }).collect();
    let sign = Matrix::from_fn(n, n, |i, j| s[i] * t[j]);
    let rank_one_share = |w: &Matrix<f64>| top_direction(w).kappa;
    assert!((rank_one_share(&sign) - 1.0).abs() < 1e-9, "{}", rank_one_share(&sign));
    let eye = Matrix::from_fn(n, n, |i, j| f64::from(u8::from(i == j)));
    assert!((rank_one_share(&eye) - 1.0 / n as f64).abs() < 1e-12);
    let random = Matrix::from_fn(n, n, |_, _| rng.gen_range(-1.0..1.0));
    let k = rank_one_share(&random);
    assert!((1.0 / n as f64..=8.0 / n as f64).contains(&k), "{k}");
    // A sign-pattern step on top of a random W of the same size dominates it.
    let stepped = Matrix::from_fn(n, n, |i, j| 0.125 * random[(i, j)] + sign[(i, j)]);
    assert!(rank_one_share(&stepped) > 0.8, "{}", rank_one_share(&stepped));
}

/// The layer's two passes (vectorised, one loop per φ; then the entries near a kink) give
/// every entry the bits of the one-entry formula with its own `near`, kinks and large errors
/// included: the vectorised form is the per-entry derivation of docs/verdict.md, (B2), (B3).
#[test]
fn the_layer_loop_is_the_entry_formula_bit_for_bit() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let (eps, normal) = (f64::EPSILON, 1e-300);
    for phi in Activation::ALL {
        let n = 203;
        let a: Vec<f64> = (0..n)
            .map(|p| match p % 4 {
                0 => 0.0,
                1 => rng.gen_range(-1e-9..1e-9),
                2 => rng.gen_range(-30.0..30.0),
                _ => SOFTPLUS_NEAR + rng.gen_range(-1e-6..1e-6),
            })
            .collect();
        let ea: Vec<f64> = (0..n).map(|p| if p % 7 == 0 { 0.5 } else { rng.gen_range(0.0..1e-8) }).collect();
        let z: Vec<f64> = a.iter().map(|&v| phi.apply(v)).collect();
        let d: Vec<f64> = a.iter().zip(&z).map(|(&v, &w)| phi.derivative(v, w)).collect();
        let (mut ez, mut ed) = (vec![f64::NAN; n], vec![f64::NAN; n]);
        layer_bounds(phi, &a, &ea, &z, &d, &mut ez, &mut ed, eps, normal);
        let mut nears = 0;
        for p in 0..n {
            let near = near_kink(phi, a[p], ea[p]);
            nears += usize::from(near);
            let (want_z, want_d) = element_bounds(phi, a[p], ea[p], z[p], d[p], eps, normal, near);
            assert_eq!(
                (ez[p].to_bits(), ed[p].to_bits()),
                (want_z.to_bits(), want_d.to_bits()),
                "{phi} at {p}"
            );
        }
        assert!(nears > 0, "{phi}: some entries must be near a kink or have a large error");
    }
}

const SOFTPLUS_NEAR: f64 = crate::model::activation::SOFTPLUS_THRESHOLD;
