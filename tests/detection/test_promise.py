"""The cluster-rate threshold holds the configured false-alert rate as a bound over the
period until the next calibration, not as a mean over the history: finite history days
(the rate's uncertainty) and the period's own scatter are both in the margin."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.core.detection.calibration import (
    _least_allowed,
    allowed_history_clusters,
    cluster_rate_threshold,
    predictive_excess,
    promise_margin,
)

FLOOR = 6.0
SLOPE = 3.0  # null cluster scores: FLOOR + exponential excess of this mean
PER_DAY = 20.0  # null clusters a day scoring >= FLOOR
HORIZON = 7.0


def test_predictive_excess_is_the_gamma_poisson_mixture() -> None:
    rng = np.random.default_rng(1)
    for count, days, horizon, allowed in (
        (0, 12.0, 7.0, 7.0),
        (6, 12.0, 7.0, 7.0),
        (30, 20.0, 3.0, 4.0),
    ):
        rate = rng.gamma(count + 0.5, 1.0 / days, size=200_000)
        drawn = float((rng.poisson(rate * horizon) > allowed).mean())
        assert abs(predictive_excess(count, days, horizon, allowed) - drawn) < 0.005
    # more seen, more expected: the excess grows with the count and falls with the days
    assert predictive_excess(3, 12.0, 7.0, 7.0) < predictive_excess(6, 12.0, 7.0, 7.0)
    assert predictive_excess(6, 24.0, 7.0, 7.0) < predictive_excess(6, 12.0, 7.0, 7.0)
    assert predictive_excess(0, 0.0, 7.0, 7.0) == 1.0


def _excess_by_terms(count: int, days: float, horizon: float, allowed: float) -> float:
    """The negative binomial's tail as 1 - the sum of its first floor(allowed) + 1 terms."""
    r, p = count + 0.5, days / (days + horizon)
    terms = [math.exp(r * math.log(p))]  # pmf(0) = p^r
    for k in range(1, math.floor(allowed) + 1):
        terms.append(terms[-1] * (k - 1 + r) / k * (1.0 - p))
    return max(0.0, 1.0 - math.fsum(terms))


def test_predictive_excess_is_the_sum_of_its_terms_at_any_horizon() -> None:
    """The closed form (the incomplete beta) equals the term-by-term tail, from hours to
    centuries; past `_LIMIT_DAYS` it is the limit, the posterior's tail of the rate
    (drawn), and continuous there; a horizon that is not finite is refused."""
    for count in (0, 1, 5, 20, 57):
        for days in (0.5, 4.0, 21.0, 60.0):
            for horizon in (0.1, 7.0, 365.0, 36_500.0):
                for per_day in (0.2, 1.0, 3.0):
                    assert predictive_excess(
                        count, days, horizon, per_day * horizon
                    ) == pytest.approx(
                        _excess_by_terms(count, days, horizon, per_day * horizon), abs=1e-9
                    )
    rng = np.random.default_rng(2)
    never = 1e12 / 86400.0  # a detector configured never to recalibrate
    for count, days in ((3, 12.0), (20, 21.0)):
        drawn = float((rng.gamma(count + 0.5, 1.0 / days, size=400_000) > 1.0).mean())
        assert predictive_excess(count, days, never, never) == pytest.approx(drawn, abs=0.004)
        below = predictive_excess(count, days, 1e6, 1e6)
        assert predictive_excess(count, days, 1e6 * 1.0001, 1e6 * 1.0001) == pytest.approx(
            below, abs=1e-5
        )
    with pytest.raises(ValueError, match="finite"):
        predictive_excess(3, 12.0, math.inf, math.inf)


def test_allowed_clusters() -> None:
    # promise 0: the mean rate over the history (the former criterion)
    assert allowed_history_clusters(12.0, 1.0, HORIZON, 0.0) == 12.0
    # a promise needs a margin, which shrinks (relatively) as the history grows
    twelve = allowed_history_clusters(12.0, 1.0, HORIZON, 0.9)
    assert 0 <= twelve < 12.0
    assert allowed_history_clusters(60.0, 1.0, HORIZON, 0.9) / 60.0 > twelve / 12.0
    for days in (4.0, 12.0, 30.0):
        n = allowed_history_clusters(days, 1.0, HORIZON, 0.9)
        assert predictive_excess(int(n), days, HORIZON, HORIZON) <= 0.1
        assert predictive_excess(int(n) + 1, days, HORIZON, HORIZON) > 0.1
    # a single history day cannot promise a week: none allowed at all (-1)
    assert allowed_history_clusters(1.0, 1.0, HORIZON, 0.9) == -1.0


def test_margin_follows_the_null_tail() -> None:
    # null clusters with an exponential tail of slope 2 above the floor, on 12 days
    rng = np.random.default_rng(3)
    days = [FLOOR + rng.exponential(2.0, size=30) for _ in range(12)]
    ordered = np.sort(np.concatenate(days))
    t0 = cluster_rate_threshold(days, 1.0, FLOOR, math.inf)
    allowed = allowed_history_clusters(12.0, 1.0, HORIZON, 0.9)
    margin = promise_margin(ordered, t0, FLOOR, math.inf, allowed)
    # the count at t0 (12) falls to `allowed` (6) along the tail: about 2 ln 2
    assert 0.5 * 2.0 * math.log(2.0) < margin < 2.0 * 2.0 * math.log(2.0)
    assert cluster_rate_threshold(
        days, 1.0, FLOOR, math.inf, horizon_days=HORIZON, promise=0.9
    ) == pytest.approx(t0 + margin)
    # a count at t0 already within the promise: no margin
    assert promise_margin(ordered, t0, FLOOR, math.inf, 12.0) == 0.0


