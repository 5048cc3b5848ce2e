"""Distribution functions the pure core's statistics share: the regularized incomplete
beta and gamma functions, and through them the negative binomial (the gamma-Poisson
predictive count: a Poisson count whose rate is known from a history as a gamma posterior),
read by the detector's calibration (`detection.calibration.predictive_excess`) and the
territory diagnostic's forecast (`diagnostic.forecast`).

Closed forms by continued fractions and series (modified Lentz method): their cost does not
grow with the count, where a sum of the distribution's terms does."""

from __future__ import annotations

import math
from collections.abc import Callable

_EPS = 1e-15
_TINY = 1e-300


def _steps(*shape: float) -> range:
    """The steps a fraction or series may take: several times the sqrt(max(shape)) it needs
    (a bound, so that no input can make a caller loop for ever)."""
    return range(1, 1000 + int(100.0 * math.sqrt(max(shape))))


def _not_converged(what: str, *args: float) -> ArithmeticError:
    return ArithmeticError(f"{what}{args}: did not converge")


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function (a, b > 0), from its continued
    fraction (modified Lentz method), on the side of x where it converges fast (in about
    sqrt(max(a, b)) steps at worst)."""
    if not (a > 0.0 and b > 0.0 and math.isfinite(a + b) and not math.isnan(x)):
        raise ValueError(f"incomplete beta at x={x}, a={a}, b={b}: needs a, b > 0, finite")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of I_x(a, b), for x below (a + 1) / (a + b + 2)."""
    c, d = 1.0, 1.0 / _nonzero(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in _steps(a, b):
        # each step is an even then an odd term of the fraction
        even = m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m))
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0))
        for num in (even, odd):
            d = 1.0 / _nonzero(1.0 + num * d)
            c = _nonzero(1.0 + num / c)
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise _not_converged("incomplete beta fraction", x, a, b)


def gamma_tail(r: float, x: float) -> float:
    """Q(r, x) = P(Gamma(r, 1) > x), the regularized upper incomplete gamma function: by
    its series below x = r + 1, by its continued fraction (modified Lentz) above."""
    if not (r > 0.0 and math.isfinite(r) and not math.isnan(x)):
        raise ValueError(f"incomplete gamma at x={x}, r={r}: needs r > 0, finite")
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_front = r * math.log(x) - x - math.lgamma(r)
    if x < r + 1.0:
        term = total = 1.0 / r
        for n in _steps(r, x):
            term *= x / (r + n)
            total += term
            if abs(term) <= abs(total) * _EPS:
                return max(0.0, 1.0 - total * math.exp(log_front))
        raise _not_converged("incomplete gamma series", x, r)
    b = x + 1.0 - r
    c, d = 1.0 / _TINY, 1.0 / b
    h = d
    for i in _steps(r, x):
        num = -i * (i - r)
        b += 2.0
        d = 1.0 / _nonzero(num * d + b)
        c = _nonzero(b + num / c)
        h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return min(1.0, math.exp(log_front) * h)
    raise _not_converged("incomplete gamma fraction", x, r)


def _nonzero(v: float) -> float:
    """`v`, or a tiny number in place of 0 (the Lentz method's guard against a zero
    denominator)."""
    return v if abs(v) > _TINY else _TINY


def negative_binomial_cdf(k: int, r: float, p: float) -> float:
    """P(X <= k) for X the failures before the `r`-th success of probability `p` (r > 0, real):
    pmf(j) = Gamma(j + r) / (Gamma(r) j!) p^r (1 - p)^j. It is I_p(r, k + 1)."""
    if k < 0:
        return 0.0
    return regularized_beta(p, r, k + 1.0)


def negative_binomial_quantile(r: float, p: float, q: float) -> int:
    """The least k with P(X <= k) >= `q` (`negative_binomial_cdf`): doubling, then bisection.
    With `r` <= 0 (no rate at all) the count is 0."""
    if not q < 1.0:
        raise ValueError(f"quantile {q}: must be below 1")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"negative binomial with p={p}: needs 0 < p <= 1")
    if r <= 0.0 or q <= 0.0:
        return 0
    # P(X <= -1) = 0 < q: the last k below q, plus one
    return last_holding(lambda k: negative_binomial_cdf(k, r, p) < q, -1) + 1


def last_holding(holds: Callable[[int], bool], start: int) -> int:
    """The last integer n >= `start` for which `holds`, a predicate true at `start` that,
    once false, stays false (doubling the step from `start`, then bisection)."""
    low, high = start, start + 1  # holds(low); holds(high) unknown, then false
    while holds(high):
        low, high = high, start + 2 * (high - start)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if holds(mid) else (low, mid)
    return low
