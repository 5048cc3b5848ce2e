"""Calibration on the number of distinct alert clusters a day (what operators count), not
only on the daily maximum score: streams whose unusual clusters come several on one day."""

from __future__ import annotations

import math

import numpy as np

from agents.core.detection import (
    BaselineParams,
    CellIndex,
    HistoryStats,
    InMemoryCountStore,
    fit_baseline,
)
from agents.core.detection.calibration import cluster_rate_threshold, event_scores
from agents.core.detection.daymax import DayMaxScanner
from agents.core.detection.scan import DEFAULT_KS, DEFAULT_WINDOWS
from schemas.enums import CATEGORIES
from tests.detection.synthetic import H0, universe
from tests.detection.test_split_robust import DAY, _det, _history_store, opened_per_day


def test_cluster_rate_threshold_allows_the_configured_rate() -> None:
    # 4 days, 1 a day configured: 4 clusters at most over the history
    days = [[20.0, 14.0, 12.0], [13.0], [11.0, 10.5], []]
    t = cluster_rate_threshold(days, 1.0, floor=6.0, reach=100.0)
    # at the floor all 6 clusters would open, just above 10.5 five, just above 11 four
    assert t == np.nextafter(11.0, np.inf)
    assert sum(s >= t for d in days for s in d) == 4


def test_cluster_rate_threshold_is_the_least_allowed() -> None:
    days = [[9.0, 8.0, 7.0], [8.5, 6.5], [], []]  # 4 days: 4 clusters allowed
    # at the floor 6: 5 clusters; just above 6.5: 4 -> that threshold
    assert cluster_rate_threshold(days, 1.0, floor=6.0) == np.nextafter(6.5, np.inf)
    # a quiet history keeps the floor
    assert cluster_rate_threshold([[9.0], [], [8.0]], 1.0, floor=6.0) == 6.0
    assert cluster_rate_threshold([], 1.0, floor=6.0) == 6.0
    # half a cluster a day configured: 2 allowed
    assert cluster_rate_threshold(days, 0.5, floor=6.0) == np.nextafter(8.0, np.inf)


def test_outbreak_clusters_far_above_the_threshold_do_not_raise_it() -> None:
    """A real outbreak of the history scores far above any null cluster: with `reach` 2,
    clusters scoring twice the threshold or more are not counted as null ones."""
    null = [[8.0], [], [7.5], []]
    with_outbreaks = [[*d, 60.0, 80.0, 95.0] for d in null]  # 3 outbreaks a day
    assert cluster_rate_threshold(with_outbreaks, 1.0, floor=6.0, reach=2.0) == 6.0
    # counted as null clusters, they would push the threshold above most of them
    assert cluster_rate_threshold(with_outbreaks, 1.0, floor=6.0, reach=math.inf) > 60.0


def _scanner(index: CellIndex) -> DayMaxScanner:
    store = InMemoryCountStore()
    rng = np.random.default_rng(0)
    for h in range(H0, H0 + DAY * 14):
        for cell in rng.choice(len(index), size=rng.poisson(4.0)):
            store.add(index.cells[int(cell)], CATEGORIES[int(rng.integers(3))], h, 1)
    rows = store.window_counts(H0, H0 + DAY * 14)
    stats = HistoryStats.from_rows(rows, H0, H0 + DAY * 14)
    baseline = fit_baseline(stats, index, BaselineParams())
    return DayMaxScanner(
        baseline.zone_rates(index, DEFAULT_KS),
        baseline.profile,
        index.rings(max(DEFAULT_KS)),
        ks=DEFAULT_KS,
        windows=DEFAULT_WINDOWS,
        min_observed=3.0,
    )


def test_day_clusters_collapse_overlapping_zones_as_the_lifecycle_does() -> None:
    index = universe(10)
    scanner = _scanner(index)
    day = H0 + DAY * 20
    a, b = index.cells[0], index.cells[-1]  # far apart
    assert index.position(a) == 0
    ring_a = [int(c) for c in index.rings(1)[0] if c < len(index)]
    events = [(ring_a[i % len(ring_a)], 0) for i in range(6)]  # a hotspot over a's ring
    events += [(index.position(b) or 0, 0)] * 5  # another, far from it
    events += [(0, 1)] * 5  # another category at a
    t0 = (day + 3) * 3600.0
    cat = np.asarray([c for _, c in events], dtype=np.int64)
    cell = np.asarray([p for p, _ in events], dtype=np.int64)
    time = t0 + 60.0 * np.arange(len(events), dtype=np.float64)
    best, clusters, places = scanner.day_clusters(day, cat, cell, time, 900.0, floor=6.0)
    assert best == scanner.day_max(day, cat, cell, time, 900.0)
    # three hotspots, however many overlapping zones each of them lights up
    assert clusters.shape[0] == 3
    assert clusters[0] == best and list(clusters) == sorted(clusters, reverse=True)
    # each one's place: its category and centre (category * (cells + 1) + centre)
    base = len(index) + 1
    near_a = set(index.rings(1)[0].tolist())
    by_place = {divmod(int(p), base) for p in places}
    assert {c for c, _ in by_place} == {0, 1}
    assert any(c == 0 and centre == index.position(b) for c, centre in by_place)
    assert all(centre in near_a for c, centre in by_place if c == 1)
    # a floor above some of them keeps the others
    _, high, _ = scanner.day_clusters(day, cat, cell, time, 900.0, floor=float(clusters[1]))
    assert list(high) == list(clusters[:2])
    none_best, none, nowhere = scanner.day_clusters(day, cat[:0], cell[:0], time[:0], 900.0, 6.0)
    assert none_best == 0.0 and none.shape[0] == 0 and nowhere.shape[0] == 0