def test_history_outbreaks_do_not_lift_the_promise_above_them() -> None:
    """Weaker real outbreaks of the history score between t and `reach` t at many t: read
    by counting them, the promise would put the threshold above them all (no detection);
    along the null clusters' tail it rises by a few points only."""
    rng = np.random.default_rng(4)
    null = [FLOOR + rng.exponential(2.5, size=35) for _ in range(12)]
    # about 1.3 real outbreaks a day, some of them weak
    outbreaks = [np.asarray([18.0, 26.0, 34.0] if d % 2 else [45.0]) for d in range(12)]
    days = [np.concatenate([a, b]) for a, b in zip(null, outbreaks, strict=True)]
    ordered = np.sort(np.concatenate(days))
    t0 = cluster_rate_threshold(days, 1.0, FLOOR, 2.0)
    t = cluster_rate_threshold(days, 1.0, FLOOR, 2.0, horizon_days=HORIZON, promise=0.9)
    allowed = allowed_history_clusters(12.0, 1.0, HORIZON, 0.9)
    counted = _least_allowed(ordered, allowed, FLOOR, 2.0)
    assert counted >= 34.0  # above the history's outbreaks but one
    assert t0 < t < 26.0


def test_too_short_a_history_counts_as_half_a_cluster_allowed() -> None:
    ordered = np.sort(np.asarray([7.0, 8.0, 9.0, 10.0]))
    margin = promise_margin(ordered, 9.5, FLOOR, math.inf, -1.0)
    # one cluster at 9.5, half a cluster allowed: ln 2 times the slope (the median excess
    # over the floor, 2.5, over ln 2)
    slope = 2.5 / math.log(2.0)
    assert margin == pytest.approx(slope * math.log(2.0))


def test_the_tail_slope_does_not_rest_on_two_neighbouring_scores() -> None:
    """t0 just above the floor (one cluster between them, 0.02 below the next): the slope
    is still read from every null cluster's excess, not from that one gap (which gave a
    slope of 0.25 and a margin of 0.17 on a history whose excesses showed about 3)."""
    excess = [0.0, 0.02, 0.3, 0.7, 1.2, 1.4, 2.2, 2.3, 2.6, 2.8, 4.5, 7.0, 10.0]
    ordered = np.sort(FLOOR + np.asarray(excess))
    t0 = FLOOR + 0.01  # 12 clusters at or above it, 13 at the floor
    margin = promise_margin(ordered, t0, FLOOR, math.inf, 6.0)
    slope = 2.2 / math.log(2.0)  # the median excess over ln 2
    assert margin == pytest.approx(slope * math.log(12 / 6.0))
    assert margin > 2.0


def test_the_clusters_of_a_real_event_are_neither_counted_nor_read_for_the_slope() -> None:
    """Clusters whose event score (`calibration.event_scores`) reaches `reach` times the
    threshold are parts of a real outbreak: they count neither at t0 nor in the slope."""
    ordered = np.sort(np.asarray([7.0, 8.0, 9.0, 10.0, 11.0]))
    # 4 null clusters at 7.5 (8 to 11), one allowed; the slope from excesses 1 to 5
    own = promise_margin(ordered, 7.5, FLOOR, 2.0, 1.0)
    assert own == pytest.approx(3.0 / math.log(2.0) * math.log(4.0))
    # 10 and 11 are the tail of an outbreak that scored 40 the day before
    event = np.asarray([7.0, 8.0, 9.0, 40.0, 40.0])
    margin = promise_margin(ordered, 7.5, FLOOR, 2.0, 1.0, event)
    assert margin == pytest.approx(2.0 / math.log(2.0) * math.log(2.0))
    # none left at t0 (all of one event): no margin, even where none is allowed
    assert promise_margin(ordered, 9.5, FLOOR, 2.0, -1.0, np.full(5, 40.0)) == 0.0
    assert promise_margin(np.zeros(0), FLOOR, FLOOR, 2.0, -1.0) == 0.0


def _weekly_excess_share(promise: float, history_days: int, trials: int, seed: int) -> float:
    """Over `trials` synthetic histories of Poisson null clusters (exponential score tail),
    the mean probability that the week after the calibration opens more than 1 a day at the
    threshold calibrated for 1 a day (exact for the known rate of the synthetic stream)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        days = [
            FLOOR + rng.exponential(SLOPE, size=rng.poisson(PER_DAY)) for _ in range(history_days)
        ]
        t = cluster_rate_threshold(
            days, 1.0, FLOOR, math.inf, horizon_days=HORIZON, promise=promise
        )
        mean = HORIZON * PER_DAY * math.exp(-(t - FLOOR) / SLOPE)
        # P(Poisson(mean) > 7)
        cdf = sum(math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1)) for k in range(8))
        out.append(1.0 - cdf)
    return float(np.mean(out))


def test_the_promise_holds_on_synthetic_poisson_clusters() -> None:
    """The configured rate is a bound in about `promise` of the weeks; as a mean over the
    history (promise 0), a week brings more than 1 a day far more often."""
    for history_days in (7, 12, 28):
        held = _weekly_excess_share(0.9, history_days, 300, seed=history_days)
        assert held <= 0.1 + 0.03, (history_days, held)
        assert _weekly_excess_share(0.0, history_days, 300, seed=history_days) > 0.3
