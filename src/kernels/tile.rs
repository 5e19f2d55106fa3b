//! Register-tiled products `C = A·B` for operands of a small network's middle layers (tens to a
//! few hundred units): no packing, no allocation, no set-up beyond a loop.
//!
//! B's rows must be contiguous (the forward product `Z^{k−1} W^k` and the gradient
//! `(Z^{k−1})ᵀ Δ^k` read it so); A is read through any strides. C is cut into tiles of `MR` rows by
//! `NV` vectors of columns, each tile's `MR·NV` sums held in vector registers while p runs over the
//! whole inner dimension: per step of p, `NV` loads of B's row p, `MR` broadcasts of A's column p,
//! `MR·NV` fused multiply-adds. At these sizes B and the strip of A fit in L1, which is what the
//! general GEMM's packing would otherwise buy.
//!
//! Every entry of C is the one chain `fma(a_ip, b_pj, ·)` over p = 0, 1, …, k−1 from zero, under
//! AVX-512 and AVX2 alike and in every tile shape (edges included): the bits do not depend on which
//! of the two the CPU has.

/// Compiles the driver and its tile for one instruction set and scalar type, from the module's
/// own vector primitives (`zero`, `load`, `store`, `splat`, `fma`, the masked `load_part` and
/// `store_part`) and constants (`LANES`, `MR`, `NV`).
macro_rules! tiled_product {
    ($feature:literal, $t:ty) => {
        // The column edge below is written for tiles of two vectors.
        const _: () = assert!(NV == 2);

        /// `C = A·B`: A `m × k` at `a[i·rsa + p·csa]`, B `k × n` at `b[p·rsb + j]`, C `m × n`
        /// row-major (stride n), overwritten.
        ///
        /// # Safety
        /// The CPU must have the module's features, k ≥ 1 (an empty sum forms no pointers into
        /// A or B: the caller writes its zeros), and the three pointers must cover the entries
        /// those strides reach.
        #[target_feature(enable = $feature)]
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn product(
            m: usize,
            n: usize,
            k: usize,
            a: *const $t,
            rsa: usize,
            csa: usize,
            b: *const $t,
            rsb: usize,
            c: *mut $t,
        ) {
            debug_assert!(k >= 1, "an empty sum is the caller's");
            let mut i = 0;
            while m - i >= MR {
                columns::<MR, NV>(i, n, k, a, rsa, csa, b, rsb, c);
                i += MR;
            }
            // Fewer rows than a full tile (a whole product of few rows, or its last ones): wider
            // tiles, so that enough independent sums are under way.
            match m - i {
                0 => {}
                1 => columns::<1, WIDE1>(i, n, k, a, rsa, csa, b, rsb, c),
                2 => columns::<2, WIDE2>(i, n, k, a, rsa, csa, b, rsb, c),
                3 => columns::<3, WIDE4>(i, n, k, a, rsa, csa, b, rsb, c),
                4 => columns::<4, WIDE4>(i, n, k, a, rsa, csa, b, rsb, c),
                5 => columns::<5, NV>(i, n, k, a, rsa, csa, b, rsb, c),
                6 => columns::<6, NV>(i, n, k, a, rsa, csa, b, rsb, c),
                _ => columns::<7, NV>(i, n, k, a, rsa, csa, b, rsb, c),
            }
        }

        /// Rows i..i+R of C: tiles of W vectors, then of 4, of NV, of one, then one masked vector.
        #[target_feature(enable = $feature)]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn columns<const R: usize, const W: usize>(
            i: usize,
            n: usize,
            k: usize,
            a: *const $t,
            rsa: usize,
            csa: usize,
            b: *const $t,
            rsb: usize,
            c: *mut $t,
        ) {
            let mut j = 0;
            while W > NV && n - j >= W * LANES {
                tile::<R, W, false>(i, j, n, LANES, k, a, rsa, csa, b, rsb, c);
                j += W * LANES;
            }
            while W > 4 && NV < 4 && n - j >= 4 * LANES {
                tile::<R, 4, false>(i, j, n, LANES, k, a, rsa, csa, b, rsb, c);
                j += 4 * LANES;
            }
            while n - j >= NV * LANES {
                tile::<R, NV, false>(i, j, n, LANES, k, a, rsa, csa, b, rsb, c);
                j += NV * LANES;
            }
            // The last columns, fewer than NV = 2 vectors: one tile, its last vector masked when
            // the columns end inside it.
            let rest = n - j;
            match (rest / LANES, rest % LANES) {
                (0, 0) => {}
                (0, part) => tile::<R, 1, true>(i, j, n, part, k, a, rsa, csa, b, rsb, c),
                (1, 0) => tile::<R, 1, false>(i, j, n, LANES, k, a, rsa, csa, b, rsb, c),
                (_, part) => tile::<R, 2, true>(i, j, n, part, k, a, rsa, csa, b, rsb, c),
            }
        }

        /// The R × V-vector tile of C at (i, j); with `PART`, its last vector has only `width`
        /// < LANES columns, read and written masked.
        #[target_feature(enable = $feature)]
        #[inline]
        #[allow(clippy::too_many_arguments)]
        unsafe fn tile<const R: usize, const V: usize, const PART: bool>(
            i: usize,
            j: usize,
            n: usize,
            width: usize,
            k: usize,
            a: *const $t,
            rsa: usize,
            csa: usize,
            b: *const $t,
            rsb: usize,
            c: *mut $t,
        ) {
            let mut acc = [[zero(); V]; R];
            let a = a.add(i * rsa);
            let b = b.add(j);
            for p in 0..k {
                let bp = b.add(p * rsb);
                let mut bv = [zero(); V];
                for (v, bv) in bv.iter_mut().enumerate() {
                    *bv = if PART && v == V - 1 {
                        load_part(bp.add(v * LANES), width)
                    } else {
                        load(bp.add(v * LANES))
                    };
                }
                let ap = a.add(p * csa);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let air = splat(*ap.add(r * rsa));
                    for (acc, &bv) in acc.iter_mut().zip(&bv) {
                        *acc = fma(air, bv, *acc);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                let row = c.add((i + r) * n + j);
                for (v, &acc) in acc.iter().enumerate() {
                    if PART && v == V - 1 {
                        store_part(row.add(v * LANES), width, acc);
                    } else {
                        store(row.add(v * LANES), acc);
                    }
                }
            }
        }
    };
}

