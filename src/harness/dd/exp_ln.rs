//! The exponential and the logarithm in double-double: e^x by an exact reduction
//! x = (64m + j)·ln2/64 + r, a table of 2^(j/64) and a Taylor polynomial of e^r − 1; e^x − 1
//! without cancellation; ln(1 + u) and ln by one Newton step from f64's `ln_1p`; and the exact
//! scaling by 2^m that keeps intermediates out of the subnormals until the end.

use super::arith::{fma, pow2i};
use super::Dd;

/// ln 2.
pub(super) const LN2: Dd = Dd::c(std::f64::consts::LN_2, 2.3190468138462996e-17);

/// 1/6, 1/24, 1/120, 1/720.
const INV6: Dd = Dd::c(0.16666666666666666, 9.25185853854297e-18);
const INV24: Dd = Dd::c(0.041666666666666664, 2.3129646346357427e-18);
const INV120: Dd = Dd::c(0.008333333333333333, 1.1564823173178714e-19);
const INV720: Dd = Dd::c(0.001388888888888889, -5.300543954373577e-20);
/// 1/n! for n = 7..11, the tail of e^r − 1 that f64 carries well enough.
const INV_FACT: [f64; 5] = [
    1.984126984126984e-4,
    2.48015873015873e-5,
    2.7557319223985893e-6,
    2.755731922398589e-7,
    2.505210838544172e-8,
];
/// 64/ln 2, for the reduction's k = round(64x/ln 2).
const LOG2E_64: f64 = 92.33248261689366;
/// ln2/64 = L1 + L2 (+ L2's low part): L1 with 36 significant bits so that k·L1 is exact for
/// |k| < 2¹⁷.
const L1: f64 = 0.010830424696223417;
const L2: Dd = Dd::c(2.572804622327669e-14, -1.5746795524851787e-30);
/// 1.5·2⁵²: adding and subtracting it rounds an f64 of magnitude < 2⁵¹ to an integer.
const SHIFTER: f64 = 6755399441055744.0;
/// √2 in f64: the split of ln's mantissa into [1/√2, √2].
const SQRT2: f64 = std::f64::consts::SQRT_2;

