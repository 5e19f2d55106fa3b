//! The same training, bit for bit, whichever of AVX-512 and AVX2 runs it: every loop of a small
//! network's step (the register-tiled products, the one-column dot products, tanh, the bias rows,
//! the column sums, the update, the split's gradient sum) fixes its order of operations in the
//! source, so the instruction set only changes how many entries go at once. `BACKPROP_SIMD` caps
//! the level of each run. (On a CPU without AVX-512 both runs take AVX2, and this test says
//! nothing about AVX-512; the products above `MID_GEMM` are the `gemm` crate's, whose kernels do
//! differ, so the networks here stay below it.)

mod common;

use common::temp_dir;

/// Trains with `BACKPROP_SIMD=level` and returns the saved weights' bytes.
fn weights_after_training(level: &str, args: &[&str]) -> Vec<u8> {
    let dir = temp_dir(&format!("simd-{level}-{}", args.join("_").replace(',', "-")));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
        .args(args)
        .arg("--out")
        .arg(&dir)
        .arg("--quiet")
        .env("BACKPROP_SIMD", level)
        .output()
        .expect("running train");
    assert!(
        out.status.success(),
        "train {args:?} with BACKPROP_SIMD={level}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(dir.join("weights.safetensors")).expect("weights.safetensors");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

#[test]
fn avx512_and_avx2_train_to_the_same_bits() {
    // 2-32-32-1: the bench's network (64×32×32 tiles, a transposed W, a one-column output layer);
    // 3-21-13-2 at batch 37: every width off the vector length, so masked columns and short tiles.
    let nets: [&[&str]; 2] = [
        &["--layers", "2,32,32,1", "--dataset", "xor", "--samples", "256", "--batch-size", "64"],
        &["--layers", "3,21,13,2", "--dataset", "teacher", "--samples", "111", "--batch-size", "37"],
    ];
    for net in nets {
        for dtype in ["f32", "f64"] {
            for threads in ["1", "2"] {
                let mut args = net.to_vec();
                args.extend(["--steps", "200", "--lr", "0.001", "--dtype", dtype, "--threads", threads]);
                let wide = weights_after_training("avx512", &args);
                let narrow = weights_after_training("avx2", &args);
                assert!(wide == narrow, "{args:?}: the weights differ between AVX-512 and AVX2");
            }
        }
    }
}
