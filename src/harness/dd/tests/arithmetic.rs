//! +, −, ·, ÷, √ against exact expansions; non-finite and extreme arguments; the operators.

use super::*;

#[test]
fn arithmetic_errors_are_a_few_units_of_2_pow_minus_106() {
    let mut rng = Rng::new(1);
    let mut worst = [0.0f64; 7];
    for i in 0..100_000 {
        let (ea, eb) = ((rng.next() % 400) as i32 - 200, (rng.next() % 400) as i32 - 200);
        let (a, mut b) = (rng.dd(ea), rng.dd(eb));
        if i % 4 == 0 {
            // Cancelling sums: b within a few ulps of −a.
            let e = ea - 40 - (rng.next() % 70) as i32;
            b = a.neg().add(rng.dd(e));
        }
        let checks = [
            (a.add(b), exact_sum(&[a.hi, a.lo, b.hi, b.lo])),
            (a.sub(b), exact_sum(&[a.hi, a.lo, -b.hi, -b.lo])),
            (a.add_f64(b.hi), exact_sum(&[a.hi, a.lo, b.hi])),
        ];
        for (k, (got, _)) in checks.iter().enumerate() {
            let exact =
                [vec![a.hi, a.lo, b.hi, b.lo], vec![a.hi, a.lo, -b.hi, -b.lo], vec![a.hi, a.lo, b.hi]];
            let mut t = exact[k].clone();
            t.extend([-got.hi, -got.lo]);
            let err = exact_sum(&t).abs() / got.hi.abs().max(f64::MIN_POSITIVE);
            assert!(normalised(*got), "{k}: {a:?} {b:?} -> {got:?}");
            worst[k] = worst[k].max(err / U2);
        }
        let p = a.mul(b);
        let mut t = product_terms(a, b, 1.0);
        t.extend([-p.hi, -p.lo]);
        worst[3] = worst[3].max(exact_sum(&t).abs() / p.hi.abs() / U2);
        let pf = a.mul_f64(b.hi);
        let mut t = product_terms(a, Dd::new(b.hi), 1.0);
        t.extend([-pf.hi, -pf.lo]);
        worst[4] = worst[4].max(exact_sum(&t).abs() / pf.hi.abs() / U2);
        // a/b: |a − q·b|/|a|.
        let q = a.div(b);
        let mut t = product_terms(q, b, -1.0);
        t.extend([a.hi, a.lo]);
        worst[5] = worst[5].max(exact_sum(&t).abs() / a.hi.abs() / U2);
        // √|a|: |a − s²|/(2|a|).
        let x = a.abs();
        let s = x.sqrt();
        let mut t = product_terms(s, s, -1.0);
        t.extend([x.hi, x.lo]);
        worst[6] = worst[6].max(exact_sum(&t).abs() / (2.0 * x.hi) / U2);
        for v in [p, pf, q, s] {
            assert!(normalised(v), "{a:?} {b:?} -> {v:?}");
        }
    }
    eprintln!("worst errors in units of 2^-106 (add, sub, add_f64, mul, mul_f64, div, sqrt): {worst:?}");
    let bounds = [3.0, 3.0, 2.0, 6.0, 3.0, 6.0, 3.0];
    for (w, b) in worst.iter().zip(bounds) {
        assert!(*w <= b, "{worst:?} exceeds {bounds:?}");
    }
}