/// 2^(j/64) for j = 0..63, rounded to dd (from mpmath at 60 digits).
const EXP2_TABLE: [Dd; 64] = [
    Dd::c(1.0, 0.0),
    Dd::c(1.0108892860517005, -1.5234778603368577e-17),
    Dd::c(1.0218971486541166, 5.109225028973444e-17),
    Dd::c(1.0330248790212284, 7.600838874027088e-18),
    Dd::c(1.0442737824274138, 8.551889705537965e-17),
    Dd::c(1.0556451783605572, 1.759325738772092e-18),
    Dd::c(1.0671404006768237, -7.899853966841582e-17),
    Dd::c(1.0787607977571199, -6.656660436056593e-17),
    Dd::c(1.0905077326652577, -3.046782079812471e-17),
    Dd::c(1.102382583307841, 5.2660368715706944e-17),
    Dd::c(1.1143867425958924, 1.0410278456845571e-16),
    Dd::c(1.1265216186082418, 5.165856758795457e-17),
    Dd::c(1.1387886347566916, 8.912812676025408e-17),
    Dd::c(1.1511892299529827, 3.250710218863827e-17),
    Dd::c(1.1637248587775775, 3.8292048369240935e-17),
    Dd::c(1.1763969916502812, 5.554203254218079e-17),
    Dd::c(1.189207115002721, 3.982015231465646e-17),
    Dd::c(1.202156731452703, 6.644981499252301e-17),
    Dd::c(1.215247359980469, -7.712630692681488e-17),
    Dd::c(1.22848053610687, -1.89878163130253e-17),
    Dd::c(1.241857812073484, 4.658027591836937e-17),
    Dd::c(1.255380757024691, -6.7113898212968784e-18),
    Dd::c(1.2690509571917332, 2.667932131342186e-18),
    Dd::c(1.2828700160787783, 1.713594918243561e-17),
    Dd::c(1.2968395546510096, 2.5382502794888315e-17),
    Dd::c(1.3109612115247644, -7.181536135519454e-17),
    Dd::c(1.3252366431597413, -2.8587312100388614e-17),
    Dd::c(1.339667524053303, 8.927282594831732e-17),
    Dd::c(1.3542555469368927, 7.70094837980299e-17),
    Dd::c(1.3690024229745905, 9.593797919118849e-17),
    Dd::c(1.383909881963832, -6.770511658794786e-17),
    Dd::c(1.3989796725383112, -9.614213209051323e-17),
    Dd::c(SQRT2, -9.667293313452913e-17),
    Dd::c(1.42961333839197, -1.2031642489053655e-17),
    Dd::c(1.4451808069770467, -3.0237581349939873e-17),
    Dd::c(1.460917794180647, -5.600377186075216e-17),
    Dd::c(1.4768261459394993, -3.483994556892796e-17),
    Dd::c(1.4929077282912648, 1.4192920154284036e-17),
    Dd::c(1.5091644275934228, -1.016455327754295e-16),
    Dd::c(1.5255981507445384, -1.1024941712342561e-16),
    Dd::c(1.5422108254079407, 7.949834809697621e-17),
    Dd::c(1.559004400237837, 3.7812070533575275e-17),
    Dd::c(1.5759808451078865, -1.0136916471278304e-17),
    Dd::c(1.593142151342267, -1.0094406542311964e-16),
    Dd::c(1.6104903319492543, 2.4707192569797888e-17),
    Dd::c(1.6280274218573478, -6.712955084707084e-17),
    Dd::c(1.645755478153965, -1.0125679913674773e-16),
    Dd::c(1.6636765803267364, 5.8909926967131e-17),
    Dd::c(1.681792830507429, 8.199010020581497e-17),
    Dd::c(1.7001063537185235, -8.0237193703977e-18),
    Dd::c(1.718619298122478, -1.851380418263111e-17),
    Dd::c(1.7373338352737062, 3.164389299292957e-17),
    Dd::c(1.7562521603732995, 2.960140695448873e-17),
    Dd::c(1.7753764925265212, 6.429731796556572e-17),
    Dd::c(1.7947090750031072, 1.8227458427912087e-17),
    Dd::c(1.8142521755003989, -9.969531538920349e-17),
    Dd::c(1.8340080864093424, 3.283107224245627e-17),
    Dd::c(1.8539791250833855, 9.761887490727594e-17),
    Dd::c(1.8741676341103, -6.122763413004143e-17),
    Dd::c(1.8945759815869656, 3.4034035352165297e-17),
    Dd::c(1.9152065613971474, -1.0619946056195963e-16),
    Dd::c(1.9360617934922943, 1.0332385960676326e-16),
    Dd::c(1.9571441241754002, 8.960767791036668e-17),
    Dd::c(1.978456026387951, 4.0388753109278167e-17),
];

impl Dd {
    /// The reduction of e^x for x = xh + xl (|xl| ≤ ulp(xh), or xh = 0):
    /// x = (64m + j)·ln2/64 + r with |r| ≤ ln2/128 (1 + 2⁻⁴⁰), absolutely to about 2⁻¹¹⁰;
    /// returns (m, 2^(j/64), e^r − 1). Needs |xh| < 2¹⁷ ln2/64 ≈ 1419.
    #[inline(always)]
    pub(super) fn exp_parts(xh: f64, xl: Dd) -> (i32, Dd, Dd) {
        let kf = (xh * LOG2E_64 + SHIFTER) - SHIFTER;
        let k = kf as i32;
        // xh − k·L1 is exact (k·L1 has at most 53 bits and is within a factor 2 of xh), and so
        // are the two two-sums; the small rest is summed in f64, to 2⁻¹⁰⁶ of ln2/64 or better.
        let r0 = xh - kf * L1;
        let p = Dd::two_prod(kf, L2.hi);
        let s = Dd::two_sum(r0, -p.hi);
        let t = Dd::two_sum(s.hi, xl.hi);
        let r = Dd::two_sum(t.hi, t.lo + ((s.lo - p.lo) + (xl.lo - kf * L2.lo)));
        (k >> 6, EXP2_TABLE[(k & 63) as usize], Dd::expm1_poly(r))
    }

    /// c + q·h for a double-double c and q and an f64 h, left unnormalised (|lo| of a few ulps
    /// of hi): one step of a Horner scheme in a double variable.
    #[inline(always)]
    fn horner_step(q: Dd, h: f64, c: Dd) -> Dd {
        let p = Dd::two_prod(q.hi, h);
        let s = Dd::two_sum(c.hi, p.hi);
        Dd { hi: s.hi, lo: s.lo + (p.lo + fma(q.lo, h, c.lo)) }
    }

