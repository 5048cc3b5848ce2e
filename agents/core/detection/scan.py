"""Expectation-based Poisson scan statistic (Neill 2005/2009) over zones x sliding windows.

A zone is a cell plus its k-ring (k in `ks`); a window is the last w hour buckets ending with
the current one (w in `windows`). Incidents are counted when first seen, so at time `now` the
current bucket holds what arrived since the top of the hour and its expectation is the hour's
expectation times the elapsed fraction of the hour: the 1-hour window is "since the top of the
hour", the w-hour window "the w - 1 previous hours and since the top of the hour".

For observed C and expected B the score is the log likelihood ratio C log(C/B) + B - C when
C > B, else 0. Zones are centred on cells that hold at least one incident in the longest
window (a zone without incidents never scores).

`scan` and `scan_zones` score zones from cell window counts; `scanner.WindowScanner`, which
the detector and the calibration use, keeps zone window counts up to date incrementally and
scores them with the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agents.core.detection.zones import ring_sizes

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


def positive_score(observed: FloatArray, expected: FloatArray) -> FloatArray:
    """`poisson_score` where observed > max(expected, 1e-12) (the same arithmetic, without
    the masking: for the elements where the score is not 0)."""
    b = np.maximum(expected, 1e-12)
    c = observed
    return c * np.log(c / b) + b - c


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
    return score_zones(c, zone_rates, profile_sums, min_observed, cat, center)


def score_zones(
    c: FloatArray,
    zone_rates: FloatArray,
    profile_sums: FloatArray,
    min_observed: float,
    cat: IntArray,
    center: IntArray,
) -> ScanResult:
    """Best zone of each (cat[i], center[i]) from its zone counts c (m, K, W)."""
    m, _, n_w = c.shape
    b = zone_rates[cat, :, center][:, :, None] * profile_sums[cat][:, None, :]
    # poisson_score(c, b) with the zones under min_observed set to 0, computed only where it
    # is not 0 (elementwise: the same values)
    hit = (c > np.maximum(b, 1e-12)) & (c >= min_observed)
    s = np.zeros_like(b)
    s[hit] = poisson_score(c[hit], b[hit])
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
