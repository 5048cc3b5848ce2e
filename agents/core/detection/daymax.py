"""`DayMaxScanner`: the greatest score the live scan schedule sees over one simulated day.

The calibration (`calibration.null_daily_max`) runs the detector's schedule over simulated
null days: every `period_s` the incidents that arrived are counted, then every zone is scanned
at the first run of an hour, else the zones around the new incidents. `WindowScanner` can do
that, but a simulated day is known in advance: its incidents are sorted by arrival time and
count one each. The window w at hour h then holds the incidents added so far whose hour is in
(h - w, h], a contiguous run of the sorted incidents, so adding incidents and moving the hour
forward are slices of per-incident index arrays computed once per day, a few array
operations per run instead of `ZoneWindows`' general bookkeeping.

The zone counts are integers, equal to `ZoneWindows`' whatever the order of the additions;
the zones that can score are kept run by run and scored at the end of the day with the
arithmetic of `WindowScanner._best` (the same products, the same `positive_score`): the
same daily maxima, bit for bit (`tests/detection/test_daymax.py` checks it against the
`WindowScanner` schedule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agents.core.detection.scan import FloatArray, IntArray, positive_score
from agents.core.detection.scanner import profile_sums_at
from agents.core.detection.zones import ring_sizes, window_targets


@dataclass(frozen=True, slots=True)
class _Incidents:
    """One day's incidents sorted by arrival time, with their flat indices."""

    time: FloatArray  # arrival (epoch seconds), sorted
    hour: IntArray  # hour bucket, sorted with `time`
    row: IntArray  # cell count row `category * n_rows + cell`
    zones: IntArray  # (n, L) flat index of window 0 of every zone holding the incident
    near: IntArray  # (n, ring size) rows of the zones centred around the incident
    starts: dict[int, list[int]] = field(default_factory=dict)  # `_window_starts` cache


class _Scans:
    """The scorable zone counts seen by the runs of a day, with each run's hour and time."""

    def __init__(self) -> None:
        self.rows: list[IntArray] = []
        self.elements: list[IntArray] = []  # k_idx * W + w_idx
        self.counts: list[FloatArray] = []
        self.hours: list[int] = []
        self.nows: list[float] = []

    def add(
        self, rows: IntArray, elements: IntArray, counts: FloatArray, hour: int, now: float
    ) -> None:
        self.rows.append(rows)
        self.elements.append(elements)
        self.counts.append(counts)
        self.hours.append(hour)
        self.nows.append(now)


