"""Detection against what the pipeline emits: incidents of one event split by the
correlation, calibration on the stream's own history, episodes in the scan."""

from __future__ import annotations

import math

import h3
import numpy as np
import pytest

from agents.core.detection import (
    CellIndex,
    DetectionConfig,
    HistoryStats,
    InMemoryCountStore,
    PoissonScanDetector,
)
from agents.core.detection.calibration import (
    _cap_buckets,
    blended_threshold,
    episodes,
    observed_daily_max,
)
from schemas.enums import CATEGORIES
from tests.detection.synthetic import H0, universe

DAY = 24


def split_null(
    index: CellIndex,
    days: int,
    seed: int,
    *,
    daily_total: float = 300.0,
    split_share: float = 0.0,
    pieces: int = 3,
) -> InMemoryCountStore:
    """A null stream (no outbreak) whose correlation splits a share of its events into
    `pieces` incidents of the same category, in the event's cell and hour."""
    rng = np.random.default_rng(seed)
    store = InMemoryCountStore()
    n = len(index)
    weights = rng.gamma(0.7, 1.0, size=n)
    weights /= weights.sum()
    shares = rng.dirichlet(np.ones(len(CATEGORIES)) * 3)
    for h in range(H0, H0 + DAY * days):
        cycle = 1.0 + 0.6 * math.sin(2 * math.pi * (h % 24) / 24)
        for ci, cat in enumerate(CATEGORIES):
            for cell in rng.choice(
                n, size=rng.poisson(daily_total / 24 * shares[ci] * cycle), p=weights
            ):
                k = pieces if rng.random() < split_share else 1
                store.add(index.cells[int(cell)], cat, h, k)
    return store


def opened_per_day(
    det: PoissonScanDetector, source: InMemoryCountStore, start_hour: int, days: int, seed: int
) -> float:
    """Alerts opened per day by the detector run every 15 minutes over `days` days from
    `start_hour`, the counts of `source` reaching its store as they would live: the
    incidents of a bucket at one uniform time within its hour."""
    rng = np.random.default_rng(seed)
    end_hour = start_hour + DAY * days
    arrivals = sorted(
        ((h + float(rng.random())) * 3600.0, cell, cat, h, n)
        for cell, cat, h, n in source.window_counts(start_hour, end_hour)
    )
    opened, at = 0, 0
    t = start_hour * 3600.0
    while t < end_hour * 3600.0:
        t += 900.0
        while at < len(arrivals) and arrivals[at][0] <= t:
            _, cell, cat, h, n = arrivals[at]
            det.store.add(cell, cat, h, n)
            at += 1
        opened += sum(1 for m in det.run(t) if m["status"] == "open")
    return opened / days


HISTORY, EVAL = 21, 7


@pytest.fixture(scope="module")
def split_world() -> tuple[CellIndex, InMemoryCountStore]:
    index = universe(10)
    return index, split_null(index, HISTORY + EVAL, seed=3, split_share=0.08)


def _det(index: CellIndex, store: InMemoryCountStore, **kw: object) -> PoissonScanDetector:
    cfg = DetectionConfig(calibration_days=24, recalibrate_every_s=1e12, **kw)  # type: ignore[arg-type]
    return PoissonScanDetector(store, index, cfg)


def _history_store(store: InMemoryCountStore, end_hour: int) -> InMemoryCountStore:
    """The store's counts before `end_hour` (what the detector had seen by then)."""
    out = InMemoryCountStore()
    for cell, cat, h, n in store.window_counts(H0 - DAY, end_hour):
        out.add(cell, cat, h, n)
    return out


def test_calibration_on_the_stream_holds_the_false_alert_rate_under_splitting(
    split_world: tuple[CellIndex, InMemoryCountStore],
) -> None:
    """8 % of the events come as 3 incidents: the simulated null (5 % twins) does not know
    it and its threshold lets several false alerts a day through; calibrated on the
    stream's own days, the configured 1 a day holds (each incident counted, no episode cap:
    the calibration alone)."""
    index, store = split_world
    start = H0 + DAY * HISTORY
    rates = {}
    for observed in (False, True):
        history = _history_store(store, start)
        det = _det(index, history, calibration_observed=observed, episode_cap=0)
        det.calibrate(start * 3600.0)
        rates[observed] = opened_per_day(det, store, start, EVAL, seed=4)
    assert rates[False] > 2.5  # the former calibration: far above the target
    assert rates[True] <= 1.5  # 1 a day configured (7 days: Poisson noise)


def test_observed_days_are_scored_out_of_sample(
    split_world: tuple[CellIndex, InMemoryCountStore],
) -> None:
    index, store = split_world
    start = H0 + DAY * HISTORY
    det = _det(index, _history_store(store, start), episode_cap=0)
    cal = det.calibrate(start * 3600.0)
    # every whole day of the fit window (the last hours are left out of the fit, the first
    # day gives the windows their lead)
    days = HISTORY - 2
    assert len(cal.observed_daily_max) == days
    assert cal.observed_share == pytest.approx(days / (days + det.config.calibration_prior_days))
    # the same days scored against the fit that saw them look quieter (their clusters are
    # part of its rates): a threshold from them would be too low
    assert det.baseline is not None
    lead = max(det.config.windows) - 1
    end = start - det.config.fit_lag_hours
    starts = list(range(end - DAY * days, end, DAY))
    in_sample = observed_daily_max(
        det.baseline,
        index,
        det.store.window_counts(starts[0] - lead, end),
        day_starts=starts,
        windows=det.config.windows,
        ks=det.config.ks,
        min_observed=det.config.min_observed,
        period_s=det.config.calibration_period_s,
    )
    assert np.median(in_sample) < np.median(cal.observed_daily_max) - 1.0


