use backprop::matrix::{gemm, Matrix, Op};
use std::time::Instant;
fn main() {
    for &(m, k, n) in &[
        (256usize, 784usize, 1024usize),
        (256, 1024, 1024),
        (784, 256, 1024),
        (1024, 256, 1024),
        (256, 1024, 784),
    ] {
        let a = Matrix::<f32>::from_fn(m, k, |i, j| ((i + j) % 7) as f32);
        let b = Matrix::<f32>::from_fn(k, n, |i, j| ((i * j) % 5) as f32);
        let mut c = Matrix::<f32>::zeros(m, n);
        gemm(1.0, &a, Op::N, &b, Op::N, 0.0, &mut c);
        let t = Instant::now();
        for _ in 0..10 {
            gemm(1.0, &a, Op::N, &b, Op::N, 0.0, &mut c);
        }
        let s = t.elapsed().as_secs_f64() / 10.0;
        println!("{m}x{k}x{n}: {:.1} GFLOP/s", 2.0 * (m * k * n) as f64 / s / 1e9);
        let mut v = vec![0.3f32; m * n];
        let t = Instant::now();
        for x in v.iter_mut() {
            *x = x.tanh();
        }
        let s2 = t.elapsed().as_secs_f64();
        println!("  tanh {} elems: {:.2} ms ({:.1} ns each)", m * n, s2 * 1e3, s2 * 1e9 / (m * n) as f64);
    }
}