class DayMaxScanner:
    """Zone window counts of one simulated day and the greatest score of its scan schedule.

    Same inputs as `WindowScanner`: `zone_rates` (n_cat, K, n_cells), `profile` (n_cat, 168),
    `ring` `CellIndex.rings(max(ks))`.
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
        n_cat, n_k, n_cells = zone_rates.shape
        n_w = len(windows)
        self.min_observed = min_observed
        self._n_rows = n_cells + 1  # row n_cells: padding, "no cell"
        self._wins = np.asarray(windows, dtype=np.int64)
        self._longest_j = int(np.argmax(self._wins))
        self._window_cols = np.arange(n_w, dtype=np.int64)
        self._around = ring[:, : ring_sizes(ks)[-1]]
        self._targets = window_targets(ring, ks, n_w)[:, ::n_w]  # window 0
        self._category_size = self._n_rows * n_k * n_w
        # flat (category, row, K, W) as `ZoneWindows.zones`, viewed (row, K * W) to scan
        self._zones = np.zeros(n_cat * self._category_size)
        self._zone_rows = self._zones.reshape(n_cat * self._n_rows, n_k * n_w)
        self._longest = np.zeros(n_cat * self._n_rows)
        rates = np.zeros((n_cat, self._n_rows, n_k))
        rates[:, :n_cells, :] = zone_rates.transpose(0, 2, 1)
        self._rates = rates.reshape(n_cat * self._n_rows, n_k)
        self._profile = profile
        self._windows = tuple(windows)
        self._sizes = ring_sizes(ks)
        self._place_base = ring.shape[0] + 1  # a cluster's place: category * this + centre
        self._scans = _Scans()

    def day_max(
        self,
        day_start: int,
        cat: IntArray,
        cell: IntArray,
        time: FloatArray,
        period_s: float,
    ) -> float:
        """The live schedule over the day starting at hour `day_start`, for incidents sorted
        by `time` (one each): the incidents before the day are counted first, then every
        `period_s` the new ones; every zone is scanned at each new hour, else the zones
        around the new incidents (if any). Returns the greatest score seen."""
        self._run_day(day_start, cat, cell, time, period_s)
        return max(0.0, self._max_score(self._scans))

    def _run_day(
        self, day_start: int, cat: IntArray, cell: IntArray, time: FloatArray, period_s: float
    ) -> None:
        """Run the day's schedule (see `day_max`), keeping the scorable zone counts."""
        self._zones[:] = 0.0
        self._longest[:] = 0.0
        inc = self._incidents(cat, cell, time)
        nows = _run_times(day_start, period_s)
        ends = np.searchsorted(inc.time, nows, side="right").tolist()
        pos = int(np.searchsorted(inc.time, day_start * 3600.0))
        self._add(inc, 0, pos, day_start)
        hour = day_start
        scans = _Scans()
        for now, end in zip(nows, ends, strict=True):
            new_hour = int(now // 3600)
            full = new_hour != hour
            if full:
                self._drop_leaving(inc, pos, hour, new_hour)
                hour = new_hour
            start, pos = pos, end
            # incidents that arrived by `now` belong to an hour <= `hour`: all count now
            self._add(inc, start, end, hour)
            if full:  # the cells holding incidents in the longest window (each counts one)
                rows = inc.row[self._window_starts(inc, hour)[self._longest_j] : end]
            elif end > start:
                rows = inc.near[start:end].ravel()
                rows = rows[self._longest[rows] > 0]
            else:
                continue
            self._keep_scorable(rows, hour, now, scans)
        self._scans = scans

    def day_clusters(
        self,
        day_start: int,
        cat: IntArray,
        cell: IntArray,
        time: FloatArray,
        period_s: float,
        floor: float,
    ) -> tuple[float, FloatArray, IntArray]:
        """`day_max`, the greatest score of every distinct cluster of the day scoring at
        least `floor`, in decreasing order, and each one's place (category * (rows of `ring`
        + 1) + its centre cell): what `day_max` sees, collapsed as the alert lifecycle collapses
        candidates (`alerts.AlertManager`). Each zone centre keeps its best zone of the day;
        taken by decreasing score, a centre whose best zone overlaps the best zone of an
        earlier cluster of its category joins it. The clusters scoring at least a threshold
        t are then the first ones of the list (a cluster's score is its first centre's), so
        their number is the count of alerts a threshold t opens that day, whatever t >=
        `floor`: one per hotspot, not one per overlapping zone. The places let
        `calibration.event_scores` tie clusters of one event across days."""
        self._run_day(day_start, cat, cell, time, period_s)
        scans = self._scans
        none = np.zeros(0), np.zeros(0, dtype=np.int64)
        if not scans.hours:
            return 0.0, *none
        row, e, score = self._scores(scans)
        best = max(0.0, float(score.max())) if score.shape[0] else 0.0
        keep = score >= floor
        row, e, score = row[keep], e[keep], score[keep]
        if not row.shape[0]:
            return best, *none
        order = np.lexsort((row, -score))
        row, e, score = row[order], e[order], score[order]
        _, first = np.unique(row, return_index=True)  # each centre's best zone of the day
        first.sort()
        heads: list[tuple[int, frozenset[int]]] = []
        out: list[float] = []
        places: list[int] = []
        n_w = self._wins.shape[0]
        for i in first.tolist():
            category, center = divmod(int(row[i]), self._n_rows)
            size = self._sizes[int(e[i]) // n_w]
            cells = frozenset(self._around[center, :size].tolist()) - {self._n_rows - 1}
            if not any(c == category and not cells.isdisjoint(h) for c, h in heads):
                heads.append((category, cells))
                out.append(float(score[i]))
                places.append(category * self._place_base + center)
        return best, np.asarray(out), np.asarray(places, dtype=np.int64)

    def _keep_scorable(self, rows: IntArray, hour: int, now: float, scans: _Scans) -> None:
        """Keep the zone counts of `rows` (may repeat) that can score (>= min_observed, the
        filters of `WindowScanner._best`), to score them at the end of the day."""
        zones, least = self._zone_rows, self.min_observed
        rows = rows[zones[rows, -1] >= least]
        counts = zones[rows]
        at, e = np.nonzero(counts >= least)
        if at.shape[0]:
            scans.add(rows[at], e, counts[at, e], hour, now)

    def _max_score(self, scans: _Scans) -> float:
        """Greatest score of the kept zone counts (`WindowScanner._best`'s
        arithmetic, each with its run's profile sums), 0 when none scores."""
        if not scans.hours:
            return 0.0
        _, _, score = self._scores(scans)
        return float(score.max()) if score.shape[0] else 0.0

    def _scores(self, scans: _Scans) -> tuple[IntArray, IntArray, FloatArray]:
        """(row, element, score) of the kept zone counts that score (> 0)."""
        ps = profile_sums_at(self._profile, self._windows, scans.hours, scans.nows)
        row = np.concatenate(scans.rows)
        e = np.concatenate(scans.elements)
        c = np.concatenate(scans.counts)
        run = np.repeat(np.arange(len(scans.hours)), [r.shape[0] for r in scans.rows])
        k_idx, w_idx = np.divmod(e, self._wins.shape[0])
        b = self._rates[row, k_idx] * ps[run, row // self._n_rows, w_idx]
        hit = c > np.maximum(b, 1e-12)
        return row[hit], e[hit], positive_score(c[hit], b[hit])

    def _incidents(self, cat: IntArray, cell: IntArray, time: FloatArray) -> _Incidents:
        return _Incidents(
            time=time,
            hour=(time // 3600).astype(np.int64),
            row=cat * self._n_rows + cell,
            zones=(cat * self._category_size)[:, None] + self._targets[cell],
            near=(cat * self._n_rows)[:, None] + self._around[cell],
        )

    def _window_starts(self, inc: _Incidents, hour: int) -> list[int]:
        """Per window: the first incident inside it at `hour` (hour > hour - w)."""
        starts = inc.starts.get(hour)
        if starts is None:
            starts = inc.starts[hour] = np.searchsorted(inc.hour, hour - self._wins + 1).tolist()
        return starts

    def _add(self, inc: _Incidents, start: int, end: int, hour: int) -> None:
        """Count incidents [start, end) (hours <= `hour`) in the windows holding them."""
        if end > start:
            firsts = self._window_starts(inc, hour)
            self._scatter(inc, [(max(start, f), end) for f in firsts], 1.0)

    def _drop_leaving(self, inc: _Incidents, added: int, old: int, new: int) -> None:
        """Move the hour from `old` to `new`: remove the counted incidents (those before
        `added`) that leave a window."""
        was, now = self._window_starts(inc, old), self._window_starts(inc, new)
        self._scatter(inc, [(a, min(b, added)) for a, b in zip(was, now, strict=True)], -1.0)

    def _scatter(self, inc: _Incidents, spans: list[tuple[int, int]], value: float) -> None:
        """Add `value` to window j of every zone holding incidents spans[j] = [lo, hi), and
        to the cell counts of the longest window."""
        lo, hi = spans[0]
        if all(span == spans[0] for span in spans):  # the same incidents in every window
            if hi <= lo:
                return
            index = (inc.zones[lo:hi, :, None] + self._window_cols).ravel()
        else:
            parts = [inc.zones[lo:hi] + j for j, (lo, hi) in enumerate(spans) if hi > lo]
            if not parts:
                return
            index = np.concatenate(parts).ravel()
        np.add.at(self._zones, index, value)
        lo, hi = spans[self._longest_j]
        if hi > lo:
            np.add.at(self._longest, inc.row[lo:hi], value)


def _run_times(day_start: int, period_s: float) -> list[float]:
    """The run times of the day: every `period_s` after its start while before its end (the
    same float additions as a live clock)."""
    out: list[float] = []
    end_s = (day_start + 24) * 3600.0
    now = day_start * 3600.0
    while now < end_s:
        now += period_s
        out.append(now)
    return out
