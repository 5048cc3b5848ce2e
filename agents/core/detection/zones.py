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


class _Bucket:
    """The (category, cell, n) entries added to one hour bucket."""

    __slots__ = ("cat", "cell", "n")

    def __init__(self) -> None:
        self.cat: list[int] = []
        self.cell: list[int] = []
        self.n: list[float] = []


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
        self._n_k = len(ks)
        rows, n_w = self.n_cells + 1, len(self.windows)
        self.longest = np.zeros(n_cat * rows)
        self._longest_j = int(np.argmax(self._wins))
        self.zones = np.zeros((n_cat, rows, self._n_k, n_w))
        # flat offset of window 0 of each zone holding a cell, category 0
        self._targets_w = zone_targets(ring, ks) * n_w
        self._buckets: dict[int, _Bucket] = {}
        self.hour: int | None = None
        # _member[age][j]: 1.0 when window j holds a bucket of this age; ages held by the
        # same windows share one array
        self._zero = np.zeros(n_w)
        shared: dict[tuple[bool, ...], FloatArray] = {}
        self._member: list[FloatArray] = []
        for age in range(int(self._wins.max())):
            inside = age < self._wins
            key = tuple(inside.tolist())
            self._member.append(shared.setdefault(key, inside.astype(np.float64)))

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
        inside = (age[:, None] >= 0) & (age[:, None] < self._wins[None, :])
        self._scatter(cat, cell, n[:, None] * inside)
        now = age >= 0
        return cat[now], cell[now]

    def advance(self, hour: int) -> None:
        """Move the current hour to `hour`: add the buckets entering a window, remove those
        leaving it, forget the buckets older than the longest window."""
        old = self.hour
        self.hour = hour
        if old is None or old == hour:
            return
        member, longest = self._member, len(self._member)
        cats: list[IntArray] = []
        cells: list[IntArray] = []
        vals: list[FloatArray] = []
        for h, bucket in self._buckets.items():
            now_in = member[hour - h] if 0 <= hour - h < longest else None
            was_in = member[old - h] if 0 <= old - h < longest else None
            if now_in is was_in:
                continue  # in the same windows (or in none) before and after
            delta = (self._zero if now_in is None else now_in) - (
                self._zero if was_in is None else was_in
            )
            cats.append(np.asarray(bucket.cat, dtype=np.int64))
            cells.append(np.asarray(bucket.cell, dtype=np.int64))
            vals.append(np.asarray(bucket.n, dtype=np.float64)[:, None] * delta[None, :])
        if cats:
            self._scatter(np.concatenate(cats), np.concatenate(cells), np.concatenate(vals))
        oldest = hour - len(member) + 1
        for h in [h for h in self._buckets if h < oldest]:
            del self._buckets[h]

    def _store(self, cat: IntArray, cell: IntArray, hour: IntArray, n: FloatArray) -> None:
        buckets = self._buckets
        if hour.shape[0] == 1 or (hour == hour[0]).all():
            groups: list[tuple[int, npt.NDArray[np.bool_] | None]] = [(int(hour[0]), None)]
        else:
            groups = [(int(h), hour == h) for h in np.unique(hour)]
        for h, m in groups:
            bucket = buckets.get(h)
            if bucket is None:
                bucket = buckets[h] = _Bucket()
            if m is None:
                bucket.cat.extend(cat.tolist())
                bucket.cell.extend(cell.tolist())
                bucket.n.extend(n.tolist())
            else:
                bucket.cat.extend(cat[m].tolist())
                bucket.cell.extend(cell[m].tolist())
                bucket.n.extend(n[m].tolist())

    def _scatter(self, cat: IntArray, cell: IntArray, vals: FloatArray) -> None:
        """Add vals[e, j] to window j of cell (cat[e], cell[e]) and of every zone holding
        it."""
        e, j = np.nonzero(vals)
        if not e.shape[0]:
            return
        v = vals[e, j]
        n_w = len(self.windows)
        rows = self.n_cells + 1
        cat_e, cell_e = cat[e], cell[e]
        longest = j == self._longest_j
        np.add.at(self.longest, cat_e[longest] * rows + cell_e[longest], v[longest])
        index = self._targets_w[cell_e] + (cat_e * (rows * self._n_k * n_w) + j)[:, None]
        np.add.at(self.zones.reshape(-1), index.ravel(), np.repeat(v, index.shape[1]))
