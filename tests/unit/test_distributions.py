"""The pure core's distribution functions (`agents.core.distributions`): the incomplete beta
and gamma functions against their known values and drawn samples, the negative binomial's
distribution function against the sum of its terms, and its quantiles."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from agents.core.distributions import (
    gamma_tail,
    last_holding,
    negative_binomial_cdf,
    negative_binomial_quantile,
    regularized_beta,
)


def test_regularized_beta_known_values() -> None:
    for x in (1e-9, 0.01, 0.3, 0.5, 0.77, 0.999):
        assert regularized_beta(x, 1.0, 1.0) == pytest.approx(x)
        assert regularized_beta(x, 3.5, 1.0) == pytest.approx(x**3.5)
        assert regularized_beta(x, 1.0, 40.0) == pytest.approx(1.0 - (1.0 - x) ** 40)
        for a, b in ((0.5, 7.0), (20.5, 3.0), (2.5, 1e6)):
            assert regularized_beta(x, a, b) == pytest.approx(
                1.0 - regularized_beta(1.0 - x, b, a), abs=1e-10  # 1 - y: cancellation
            )
    assert regularized_beta(0.0, 2.0, 3.0) == 0.0 and regularized_beta(1.0, 2.0, 3.0) == 1.0


def test_gamma_tail_matches_drawn_gammas() -> None:
    rng = np.random.default_rng(5)
    for shape in (0.5, 3.5, 20.5):
        draws = rng.gamma(shape, 1.0, size=400_000)
        for x in (0.1, shape * 0.5, shape, shape + 1.0, shape * 2.0 + 3.0):
            assert gamma_tail(shape, x) == pytest.approx(float((draws > x).mean()), abs=0.003)
    assert gamma_tail(2.0, 0.0) == 1.0
    # Q(1, x) = exp(-x), on both sides of the series / fraction switch (x = 2)
    for x in (0.3, 1.9, 2.1, 9.0):
        assert gamma_tail(1.0, x) == pytest.approx(math.exp(-x), rel=1e-12)


def test_negative_binomial_cdf_is_the_sum_of_its_terms() -> None:
    for r in (0.5, 4.5, 30.5):
        for p in (1e-4, 0.05, 0.5, 0.97):
            terms = [p**r]
            for j in range(1, 400):
                terms.append(terms[-1] * (j - 1 + r) / j * (1.0 - p))
            for k in (0, 1, 7, 60, 399):
                assert negative_binomial_cdf(k, r, p) == pytest.approx(
                    math.fsum(terms[: k + 1]), abs=1e-11
                )
    assert negative_binomial_cdf(-1, 2.0, 0.5) == 0.0


def test_negative_binomial_quantiles_match_the_distribution() -> None:
    rng = np.random.default_rng(3)
    for shape, p in ((4.5, 0.8), (0.7, 0.02)):
        draws = rng.negative_binomial(shape, p, size=200_000)
        for q in (0.1, 0.5, 0.9):
            expected = int(np.quantile(draws, q, method="inverted_cdf"))
            got = negative_binomial_quantile(shape, p, q)
            # the least k whose distribution function reaches q; the drawn quantile may sit
            # one off where the function crosses q within the draws' noise
            assert abs(got - expected) <= max(1, expected // 50)
            assert negative_binomial_cdf(got, shape, p) >= q > negative_binomial_cdf(
                got - 1, shape, p
            )
    assert negative_binomial_quantile(0.0, 0.5, 0.9) == 0  # no rate: nothing
    with pytest.raises(ValueError, match="below 1"):
        negative_binomial_quantile(2.0, 0.5, 1.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: regularized_beta(math.nan, 2.0, 3.0),
        lambda: regularized_beta(0.5, 0.0, 3.0),
        lambda: regularized_beta(0.5, 2.0, math.inf),
        lambda: gamma_tail(math.nan, 1.0),
        lambda: gamma_tail(2.0, math.nan),
        lambda: negative_binomial_quantile(2.0, 0.0, 0.5),  # never a success: no quantile
        lambda: negative_binomial_quantile(2.0, math.nan, 0.5),
    ],
)
def test_inputs_that_would_not_converge_are_refused(call: Callable[[], object]) -> None:
    """A NaN or a degenerate parameter is refused with a reason (a fraction or a search
    that never ends would hang the detector's calibration or the diagnostic)."""
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("start", [-1, 0, 5])
def test_last_holding_finds_the_boundary_of_a_monotone_predicate(start: int) -> None:
    for boundary in range(start, start + 300):
        seen: list[int] = []

        def holds(n: int, b: int = boundary, asked: list[int] = seen) -> bool:
            asked.append(n)
            return n <= b

        assert last_holding(holds, start) == boundary
        assert min(seen) >= start  # never asks below where it starts
