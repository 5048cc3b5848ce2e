"""Incident counts per (H3 r8 cell, category, hour bucket): the detector's only input.

Hours are integer buckets `floor(epoch_seconds / 3600)` (UTC, timezone-free). Detection counts
*incidents*, not reports; `IncidentCounter` turns a stream of incident versions into count
deltas so that each incident counts once, in the cell/category of its latest version, and in
the hour it was first seen (the stream clock of its first version, i.e. its first report) when
the caller passes that clock, else in the hour of its first occurrence. Counting at first
sight puts every new incident in the current window, so a build-up shows within the hour even
when reports come in late (burglaries found in the evening, police reports hours later).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import h3

H3_DETECTION_RES = 8

CountRow = tuple[str, str, int, int]
"""(h3_r8 cell, category, hour bucket, count)."""


def hour_of(ts: float) -> int:
    """Hour bucket of a UTC epoch timestamp."""
    return int(ts // 3600)


class CountStore(Protocol):
    """Hourly incident counts. The in-memory version serves backtests and tests; the live one
    reads ClickHouse with `LIVE_COUNTS_SQL`."""

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
            bucket = self._by_hour.get(hour)
            if bucket:
                rows.extend((cell, cat, hour, n) for (cell, cat), n in bucket.items())
        return rows

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
    """The H3 r8 cell of an incident: its `h3_r8` field, else derived from lat/lon."""
    cell = incident.get("h3_r8")
    if isinstance(cell, str) and cell:
        return cell
    lat, lon = incident.get("lat"), incident.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return str(h3.latlng_to_cell(float(lat), float(lon), H3_DETECTION_RES))
    return ""


@dataclass(slots=True)
class _Counted:
    version: int
    cell: str
    category: str
    hour: int
    at_seen: bool


class IncidentCounter:
    """Feeds a `CountStore` from incident versions, counting each incident once.

    A newer version that moves the incident (cell, category or first occurrence hour) moves its
    count; older or repeated versions are ignored. `on_cell(cell, insee)` is called for each
    counted incident (lets the detector learn the cell universe and cell → commune).
    """

    def __init__(self, store: CountStore, on_cell: _CellHook | None = None) -> None:
        self._store = store
        self._on_cell = on_cell
        self._seen: dict[str, _Counted] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def observe(self, incident: Mapping[str, object], seen_at: float | None = None) -> None:
        """Count a new incident or move a re-versioned one. `seen_at`: the stream clock (the
        first report's `reported_at` for a version 1); given, a new incident counts in that
        hour for good, else in the hour of its `first_occurred_at`."""
        incident_id = str(incident["incident_id"])
        version_raw = incident.get("version", 1)
        version = int(version_raw) if isinstance(version_raw, int | float) else 1
        first = incident.get("first_occurred_at")
        if not isinstance(first, int | float):
            return
        cell = incident_cell(incident)
        if not cell:
            return
        category = str(incident["category"])
        previous = self._seen.get(incident_id)
        if previous is not None:
            if version <= previous.version:
                return
            hour = previous.hour if previous.at_seen else hour_of(float(first))
            previous.version = version
            if (previous.cell, previous.category, previous.hour) == (cell, category, hour):
                return
            self._store.add(previous.cell, previous.category, previous.hour, -1)
            previous.cell, previous.category, previous.hour = cell, category, hour
        else:
            hour = hour_of(float(first) if seen_at is None else seen_at)
            self._seen[incident_id] = _Counted(version, cell, category, hour, seen_at is not None)
        self._store.add(cell, category, hour, 1)
        if self._on_cell is not None:
            insee = incident.get("insee")
            self._on_cell(cell, insee if isinstance(insee, str) else "")


class _CellHook(Protocol):
    def __call__(self, cell: str, insee: str, /) -> None: ...


# Counts for a window, from the `incidents` table (ReplacingMergeTree(version) ORDER BY
# incident_id), each incident once with the values of its latest version. Runs on ClickHouse
# 18.16 and 26.x (no toStartOfInterval, no DateTime64). Parameters (clickhouse-driver style):
# `start`, `end`: UTC epoch seconds, start inclusive, end exclusive (hour-aligned). The IN
# subquery selects every incident having *some* version in the window; the latest version of an
# incident whose final first_occurred_at is in the window is itself in the window, so the outer
# filter on the argMax values is exact (no version double counted, none missed).
LIVE_COUNTS_SQL = """
SELECT h3_r8, category, intDiv(toUInt32(first_at), 3600) AS hour, count() AS n
FROM
(
    SELECT
        incident_id,
        argMax(category, version) AS category,
        argMax(h3_r8, version) AS h3_r8,
        argMax(first_occurred_at, version) AS first_at
    FROM incidents
    WHERE incident_id IN
    (
        SELECT incident_id FROM incidents
        WHERE first_occurred_at >= toDateTime(%(start)s)
          AND first_occurred_at < toDateTime(%(end)s)
    )
    GROUP BY incident_id
)
WHERE first_at >= toDateTime(%(start)s) AND first_at < toDateTime(%(end)s) AND h3_r8 != ''
GROUP BY h3_r8, category, hour
ORDER BY hour, h3_r8, category
"""