def test_calibration_is_rebuilt_from_the_store_after_a_restart(
    split_world: tuple[CellIndex, InMemoryCountStore],
) -> None:
    """Nothing but the stored counts: a new detector (a restart) gets the same threshold."""
    index, store = split_world
    now = (H0 + DAY * HISTORY) * 3600.0
    a, b = _det(index, store), _det(index, store)
    assert a.calibrate(now).threshold == b.calibrate(now).threshold


def _quiet_cell(det: PoissonScanDetector, cat: str) -> str:
    assert det.baseline is not None
    ci = CATEGORIES.index(cat)
    return det.index.cells[int(np.argmin(det.baseline.rate[ci]))]


@pytest.mark.parametrize("cap", [1, 0])
def test_split_incidents_of_one_event_alert_as_one_incident_would(cap: int) -> None:
    """One event the correlation made 4 incidents of (one cell, one category, one hour) in a
    quiet cell: as one incident, it does not alert; counted as 4 it would (cap 0, the
    former counting: what the default's episode cap prevents)."""
    index = universe(10)
    store = split_null(index, HISTORY + 1, seed=11)
    det = _det(index, store, episode_cap=cap)
    start = H0 + DAY * HISTORY
    det.calibrate(start * 3600.0)
    cell = _quiet_cell(det, "incendie")
    hour = start + 5
    for _ in range(4):
        store.add(cell, "incendie", hour, 1)
    messages = [m for t in range(4) for m in det.run(hour * 3600.0 + 600.0 + 900.0 * t)]
    opened = [m for m in messages if m["status"] == "open" and m["category"] == "incendie"]
    if cap:
        assert opened == []
    else:
        assert opened and cell in opened[0]["cells"]  # type: ignore[operator]


def test_a_real_burst_still_alerts_with_its_explanation() -> None:
    """A spree over a cell and its neighbours, 2 incidents an hour for 4 hours: several
    cells and hours, not one split event; it alerts, telling what was observed (episodes),
    what was expected and the score."""
    index = universe(10)
    store = split_null(index, HISTORY + 1, seed=12, split_share=0.05)
    det = _det(index, store)
    start = H0 + DAY * HISTORY
    det.calibrate(start * 3600.0)
    centre = _quiet_cell(det, "cambriolage")
    zone = sorted(h3.grid_disk(centre, 1))
    zone = [c for c in zone if index.position(c) is not None]
    hour = start + 8
    opened: list[dict[str, object]] = []
    for i in range(8):
        h = hour + i // 2
        store.add(zone[i % len(zone)], "cambriolage", h, 1)
        for m in det.run(h * 3600.0 + 1800.0 * (i % 2 + 1)):
            if m["status"] == "open" and m["category"] == "cambriolage":
                opened.append(m)
    assert opened
    alert = opened[0]
    assert float(alert["observed"]) >= 3  # type: ignore[arg-type]
    assert float(alert["expected"]) < 1.0  # type: ignore[arg-type]
    assert float(alert["score"]) >= det.threshold  # type: ignore[arg-type]


def test_episodes_cap_a_bucket() -> None:
    assert [episodes(n, 1) for n in (-1, 0, 1, 3)] == [0, 0, 1, 1]
    assert [episodes(n, 0) for n in (0, 1, 3)] == [0, 1, 3]
    assert episodes(5, 2) == 2


def test_cap_buckets_keeps_the_first_of_each_bucket() -> None:
    cat = np.array([0, 0, 0, 1, 0], dtype=np.int64)
    cell = np.array([5, 5, 6, 5, 5], dtype=np.int64)
    t = np.array([10.0, 20.0, 30.0, 40.0, 3700.0])  # the last one: next hour
    _, kept_cells, t2 = _cap_buckets(cat, cell, t, 1)
    assert kept_cells.tolist() == [5, 6, 5, 5]
    assert t2.tolist() == [10.0, 30.0, 40.0, 3700.0]
    assert _cap_buckets(cat, cell, t, 2)[2].tolist() == t.tolist()


def test_blended_threshold_moves_from_the_prior_to_the_stream() -> None:
    sim = list(np.linspace(10.0, 20.0, 101))
    q = math.exp(-1.0)
    cold, none = blended_threshold(sim, [], 7.0, q)
    assert none is None and cold == pytest.approx(float(np.quantile(sim, q)))
    # the stream's null sits 10 higher (splitting): the observed days move it there
    observed = [s + 10.0 for s in sim[::5]]  # 21 days
    blended, from_obs = blended_threshold(sim, observed, 7.0, q)
    assert from_obs is not None and from_obs == pytest.approx(cold + 10.0, abs=0.6)
    assert blended == pytest.approx((7 * cold + 21 * from_obs) / 28)
    # a quieter history never lowers the threshold under the simulated null's
    quieter, from_quiet = blended_threshold(sim, [s - 5.0 for s in sim[::5]], 7.0, q)
    assert from_quiet is not None and from_quiet < cold and quieter == cold
    # a minority of outbreak days (huge maxima) barely moves the estimate
    outbreaks = observed[:14] + [300.0] * 7
    _, with_outbreaks = blended_threshold(sim, outbreaks, 7.0, q)
    assert with_outbreaks is not None and with_outbreaks < from_obs + 3.0


def test_history_stats_leave_out_held_out_days() -> None:
    index = universe(2)
    cell = index.cells[0]
    rows = [(cell, "vol", H0 + h, 1) for h in range(0, 72)]
    full = HistoryStats.from_rows(rows, H0, H0 + 72)
    held = HistoryStats.from_rows(rows, H0, H0 + 72, [(H0 + 24, H0 + 48)])
    assert full.hours == 72 and held.hours == 48
    assert held.pair_count.sum() == 48 and full.pair_count.sum() == 72
    assert held.how_exposure.sum() == 48
