"""Expected incident counts per cell, category and local hour of the week.

Model: lambda(cell, category, hour) = rate(cell, category) * profile(category, hour_of_week).

* `profile` is the département-level hour-of-week shape of the category (mean 1), computed in
  local time (Europe/Paris, DST-correct via zoneinfo) and shrunk toward the all-categories shape
  (and that one toward flat) with `profile_pseudo_counts` pseudo-counts per hour of week.
* `rate` comes from three-level gamma-Poisson empirical-Bayes shrinkage: département ->
  commune -> cell. At each level the posterior mean is (n + alpha) / (T + alpha / mu), where n
  is the unit's count over the T history hours, mu its prior mean rate (the level above spread
  by weight, e.g. population or cell count) and alpha the prior shape, estimated by the method
  of moments over all units of the level (alpha small = heterogeneous units = little
  shrinkage). Shrinkage is asymmetric (conservative for false alerts): for a cell busier
  than its prior the prior's weight, alpha / mu hours of exposure, is capped at
  `max_prior_hours` (48 h), because a gamma prior drags outliers toward the mean and a
  chronic spot (busy every day) must keep its own high rate so that it is baseline, not a
  hotspot; a quieter cell is shrunk fully toward its commune (at T = 0 the rate is mu).
  With tau = alpha / mu (capped at max_prior_hours above the prior), the rate is
  (n + mu tau) / (T + tau), and the cell rate's posterior is Gamma(n + mu tau, T + tau)
  (used by the calibration's null simulation).
* Cold start: the département rate is itself shrunk toward configured daily rates with a prior
  worth `cold_start_hours` of history, so with no history the expectation is the configured
  département rate spread by cell weight.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from agents.core.detection.cells import CellIndex
from agents.core.detection.counts import CellTotal, CountRow, HourTotal
from schemas.enums import CATEGORIES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
PARIS = ZoneInfo("Europe/Paris")
HOURS_PER_WEEK = 168

# Rough département-wide incidents per day for the cold start (Essonne order of magnitude).
DEFAULT_COLD_START_DAILY: dict[str, float] = {
    "cambriolage": 25.0,
    "infraction_routiere": 30.0,
    "campement_illicite": 2.0,
    "rodeo": 6.0,
    "degradation": 30.0,
    "trafic_stupefiants": 10.0,
    "violence": 25.0,
    "vol": 45.0,
    "nuisance": 30.0,
    "incendie": 6.0,
    "occupation_hall": 5.0,
    "autre": 15.0,
}


@lru_cache(maxsize=1 << 17)
def hour_of_week(hour: int) -> int:
    """Local (Europe/Paris) hour of the week, Monday 00h = 0, of an hour bucket."""
    local = datetime.fromtimestamp(hour * 3600, UTC).astimezone(PARIS)
    return local.weekday() * 24 + local.hour


@dataclass(frozen=True, slots=True)
class BaselineParams:
    cold_start_daily: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_COLD_START_DAILY)
    )
    cold_start_hours: float = 168.0
    profile_pseudo_counts: float = 5.0
    alpha_bounds: tuple[float, float] = (0.05, 100.0)
    max_prior_hours: float = 48.0


@dataclass(slots=True)
class HistoryStats:
    """Sufficient statistics of a history window [start_hour, end_hour): the count of every
    (cell, category) pair seen (pair i: cell `cells[pair_cell[i]]`, category
    `CATEGORIES[pair_category[i]]`, count `pair_count[i]`) and the counts and exposure per
    hour of the week."""

    start_hour: int
    end_hour: int
    cells: list[str] = field(default_factory=list)
    pair_cell: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pair_category: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pair_count: FloatArray = field(default_factory=lambda: np.zeros(0))
    how_counts: FloatArray = field(
        default_factory=lambda: np.zeros((len(CATEGORIES), HOURS_PER_WEEK))
    )
    how_exposure: FloatArray = field(default_factory=lambda: np.zeros(HOURS_PER_WEEK))
    held_out_hours: int = 0  # hours of the window left out (`from_rows(..., held_out=...)`)

    @property
    def hours(self) -> int:
        return max(0, self.end_hour - self.start_hour - self.held_out_hours)

    @property
    def cell_counts(self) -> dict[tuple[str, str], float]:
        """(cell, category) -> count over the window."""
        pairs = zip(
            self.pair_cell.tolist(),
            self.pair_category.tolist(),
            self.pair_count.tolist(),
            strict=True,
        )
        return {(self.cells[c], CATEGORIES[k]): n for c, k, n in pairs}

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[CountRow],
        start_hour: int,
        end_hour: int,
        held_out: Iterable[tuple[int, int]] = (),
    ) -> HistoryStats:
        """The statistics of `rows` over [start_hour, end_hour), less the hour spans
        [a, b) of `held_out` (their counts and exposure: a fit that has not seen them, to
        score them out of sample)."""
        stats = cls(start_hour, end_hour)
        out = np.zeros(max(0, end_hour - start_hour), dtype=bool)
        for a, b in held_out:
            out[max(a, start_hour) - start_hour : max(0, min(b, end_hour) - start_hour)] = True
        stats.held_out_hours = int(out.sum())
        how_of = _hours_of_week(start_hour, end_hour)
        stats.how_exposure = np.bincount(how_of[~out], minlength=HOURS_PER_WEEK).astype(np.float64)
        rows = rows if isinstance(rows, list) else list(rows)
        if stats.held_out_hours:
            rows = [
                r for r in rows if not (start_hour <= r[2] < end_hour and out[r[2] - start_hour])
            ]
        if not rows:
            return stats
        size = len(rows)
        ci = _ids(map(itemgetter(1), rows), _CATEGORY_POSITION, size)
        hour = np.fromiter(map(itemgetter(2), rows), dtype=np.int64, count=size)
        n = np.fromiter(map(itemgetter(3), rows), dtype=np.float64, count=size)
        ids = {c: i for i, c in enumerate(dict.fromkeys(map(itemgetter(0), rows)))}
        cell_id = _ids(map(itemgetter(0), rows), ids, size)
        keep = (ci >= 0) & (hour >= start_hour) & (hour < end_hour)
        ci, hour, n, cell_id = ci[keep], hour[keep], n[keep], cell_id[keep]
        stats._set_pairs(list(ids), cell_id, ci, n)
        stats._add_hours(how_of, ci, hour, n)
        return stats

    @classmethod
    def from_totals(
        cls,
        cells: Iterable[CellTotal],
        hours: Iterable[HourTotal],
        start_hour: int,
        end_hour: int,
    ) -> HistoryStats:
        """The statistics of [start_hour, end_hour) from a store's window totals
        (`counts.TotalsCountStore.window_totals`): the same as `from_rows` of the window's
        rows (sums of integers, whatever their order), read from a few rows per cell and per
        hour instead of one per (cell, category, hour)."""
        stats = cls(start_hour, end_hour)
        how_of = _hours_of_week(start_hour, end_hour)
        stats.how_exposure = np.bincount(how_of, minlength=HOURS_PER_WEEK).astype(np.float64)
        per_cell = cells if isinstance(cells, list) else list(cells)
        if per_cell:
            size = len(per_cell)
            ci = _ids(map(itemgetter(1), per_cell), _CATEGORY_POSITION, size)
            n = np.fromiter(map(itemgetter(2), per_cell), dtype=np.float64, count=size)
            ids = {c: i for i, c in enumerate(dict.fromkeys(map(itemgetter(0), per_cell)))}
            cell_id = _ids(map(itemgetter(0), per_cell), ids, size)
            keep = ci >= 0
            stats._set_pairs(list(ids), cell_id[keep], ci[keep], n[keep])
        per_hour = hours if isinstance(hours, list) else list(hours)
        if per_hour:
            size = len(per_hour)
            ci = _ids(map(itemgetter(0), per_hour), _CATEGORY_POSITION, size)
            hour = np.fromiter(map(itemgetter(1), per_hour), dtype=np.int64, count=size)
            n = np.fromiter(map(itemgetter(2), per_hour), dtype=np.float64, count=size)
            keep = (ci >= 0) & (hour >= start_hour) & (hour < end_hour)
            stats._add_hours(how_of, ci[keep], hour[keep], n[keep])
        return stats

    # sums of integers below: exact whatever the order
    def _set_pairs(self, cells: list[str], cell_id: IntArray, ci: IntArray, n: FloatArray) -> None:
        """The (cell, category) pairs' counts: entry i counts `n[i]` incidents of category
        `ci[i]` in cell `cells[cell_id[i]]`."""
        n_cat = len(CATEGORIES)
        pairs, inverse = np.unique(cell_id * n_cat + ci, return_inverse=True)
        self.cells = cells
        self.pair_cell, self.pair_category = np.divmod(pairs, n_cat)
        self.pair_count = np.bincount(inverse, n, pairs.shape[0]).astype(np.float64)

    def _add_hours(self, how_of: IntArray, ci: IntArray, hour: IntArray, n: FloatArray) -> None:
        """Add `n[i]` incidents of category `ci[i]` in hour `hour[i]` of the window (`how_of`:
        the hour of the week of each of its hours) to the hour-of-week counts."""
        n_cat = len(CATEGORIES)
        how = ci * HOURS_PER_WEEK + how_of[hour - self.start_hour]
        per_how = np.bincount(how, weights=n, minlength=n_cat * HOURS_PER_WEEK)
        self.how_counts += per_how.reshape(n_cat, HOURS_PER_WEEK)


def _hours_of_week(start_hour: int, end_hour: int) -> IntArray:
    """The hour of the week of each hour of [start_hour, end_hour)."""
    return np.asarray([hour_of_week(h) for h in range(start_hour, end_hour)], dtype=np.int64)


_CATEGORY_POSITION = {c: i for i, c in enumerate(CATEGORIES)}


def _ids(names: Iterable[str], ids: Mapping[str, int], size: int) -> IntArray:
    """The id of each of the `size` names, -1 for a name without one."""
    return np.fromiter(map(ids.get, names, repeat(-1)), dtype=np.int64, count=size)


@dataclass(slots=True)
class Baseline:
    """Fitted expectations; `rate[c, i]` is the mean hourly rate of category c in cell i."""

    rate: FloatArray  # (n_categories, n_cells), posterior mean = shape / inv_scale
    shape: FloatArray  # gamma posterior shape of each cell rate
    inv_scale: FloatArray  # gamma posterior rate (inverse scale) of each cell rate
    profile: FloatArray  # (n_categories, 168), mean 1 over a week
    history_hours: int
    alpha_commune: float
    alpha_cell: float

    @property
    def n_cells(self) -> int:
        return int(self.rate.shape[1])

    def zone_rates(self, index: CellIndex, ks: Iterable[int]) -> FloatArray:
        """(n_categories, len(ks), n_cells): summed rate of each zone (cell + k-ring)."""
        ks = list(ks)
        padded = np.concatenate([self.rate, np.zeros((self.rate.shape[0], 1))], axis=1)
        ring = index.rings(max(ks))
        last = {3 * k * (k + 1) for k in ks}  # the last ring column of each zone
        # running sums over the ring columns, nearest first (a cumsum's additions)
        total = padded[:, ring[:, 0]]
        upto = {0: total}
        for col in range(1, max(last) + 1):
            total = total + padded[:, ring[:, col]]
            if col in last:
                upto[col] = total
        return np.stack([upto[3 * k * (k + 1)] for k in ks], axis=1)

    def window_profile(self, hour: int, windows: Iterable[int]) -> FloatArray:
        """(n_categories, n_windows): summed profile over the hours [hour - w + 1, hour]."""
        ws = list(windows)
        hows = [hour_of_week(hour - a) for a in range(max(ws))]
        cum = np.cumsum(self.profile[:, hows], axis=1)
        return cum[:, [w - 1 for w in ws]]

    def expected(self, cell_pos: int, category: str, hour: int) -> float:
        ci = CATEGORIES.index(category)
        return float(self.rate[ci, cell_pos] * self.profile[ci, hour_of_week(hour)])


def _alpha(counts: FloatArray, expected: FloatArray, bounds: tuple[float, float]) -> float:
    """Method-of-moments gamma shape: Var[n] = E + E^2 / alpha."""
    denom = float((expected**2).sum())
    if denom <= 0:
        return bounds[1]
    inv = float(((counts - expected) ** 2 - expected).sum()) / denom
    if inv <= 1.0 / bounds[1]:
        return bounds[1]
    return float(min(bounds[1], max(bounds[0], 1.0 / inv)))


def _profile(stats: HistoryStats, m: float) -> FloatArray:
    exposure = stats.how_exposure
    total_hours = exposure.sum()
    if total_hours <= 0:
        return np.ones((len(CATEGORIES), HOURS_PER_WEEK))
    all_counts = stats.how_counts.sum(axis=0)
    all_mean = all_counts.sum() / total_hours
    pooled = (all_counts + m) / (all_mean * exposure + m) if all_mean > 0 else np.ones(168)
    pooled = pooled / pooled.mean()
    means = stats.how_counts.sum(axis=1) / total_hours  # (n_cat,)
    prof = (stats.how_counts + m * pooled) / (means[:, None] * exposure[None, :] + m)
    prof = prof / prof.mean(axis=1, keepdims=True)
    return np.asarray(prof, dtype=np.float64)


def _cell_counts(stats: HistoryStats, index: CellIndex) -> FloatArray:
    """(n_cat, n_cells) history counts of the index's cells."""
    out = np.zeros((len(CATEGORIES), len(index)))
    pos = index.positions(stats.cells)[stats.pair_cell]
    known = pos >= 0
    np.add.at(out, (stats.pair_category[known], pos[known]), stats.pair_count[known])
    return out


