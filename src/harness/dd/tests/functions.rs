//! The functions and the activations: identities, the erf/erfc crossovers and the continued
//! fraction's depth, rounding against libm, derivatives against difference quotients, the
//! saturated regimes; and a timing run (ignored).

use super::*;

#[test]
fn identities_hold_to_the_last_bits() {
    let mut rng = Rng::new(2);
    for _ in 0..20_000 {
        // e^x·e^−x = 1, above 2⁻⁹⁶⁸ where a dd is still 106 bits.
        let x = Dd::new(rng.uniform(-650.0, 650.0));
        let one = x.exp().mul(x.neg().exp());
        assert!(one.sub(Dd::ONE).hi.abs() <= 1e-30, "exp({x:?})·exp(−x) = {one:?}");
        // ln e^x = x (the error of e^x is relative, so absolute in the logarithm).
        let back = x.exp().ln();
        assert!(back.sub(x).hi.abs() <= 1e-31 * x.hi.abs().max(1.0), "ln exp {x:?} = {back:?}");
        // expm1(ln1p(u)) = u, also for tiny u and u near −1.
        let u = match rng.next() % 3 {
            0 => Dd::new(rng.uniform(-1.0, 10.0)),
            1 => Dd::new(rng.uniform(-1.0, 1.0) * pow2i(-((rng.next() % 1000) as i32))),
            _ => Dd::new(-1.0 + pow2i(-((rng.next() % 53) as i32)) * rng.uniform(0.5, 1.0)),
        };
        let l = u.ln_1p();
        let back = l.exp_m1();
        assert!(rel(back, u) <= 4e-31 * (1.0 + l.hi.abs()), "expm1 ln1p {u:?} = {back:?}");
        // erf + erfc = 1.
        let y = Dd::new(rng.uniform(-6.0, 6.0));
        let s = y.erf().add(y.erfc());
        assert!(s.sub(Dd::ONE).hi.abs() <= 1e-30, "erf + erfc at {y:?} = {s:?}");
        // σ(x) + σ(−x) = 1.
        let z = Dd::new(rng.uniform(-80.0, 80.0));
        let s = z.sigmoid().add(z.neg().sigmoid());
        assert!(s.sub(Dd::ONE).hi.abs() <= 1e-30, "σ(x) + σ(−x) at {z:?} = {s:?}");
        // σ(x) = 1/(1 + e^−x), computed here the plain way.
        let w = Dd::new(rng.uniform(-650.0, 40.0));
        let plain = Dd::ONE.div(Dd::ONE.add(w.neg().exp()));
        assert!(rel(w.sigmoid(), plain) <= 1e-30, "σ({w:?})");
        // tanh x = expm1(2x)/(expm1(2x) + 2), and = (1 − e^−2x)/(1 + e^−2x) for x ≥ 0.
        let v = Dd::new(rng.uniform(-30.0, 30.0));
        let e = v.mul_pow2(2.0).exp_m1();
        assert!(rel(v.tanh(), e.div(e.add_f64(2.0))) <= 1e-30, "tanh {v:?}");
        let a = v.abs();
        let t = a.mul_pow2(-2.0).exp();
        let other = Dd::ONE.sub(t).div(Dd::ONE.add(t));
        assert!(rel(a.tanh(), other) <= 1e-30 / a.hi.min(1.0), "tanh {a:?}");
        // √x² = |x|.
        let e = (rng.next() % 960) as i32 - 470;
        let r = rng.dd(e);
        assert!(rel(r.square().sqrt(), r.abs()) <= 1e-31, "√({r:?})²");
    }
    // ln 2^k = k ln 2, exactly enough.
    for k in -1074..1024 {
        let x = Dd::new(pow2i(k.max(-1022)) * if k < -1022 { pow2i(k + 1022) } else { 1.0 });
        let want = LN2.mul_f64(k as f64);
        assert!(rel(x.ln(), want) <= 1e-31, "ln 2^{k}");
    }
}

