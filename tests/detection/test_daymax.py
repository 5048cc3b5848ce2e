"""`DayMaxScanner` (the calibration's day schedule on sorted incidents) against the same
schedule run with the general `WindowScanner`: the same daily maxima, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from agents.core.detection.calibration import _add_twins, _draw
from agents.core.detection.daymax import DayMaxScanner
from agents.core.detection.scan import DEFAULT_KS, DEFAULT_WINDOWS, FloatArray, IntArray
from agents.core.detection.scanner import ProfileSums, WindowScanner, profile_sums_at
from tests.detection.synthetic import H0, background, universe


def _reference_day_max(
    scanner: WindowScanner,
    day_start: int,
    cat_a: IntArray,
    cell_a: IntArray,
    t_a: FloatArray,
    period_s: float,
) -> float:
    """The live schedule with `WindowScanner` (the calibration's former implementation)."""
    scanner.reset(day_start)
    hour_a = (t_a // 3600).astype(np.int64)
    ones = np.ones(t_a.shape[0])
    first = int(np.searchsorted(t_a, day_start * 3600.0))
    scanner.add_many(cat_a[:first], cell_a[:first], hour_a[:first], ones[:first])
    scanner.changed.clear()
    day_max, pos = 0.0, first
    end_s = (day_start + 24) * 3600.0
    now = day_start * 3600.0
    while now < end_s:
        now += period_s
        hour = int(now // 3600)
        hi = int(np.searchsorted(t_a, now, side="right"))
        full = hour != scanner.hour
        if full:
            scanner.advance(hour)
        cats, cells = scanner.add_many(cat_a[pos:hi], cell_a[pos:hi], hour_a[pos:hi], ones[pos:hi])
        pos = hi
        if full:
            score = scanner.scan_all(now).max_score()
        elif cats.shape[0]:
            score = scanner.scan_near_pairs(now, cats, cells).max_score()
        else:
            continue
        day_max = max(day_max, score)
    return day_max


@pytest.mark.parametrize(
    ("period_s", "windows", "min_observed"),
    [(900.0, DEFAULT_WINDOWS, 3.0), (300.0, DEFAULT_WINDOWS, 2.0), (420.0, (1, 3, 12), 2.0)],
)
def test_day_max_equals_the_window_scanner_schedule(
    period_s: float, windows: tuple[int, ...], min_observed: float
) -> None:
    from agents.core.detection import fit_baseline
    from agents.core.detection.baseline import HistoryStats

    index = universe(7)
    store = background(index, H0, 24 * 14, seed=9, daily_total=900.0)
    base = fit_baseline(
        HistoryStats.from_rows(store.window_counts(H0, H0 + 336), H0, H0 + 336), index
    )
    ring = index.rings(max(DEFAULT_KS))
    args = (base.zone_rates(index, DEFAULT_KS), base.profile, ring)
    kw = {"ks": DEFAULT_KS, "windows": windows, "min_observed": min_observed}
    fast = DayMaxScanner(*args, **kw)  # type: ignore[arg-type]
    slow = WindowScanner(*args, **kw)  # type: ignore[arg-type]
    rng = np.random.default_rng(4)
    scored = 0
    for day in range(4):
        day_start = H0 + 336 + 24 * day
        lead = max(windows) - 1
        cat_a, cell_a, t_a = _draw(base, base.rate, day_start - lead, day_start + 24, rng)
        cat_a, cell_a, t_a = _add_twins(cat_a, cell_a, t_a, 0.2, rng)
        want = _reference_day_max(slow, day_start, cat_a, cell_a, t_a, period_s)
        assert fast.day_max(day_start, cat_a, cell_a, t_a, period_s) == want
        scored += want > 0
    assert scored  # the days did score


def test_day_max_of_an_empty_day_is_zero() -> None:
    index = universe(2)
    n = len(index)
    rates = np.full((2, len(DEFAULT_KS), n), 0.01)
    scanner = DayMaxScanner(
        rates, np.ones((2, 168)), index.rings(2), ks=DEFAULT_KS, windows=(1, 24), min_observed=1
    )
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    assert scanner.day_max(H0, empty_i, empty_i, empty_f, 900.0) == 0.0


def test_profile_sums_at_many_runs_equals_one_at_a_time() -> None:
    profile = np.random.default_rng(2).gamma(4.0, 0.25, size=(3, 168))
    sums = ProfileSums(profile, DEFAULT_WINDOWS)
    hours = [H0, H0, H0 + 1, H0 + 5, H0 + 170]
    nows = [H0 * 3600.0 + 60.0, H0 * 3600.0 + 3599.0, (H0 + 1) * 3600.0, H0 * 3600.0, 0.0]
    many = profile_sums_at(profile, DEFAULT_WINDOWS, hours, nows)
    for i, (hour, now) in enumerate(zip(hours, nows, strict=True)):
        assert np.array_equal(many[i], sums.at(hour, now))