#[test]
fn non_finite_and_extreme_arguments_behave_like_f64() {
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    let d = Dd::new;
    assert_eq!(d(1000.0).exp(), d(inf));
    assert_eq!(d(-1000.0).exp(), Dd::ZERO);
    assert_eq!(d(inf).exp(), d(inf));
    assert_eq!(d(-inf).exp(), Dd::ZERO);
    assert!(d(nan).exp().hi.is_nan());
    assert!(d(709.78).exp().is_finite() && d(709.79).exp() == d(inf));
    assert_eq!(d(inf).exp_m1(), d(inf));
    assert_eq!(d(-inf).exp_m1(), d(-1.0));
    assert_eq!(d(-800.0).exp_m1(), d(-1.0));
    assert!(d(nan).exp_m1().is_nan());
    assert_eq!(d(0.0).ln(), d(-inf));
    assert!(d(-1.0).ln().is_nan() && d(nan).ln().is_nan());
    assert_eq!(d(inf).ln(), d(inf));
    assert_eq!(d(-1.0).ln_1p(), d(-inf));
    assert!(d(-2.0).ln_1p().is_nan());
    assert_eq!(d(inf).ln_1p(), d(inf));
    assert_eq!(d(inf).tanh(), Dd::ONE);
    assert_eq!(d(-inf).tanh(), d(-1.0));
    assert_eq!(d(40.0).tanh(), Dd::ONE);
    assert!(d(nan).tanh().is_nan());
    assert_eq!(d(inf).sigmoid(), Dd::ONE);
    assert_eq!(d(-inf).sigmoid(), Dd::ZERO);
    assert!(d(nan).sigmoid().is_nan());
    assert_eq!((d(inf).erf(), d(-inf).erf()), (Dd::ONE, d(-1.0)));
    assert_eq!((d(inf).erfc(), d(-inf).erfc()), (Dd::ZERO, d(2.0)));
    assert!(d(nan).erf().is_nan() && d(nan).erfc().is_nan());
    assert_eq!(d(-0.0).sqrt().hi.to_bits(), (-0.0f64).to_bits());
    assert!(d(-1.0).sqrt().is_nan());
    assert_eq!(d(inf).sqrt(), d(inf));
    assert_eq!(d(inf).add(Dd::ONE), d(inf));
    assert_eq!(d(f64::MAX).add(d(f64::MAX)), d(inf));
    assert_eq!(d(f64::MAX).mul_f64(2.0), d(inf));
    assert_eq!(d(f64::MAX).mul(d(f64::MAX)), d(inf));
    assert_eq!(Dd::ONE.div(Dd::ZERO), d(inf));
    assert_eq!(Dd::ONE.div(d(inf)), Dd::ZERO);
    assert!(Dd::ZERO.div(Dd::ZERO).is_nan() && d(inf).sub(d(inf)).is_nan());
    assert!(d(nan) != d(nan) && d(nan).partial_cmp(&Dd::ONE).is_none());
    // Never NaN from a finite argument where f64 gives a number.
    let mut xs = vec![0.0, -0.0, f64::MIN_POSITIVE, 5e-324, f64::MAX, 1e-300, 1e300, 0.5, 745.2, 1400.0];
    xs.extend(xs.clone().iter().map(|x| -x));
    for x in xs {
        let x = d(x);
        for (name, v) in [
            ("exp", x.exp()),
            ("exp_m1", x.exp_m1()),
            ("tanh", x.tanh()),
            ("sigmoid", x.sigmoid()),
            ("erf", x.erf()),
            ("erfc", x.erfc()),
            ("square", x.square()),
        ] {
            assert!(!v.is_nan() && !v.lo.is_nan(), "{name}({x:?}) = {v:?}");
        }
        if x.hi >= 0.0 {
            assert!(!x.ln().lo.is_nan() && !x.sqrt().is_nan() && !x.ln_1p().is_nan(), "{x:?}");
        }
        for a in Activation::ALL {
            let z = activate(a, x);
            let g = activate_derivative(a, x, z);
            assert!(!z.is_nan() && !g.is_nan() && !z.lo.is_nan() && !g.lo.is_nan(), "{a:?} at {x:?}");
        }
    }
}

#[test]
fn operators_and_order() {
    let (a, b) = (Dd::new(3.0), Dd::two_sum(1.0, 1e-20));
    assert_eq!(a + b, a.add(b));
    assert_eq!(a - b, a.sub(b));
    assert_eq!(a * b, a.mul(b));
    assert_eq!(a / b, a.div(b));
    assert_eq!(-b, b.neg());
    let mut c = a;
    c += b;
    c -= b;
    c *= b;
    c /= b;
    assert!(rel(c, a) < 1e-31);
    assert!(b > Dd::ONE && b.neg() < Dd::ZERO && Dd::from(2.0) == Dd::new(2.0));
    assert_eq!(Dd::ONE.partial_cmp(&b), Some(Ordering::Less));
    assert!(Dd::two_sum(1.0, -1e-20) < Dd::ONE);
    assert_eq!(
        Dd::two_prod(1.0 + f64::EPSILON, 1.0 - f64::EPSILON),
        Dd { hi: 1.0, lo: -f64::EPSILON * f64::EPSILON }
    );
    assert_eq!(b.neg().abs(), b);
    assert_eq!((b.neg().signum(), b.to_f64()), (Dd::new(-1.0), 1.0));
}
