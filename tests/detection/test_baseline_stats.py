"""The vectorised history statistics, zone rates and count store against plain reference
computations: the same values, bit for bit."""

from __future__ import annotations

import numpy as np

from agents.core.detection import InMemoryCountStore, fit_baseline, hour_of_week
from agents.core.detection.baseline import HistoryStats
from agents.core.detection.counts import CountRow
from agents.core.detection.zones import window_targets, zone_targets
from schemas.enums import CATEGORIES
from tests.detection.synthetic import H0, background, universe


def _reference_stats(rows: list[CountRow], start: int, end: int) -> HistoryStats:
    """The row-by-row sums the statistics stand for."""
    stats = HistoryStats(start, end)
    cell_counts: dict[tuple[str, str], float] = {}
    for cell, category, hour, n in rows:
        if category in CATEGORIES and start <= hour < end:
            cell_counts[(cell, category)] = cell_counts.get((cell, category), 0.0) + n
            stats.how_counts[CATEGORIES.index(category), hour_of_week(hour)] += n
    for hour in range(start, end):
        stats.how_exposure[hour_of_week(hour)] += 1.0
    stats.cells = sorted({cell for cell, _ in cell_counts})
    keys = sorted(cell_counts)
    stats.pair_cell = np.asarray([stats.cells.index(c) for c, _ in keys], dtype=np.int64)
    stats.pair_category = np.asarray([CATEGORIES.index(k) for _, k in keys], dtype=np.int64)
    stats.pair_count = np.asarray([cell_counts[key] for key in keys])
    return stats


def test_history_stats_from_rows_equal_the_row_by_row_sums() -> None:
    index = universe(5)
    store = background(index, H0, 24 * 10, seed=1)
    rows = store.window_counts(H0 - 5, H0 + 24 * 11)
    cell = index.cells[3]
    rows += [
        (cell, "vol", H0 + 7, -1),  # a moved incident
        (cell, "not_a_category", H0 + 7, 4),  # ignored
        (cell, "vol", H0 - 1, 3),  # before the window: ignored
        (cell, "vol", H0 + 24 * 9, 2),  # after it: ignored
        ("88" + cell[2:], "vol", H0 + 9, 2),  # a cell the index does not know
    ]
    start, end = H0, H0 + 24 * 9
    got = HistoryStats.from_rows(iter(rows), start, end)
    want = _reference_stats(rows, start, end)
    assert got.cell_counts == want.cell_counts
    assert got.cell_counts[(cell, "vol")] == want.cell_counts[(cell, "vol")]
    assert np.array_equal(got.how_counts, want.how_counts)
    assert np.array_equal(got.how_exposure, want.how_exposure)
    a, b = fit_baseline(got, index), fit_baseline(want, index)
    for name in ("rate", "shape", "inv_scale", "profile"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert (a.alpha_commune, a.alpha_cell) == (b.alpha_commune, b.alpha_cell)


def test_history_stats_of_no_rows() -> None:
    stats = HistoryStats.from_rows([], H0, H0 + 48)
    assert stats.cell_counts == {} and stats.how_counts.sum() == 0
    assert stats.how_exposure.sum() == 48.0


def test_zone_rates_are_the_cumulative_ring_sums() -> None:
    index = universe(6)
    store = background(index, H0, 24 * 8, seed=2)
    base = fit_baseline(
        HistoryStats.from_rows(store.window_counts(H0, H0 + 192), H0, H0 + 192), index
    )
    for ks in ((0, 1, 2), (1, 3), (0,)):
        padded = np.concatenate([base.rate, np.zeros((base.rate.shape[0], 1))], axis=1)
        cum = padded[:, index.rings(max(ks))].cumsum(axis=2)
        want = np.stack([cum[:, :, 3 * k * (k + 1)] for k in ks], axis=1)
        assert np.array_equal(base.zone_rates(index, ks), want)


def test_window_targets_expand_the_zone_targets() -> None:
    ring = universe(4).rings(2)
    targets = zone_targets(ring, (0, 1, 2))
    expanded = window_targets(ring, (0, 1, 2), 5)
    assert expanded.shape == (targets.shape[0], targets.shape[1] * 5)
    assert np.array_equal(expanded.reshape(targets.shape[0], -1, 5)[:, :, 3], targets * 5 + 3)
    assert window_targets(ring, (0, 1, 2), 5) is expanded  # remembered for the same ring


def test_count_store_rows_follow_later_adds() -> None:
    store = InMemoryCountStore()
    store.add("a", "vol", H0, 1)
    store.add("b", "vol", H0 + 1, 2)
    assert store.window_counts(H0, H0 + 2) == [("a", "vol", H0, 1), ("b", "vol", H0 + 1, 2)]
    store.add("a", "vol", H0, 2)
    store.add("b", "vol", H0 + 1, -2)
    store.add("c", "rodeo", H0, 1)
    assert store.window_counts(H0, H0 + 2) == [("a", "vol", H0, 3), ("c", "rodeo", H0, 1)]