#[test]
fn erf_series_and_continued_fraction_agree_at_the_crossovers() {
    let mut worst = 0.0f64;
    for i in 0..=400 {
        // Around erfc's switch at 1.5 and erf's at 3; and beyond, down to the series' limit.
        for x in [ERFC_CF - 0.1 + 0.0005 * i as f64, ERF_CF - 0.1 + 0.0005 * i as f64] {
            let x = Dd::new(x);
            let e = exp_neg_sq(x, 1.0);
            let series = erf_series(x, e);
            let (m, s) = erfc_cf(x, e);
            let cf = Dd::scale(m, s);
            assert!(rel(series, Dd::ONE.sub(cf)) <= 2e-31, "erf({x:?}): {series:?} vs {cf:?}");
            if x.hi < 2.0 {
                // 1 − series loses log₂(1/erfc) bits: 5 here.
                let r = rel(Dd::ONE.sub(series), cf);
                assert!(r <= 1e-29, "erfc({x:?}): 1 − series {:?}, fraction {cf:?}", Dd::ONE.sub(series));
                worst = worst.max(r);
            }
        }
    }
    eprintln!("worst relative difference of erfc by the series and by the fraction: {worst:e}");
}

#[test]
fn continued_fraction_depth_suffices() {
    // Forty more steps change nothing beyond rounding, anywhere the fraction is used.
    let mut x = ERFC_CF;
    while x < ERFC_ZERO {
        let d = Dd::new(x);
        let e = exp_neg_sq(d, 1.0);
        let inv = 1.0 / x;
        let n = (CF_DEPTH[0] + inv * (CF_DEPTH[1] + CF_DEPTH[2] * inv)) as u32;
        let (a, _) = erfc_cf_depth(d, e, n);
        let (b, _) = erfc_cf_depth(d, e, n + 40);
        assert!(rel(a, b) <= 1e-31, "depth {n} at {x}: {a:?} vs {b:?}");
        x += 0.01;
    }
}

