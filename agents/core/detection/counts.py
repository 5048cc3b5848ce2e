"""Incident counts per (H3 r8 cell, category, hour bucket): the detector's only input.

Hours are integer buckets `floor(epoch_seconds / 3600)` (UTC, timezone-free). Detection counts
*incidents*, not reports; `IncidentCounter` turns a stream of incident versions into count
deltas so that each incident counts once, in the cell/category of its latest version, and in
the hour it was *first seen*: the stream clock of the correlation when its founding report
came in, i.e. the `updated_at` of its version 1 (see `first_seen_of`). The live detector
counts the same thing from ClickHouse (`agents.ports.sql.incident_hours.LIVE_COUNTS`).
Counting at first sight puts every new incident in the current window, so a build-up shows
within the hour even when reports come in late (burglaries found in the evening, police
reports hours later).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import h3

H3_DETECTION_RES = 8

CountRow = tuple[str, str, int, int]
"""(h3_r8 cell, category, hour bucket, count)."""

CellTotal = tuple[str, str, int]
"""(h3_r8 cell, category, count over a window)."""

HourTotal = tuple[str, int, int]
"""(category, hour bucket, count over every cell)."""

_NUMBER = (int, float)  # isinstance with a tuple: faster than with `int | float`


def hour_of(ts: float) -> int:
    """Hour bucket of a UTC epoch timestamp."""
    return int(ts // 3600)


class CountStore(Protocol):
    """Hourly incident counts. The in-memory version serves backtests and tests; the live one
    reads ClickHouse (`agents.ports.sql.incident_hours.LIVE_COUNTS`)."""

    def add(self, cell: str, category: str, hour: int, n: int = 1) -> None:
        """Add `n` (may be negative, to move a re-versioned incident) to one bucket."""

    def window_counts(self, start_hour: int, end_hour: int) -> list[CountRow]:
        """Non-zero buckets with `start_hour <= hour < end_hour` (also used for history)."""
        ...

    def span(self) -> tuple[int, int] | None:
        """(first, last) hour holding data, or None when empty."""
        ...

    def revision(self) -> int:
        """A number that changes whenever counts change. A store that cannot tell returns a
        new value on every call (the detector then rescans on every run)."""
        ...


class TotalsCountStore(CountStore, Protocol):
    """A store that can also sum a window for the baseline's fit (`HistoryStats`): the
    detector then reads these totals, a few rows per cell and per hour, instead of every
    (cell, category, hour) bucket of weeks of history (the rows are read only for a
    calibration)."""

    def window_totals(
        self, start_hour: int, end_hour: int
    ) -> tuple[list[CellTotal], list[HourTotal]]:
        """The counts of `window_counts(start_hour, end_hour)` summed over the hours per
        (cell, category), and over the cells per (category, hour)."""
        ...


class DeltaCountStore(CountStore, Protocol):
    """A store that can also list its changes (the detector then updates its windows
    incrementally instead of re-reading them on every run)."""

    def changes_since(self, revision: int) -> list[CountRow] | None:
        """The `add` calls made since `revision` (as rows), or None if no longer known."""
        ...


class InMemoryCountStore:
    """`CountStore` in a dict of hour → {(cell, category): n}."""

    def __init__(self, max_log: int = 1_000_000) -> None:
        self._by_hour: dict[int, dict[tuple[str, str], int]] = {}
        self._rows_of_hour: dict[int, list[CountRow]] = {}  # cache of the rows of an hour
        self._revision = 0
        self._log: list[CountRow] = []
        self._log_base = 0  # revision of self._log[0]
        self._max_log = max_log
        self._first: int | None = None
        self._last: int | None = None

    def add(self, cell: str, category: str, hour: int, n: int = 1) -> None:
        if n == 0:
            return
        bucket = self._by_hour.setdefault(hour, {})
        self._rows_of_hour.pop(hour, None)
        key = (cell, category)
        value = bucket.get(key, 0) + n
        if value:
            bucket[key] = value
        else:
            bucket.pop(key, None)
        self._revision += 1
        self._log.append((cell, category, hour, n))
        if len(self._log) > self._max_log:
            drop = len(self._log) // 2
            del self._log[:drop]
            self._log_base += drop
        if self._first is None or hour < self._first:
            self._first = hour
        if self._last is None or hour > self._last:
            self._last = hour

    def window_counts(self, start_hour: int, end_hour: int) -> list[CountRow]:
        rows: list[CountRow] = []
        if end_hour - start_hour > len(self._by_hour):
            hours: Iterable[int] = sorted(h for h in self._by_hour if start_hour <= h < end_hour)
        else:
            hours = range(start_hour, end_hour)
        for hour in hours:
            rows.extend(self._rows(hour))
        return rows

    def _rows(self, hour: int) -> list[CountRow]:
        cached = self._rows_of_hour.get(hour)
        if cached is None:
            bucket = self._by_hour.get(hour)
            if not bucket:
                return []
            cached = [(cell, cat, hour, n) for (cell, cat), n in bucket.items()]
            self._rows_of_hour[hour] = cached
        return cached

    def span(self) -> tuple[int, int] | None:
        if self._first is None or self._last is None:
            return None
        return self._first, self._last

    def revision(self) -> int:
        return self._revision

    def changes_since(self, revision: int) -> list[CountRow] | None:
        if revision < self._log_base or revision > self._revision:
            return None
        return self._log[revision - self._log_base :]


def incident_cell(incident: Mapping[str, object]) -> str:
    """The H3 r8 cell of an incident: its `h3_r8` field, else derived from lat/lon; "" for
    an incident known only by its commune (`precision` "commune": its position is the
    commune's representative point, not a place). Such incidents are not counted per cell:
    the commune-only incidents of a whole commune would pile up in its representative
    point's cell and make false hotspots there. They still
    count per commune and jurisdiction (`incident_hours`, the console)."""
    if incident.get("precision") == "commune":
        return ""
    cell = incident.get("h3_r8")
    if isinstance(cell, str) and cell:
        return cell
    lat, lon = incident.get("lat"), incident.get("lon")
    if isinstance(lat, _NUMBER) and isinstance(lon, _NUMBER):
        return str(h3.latlng_to_cell(float(lat), float(lon), H3_DETECTION_RES))
    return ""


def first_seen_of(incident: Mapping[str, object], seen_at: float | None = None) -> float | None:
    """When an incident was first seen, from the first version the caller gets of it: its
    `first_seen_at` (the founding report's reported_at, what the live detector counts by),
    else the `updated_at` of a version 1 (the correlation's stream clock at its founding
    report), else `seen_at` (the caller's stream clock), else None."""
    value = incident.get("first_seen_at")
    if isinstance(value, _NUMBER):
        return float(value)
    value = incident.get("updated_at")
    if isinstance(value, _NUMBER) and incident.get("version", 1) == 1:
        return float(value)
    return seen_at


@dataclass(slots=True)
class _Counted:
    version: int
    cell: str
    category: str
    hour: int
    at_seen: bool


class IncidentCounter:
    """Feeds a `CountStore` from incident versions, counting each incident once.

    A new incident counts in the hour it was first seen (`first_seen_at`) for good; without
    any first-seen time, in the hour of its first occurrence (then a newer version moving
    `first_occurred_at` moves the count). A newer version that moves the incident's cell or
    category moves its count; older or repeated versions are ignored. An incident known only
    by its commune is not counted (see `incident_cell`) until a version locates it.
    `on_cell(cell, insee)` is called for each counted incident (lets the detector learn the
    cell universe and cell → commune).
    """

    def __init__(self, store: CountStore, on_cell: _CellHook | None = None) -> None:
        self._store = store
        self._on_cell = on_cell
        self._seen: dict[str, _Counted] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def observe(self, incident: Mapping[str, object], seen_at: float | None = None) -> None:
        """Count a new incident or move a re-versioned one. `seen_at`: the stream clock, used
        for a new incident whose version tells no first-seen time (see `first_seen_of`)."""
        incident_id = str(incident["incident_id"])
        version_raw = incident.get("version", 1)
        version = int(version_raw) if isinstance(version_raw, _NUMBER) else 1
        first = incident.get("first_occurred_at")
        if not isinstance(first, _NUMBER):
            return
        cell = incident_cell(incident)  # "" when not located: not counted, as live
        category = str(incident["category"])
        counted = self._seen.get(incident_id)
        if counted is None:
            seen = first_seen_of(incident, seen_at)
            hour = hour_of(float(first) if seen is None else seen)
            counted = _Counted(version, "", category, hour, seen is not None)
            self._seen[incident_id] = counted
        elif version <= counted.version:
            return
        else:
            counted.version = version
            hour = counted.hour if counted.at_seen else hour_of(float(first))
        if (counted.cell, counted.category, counted.hour) == (cell, category, hour):
            return
        if counted.cell:
            self._store.add(counted.cell, counted.category, counted.hour, -1)
        counted.cell, counted.category, counted.hour = cell, category, hour
        if not cell:
            return
        self._store.add(cell, category, hour, 1)
        if self._on_cell is not None:
            insee = incident.get("insee")
            self._on_cell(cell, insee if isinstance(insee, str) else "")


class _CellHook(Protocol):
    def __call__(self, cell: str, insee: str, /) -> None: ...
