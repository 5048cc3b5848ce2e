"""Expectation-based Poisson scan statistic (Neill 2005/2009) over zones x sliding windows.

A zone is a cell plus its k-ring (k in `ks`); a window is the last w hour buckets ending with
the current one (w in `windows`). Incidents are counted when first seen, so at time `now` the
current bucket holds what arrived since the top of the hour and its expectation is the hour's
expectation times the elapsed fraction of the hour: the 1-hour window is "since the top of the
hour", the w-hour window "the w - 1 previous hours and since the top of the hour".

For observed C and expected B the score is the log likelihood ratio C log(C/B) + B - C when
C > B, else 0. Zones are centred on cells that hold at least one incident in the longest
window (a zone without incidents never scores).

`WindowScanner` keeps the window counts up to date incrementally and scans either every zone
(`scan_all`) or only the zones around given cells (`scan_near`). Within an hour, a zone's
score only goes down while no incident arrives in it (its expectation grows, its counts do
not), so after a full scan at the top of the hour, scanning the zones around the cells that
received incidents since the previous run finds every score that can have gone up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agents.core.detection.baseline import hour_of_week

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DEFAULT_WINDOWS: tuple[int, ...] = (1, 2, 3, 6, 24)
DEFAULT_KS: tuple[int, ...] = (0, 1, 2)


def poisson_score(observed: FloatArray, expected: FloatArray) -> FloatArray:
    """Elementwise C log(C/B) + B - C where C > B, else 0."""
    b = np.maximum(expected, 1e-12)
    c = observed
    with np.errstate(divide="ignore", invalid="ignore"):
        s = c * np.log(np.where(c > 0, c / b, 1.0)) + b - c
    return np.where(c > b, s, 0.0)


@dataclass(slots=True)
class ScanResult:
    """Best zone (over ks and windows) for each scanned (category, centre cell)."""

    category: IntArray
    center: IntArray
    k_idx: IntArray
    w_idx: IntArray
    observed: FloatArray
    expected: FloatArray
    score: FloatArray

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def max_score(self) -> float:
        return float(self.score.max()) if len(self) else 0.0

    @classmethod
    def empty(cls) -> ScanResult:
        i, f = np.zeros(0, dtype=np.int64), np.zeros(0)
        return cls(i, i, i, i, f, f, f)


def ring_sizes(ks: Sequence[int]) -> list[int]:
    return [3 * k * (k + 1) + 1 for k in ks]


def scan_zones(
    counts: FloatArray,
    zone_rates: FloatArray,
    profile_sums: FloatArray,
    ring: IntArray,
    ks: Sequence[int],
    min_observed: float,
    cat: IntArray,
    center: IntArray,
) -> ScanResult:
    """Best zone of each (cat[i], center[i]).

    counts (n_cat, n_cells+1, W), last row zero; zone_rates (n_cat, K, n_cells); profile_sums
    (n_cat, W); ring (n_cells, size of the largest k-ring) ordered by distance
    (`CellIndex.rings`).
    """
    if cat.shape[0] == 0:
        return ScanResult.empty()
    n_cat, n_rows, n_w = counts.shape
    sizes = ring_sizes(ks)
    flat = counts.reshape(n_cat * n_rows, n_w)
    members = ring[center, : sizes[-1]] + (cat * n_rows)[:, None]
    # a zone scores only with >= min_observed incidents, and no zone of a centre holds more
    # than its largest zone over the longest window: drop the centres that cannot score
    # (most of them) before the full (m, size, W) gather
    keep = flat[members, n_w - 1].sum(axis=1) >= min_observed
    if not keep.all():
        cat, center, members = cat[keep], center[keep], members[keep]
    m = cat.shape[0]
    if m == 0:
        return ScanResult.empty()
    cum = flat[members].cumsum(axis=1)  # (m, size, W)
    c = cum[:, [s - 1 for s in sizes], :]  # (m, K, W)
    b = zone_rates[cat, :, center][:, :, None] * profile_sums[cat][:, None, :]
    s = poisson_score(c, b)
    s[c < min_observed] = 0.0
    flat_s = s.reshape(m, -1)
    j = flat_s.argmax(axis=1)
    rows = np.arange(m)
    k_idx, w_idx = np.divmod(j, n_w)
    return ScanResult(
        cat.astype(np.int64),
        center.astype(np.int64),
        k_idx.astype(np.int64),
        w_idx.astype(np.int64),
        c[rows, k_idx, w_idx],
        b[rows, k_idx, w_idx],
        flat_s[rows, j],
    )


def scan(
    counts: FloatArray,
    zone_rates: FloatArray,
    profile_sums: FloatArray,
    ring: IntArray,
    ks: Sequence[int],
    min_observed: float,
) -> ScanResult:
    """Best zone per (category, centre) for every centre holding incidents in the longest
    window."""
    n_cells = counts.shape[1] - 1
    cat, center = np.nonzero(counts[:, :n_cells, -1] > 0)
    return scan_zones(
        counts, zone_rates, profile_sums, ring, ks, min_observed, cat, center.astype(np.int64)
    )


def window_counts_matrix(
    category: IntArray,
    cell: IntArray,
    age: IntArray,
    n: FloatArray,
    shape: tuple[int, int],
    windows: Sequence[int],
) -> FloatArray:
    """(n_categories, n_cells + 1, n_windows) counts; `age` = current hour - bucket hour."""
    out = np.zeros((shape[0], shape[1] + 1, len(windows)))
    for j, w in enumerate(windows):
        m = (age >= 0) & (age < w)
        np.add.at(out[:, :, j], (category[m], cell[m]), n[m])
    return out


class WindowScanner:
    """Window counts of the current hour, kept up to date incident by incident, and scans.

    `profile` (n_cat, 168) is the baseline's local hour-of-week profile, `zone_rates`
    (n_cat, K, n_cells) the zones' mean hourly rates, `ring` `CellIndex.rings(max(ks))`.
    """

    def __init__(
        self,
        zone_rates: FloatArray,
        profile: FloatArray,
        ring: IntArray,
        *,
        ks: Sequence[int],
        windows: Sequence[int],
        min_observed: float,
    ) -> None:
        self.zone_rates = zone_rates
        self.profile = profile  # (n_cat, 168), local hour of the week
        self.ring = ring
        self.ks = tuple(ks)
        self.windows = tuple(windows)
        self.min_observed = min_observed
        self.n_cat, _, self.n_cells = zone_rates.shape
        self.counts = np.zeros((self.n_cat, self.n_cells + 1, len(self.windows)))
        self.hour: int | None = None
        self._buckets: dict[int, list[tuple[int, int, float]]] = {}
        self.changed: set[tuple[int, int]] = set()
        self._wins = np.asarray(self.windows, dtype=np.int64)
        self._profile_key: tuple[int, float] | None = None
        self._profile_sums = np.zeros((self.n_cat, len(self.windows)))
        self._hours_prof: tuple[int, FloatArray] | None = None

    def reset(self, hour: int) -> None:
        self.counts[:] = 0.0
        self._buckets.clear()
        self.changed.clear()
        self.hour = hour

    def add(self, cat: int, cell: int, hour: int, n: float = 1.0) -> None:
        """Count `n` incidents of category `cat` in cell `cell` in bucket `hour`."""
        if cell >= self.n_cells or n == 0:
            return
        self._buckets.setdefault(hour, []).append((cat, cell, n))
        assert self.hour is not None
        age = self.hour - hour
        if age < 0:
            return  # a future bucket: counted when the clock reaches it
        row = self.counts[cat, cell]
        for j, w in enumerate(self.windows):
            if age < w:
                row[j] += n
        self.changed.add((cat, cell))

    def advance(self, hour: int) -> None:
        """Move the current hour forward; window counts are rebuilt from the buckets."""
        if hour == self.hour:
            return
        self.hour = hour
        oldest = hour - self.windows[-1] + 1
        for h in [h for h in self._buckets if h < oldest]:
            del self._buckets[h]
        self.counts[:] = 0.0
        entries = [(h, *e) for h, es in self._buckets.items() if h <= hour for e in es]
        if entries:
            arr = np.asarray(entries, dtype=np.float64)
            age = hour - arr[:, 0].astype(np.int64)
            cat, cell, n = arr[:, 1].astype(np.int64), arr[:, 2].astype(np.int64), arr[:, 3]
            for j, w in enumerate(self.windows):
                m = age < w
                np.add.at(self.counts[:, :, j], (cat[m], cell[m]), n[m])
        self.changed.clear()

    def profile_sums(self, now: float) -> FloatArray:
        """(n_cat, W): expected-count multipliers of the windows at `now` (current bucket
        weighted by the elapsed fraction of its hour)."""
        assert self.hour is not None
        frac = min(1.0, max(0.0, now / 3600.0 - self.hour))
        key = (self.hour, frac)
        if key != self._profile_key:
            if self._hours_prof is None or self._hours_prof[0] != self.hour:
                hows = [hour_of_week(self.hour - a) for a in range(self.windows[-1])]
                self._hours_prof = (self.hour, self.profile[:, hows])  # hour, hour - 1, ...
            prof = self._hours_prof[1].copy()
            prof[:, 0] *= frac
            cum = prof.cumsum(axis=1)
            self._profile_sums = cum[:, self._wins - 1]
            self._profile_key = key
        return self._profile_sums

    def scan_all(self, now: float) -> ScanResult:
        self.changed.clear()
        return scan(
            self.counts,
            self.zone_rates,
            self.profile_sums(now),
            self.ring,
            self.ks,
            self.min_observed,
        )

    def scan_near(self, now: float, cells: Iterable[tuple[int, int]]) -> ScanResult:
        """Zones centred within max(ks) of the given (category, cell) pairs; clears
        `changed`."""
        pairs = np.asarray(list(cells), dtype=np.int64).reshape(-1, 2)
        self.changed.clear()
        if not pairs.shape[0]:
            return ScanResult.empty()
        rows = self.n_cells + 1
        around = self.ring[pairs[:, 1], : ring_sizes(self.ks)[-1]]
        keys = np.unique((pairs[:, 0] * rows)[:, None] + around)
        cat, center = np.divmod(keys, rows)
        keep = (center < self.n_cells) & (self.counts[cat, center, -1] > 0)
        return scan_zones(
            self.counts,
            self.zone_rates,
            self.profile_sums(now),
            self.ring,
            self.ks,
            self.min_observed,
            cat[keep],
            center[keep],
        )