/// One instruction set's module: its vector primitives, from the intrinsics named, and the
/// driver and tile of `tiled_product` over them. `MR` rows × 2 vectors a full tile; a whole
/// product of 1, 2 or 3–4 rows takes tiles of `WIDE1`, `WIDE2` or `WIDE4` vectors.
macro_rules! instruction_set {
    (
        $(#[$doc:meta])*
        $module:ident, $feature:literal, $t:ty, $v:ty, lanes $lanes:literal, rows $mr:literal,
        wide ($w1:literal, $w2:literal, $w4:literal),
        $zero:ident, $load:ident, $store:ident, $splat:ident, $fma:ident,
        load_part |$lp:ident, $lw:ident| $load_part:expr,
        store_part |$sp:ident, $sw:ident, $sv:ident| $store_part:expr $(,)?
    ) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        pub(crate) mod $module {
            use std::arch::x86_64::*;
            const LANES: usize = $lanes;
            const MR: usize = $mr;
            const NV: usize = 2;
            const WIDE1: usize = $w1;
            const WIDE2: usize = $w2;
            const WIDE4: usize = $w4;
            #[target_feature(enable = $feature)]
            #[inline]
            fn zero() -> $v {
                $zero()
            }
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn load(p: *const $t) -> $v {
                $load(p)
            }
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn store(p: *mut $t, v: $v) {
                $store(p, v)
            }
            /// The first `width` < LANES entries at `p`, the rest zero (nothing past them is read).
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn load_part($lp: *const $t, $lw: usize) -> $v {
                $load_part
            }
            /// Stores the first `width` < LANES lanes of `v` at `p`, nothing past them.
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn store_part($sp: *mut $t, $sw: usize, $sv: $v) {
                $store_part
            }
            #[target_feature(enable = $feature)]
            #[inline]
            fn splat(x: $t) -> $v {
                $splat(x)
            }
            #[target_feature(enable = $feature)]
            #[inline]
            fn fma(a: $v, b: $v, c: $v) -> $v {
                $fma(a, b, c)
            }
            tiled_product!($feature, $t);
        }
    };
}

