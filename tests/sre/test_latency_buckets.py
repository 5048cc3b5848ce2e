"""`vigie_end_to_end_latency_seconds` buckets are fine enough for its quantiles: p50, p95 and
p99 read from them the way Prometheus does (`histogram_quantile`: linear interpolation in
the bucket that holds the rank) are within 10 % of the true ones between 50 ms and 10 s."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable

import pytest

from agents.ports.metrics import LATENCY_BUCKETS

QUANTILES = (0.5, 0.95, 0.99)


def cumulative_counts(values: list[float], bounds: tuple[float, ...]) -> list[int]:
    """What the histogram exposes: for each `le` bound, then +Inf, how many values are <= it."""
    ordered = sorted(values)
    return [bisect.bisect_right(ordered, b) for b in bounds] + [len(ordered)]


def histogram_quantile(q: float, bounds: tuple[float, ...], counts: list[int]) -> float:
    """Prometheus' bucket quantile: the rank q x total falls in the first bucket whose
    cumulative count reaches it; the value is interpolated linearly inside that bucket (its
    lower bound is 0 for the first bucket; a rank in +Inf returns the highest finite bound)."""
    total = counts[-1]
    rank = q * total
    i = next(i for i, c in enumerate(counts) if c >= rank)
    if i == len(bounds):
        return bounds[-1]
    lower = 0.0 if i == 0 else bounds[i - 1]
    below = 0 if i == 0 else counts[i - 1]
    inside = counts[i] - below
    return lower + (bounds[i] - lower) * (rank - below) / inside


def true_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def lognormal(rng: random.Random, median: float, sigma: float, n: int) -> list[float]:
    return [rng.lognormvariate(math.log(median), sigma) for _ in range(n)]


DISTRIBUTIONS: dict[str, Callable[[random.Random], list[float]]] = {
    # a steady worker: sub-second, a tail of a few seconds
    "steady 0.7 s": lambda rng: lognormal(rng, 0.7, 0.4, 20_000),
    "fast 0.12 s": lambda rng: lognormal(rng, 0.12, 0.3, 20_000),
    "slow 2.5 s": lambda rng: lognormal(rng, 2.5, 0.35, 20_000),
    # a worker falling behind: latency rising through the run
    "rising 0.7 -> 1.4 s": lambda rng: [
        rng.lognormvariate(math.log(0.7 + 0.7 * i / 20_000), 0.2) for i in range(20_000)],
    # micro-batches: a uniform wait for the 1 s batch to close, then the processing
    "batched 1 s": lambda rng: [rng.uniform(0.0, 1.0) + rng.lognormvariate(math.log(0.3), 0.5)
                                for _ in range(20_000)],
    # mostly fast, 10 % caught in a stall (a ClickHouse merge, a rebalance)
    "stalls 0.3 s / 4 s": lambda rng: [
        rng.lognormvariate(math.log(4.0 if rng.random() < 0.1 else 0.3), 0.3)
        for _ in range(20_000)],
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_quantiles_read_from_the_buckets_are_within_ten_percent(name: str) -> None:
    values = DISTRIBUTIONS[name](random.Random(22))
    counts = cumulative_counts(values, LATENCY_BUCKETS)
    for q in QUANTILES:
        truth = true_quantile(values, q)
        assert 0.05 <= truth <= 10.0, (name, q, truth)  # the range the buckets promise
        read = histogram_quantile(q, LATENCY_BUCKETS, counts)
        assert read == pytest.approx(truth, rel=0.10), (name, q, read, truth)


def test_fine_between_50_ms_and_10_s_and_the_targets_are_bounds() -> None:
    fine = [b for b in LATENCY_BUCKETS if b <= 10.0]
    assert fine[0] <= 0.05 and fine[-1] == 10.0
    assert max(b / a for a, b in itertools.pairwise(fine)) <= 1.2
    for target in (10.0, 60.0, 3600.0):  # the alert thresholds: read exactly at a bound
        assert target in LATENCY_BUCKETS
    assert LATENCY_BUCKETS[-1] == 7200.0
    assert list(LATENCY_BUCKETS) == sorted(set(LATENCY_BUCKETS))