#[test]
fn rounds_to_within_an_ulp_of_libm() {
    let n = 20_000;
    let grid = |a: f64, b: f64| (0..=n).map(move |i| a + (b - a) * i as f64 / n as f64);
    let logs =
        |a: f64, b: f64| (0..=n).map(move |i| (a.ln() + (b.ln() - a.ln()) * i as f64 / n as f64).exp());
    type Check = (&'static str, fn(Dd) -> Dd, fn(f64) -> f64, u64);
    let checks: [Check; 8] = [
        ("exp", Dd::exp, f64::exp, 1),
        ("exp_m1", Dd::exp_m1, f64::exp_m1, 1),
        ("ln", Dd::ln, f64::ln, 1),
        ("ln_1p", Dd::ln_1p, f64::ln_1p, 1),
        // glibc's tanh is off by up to 1.7 ulps (e.g. at −0.35000000000002274).
        ("tanh", Dd::tanh, f64::tanh, 2),
        ("erf", Dd::erf, libm::erf, 1),
        // libm's erfc is off by up to 2 ulps (e.g. at 1.1574: 0.1016700132019914 for
        // 0.10167001320199137|78).
        ("erfc", Dd::erfc, libm::erfc, 2),
        (
            "sigmoid",
            Dd::sigmoid,
            |x| if x < 0.0 { x.exp() / (1.0 + x.exp()) } else { 1.0 / (1.0 + (-x).exp()) },
            2,
        ),
    ];
    for (name, f, g, tol) in checks {
        let xs: Vec<f64> = match name {
            "ln" => logs(1e-300, 1e300).collect(),
            "ln_1p" => logs(1e-300, 1e300).chain(grid(-0.999999, 1.0)).collect(),
            "erf" | "erfc" => grid(-6.0, 6.0).chain(grid(6.0, 26.5)).collect(),
            "exp" | "sigmoid" => grid(-745.2, 709.7).chain(grid(-2.0, 2.0)).collect(),
            _ => grid(-700.0, 700.0).chain(grid(-2.0, 2.0)).chain(logs(1e-300, 1.0)).collect(),
        };
        for x in xs {
            let want = g(x);
            if want.is_infinite() {
                continue;
            }
            let got = f(Dd::new(x));
            assert!(ulps(got.to_f64(), want) <= tol, "{name}({x:e}) = {got:?}, libm {want:e}");
            assert_eq!(got.to_f64(), got.hi, "{name}({x:e}) not normalised");
        }
    }
}

/// φ'(a) against a central difference of φ in dd, away from the kinks.
#[test]
fn derivatives_match_central_differences() {
    let mut rng = Rng::new(3);
    let h = 1e-12;
    for act in Activation::ALL {
        for i in 0..3000 {
            let a = match i % 3 {
                0 => rng.uniform(-40.0, 40.0),
                1 => rng.uniform(-4.0, 4.0),
                _ => rng.uniform(-1.0, 1.0) * pow2i(-((rng.next() % 30) as i32)),
            };
            let kink = match act {
                Activation::Relu | Activation::LeakyRelu | Activation::Elu => Some(0.0),
                Activation::Softplus => Some(SOFTPLUS_THRESHOLD),
                _ => None,
            };
            if kink.is_some_and(|k| (a - k).abs() < 1e-10) {
                continue;
            }
            let x = Dd::new(a);
            let (up, down) = (activate(act, x.add_f64(h)), activate(act, x.add_f64(-h)));
            let fd = up.sub(down).div(Dd::new(h).mul_pow2(2.0));
            let d = activate_derivative(act, x, activate(act, x));
            let scale = d.hi.abs().max(1e-300);
            // Truncation h²φ'''/6 and rounding 1e−32/h: far below 1e−12 of φ' or of the terms.
            let tol = 1e-12 * scale + 1e-19;
            assert!(fd.sub(d).hi.abs() <= tol, "{act:?}'({a}) = {d:?}, difference quotient {fd:?}");
        }
    }
}

#[test]
fn activate_pair_is_activate_and_activate_derivative() {
    let mut rng = Rng::new(5);
    for act in Activation::ALL {
        for i in 0..2000 {
            let a = match i % 3 {
                0 => rng.uniform(-60.0, 60.0),
                1 => rng.uniform(-3.0, 3.0),
                _ => rng.uniform(-800.0, 800.0),
            };
            let x = Dd::two_sum(a, rng.uniform(-0.5, 0.5) * ulp(a));
            let z = activate(act, x);
            let (pz, pd) = activate_pair(act, x);
            assert_eq!((pz, pd), (z, activate_derivative(act, x, z)), "{act:?} at {x:?}");
        }
    }
}

/// A layer's tanh through `lanes`' loop is `tanh_pair`'s, bit for bit: both forms and the
/// switch at ½, the ends of the lanes' range at ±37.5, zeros, subnormals, low parts, NaN and ∞,
/// in layers whose length is not a multiple of eight.
#[test]
fn tanh_lanes_are_the_scalar_tanh() {
    let mut rng = Rng::new(11);
    let special = [
        0.0,
        -0.0,
        0.5,
        -0.5,
        0.49999999999999994,
        0.5000000000000001,
        37.5,
        -37.5,
        37.49999999999999,
        1e-300,
        -5e-324,
        1e-17,
        20.0,
        40.0,
        800.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    for len in [0, 1, 7, 8, 9, 64, 1003] {
        let a: Vec<Dd> = (0..len)
            .map(|i| {
                let hi = match rng.next() % 6 {
                    0 => special[(rng.next() % special.len() as u64) as usize],
                    1 => rng.uniform(-0.6, 0.6),
                    2 => rng.uniform(-40.0, 40.0),
                    3 => rng.uniform(-1.0, 1.0) * pow2i(-((rng.next() % 1080) as i32)),
                    _ => rng.uniform(-4.0, 4.0),
                };
                let lo = if i % 3 == 0 || !hi.is_finite() { 0.0 } else { rng.uniform(-0.5, 0.5) * ulp(hi) };
                Dd::two_sum(hi, lo)
            })
            .collect();
        let (mut z, mut d) = (vec![Dd::ZERO; len], vec![Dd::ZERO; len]);
        activate_pairs(Activation::Tanh, &a, &mut z, &mut d);
        for (p, &x) in a.iter().enumerate() {
            let (sz, sd) = activation::tanh_pair(x);
            let bits = |v: Dd| (v.hi.to_bits(), v.lo.to_bits());
            assert_eq!((bits(z[p]), bits(d[p])), (bits(sz), bits(sd)), "tanh at {x:?} (entry {p} of {len})");
        }
    }
}

#[test]
fn activations_in_saturated_and_negative_regimes() {
    let d = Dd::new;
    let val = |a: Activation, x: f64| activate(a, d(x));
    let der = |a: Activation, x: f64| activate_derivative(a, d(x), activate(a, d(x)));
    // Relative accuracy where φ or φ' is tiny (see also the mpmath table).
    let tanh30 = parse("3.50260430507860813539549305895448182484684593e-26");
    assert!(rel(der(Activation::Tanh, 30.0), tanh30) <= 1e-29, "tanh'(30) = 4e^-60/(1 + e^-60)^2");
    let e40 = d(-40.0).exp();
    assert!(rel(val(Activation::Softplus, -40.0), e40.ln_1p()) <= 1e-31);
    assert!(rel(val(Activation::Silu, -40.0), d(-40.0).mul(e40).div(e40.add_f64(1.0))) <= 1e-30);
    let gelu10 = parse("-7.619853024160526065973343251599308363504e-23");
    assert!(rel(val(Activation::Gelu, -10.0), gelu10) <= 1e-29, "{:?}", val(Activation::Gelu, -10.0));
    let elu = parse("-9.99999999950000036433863978521146847797934661e-11");
    assert!(rel(val(Activation::Elu, -1e-10), elu) <= 1e-30);
    // The crate's branches and one-sided choices.
    let z0 = Dd::ZERO;
    assert_eq!(activate_derivative(Activation::Relu, z0, z0), Dd::ZERO);
    assert_eq!(activate_derivative(Activation::LeakyRelu, z0, z0), d(LEAKY_RELU_SLOPE));
    assert_eq!(activate_derivative(Activation::Elu, z0, z0), Dd::ONE);
    assert_eq!(val(Activation::Relu, -2.0), Dd::ZERO);
    assert!(val(Activation::Relu, f64::NAN).is_nan());
    assert_eq!(val(Activation::LeakyRelu, -2.0), d(-2.0).mul_f64(LEAKY_RELU_SLOPE));
    let above = 20.000000000000004;
    assert_eq!((val(Activation::Softplus, above), der(Activation::Softplus, above)), (d(above), Dd::ONE));
    assert_eq!(der(Activation::Softplus, 20.0), d(20.0).sigmoid());
    assert!(rel(val(Activation::Softplus, 20.0), d(20.0).exp().ln_1p()) == 0.0);
    assert_eq!(val(Activation::Identity, 1.5), d(1.5));
    assert_eq!(der(Activation::Identity, 1.5), Dd::ONE);
    // Saturated derivatives stay relative: σ'(±700), tanh'(300), silu'(−700).
    for x in [-700.0, 700.0] {
        let want = d(-700.0).exp().div(d(-700.0).exp().add_f64(1.0).square());
        assert!(rel(der(Activation::Sigmoid, x), want) <= 1e-30);
    }
    assert!(der(Activation::Tanh, 400.0) == Dd::ZERO && der(Activation::Sigmoid, -800.0) == Dd::ZERO);
}

/// Rough ns/call in a release build: `cargo test --release -- --ignored --nocapture timing`.
#[test]
#[ignore]
fn timing() {
    let mut rng = Rng::new(4);
    let xs: Vec<Dd> = (0..200_000).map(|_| Dd::new(rng.uniform(-3.0, 3.0))).collect();
    let time = |name: &str, f: &dyn Fn(Dd) -> Dd| {
        let t = std::time::Instant::now();
        let s = xs.iter().fold(0.0, |s, &x| s + f(std::hint::black_box(x)).hi);
        let ns = t.elapsed().as_secs_f64() * 1e9 / xs.len() as f64;
        eprintln!("{name:12} {ns:7.1} ns/call ({s:.3})");
    };
    time("mul", &|x| x.mul(x));
    time("div", &|x| Dd::ONE.div(x));
    time("exp", &Dd::exp);
    time("exp_m1", &Dd::exp_m1);
    time("ln", &|x| x.abs().ln());
    time("tanh", &Dd::tanh);
    time("sigmoid", &Dd::sigmoid);
    time("erf", &Dd::erf);
    time("erfc", &Dd::erfc);
    for a in Activation::ALL {
        time(&format!("{a:?}"), &|x| activate(a, x));
        time(&format!("{a:?}'"), &|x| activate_derivative(a, x, x));
    }
}
