"""Regenerates `EXPM1_F64` in src/kernels/vmath.rs: (e^r - 1)/r = 1 + r/2 + r^2 Q(r) on
|r| <= ln2/2, Q a Chebyshev fit of degree 9 to (e^r - 1 - r - r^2/2)/r^3, its coefficients
rounded to f64; prints them and the largest error of the sum over 2001 points, with the rounded
coefficients evaluated exactly. Needs mpmath (pip install mpmath)."""
import mpmath as mp

mp.mp.dps = 50
half_ln2 = mp.log(2) / 2


def q_exact(r):
    if abs(r) < mp.mpf("1e-12"):
        return mp.mpf(1) / 6 + r / 24
    return (mp.expm1(r) - r - r * r / 2) / r**3


poly = mp.chebyfit(q_exact, [-half_ln2, half_ln2], 10)
q = [float(c) for c in poly[::-1]]
worst = max(
    abs(sum(mp.mpf(c) * r**k for k, c in enumerate(q)) - q_exact(r)) * r * r
    for r in (-half_ln2 + 2 * half_ln2 * i / 2000 for i in range(2001))
)
print("coefficients:", [1.0, 0.5] + q)
print("largest error of 1 + r/2 + r^2 Q(r): 2^%.1f" % float(mp.log(worst, 2)))
