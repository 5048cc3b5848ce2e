"""The incremental scanner (zone counts kept up to date) against the reference scan computed
from scratch: the same results, bit for bit."""

from __future__ import annotations

import numpy as np

from agents.core.detection.cells import CellIndex
from agents.core.detection.scan import (
    DEFAULT_KS,
    DEFAULT_WINDOWS,
    ScanResult,
    scan,
    scan_zones,
    window_counts_matrix,
)
from agents.core.detection.scanner import WindowScanner
from agents.core.detection.zones import ring_sizes, zone_targets
from tests.detection.synthetic import H0, universe

N_CAT = 3


def _same(a: ScanResult, b: ScanResult) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f))
        for f in ("category", "center", "k_idx", "w_idx", "observed", "expected", "score")
    )


class _Reference:
    """Every entry ever added; window counts summed from scratch."""

    def __init__(self, n_cells: int) -> None:
        self.n_cells = n_cells
        self.entries: list[tuple[int, int, int, float]] = []

    def counts(self, hour: int) -> np.ndarray:
        arr = np.asarray(self.entries, dtype=np.float64).reshape(-1, 4)
        return window_counts_matrix(
            arr[:, 0].astype(np.int64),
            arr[:, 1].astype(np.int64),
            hour - arr[:, 2].astype(np.int64),
            arr[:, 3],
            (N_CAT, self.n_cells),
            DEFAULT_WINDOWS,
        )


def _setup(seed: int) -> tuple[CellIndex, WindowScanner, np.random.Generator]:
    index = universe(6)
    rng = np.random.default_rng(seed)
    ks = DEFAULT_KS
    zone_rates = rng.gamma(0.5, 0.02, size=(N_CAT, len(ks), len(index)))
    profile = rng.gamma(4.0, 0.25, size=(N_CAT, 168))
    scanner = WindowScanner(
        zone_rates,
        profile,
        index.rings(max(ks)),
        ks=ks,
        windows=DEFAULT_WINDOWS,
        min_observed=2.0,
    )
    return index, scanner, rng


def test_zone_targets_invert_the_rings() -> None:
    index = universe(5)
    ring = index.rings(2)
    n = len(index)
    targets = zone_targets(ring, DEFAULT_KS)
    counts = np.random.default_rng(1).integers(0, 4, size=n + 1).astype(np.float64)
    counts[n] = 0.0
    zones = np.zeros((n + 1) * len(DEFAULT_KS))
    np.add.at(zones, targets[:n].ravel(), np.repeat(counts[:n], targets.shape[1]))
    for j, size in enumerate(ring_sizes(DEFAULT_KS)):
        expected = counts[ring[:, :size]].sum(axis=1)
        assert np.array_equal(zones.reshape(n + 1, -1)[:n, j], expected)


def test_incremental_windows_and_scans_equal_the_reference() -> None:
    index, scanner, rng = _setup(3)
    n_cells = len(index)
    ref = _Reference(n_cells)
    ring = index.rings(max(DEFAULT_KS))
    hour = H0
    scanner.reset(hour)
    checked = 0
    for step in range(120):
        if step % 7 == 6:
            hour += int(rng.choice([1, 1, 1, 2, 5, 30]))  # hour jumps, some past every window
            scanner.advance(hour)
        m = int(rng.integers(0, 12))
        cat = rng.integers(0, N_CAT, m)
        cell = rng.integers(0, n_cells, m)
        # mostly recent buckets, some future ones (counted later), some too old to count
        h = hour - rng.choice([0, 0, 0, 1, 2, 4, 23, 30, -1], m)
        n = rng.choice([1.0, 1.0, 1.0, 2.0, -1.0], m)
        cats, cells = scanner.add_many(cat, cell, h, n)
        ref.entries.extend(zip(cat.tolist(), cell.tolist(), h.tolist(), n.tolist(), strict=True))
        now = hour * 3600.0 + float(rng.uniform(0, 3600))
        counts = ref.counts(hour)
        assert np.array_equal(scanner._windows.longest.reshape(N_CAT, -1), counts[:, :, -1])
        ps = scanner.profile_sums(now)
        full = scan(counts, scanner.zone_rates, ps, ring, DEFAULT_KS, 2.0)
        if cats.shape[0]:
            rows = np.unique((cats * (n_cells + 1))[:, None] + ring[cells])
            cat_r, center_r = np.divmod(rows, n_cells + 1)
            keep = (center_r < n_cells) & (counts[cat_r, center_r, -1] > 0)
            want = scan_zones(
                counts, scanner.zone_rates, ps, ring, DEFAULT_KS, 2.0, cat_r[keep], center_r[keep]
            )
            got = scanner.scan_near_pairs(now, cats, cells)
            assert _same(got, want)
        assert _same(scanner.scan_all(now), full)
        checked += len(full)
    assert checked > 100  # the scans did score zones


def test_single_adds_and_near_scan_of_changed_cells() -> None:
    index, scanner, _ = _setup(5)
    scanner.reset(H0)
    pos = len(index) // 2
    for _ in range(3):
        scanner.add(1, pos, H0)
    scanner.add(1, pos, H0 + 1)  # future: not counted yet, not changed
    assert scanner.changed == {(1, pos)}
    near = scanner.scan_near(H0 * 3600.0 + 600.0, scanner.changed)
    assert not scanner.changed
    assert (1, pos) in set(zip(near.category.tolist(), near.center.tolist(), strict=True))
    assert near.max_score() > 0
    scanner.advance(H0 + 1)
    assert scanner._windows.longest[1 * (len(index) + 1) + pos] == 4.0
