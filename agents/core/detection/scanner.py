"""`WindowScanner`: the window counts of the current hour, kept up to date, and the scans.

A scan scores the zones of the centres holding incidents with the arithmetic of
`scan.scan_zones` (same values, same order of the results), reading the zone counts kept by
`zones.ZoneWindows` instead of summing the cells of each zone. Within an hour, a zone's score
only goes down while no incident arrives in it (its expectation grows, its counts do not), so
after a full scan at the top of the hour, scanning the zones around the cells that received
incidents since the previous run (`scan_near`) finds every score that can have gone up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from agents.core.detection.baseline import hour_of_week
from agents.core.detection.scan import FloatArray, IntArray, ScanResult, positive_score
from agents.core.detection.zones import ZoneWindows, ring_sizes


class ProfileSums:
    """(n_cat, W) expected-count multipliers of the windows at a time `now` of the hour
    bucket `hour`: the profile summed over each window's hours, the current bucket weighted
    by the elapsed fraction of its hour. Cached for the last (hour, fraction)."""

    def __init__(self, profile: FloatArray, windows: Sequence[int]) -> None:
        self.profile = profile  # (n_cat, 168), local hour of the week
        self.windows = tuple(windows)
        self._wins = np.asarray(self.windows, dtype=np.int64)
        self._key: tuple[int, float] | None = None
        self._sums = np.zeros((profile.shape[0], len(self.windows)))
        self._hours_prof: tuple[int, FloatArray] | None = None

    def at(self, hour: int, now: float) -> FloatArray:
        frac = min(1.0, max(0.0, now / 3600.0 - hour))
        key = (hour, frac)
        if key != self._key:
            if self._hours_prof is None or self._hours_prof[0] != hour:
                hows = [hour_of_week(hour - a) for a in range(max(self.windows))]
                self._hours_prof = (hour, self.profile[:, hows])  # hour, hour - 1, ...
            prof = self._hours_prof[1].copy()
            prof[:, 0] *= frac
            cum = prof.cumsum(axis=1)
            self._sums = cum[:, self._wins - 1]
            self._key = key
        return self._sums


def profile_sums_at(
    profile: FloatArray, windows: Sequence[int], hours: Sequence[int], nows: Sequence[float]
) -> FloatArray:
    """(len(hours), n_cat, W): `ProfileSums.at(hours[i], nows[i])` for every i (the same
    arithmetic, for many runs at once)."""
    if not hours:
        return np.zeros((0, profile.shape[0], len(windows)))
    span = max(windows)
    buckets = np.asarray(hours, dtype=np.int64)[:, None] - np.arange(span)  # hour, hour - 1...
    first = int(buckets.min())
    how_of = [hour_of_week(h) for h in range(first, int(buckets.max()) + 1)]
    hows = np.asarray(how_of, dtype=np.int64)[buckets - first]
    prof = profile[:, hows].transpose(1, 0, 2)  # (runs, n_cat, span)
    fracs = [min(1.0, max(0.0, now / 3600.0 - h)) for h, now in zip(hours, nows, strict=True)]
    prof[:, :, 0] *= np.asarray(fracs)[:, None]
    cum = prof.cumsum(axis=2)
    return np.asarray(cum[:, :, np.asarray(windows, dtype=np.int64) - 1], dtype=np.float64)


class WindowScanner:
    """Window counts of the current hour, kept up to date incident by incident, and scans.

    `profile` (n_cat, 168) is the baseline's local hour-of-week profile, `zone_rates`
    (n_cat, K, n_cells) the zones' mean hourly rates, `ring` `CellIndex.rings(max(ks))`.
    Rows are flat (category, cell) indices `category * (n_cells + 1) + cell`.
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
        self.n_cat, n_k, self.n_cells = zone_rates.shape
        self._rows = self.n_cells + 1
        self._around = ring[:, : ring_sizes(self.ks)[-1]]
        self._windows = ZoneWindows(self.n_cat, ring, ks, windows)
        n_w = len(self.windows)
        # flat views: zone counts (row, K * W), cell counts of the longest window (row,)
        self._zones = self._windows.zones.reshape(self.n_cat * self._rows, n_k * n_w)
        self._longest = self._windows.longest
        rates = np.zeros((self.n_cat, self._rows, n_k))
        rates[:, : self.n_cells, :] = zone_rates.transpose(0, 2, 1)
        self._rates = rates.reshape(self.n_cat * self._rows, n_k)
        self.changed: set[tuple[int, int]] = set()
        self._profile_sums = ProfileSums(profile, self.windows)

    @property
    def hour(self) -> int | None:
        return self._windows.hour

    def reset(self, hour: int) -> None:
        self._windows.reset(hour)
        self.changed.clear()

    def add(self, cat: int, cell: int, hour: int, n: float = 1.0) -> None:
        """Count `n` incidents of category `cat` in cell `cell` in bucket `hour`."""
        one = np.ones(1, dtype=np.int64)
        self.add_many(one * cat, one * cell, one * hour, np.full(1, float(n)))

    def add_many(
        self, cat: IntArray, cell: IntArray, hour: IntArray, n: FloatArray
    ) -> tuple[IntArray, IntArray]:
        """`add` for arrays of entries (a future bucket is counted when the clock reaches
        it); returns the (category, cell) pairs counted now, also added to `changed`."""
        cats, cells = self._windows.add(cat, cell, hour, n)
        if cats.shape[0]:
            self.changed.update(zip(cats.tolist(), cells.tolist(), strict=True))
        return cats, cells

    def advance(self, hour: int) -> None:
        """Move the current hour forward (the windows follow their buckets)."""
        if hour == self.hour:
            return
        self._windows.advance(hour)
        self.changed.clear()

    def profile_sums(self, now: float) -> FloatArray:
        """(n_cat, W): expected-count multipliers of the windows at `now` (see
        `ProfileSums`)."""
        assert self.hour is not None
        return self._profile_sums.at(self.hour, now)

    def scan_all(self, now: float) -> ScanResult:
        """Every zone centred on a cell holding incidents in the longest window."""
        self.changed.clear()
        return self._best(now, np.flatnonzero(self._longest > 0))

    def scan_near(self, now: float, cells: Iterable[tuple[int, int]]) -> ScanResult:
        """Zones centred within max(ks) of the given (category, cell) pairs; clears
        `changed`."""
        pairs = np.asarray(list(cells), dtype=np.int64).reshape(-1, 2)
        return self.scan_near_pairs(now, pairs[:, 0], pairs[:, 1])

    def scan_near_pairs(self, now: float, cat: IntArray, cell: IntArray) -> ScanResult:
        """`scan_near` for arrays of categories and cells."""
        self.changed.clear()
        if not cat.shape[0]:
            return ScanResult.empty()
        rows = ((cat * self._rows)[:, None] + self._around[cell]).ravel()
        # centres holding incidents (the padding row, "no cell", never does), each once
        rows = rows[self._longest[rows] > 0]
        return self._best(now, np.asarray(sorted(set(rows.tolist())), dtype=np.int64))

    def _best(self, now: float, rows: IntArray) -> ScanResult:
        """Best zone of each row: `scan.scan_zones` on the kept zone counts."""
        zones = self._zones
        # no zone of a centre holds more than its largest zone over the longest window
        rows = rows[zones[rows, -1] >= self.min_observed]
        m = rows.shape[0]
        if not m:
            return ScanResult.empty()
        cat, center = np.divmod(rows, self._rows)
        c = zones[rows]
        b = (self._rates[rows][:, :, None] * self.profile_sums(now)[cat][:, None, :]).reshape(m, -1)
        # poisson_score(c, b), zones under min_observed at 0, computed only where it is not
        # 0 (elementwise: the same values)
        hit = (c > np.maximum(b, 1e-12)) & (c >= self.min_observed)
        s = np.zeros_like(b)
        s[hit] = positive_score(c[hit], b[hit])
        j = s.argmax(axis=1)
        at = np.arange(m)
        k_idx, w_idx = np.divmod(j, len(self.windows))
        return ScanResult(cat, center, k_idx, w_idx, c[at, j], b[at, j], s[at, j])