instruction_set!(
    /// AVX-512 in f32: 8 rows × 2 vectors (32 columns), 16 of the 32 registers.
    avx512_f32, "avx512f", f32, __m512, lanes 16, rows 8, wide (8, 8, 4),
    _mm512_setzero_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_fmadd_ps,
    load_part |p, width| _mm512_maskz_loadu_ps(((1u32 << width) - 1) as __mmask16, p),
    store_part |p, width, v| _mm512_mask_storeu_ps(p, ((1u32 << width) - 1) as __mmask16, v),
);

instruction_set!(
    /// AVX-512 in f64: 8 rows × 2 vectors (16 columns), 16 of the 32 registers.
    avx512_f64, "avx512f", f64, __m512d, lanes 8, rows 8, wide (8, 8, 4),
    _mm512_setzero_pd, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_set1_pd, _mm512_fmadd_pd,
    load_part |p, width| _mm512_maskz_loadu_pd(((1u32 << width) - 1) as __mmask8, p),
    store_part |p, width, v| _mm512_mask_storeu_pd(p, ((1u32 << width) - 1) as __mmask8, v),
);

instruction_set!(
    /// AVX2 in f32: 6 rows × 2 vectors (16 columns), 12 of the 16 registers.
    avx2_f32, "avx2,fma", f32, __m256, lanes 8, rows 6, wide (6, 4, 2),
    _mm256_setzero_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_fmadd_ps,
    load_part |p, width| _mm256_maskload_ps(p, super::avx2_mask32(width)),
    store_part |p, width, v| _mm256_maskstore_ps(p, super::avx2_mask32(width), v),
);

instruction_set!(
    /// AVX2 in f64: 6 rows × 2 vectors (8 columns), 12 of the 16 registers.
    avx2_f64, "avx2,fma", f64, __m256d, lanes 4, rows 6, wide (6, 4, 2),
    _mm256_setzero_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_set1_pd, _mm256_fmadd_pd,
    load_part |p, width| _mm256_maskload_pd(p, super::avx2_mask64(width)),
    store_part |p, width, v| _mm256_maskstore_pd(p, super::avx2_mask64(width), v),
);

/// The mask of AVX2's masked loads and stores: the first `width` of eight 32-bit lanes set.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn avx2_mask32(width: usize) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let w = width as i32;
    _mm256_cmpgt_epi32(_mm256_set1_epi32(w), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// The same for four 64-bit lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn avx2_mask64(width: usize) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let w = width as i64;
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(w), _mm256_setr_epi64x(0, 1, 2, 3))
}

