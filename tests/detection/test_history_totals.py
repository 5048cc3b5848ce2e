"""The baseline's fit from a store's window totals (`counts.TotalsCountStore`, what the live
ClickHouse store sums in SQL: a few rows per cell and per hour instead of one per bucket of
weeks of history) is the fit from the window's rows, bit for bit; a detector fitted that way
reads the rows only to calibrate, and calibrates to the same threshold."""

from __future__ import annotations

import numpy as np

from agents.core.detection import (
    DetectionConfig,
    InMemoryCountStore,
    PoissonScanDetector,
    fit_baseline,
)
from agents.core.detection.baseline import HistoryStats
from agents.core.detection.counts import CellTotal, CountRow, HourTotal
from tests.detection.synthetic import H0, background, universe


def totals_of(rows: list[CountRow]) -> tuple[list[CellTotal], list[HourTotal]]:
    """The rows summed per (cell, category) and per (category, hour), as the SQL does."""
    cells: dict[tuple[str, str], int] = {}
    hours: dict[tuple[str, int], int] = {}
    for cell, category, hour, n in rows:
        cells[(cell, category)] = cells.get((cell, category), 0) + n
        hours[(category, hour)] = hours.get((category, hour), 0) + n
    return ([(c, k, n) for (c, k), n in sorted(cells.items())],
            [(k, h, n) for (k, h), n in sorted(hours.items(), key=lambda kv: kv[0][::-1])])


class TotalsStore(InMemoryCountStore):
    """`InMemoryCountStore` that also sums windows, and records the windows read by row."""

    def __init__(self) -> None:
        super().__init__()
        self.row_reads: list[tuple[int, int]] = []

    def window_counts(self, start_hour: int, end_hour: int) -> list[CountRow]:
        self.row_reads.append((start_hour, end_hour))
        return super().window_counts(start_hour, end_hour)

    def window_totals(
        self, start_hour: int, end_hour: int
    ) -> tuple[list[CellTotal], list[HourTotal]]:
        return totals_of(super().window_counts(start_hour, end_hour))


def test_history_stats_from_totals_equal_those_from_rows() -> None:
    index = universe(5)
    store = background(index, H0, 24 * 10, seed=1)
    start, end = H0 + 3, H0 + 24 * 9
    rows = store.window_counts(start, end)
    cell = index.cells[3]
    rows += [
        (cell, "vol", H0 + 7, -1),  # a moved incident
        (cell, "not_a_category", H0 + 7, 4),  # left out
        ("88" + cell[2:], "vol", H0 + 9, 2),  # a cell the index does not know
    ]
    want = HistoryStats.from_rows(rows, start, end)
    got = HistoryStats.from_totals(*totals_of(rows), start, end)
    assert got.cell_counts == want.cell_counts and got.cell_counts
    assert np.array_equal(got.how_counts, want.how_counts) and got.how_counts.sum() > 0
    assert np.array_equal(got.how_exposure, want.how_exposure)
    assert got.hours == want.hours
    a, b = fit_baseline(got, index), fit_baseline(want, index)
    for name in ("rate", "shape", "inv_scale", "profile"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert (a.alpha_commune, a.alpha_cell) == (b.alpha_commune, b.alpha_cell)
    empty = HistoryStats.from_totals([], [], start, end)
    assert empty.cell_counts == {} and empty.how_exposure.sum() == end - start


def test_a_detector_fitted_from_totals_reads_rows_only_to_calibrate() -> None:
    index = universe(6)
    plain = background(index, H0, 24 * 14, seed=4)
    summing = TotalsStore()
    for row in plain.window_counts(H0, H0 + 24 * 14):
        summing.add(*row)
    config = DetectionConfig(calibration_days=6)
    now = (H0 + 24 * 14) * 3600.0
    by_rows = PoissonScanDetector(plain, index, config)
    by_totals = PoissonScanDetector(summing, index, config)
    a, b = by_rows.refit(now), by_totals.refit(now)
    assert summing.row_reads == []  # the fit read totals only
    for name in ("rate", "shape", "inv_scale", "profile"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.rate.sum() > 0
    threshold = by_rows.calibrate(now).threshold
    assert by_totals.calibrate(now).threshold == threshold
    stats = by_totals._stats
    assert stats is not None
    assert summing.row_reads == [(stats.start_hour, stats.end_hour)]  # the fit window's rows
