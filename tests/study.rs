//! The saturation study, reduced in size, and the saturation measure on constructed examples.
#![cfg(feature = "torch")]

mod common;

use backprop::commands::study::{self, StudyArgs, VARIANTS};
use backprop::harness::saturated_pct;
use backprop::Activation;
use common::{assert_picture, temp_dir};

#[test]
fn saturated_share_is_right_on_constructed_examples() {
    // tanh: |z| > 0.97 saturates; 3 of 8 here.
    let z = [0.0, 0.98, -0.99, 0.5, -0.97, 0.97, 1.0, 0.2];
    assert_eq!(saturated_pct(Activation::Tanh, &z, 4, 0.97), 100.0 * 3.0 / 8.0);
    // sigmoid: outside [0.03, 0.97]; 2 of 4.
    assert_eq!(saturated_pct(Activation::Sigmoid, &[0.01, 0.5, 0.99, 0.04], 2, 0.97), 50.0);
    // relu: a unit (column) is dead when it is 0 for every sample. 3 samples × 4 units:
    // unit 0 dead, unit 1 alive once, unit 2 dead, unit 3 alive.
    let z = [0.0, 0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 3.0];
    assert_eq!(saturated_pct(Activation::Relu, &z, 4, 0.97), 50.0);
    assert_eq!(saturated_pct(Activation::Gelu, &z, 4, 0.97), 0.0);
}

#[test]
fn a_reduced_study_runs_checks_every_variant_and_writes_its_report() {
    let dir = temp_dir("study");
    let args = StudyArgs {
        hidden: 3,
        width: 12,
        steps: 40,
        lr: 0.02,
        dataset: "sine".into(),
        samples: 48,
        seed: 3,
        saturation: 0.97,
        out: dir.clone(),
        quiet: true,
        threads: None,
    };
    let results = study::run(&args, |_| {}).unwrap();
    assert_eq!(results.len(), VARIANTS.len());
    for r in &results {
        assert!(r.outcome.equivalent, "{}: not equivalent to libtorch", r.variant.name);
        assert_eq!(r.outcome.records.len(), 40);
        assert_eq!(r.saturated(0).len(), 3);
    }
    // Large weights saturate tanh far more than Xavier's at the start.
    let sat = |name: &str| {
        let r = results.iter().find(|r| r.variant.name == name).unwrap();
        r.saturated(0).iter().sum::<f64>() / 3.0
    };
    assert!(sat("tanh, large init N(0,1)") > 10.0 * sat("tanh, Xavier init").max(1.0));

    let written = study::write(&dir, &args, &results).unwrap();
    for name in ["study_loss.png", "study_saturation.png", "study_grad_norms.png"] {
        assert!(written.contains(&dir.join(name)));
        assert_picture(&dir.join(name), backprop::plot::WIDTH, backprop::plot::HEIGHT);
    }
    let md = std::fs::read_to_string(dir.join("study.md")).unwrap();
    for v in VARIANTS {
        assert!(
            md.contains(&format!("| {} | equivalent", v.name)),
            "{} missing from study.md:\n{md}",
            v.name
        );
    }
    assert!(md.contains("Reading the numbers"));
}
