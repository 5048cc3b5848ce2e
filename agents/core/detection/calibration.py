"""Threshold calibration by simulation of null (no outbreak) days from the fitted baseline.

Incidents are drawn as Poisson counts from the baseline expectations with uniform arrival
times within each hour, and the same incremental scan as live (full scan at the top of each hour,
zones around new incidents at every run in between: `daymax.DayMaxScanner`) is run every
`period_s` seconds; the daily maximum score is recorded. If alert openings under the null are
roughly a Poisson process of rate R per day, then P(no exceedance in a day) = exp(-R): the
threshold is the exp(-R) quantile of the null daily maximum, R being the target false-alert
rate for the whole served area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from agents.core.detection.baseline import hour_of_week
from agents.core.detection.daymax import DayMaxScanner
from agents.core.detection.scan import FloatArray, IntArray

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agents.core.detection.baseline import Baseline
    from agents.core.detection.cells import CellIndex


@dataclass(frozen=True, slots=True)
class Calibration:
    threshold: float
    daily_max: tuple[float, ...]
    false_alerts_per_day: float
    quantile: float


def null_daily_max(
    baseline: Baseline,
    index: CellIndex,
    *,
    start_hour: int,
    days: int,
    windows: Sequence[int],
    ks: Sequence[int],
    min_observed: float,
    period_s: float = 300.0,
    clumping: float = 0.0,
    seed: int = 0,
    posterior: bool = True,
) -> FloatArray:
    """Daily maximum scan score over `days` simulated null days starting at `start_hour`.

    With `posterior`, each day's cell rates are drawn from their gamma posterior (posterior
    predictive null), so that the uncertainty of the fitted baseline is part of the null.
    `clumping` is the share of incidents that come with a near-coincident twin (same cell,
    same category, within two hours: two burglaries in one street), the commonest departure
    of real streams from a Poisson process, which makes small clusters far likelier.
    """
    rng = np.random.default_rng(seed)
    lead = max(windows) - 1
    scanner = DayMaxScanner(
        baseline.zone_rates(index, ks),
        baseline.profile,
        index.rings(max(ks)),
        ks=ks,
        windows=windows,
        min_observed=min_observed,
    )
    out = np.zeros(days)
    for d in range(days):
        day_start = start_hour + 24 * d
        rate = rng.gamma(baseline.shape, 1.0 / baseline.inv_scale) if posterior else baseline.rate
        cat_a, cell_a, t_a = _draw(baseline, rate, day_start - lead, day_start + 24, rng)
        if clumping > 0:
            cat_a, cell_a, t_a = _add_twins(cat_a, cell_a, t_a, clumping, rng)
        out[d] = scanner.day_max(day_start, cat_a, cell_a, t_a, period_s)
    return out


def calibrate(
    baseline: Baseline,
    index: CellIndex,
    *,
    false_alerts_per_day: float,
    start_hour: int,
    days: int,
    windows: Sequence[int],
    ks: Sequence[int],
    min_observed: float,
    min_threshold: float,
    period_s: float = 300.0,
    clumping: float = 0.0,
    seed: int = 0,
) -> Calibration:
    daily = null_daily_max(
        baseline,
        index,
        start_hour=start_hour,
        days=days,
        windows=windows,
        ks=ks,
        min_observed=min_observed,
        period_s=period_s,
        clumping=clumping,
        seed=seed,
    )
    q = math.exp(-false_alerts_per_day)
    threshold = max(min_threshold, float(np.quantile(daily, q)))
    return Calibration(threshold, tuple(float(x) for x in daily), false_alerts_per_day, q)


def _draw(
    baseline: Baseline, rate: FloatArray, start: int, end: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray, FloatArray]:
    """Null incidents (category, cell, arrival time in epoch seconds) over hours
    [start, end), sorted by time."""
    hours = np.arange(start, end)
    hows = np.array([hour_of_week(int(h)) for h in hours])
    totals = rate.sum(axis=1)
    cats: list[IntArray] = []
    cells: list[IntArray] = []
    hrs: list[IntArray] = []
    for c in range(rate.shape[0]):
        if totals[c] <= 0:
            continue
        per_hour = rng.poisson(totals[c] * baseline.profile[c, hows])
        total = int(per_hour.sum())
        cells.append(rng.choice(rate.shape[1], size=total, p=rate[c] / totals[c]))
        hrs.append(np.repeat(hours, per_hour))
        cats.append(np.full(total, c, dtype=np.int64))
    if not cats:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    cat_a, cell_a = np.concatenate(cats), np.concatenate(cells)
    t_a = np.asarray((np.concatenate(hrs) + rng.random(cat_a.shape[0])) * 3600.0, dtype=np.float64)
    order = np.argsort(t_a, kind="stable")
    return cat_a[order], cell_a[order], t_a[order]


def _add_twins(
    cat_a: IntArray, cell_a: IntArray, t_a: FloatArray, share: float, rng: np.random.Generator
) -> tuple[IntArray, IntArray, FloatArray]:
    twin = np.asarray(rng.random(t_a.shape[0]) < share)
    t2 = t_a[twin] + rng.random(int(twin.sum())) * 7200.0
    cat_b = np.concatenate([cat_a, cat_a[twin]])
    cell_b = np.concatenate([cell_a, cell_a[twin]])
    t_b = np.concatenate([t_a, t2])
    order = np.argsort(t_b, kind="stable")
    return cat_b[order], cell_b[order], t_b[order]