def fit_baseline(
    stats: HistoryStats, index: CellIndex, params: BaselineParams | None = None
) -> Baseline:
    p = params or BaselineParams()
    n_cat, n_cells = len(CATEGORIES), len(index)
    hours = float(stats.hours)
    cell_n = _cell_counts(stats, index)

    # Département level, shrunk toward the cold-start rates.
    prior = np.array([p.cold_start_daily.get(c, 1.0) / 24.0 for c in CATEGORIES])
    tau = p.cold_start_hours
    dept = (cell_n.sum(axis=1) + prior * tau) / (hours + tau)

    # Commune level.
    weights = np.asarray(index.weight, dtype=np.float64) if n_cells else np.zeros(0)
    com_pos = {insee: i for i, insee in enumerate(sorted(set(index.insee)))}
    com_of = np.array([com_pos[i] for i in index.insee], dtype=np.int64)
    n_com = len(com_pos)
    com_w = np.bincount(com_of, weights=weights, minlength=n_com) if n_cells else np.zeros(0)
    total_w = float(com_w.sum()) or 1.0
    com_n = np.stack(
        [np.bincount(com_of, weights=cell_n[c], minlength=n_com) for c in range(n_cat)]
    ).astype(np.float64)
    mu_com = dept[:, None] * (com_w / total_w)[None, :]
    alpha_com = _alpha(com_n, mu_com * hours, p.alpha_bounds) if hours > 0 else p.alpha_bounds[1]
    tau_com = np.minimum(alpha_com / np.maximum(mu_com, 1e-12), p.max_prior_hours)
    rate_com = (com_n + mu_com * tau_com) / (hours + tau_com)

    # Cell level.
    share = weights / np.maximum(com_w[com_of], 1e-12)
    mu_cell = rate_com[:, com_of] * share[None, :]
    alpha_cell = _alpha(cell_n, mu_cell * hours, p.alpha_bounds) if hours > 0 else p.alpha_bounds[1]
    tau_full = alpha_cell / np.maximum(mu_cell, 1e-12)
    above = cell_n > mu_cell * hours  # busier than its prior: keep (most of) its own rate
    tau_cell = np.where(above, np.minimum(tau_full, p.max_prior_hours), tau_full)
    shape = cell_n + mu_cell * tau_cell
    inv_scale = hours + tau_cell
    rate = shape / inv_scale

    return Baseline(
        rate=np.asarray(rate, dtype=np.float64),
        shape=np.asarray(shape, dtype=np.float64),
        inv_scale=np.asarray(inv_scale, dtype=np.float64),
        profile=_profile(stats, p.profile_pseudo_counts),
        history_hours=stats.hours,
        alpha_commune=alpha_com,
        alpha_cell=alpha_cell,
    )
