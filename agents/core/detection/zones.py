"""Window counts of cells and zones at the current hour, kept up to date incrementally.

A zone is a centre cell plus its k-ring (k in `ks`), a window the last w hour buckets (w in
`windows`). `ZoneWindows` keeps, for the current hour, the count of every (category, cell,
window) and of every (category, zone, window), so that a scan reads the zone counts instead
of summing the cells of each zone. Every change is scattered to the zones holding its cell
(`zone_targets`, the inverse of `CellIndex.rings`), and moving the hour forward only adds
the buckets entering a window and removes those leaving it.

Counts are integers held in float64: every sum of them is exact whatever the order of the
additions, so the incremental counts equal, bit for bit, counts summed from scratch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def ring_sizes(ks: Sequence[int]) -> list[int]:
    return [3 * k * (k + 1) + 1 for k in ks]


def zone_targets(ring: IntArray, ks: Sequence[int]) -> IntArray:
    """(n_cells + 1, L): row x lists `center * K + k_idx` for every zone (center, ks[k_idx])
    whose `ring` row holds cell x, as often as it holds it; padded with zones of the padding
    row `n_cells` (never scanned). `ring` is `CellIndex.rings(max(ks))`."""
    n_cells = ring.shape[0]
    n_k = len(ks)
    sizes = ring_sizes(ks)
    centers, cols = np.nonzero(ring[:, : sizes[-1]] < n_cells)
    members = ring[centers, cols]
    # the zone (center, ks[j]) holds the ring columns [0, sizes[j])
    first_k = np.searchsorted(np.asarray(sizes), cols, side="right")
    member_l: list[IntArray] = []
    target_l: list[IntArray] = []
    for j in range(n_k):
        m = first_k <= j
        member_l.append(members[m])
        target_l.append(centers[m] * n_k + j)
    member = np.concatenate(member_l) if member_l else np.zeros(0, dtype=np.int64)
    target = np.concatenate(target_l) if target_l else np.zeros(0, dtype=np.int64)
    order = np.argsort(member, kind="stable")
    member, target = member[order], target[order]
    per_cell = np.bincount(member, minlength=n_cells + 1)
    width = int(per_cell.max()) if per_cell.shape[0] else 0
    out = np.full((n_cells + 1, max(width, 1)), n_cells * n_k, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(per_cell)[:-1]])
    out[member, np.arange(member.shape[0]) - starts[member]] = target
    return out


_TARGETS_CACHE: list[tuple[IntArray, tuple[int, ...], int, IntArray]] = []


def window_targets(ring: IntArray, ks: Sequence[int], n_w: int) -> IntArray:
    """(n_cells + 1, L * W): `zone_targets(ring, ks)` as flat offsets of every window
    (`target * W + j`, target-major) in a (category 0, row, K, W) array. Remembered for the
    last few rings (a detector refits its baseline daily on the same `CellIndex.rings`
    array; rings are never modified)."""
    key = tuple(ks)
    for cached_ring, cached_ks, cached_w, targets in _TARGETS_CACHE:
        if cached_ring is ring and cached_ks == key and cached_w == n_w:
            return targets
    base = zone_targets(ring, key) * n_w
    targets = (base[:, :, None] + np.arange(n_w)).reshape(base.shape[0], -1)
    _TARGETS_CACHE.insert(0, (ring, key, n_w, targets))
    del _TARGETS_CACHE[4:]
    return targets


class _Bucket:
    """The (category, cell, n) entries added to one hour bucket, in chunks."""

    __slots__ = ("cat", "cell", "n")

    def __init__(self) -> None:
        self.cat: list[IntArray] = []
        self.cell: list[IntArray] = []
        self.n: list[FloatArray] = []

    def append(self, cat: IntArray, cell: IntArray, n: FloatArray) -> None:
        self.cat.append(cat)
        self.cell.append(cell)
        self.n.append(n)

    def arrays(self) -> tuple[IntArray, IntArray, FloatArray]:
        """Every entry (the chunks are merged into one)."""
        if len(self.cat) > 1:
            self.cat = [np.concatenate(self.cat)]
            self.cell = [np.concatenate(self.cell)]
            self.n = [np.concatenate(self.n)]
        return self.cat[0], self.cell[0], self.n[0]


class ZoneWindows:
    """Zone window counts of the current hour (`hour`).

    `zones` (n_cat, n_cells + 1, K, W), and `longest` (n_cat * (n_cells + 1),) the cell
    counts over the longest window (row `category * (n_cells + 1) + cell`). Row `n_cells` is
    padding: `longest` keeps it at zero, `zones` uses it as a sink. Entries of a future
    bucket are kept aside and counted when the hour reaches them.
    """

    def __init__(
        self, n_cat: int, ring: IntArray, ks: Sequence[int], windows: Sequence[int]
    ) -> None:
        self.n_cat = n_cat
        self.n_cells = int(ring.shape[0])
        self.windows = tuple(windows)
        self._wins = np.asarray(self.windows, dtype=np.int64)
        n_k, n_w = len(ks), len(self.windows)
        self._rows = self.n_cells + 1
        self.longest = np.zeros(n_cat * self._rows)
        self._longest_j = int(np.argmax(self._wins))
        self.zones = np.zeros((n_cat, self._rows, n_k, n_w))
        self._flat_zones = self.zones.reshape(-1)
        self._category_stride = self._rows * n_k * n_w
        # flat offsets of the windows of each zone holding a cell (category 0)
        self._targets = window_targets(ring, ks, n_w)
        self._buckets: dict[int, _Bucket] = {}
        self.hour: int | None = None
        # _member[age + 1][j]: 1.0 when window j holds a bucket of this age (age -1: any
        # future bucket, age max(windows): any bucket too old for every window)
        span = int(self._wins.max())
        ages = np.arange(-1, span + 1)
        self._member = ((ages[:, None] >= 0) & (ages[:, None] < self._wins)).astype(np.float64)
        # its rows, the ages held by the same windows sharing one array (`advance`: `is`)
        shared: dict[tuple[float, ...], FloatArray] = {}
        self._member_rows = [shared.setdefault(tuple(r.tolist()), r) for r in self._member]

    def reset(self, hour: int) -> None:
        self.longest[:] = 0.0
        self.zones[:] = 0.0
        self._buckets.clear()
        self.hour = hour

    def add(
        self, cat: IntArray, cell: IntArray, hour: IntArray, n: FloatArray
    ) -> tuple[IntArray, IntArray]:
        """Count n[e] incidents of category cat[e] in cell cell[e] in bucket hour[e]; returns
        the (category, cell) pairs counted in a window now (not the future ones)."""
        keep = (cell < self.n_cells) & (n != 0)
        if not keep.all():
            cat, cell, hour, n = cat[keep], cell[keep], hour[keep], n[keep]
        if not cat.shape[0]:
            return cat, cell
        self._store(cat, cell, hour, n)
        assert self.hour is not None
        age = self.hour - hour
        member = self._membership(age)
        if member.all():  # new incidents: in every window, counted now
            self._scatter_everywhere(cat, cell, n)
            return cat, cell
        self._scatter_nonzero(cat, cell, n[:, None] * member)
        now = age >= 0
        return cat[now], cell[now]

    def _membership(self, age: IntArray) -> FloatArray:
        """(len(age), W): 1.0 where window j holds a bucket of age age[e]."""
        rows: IntArray = np.minimum(np.maximum(age + 1, 0), self._member.shape[0] - 1)
        return self._member[rows]

    def _member_of(self, age: int) -> FloatArray:
        """(W,): `_membership` of one age (one array per set of windows)."""
        return self._member_rows[min(max(age + 1, 0), len(self._member_rows) - 1)]

    def advance(self, hour: int) -> None:
        """Move the current hour to `hour`: add the buckets entering a window, remove those
        leaving it, forget the buckets older than the longest window."""
        old = self.hour
        self.hour = hour
        if old is None or old == hour:
            return
        cats: list[IntArray] = []
        cells: list[IntArray] = []
        vals: list[FloatArray] = []
        for h, bucket in self._buckets.items():
            now_in, was_in = self._member_of(hour - h), self._member_of(old - h)
            if now_in is was_in:
                continue  # in the same windows (or in none) before and after
            delta = now_in - was_in
            cat, cell, n = bucket.arrays()
            cats.append(cat)
            cells.append(cell)
            vals.append(n[:, None] * delta[None, :])
        if cats:
            self._scatter_nonzero(np.concatenate(cats), np.concatenate(cells), np.concatenate(vals))
        oldest = hour - int(self._wins.max()) + 1
        for h in [h for h in self._buckets if h < oldest]:
            del self._buckets[h]

    def _store(self, cat: IntArray, cell: IntArray, hour: IntArray, n: FloatArray) -> None:
        buckets = self._buckets
        first = int(hour[0])
        if hour.shape[0] == 1 or (hour == first).all():
            groups: list[tuple[int, npt.NDArray[np.bool_] | None]] = [(first, None)]
        else:
            groups = [(int(h), hour == h) for h in np.unique(hour)]
        for h, m in groups:
            bucket = buckets.get(h)
            if bucket is None:
                bucket = buckets[h] = _Bucket()
            if m is None:
                bucket.append(cat.copy(), cell.copy(), n.copy())
            else:
                bucket.append(cat[m], cell[m], n[m])

    def _scatter_everywhere(self, cat: IntArray, cell: IntArray, n: FloatArray) -> None:
        """Add n[e] to every window of cell (cat[e], cell[e]) and of every zone holding it."""
        index = self._targets[cell] + (cat * self._category_stride)[:, None]  # (m, L * W)
        np.add.at(self._flat_zones, index.ravel(), np.repeat(n, index.shape[1]))
        np.add.at(self.longest, cat * self._rows + cell, n)

    def _scatter_nonzero(self, cat: IntArray, cell: IntArray, vals: FloatArray) -> None:
        """Add vals[e, j] to window j of cell (cat[e], cell[e]) and of every zone holding
        it, for the non-zero vals (an hour change moves the entries of a few buckets in or
        out of one or two windows, a reload adds older entries to some windows only)."""
        e, j = np.nonzero(vals)
        if not e.shape[0]:
            return
        v = vals[e, j]
        n_w = len(self.windows)
        cat_e, cell_e = cat[e], cell[e]
        longest = j == self._longest_j
        np.add.at(self.longest, cat_e[longest] * self._rows + cell_e[longest], v[longest])
        # window-0 offsets of the zones holding the cells, plus the window
        index = self._targets[cell_e, ::n_w] + (cat_e * self._category_stride + j)[:, None]
        np.add.at(self._flat_zones, index.ravel(), np.repeat(v, index.shape[1]))