    /// e^r − 1 for |r| ≤ 0.0055, r = h + l: with P(h) = h + h²(1/2 + h(1/6 + … + h(1/720 + h·t)))
    /// (the tail t = Σ_{n=7..11} hⁿ⁻⁷/n! in f64, the rest a Horner scheme in dd with the double
    /// variable h), e^r − 1 = P(h) + l·(1 + P(h)) up to l²/2 < 2⁻¹⁰⁶·r². The truncation is below
    /// 3e−34 relative.
    #[inline(always)]
    fn expm1_poly(r: Dd) -> Dd {
        let h = r.hi;
        let t = INV_FACT[0] + h * (INV_FACT[1] + h * (INV_FACT[2] + h * (INV_FACT[3] + h * INV_FACT[4])));
        let mut q = Dd::horner_step(Dd::new(t), h, INV720);
        q = Dd::horner_step(q, h, INV120);
        q = Dd::horner_step(q, h, INV24);
        q = Dd::horner_step(q, h, INV6);
        q = Dd::horner_step(q, h, Dd::new(0.5));
        let m = Dd::two_prod(h, h).mul(q);
        // h + h²q: |h²q| < |h|/300, so the fast two-sum applies.
        let s = Dd::fast_two_sum(h, m.hi);
        Dd::renorm(s.hi, s.lo + (m.lo + fma(r.lo, s.hi, r.lo)))
    }

    /// d·2^m for d of order 1 and m in [−2040, 2040]: two exact scalings, so that neither
    /// factor leaves the normal range. Below 2⁻⁹⁶⁸, where the low part turns subnormal, the
    /// rounding is repaired so that `to_f64` stays the correctly rounded value.
    #[inline(always)]
    pub(super) fn scale(d: Dd, m: i32) -> Dd {
        let m1 = m >> 1;
        let (f1, f2) = (pow2i(m1), pow2i(m - m1));
        let (a, b) = (d.hi * f1, d.lo * f1);
        let hi = a * f2;
        if hi.abs() >= 2.0 * pow2i(-969) {
            Dd::renorm(hi, b * f2)
        } else {
            Dd::scale_tiny(a, b, f2)
        }
    }

    /// (a + b)·f2 rounded to a dd whose low part is subnormal or zero (a, b normal and exact,
    /// f2 a power of two, the value below 2⁻⁹⁶⁸; or NaN).
    #[cold]
    fn scale_tiny(a: f64, b: f64, f2: f64) -> Dd {
        let q = f64::from_bits(1); // 2⁻¹⁰⁷⁴, the subnormal quantum
        let hi = a * f2;
        if hi.abs() >= 2.0 * f64::MIN_POSITIVE {
            // hi is exact; lo rounded to the quantum may have reached half an ulp of hi, which
            // would make hi + lo round away from hi: keep it strictly below.
            let mut lo = b * f2;
            let half = 0.5 * (f64::from_bits(hi.abs().to_bits() + 1) - hi.abs());
            if lo.abs() == half && lo / f2 != b {
                lo -= q.copysign(lo);
            }
            return Dd { hi, lo };
        }
        // ulp(hi) is the quantum (hi subnormal or in the lowest binade; or zero, or NaN): no low
        // part fits, and a + b must be rounded once, not a then b. a − hi/f2 (exact)
        // is what rounding a·f2 dropped; with b it decides the nearest multiple of the quantum.
        let rest = (a - hi / f2) + b;
        let half = q / f2 * 0.5;
        let odd = hi.to_bits() & 1 == 1;
        let hi = if rest > half || (rest == half && odd) {
            hi + q
        } else if rest < -half || (rest == -half && odd) {
            hi - q
        } else {
            hi
        };
        Dd::new(hi)
    }

    /// e^(xh + xl) = M·2^m as (M, m), M in [0.99, 2], for xh in (−1400, 709.79): nothing
    /// underflows before the caller scales.
    #[inline(always)]
    pub(super) fn exp_mant(xh: f64, xl: Dd) -> (Dd, i32) {
        let (m, t, p) = Dd::exp_parts(xh, xl);
        (t.add_sloppy(t.mul(p)), m)
    }