/// `dst` (`cols × rows`, row-major) = the transpose of `src` (`rows × cols`, row stride `rs`),
/// in 8 × 8 blocks of f32 or 4 × 4 of f64 shuffled in registers, the edges entry by entry.
#[cfg(target_arch = "x86_64")]
pub(crate) mod transpose {
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX2; `src` must cover `rows` rows of stride `rs` ≥ `cols`, and `dst`
    /// `cols · rows` entries.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn f32s(rows: usize, cols: usize, src: *const f32, rs: usize, dst: *mut f32) {
        let (rb, cb) = (rows - rows % 8, cols - cols % 8);
        for i in (0..rb).step_by(8) {
            for j in (0..cb).step_by(8) {
                let s = src.add(i * rs + j);
                let r = |q: usize| _mm256_loadu_ps(s.add(q * rs));
                let t0 = _mm256_unpacklo_ps(r(0), r(1));
                let t1 = _mm256_unpackhi_ps(r(0), r(1));
                let t2 = _mm256_unpacklo_ps(r(2), r(3));
                let t3 = _mm256_unpackhi_ps(r(2), r(3));
                let t4 = _mm256_unpacklo_ps(r(4), r(5));
                let t5 = _mm256_unpackhi_ps(r(4), r(5));
                let t6 = _mm256_unpacklo_ps(r(6), r(7));
                let t7 = _mm256_unpackhi_ps(r(6), r(7));
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let d = dst.add(j * rows + i);
                _mm256_storeu_ps(d, _mm256_permute2f128_ps::<0x20>(u0, u4));
                _mm256_storeu_ps(d.add(rows), _mm256_permute2f128_ps::<0x20>(u1, u5));
                _mm256_storeu_ps(d.add(2 * rows), _mm256_permute2f128_ps::<0x20>(u2, u6));
                _mm256_storeu_ps(d.add(3 * rows), _mm256_permute2f128_ps::<0x20>(u3, u7));
                _mm256_storeu_ps(d.add(4 * rows), _mm256_permute2f128_ps::<0x31>(u0, u4));
                _mm256_storeu_ps(d.add(5 * rows), _mm256_permute2f128_ps::<0x31>(u1, u5));
                _mm256_storeu_ps(d.add(6 * rows), _mm256_permute2f128_ps::<0x31>(u2, u6));
                _mm256_storeu_ps(d.add(7 * rows), _mm256_permute2f128_ps::<0x31>(u3, u7));
            }
        }
        edges(rows, cols, rb, cb, src, rs, dst);
    }

    /// # Safety
    /// As [`f32s`].
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn f64s(rows: usize, cols: usize, src: *const f64, rs: usize, dst: *mut f64) {
        let (rb, cb) = (rows - rows % 4, cols - cols % 4);
        for i in (0..rb).step_by(4) {
            for j in (0..cb).step_by(4) {
                let s = src.add(i * rs + j);
                let r = |q: usize| _mm256_loadu_pd(s.add(q * rs));
                let t0 = _mm256_unpacklo_pd(r(0), r(1));
                let t1 = _mm256_unpackhi_pd(r(0), r(1));
                let t2 = _mm256_unpacklo_pd(r(2), r(3));
                let t3 = _mm256_unpackhi_pd(r(2), r(3));
                let d = dst.add(j * rows + i);
                _mm256_storeu_pd(d, _mm256_permute2f128_pd::<0x20>(t0, t2));
                _mm256_storeu_pd(d.add(rows), _mm256_permute2f128_pd::<0x20>(t1, t3));
                _mm256_storeu_pd(d.add(2 * rows), _mm256_permute2f128_pd::<0x31>(t0, t2));
                _mm256_storeu_pd(d.add(3 * rows), _mm256_permute2f128_pd::<0x31>(t1, t3));
            }
        }
        edges(rows, cols, rb, cb, src, rs, dst);
    }

    /// The entries outside the `rb × cb` block corner, one by one.
    #[inline(always)]
    unsafe fn edges<T: Copy>(
        rows: usize,
        cols: usize,
        rb: usize,
        cb: usize,
        src: *const T,
        rs: usize,
        dst: *mut T,
    ) {
        for i in 0..rows {
            let from = if i < rb { cb } else { 0 };
            for j in from..cols {
                *dst.add(j * rows + i) = *src.add(i * rs + j);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    /// Every entry of C is `fma(a_ip, b_pj, ·)` over p = 0..k in order from zero, bit for bit, at
    /// every edge of the tiles, with A read as stored and transposed; nothing past C is written.
    macro_rules! chain_test {
        ($name:ident, $module:ident, $t:ty, $feature:tt) => {
            #[test]
            fn $name() {
                if !std::arch::is_x86_feature_detected!($feature)
                    || !std::arch::is_x86_feature_detected!("fma")
                {
                    return;
                }
                let mut seed = 1u64;
                let mut next = move || {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as $t
                };
                for m in [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17] {
                    for n in [1, 2, 5, 8, 16, 17, 24, 33, 64, 123, 245] {
                        for k in [1, 7, 40] {
                            let rsb = n + 2;
                            let b: Vec<$t> = (0..k * rsb).map(|_| next()).collect();
                            let a: Vec<$t> = (0..m * k).map(|_| next()).collect();
                            // A as stored (m × k rows) and as the transpose of a k × m matrix.
                            for (rsa, csa) in [(k, 1), (1, m)] {
                                let guard = 64;
                                let mut c = vec![<$t>::NAN; m * n + guard];
                                // SAFETY: the features were checked; the strides stay in the buffers.
                                unsafe {
                                    super::$module::product(
                                        m,
                                        n,
                                        k,
                                        a.as_ptr(),
                                        rsa,
                                        csa,
                                        b.as_ptr(),
                                        rsb,
                                        c.as_mut_ptr(),
                                    )
                                };
                                for i in 0..m {
                                    for j in 0..n {
                                        let mut want: $t = 0.0;
                                        for p in 0..k {
                                            want = a[i * rsa + p * csa].mul_add(b[p * rsb + j], want);
                                        }
                                        let got = c[i * n + j];
                                        assert_eq!(
                                            got.to_bits(),
                                            want.to_bits(),
                                            "{m}×{n}×{k} ({rsa}, {csa}): C[{i}][{j}] = {got}, want {want}"
                                        );
                                    }
                                }
                                assert!(c[m * n..].iter().all(|v| v.is_nan()), "{m}×{n}×{k}: written past C");
                            }
                        }
                    }
                }
            }
        };
    }
    chain_test!(avx512_f32_tiles_are_the_fma_chain, avx512_f32, f32, "avx512f");
    chain_test!(avx512_f64_tiles_are_the_fma_chain, avx512_f64, f64, "avx512f");
    chain_test!(avx2_f32_tiles_are_the_fma_chain, avx2_f32, f32, "avx2");
    chain_test!(avx2_f64_tiles_are_the_fma_chain, avx2_f64, f64, "avx2");

    #[test]
    fn the_blocked_transpose_moves_every_entry_and_nothing_else() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        for rows in 0..20 {
            for cols in 0..20 {
                let rs = cols + 3;
                let src64: Vec<f64> = (0..rows * rs).map(|i| i as f64).collect();
                let src32: Vec<f32> = src64.iter().map(|&v| v as f32).collect();
                // One guard entry past the end catches a store beyond the last one.
                let (mut d64, mut d32) = (vec![-1.0f64; rows * cols + 1], vec![-1.0f32; rows * cols + 1]);
                // SAFETY: AVX2 is there; the buffers hold the entries the strides reach.
                unsafe {
                    super::transpose::f64s(rows, cols, src64.as_ptr(), rs, d64.as_mut_ptr());
                    super::transpose::f32s(rows, cols, src32.as_ptr(), rs, d32.as_mut_ptr());
                }
                for i in 0..rows {
                    for j in 0..cols {
                        assert_eq!(d64[j * rows + i], src64[i * rs + j], "{rows}×{cols} f64 ({i}, {j})");
                        assert_eq!(d32[j * rows + i], src32[i * rs + j], "{rows}×{cols} f32 ({i}, {j})");
                    }
                }
                assert_eq!((d64[rows * cols], d32[rows * cols]), (-1.0, -1.0), "{rows}×{cols}: past the end");
            }
        }
    }
}
