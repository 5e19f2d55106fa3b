//! Property tests: random architectures agree with libtorch in lockstep, and the parsers take
//! arbitrary bytes without panicking. A failure shrinks to a small case and names the step,
//! layer, tensor and entry that differ.

mod common;

use backprop::data::load_csv;
use backprop::model::spec::{parse_activations, parse_layers};
#[cfg(feature = "torch")]
use backprop::{Activation, DType, Loss, Spec};
use proptest::prelude::*;

#[cfg(feature = "torch")]
fn activation() -> impl Strategy<Value = Activation> {
    proptest::sample::select(Activation::ALL.to_vec())
}

#[cfg(feature = "torch")]
prop_compose! {
    fn network()(depth in 1usize..=6)
        (widths in proptest::collection::vec(1usize..=64, depth + 1),
         acts in proptest::collection::vec(activation(), depth),
         bias in any::<bool>(),
         mse in any::<bool>(),
         f64_ in any::<bool>(),
         seed in 0u64..1000) -> Spec {
        Spec::new(widths, acts).unwrap()
            .with_bias(bias)
            .with_loss(if mse { Loss::Mse } else { Loss::HalfSse })
            .with_dtype(if f64_ { DType::F64 } else { DType::F32 })
            .with_seed(seed)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Every entry within its round-off bound, the harness's default (widths and batches up to
    /// 64: the bound grows with the lengths of the sums, as it must).
    #[cfg(feature = "torch")]
    #[test]
    fn random_networks_match_libtorch_in_lockstep(spec in network(), batch in 1usize..=64) {
        let result = match spec.dtype() {
            DType::F64 => {
                common::lockstep::<f64>(&spec, batch, 2, 0.01, None)
            }
            DType::F32 => {
                common::lockstep::<f32>(&spec, batch, 2, 0.01, None)
            }
        };
        prop_assert!(result.is_ok(), "{}", result.err().unwrap_or_default());
    }

    #[test]
    fn layer_specs_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_layers(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn activation_lists_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), depth in 1usize..8) {
        let _ = parse_activations(&String::from_utf8_lossy(&bytes), depth);
    }

    #[test]
    fn csv_files_never_panic(bytes in proptest::collection::vec(
        proptest::sample::select(b"0123456789.,-+eE\n\r \"naifNAIF#x\xff".to_vec()), 0..200),
        n_in in 1usize..4, n_out in 1usize..3) {
        let path = std::env::temp_dir().join(format!("backprop-prop-{}.csv", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(data) = load_csv(&path, n_in, n_out) {
            prop_assert!(data.x.as_slice().iter().chain(data.y.as_slice()).all(|v| v.is_finite()));
            prop_assert_eq!(data.x.cols(), n_in);
        }
    }
}