    /// e^(xh + xl) once xh is known to lie in (−1400, 709.79).
    #[inline(always)]
    fn exp_in_range(xh: f64, xl: Dd) -> Dd {
        let (v, m) = Dd::exp_mant(xh, xl);
        Dd::scale(v, m)
    }

    /// e^self. +∞ above ln(f64::MAX), 0 below ln(2⁻¹⁰⁷⁵), NaN for NaN, as f64.
    #[inline(always)]
    pub fn exp(self) -> Dd {
        let x = self.hi;
        if !(x > -745.2 && x < 709.79) {
            return Dd::new(if x > 0.0 { f64::INFINITY } else { x.exp() });
        }
        Dd::exp_in_range(x, Dd::new(self.lo))
    }

    /// e^self − 1, accurate relatively near 0 as well (no cancellation).
    #[inline(always)]
    pub fn exp_m1(self) -> Dd {
        let x = self.hi;
        if !(x > -40.0 && x < 700.0) {
            // Here e^x − 1 does not cancel (or is NaN, ∞, −1).
            return self.exp().add_f64(-1.0);
        }
        let (m, t, p) = Dd::exp_parts(x, Dd::new(self.lo));
        // 2^m·2^(j/64) is exact and normal for these m; (s − 1) + s·p cancels at most 2:1.
        let s = t.mul_pow2(pow2i(m));
        s.add_f64(-1.0).add(s.mul(p))
    }

    /// ln(1 + u) for u in [1/√2 − 1, √2 − 1] (so that the f64 guess y is at most ln √2): one
    /// Newton step y + (1 + u)e^−y − 1 = y + [(e^−y − 1) + u·e^−y].
    #[inline(always)]
    fn ln1p_core(u: Dd) -> Dd {
        if u.hi == 0.0 {
            return u;
        }
        let y = u.hi.ln_1p();
        let (m, t, p) = Dd::exp_parts(-y, Dd::ZERO);
        let s = t.mul_pow2(pow2i(m));
        let sp = s.mul(p);
        // e^−y − 1 and u·e^−y cancel to a few ulps of y: their high parts subtract exactly
        // (Sterbenz), their low parts carry the rest.
        let em1 = s.add_f64(-1.0).add(sp);
        let b = u.mul(s.add_sloppy(sp));
        let c = (em1.hi + b.hi) + (em1.lo + b.lo);
        let r = Dd::two_sum(y, c);
        Dd::renorm(r.hi, r.lo)
    }

    /// ln self: self = 2^e·f with f in [1/√2, √2], ln self = e·ln2 + ln(1 + (f − 1)).
    /// −∞ at 0, NaN below 0, as f64.
    pub fn ln(self) -> Dd {
        let x = self.hi;
        if !(x > 0.0 && x < f64::INFINITY) {
            return Dd::new(x.ln());
        }
        let (mut v, mut e) = (self, 0i32);
        if x < f64::MIN_POSITIVE {
            v = v.mul_pow2(pow2i(54));
            e = -54;
        }
        let bits = v.hi.to_bits();
        let be = ((bits >> 52) & 0x7ff) as i32 - 1023;
        e += be;
        // The mantissa of hi in [1, 2), and lo scaled alike (exactly: its result is normal).
        let mut f =
            Dd { hi: f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52)), lo: v.lo / pow2i(be) };
        if f.hi > SQRT2 {
            f = f.mul_pow2(0.5);
            e += 1;
        }
        // f − 1 exactly: f.hi − 1 is exact, and so is its two-sum with f.lo.
        let u = Dd::two_sum(f.hi - 1.0, f.lo);
        let l = Dd::ln1p_core(u);
        if e == 0 {
            l
        } else {
            LN2.mul_f64(e as f64).add(l)
        }
    }

    /// ln(1 + self), accurate relatively for tiny self and down to self → −1.
    pub fn ln_1p(self) -> Dd {
        let u = self.hi;
        if u > -0.2928 && u < 0.4142 {
            Dd::ln1p_core(self)
        } else {
            // 1 + self is exact for self ≤ −1/2 and rounds by 2⁻¹⁰⁶ otherwise, which is 2⁻¹⁰⁶ of
            // a logarithm at least ln √2 here.
            Dd::ONE.add(self).ln()
        }
    }
}