def test_clusters_around_a_strong_one_share_its_event_score() -> None:
    """A cluster of one category within the largest zone of a stronger one of its category,
    the same day or the day before or after, takes its score as its event score; farther,
    of another category or two days apart, it keeps its own."""
    index = universe(10)
    ring = index.rings(max(DEFAULT_KS))
    base = len(index) + 1
    centre = 0
    inside = int(ring[centre][-1])  # on the edge of the largest zone around cell 0
    outside = next(p for p in range(len(index)) if p not in set(ring[centre].tolist()))

    def at(category: int, cell: int) -> int:
        return category * base + cell

    days = [np.asarray([60.0]), np.asarray([9.0, 8.0, 7.0]), np.asarray([8.5]), np.asarray([9.5])]
    places = [
        np.asarray([at(0, centre)]),  # a real outbreak, day 0
        np.asarray([at(0, inside), at(1, inside), at(0, outside)]),  # day 1: its tail...
        np.asarray([at(0, centre)]),  # day 2: the same place, a day after the tail
        np.asarray([at(0, inside)]),  # day 3: three days after the outbreak
    ]
    events = event_scores(days, places, ring)
    assert events[0].tolist() == [60.0]
    # the tail of the outbreak shares its score; another category, or out of its zone: not
    assert events[1].tolist() == [60.0, 8.0, 7.0]
    # two days after the outbreak, out of its reach: the strongest of the day before (the
    # tail, 9.0) and the day after (9.5) around it
    assert events[2].tolist() == [9.5]
    assert events[3].tolist() == [9.5]  # three days after the outbreak: its own
    # with the events, the outbreak's tail no longer counts as a null cluster
    flat = [[float(x) for x in d] for d in days]
    with_tail = cluster_rate_threshold(flat, 0.5, floor=6.0, reach=2.0)
    without = cluster_rate_threshold(
        flat, 0.5, floor=6.0, reach=2.0, events=[e.tolist() for e in events]
    )
    assert without < with_tail


def clumped_null(index: CellIndex, days: int, seed: int) -> InMemoryCountStore:
    """A null stream whose unusual clusters come together: on one day in three, a dozen
    quiet places each get an event the correlation split into 3 incidents (a reporting
    backlog, a batch of late uploads); the other days have none."""
    rng = np.random.default_rng(seed)
    store = InMemoryCountStore()
    n = len(index)
    weights = rng.gamma(0.7, 1.0, size=n)
    weights /= weights.sum()
    for d in range(days):
        for h in range(H0 + DAY * d, H0 + DAY * (d + 1)):
            cycle = 1.0 + 0.6 * math.sin(2 * math.pi * (h % 24) / 24)
            for ci, cat in enumerate(CATEGORIES):
                for cell in rng.choice(n, size=rng.poisson(12.0 / (ci + 1) * cycle), p=weights):
                    store.add(index.cells[int(cell)], cat, h, 1)
        if d % 3 == 0:
            for _ in range(12):
                cell = index.cells[int(rng.integers(n))]
                cat = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
                store.add(cell, cat, H0 + DAY * d + int(rng.integers(24)), 3)
    return store


def test_clustered_days_keep_the_configured_rate() -> None:
    """The daily-maximum quantile reads a day with a dozen clusters as one exceedance: its
    threshold lets several false alerts a day through on such a stream. Calibrated on the
    distinct clusters a day, the configured 1 a day holds."""
    index = universe(10)
    history, evaluated = 21, 9
    store = clumped_null(index, history + evaluated, seed=5)
    start = H0 + DAY * history
    rates = {}
    for reach in (0.0, 2.0):
        det = _det(index, _history_store(store, start), calibration_cluster_reach=reach)
        cal = det.calibrate(start * 3600.0)
        assert (cal.cluster_threshold is None) == (reach == 0.0)
        rates[reach] = opened_per_day(det, store, start, evaluated, seed=6)
    assert rates[0.0] > 2.5  # the daily-maximum quantile alone
    assert rates[2.0] <= 1.5  # 1 a day configured (9 days: Poisson noise)
