"""Where the engine finds candidate incidents: the one owner of the correlation indexes.

`IncidentIndex` holds the incidents in state and every look-up built on them, and is the
only code that changes those look-ups:

- by report identity (`ReportKey`: source kind, source org, report_id; a re-delivered
  report is ignored, another source's report with the same id is not);
- by search-grid cell (`spatial.grid_cell`), member category and time bucket: an incident is
  indexed under the cells of its located members and of its successive centres (`grid`), for
  every category of its members (its voted category is always one of them), in the bucket
  (`time_bucket`) of its latest `occurred_at`;
- by commune (INSEE) of its members, member category and time bucket likewise;
- incidents with no located member, by the communes of their members, member category and
  time bucket likewise ("unlocated").

The engine tells it what happened to an incident (`found`, `joined`, `restored`, `evict`);
each keeps every look-up consistent with the incident's members.

The time buckets keep a look-up's work bounded by the incidents a report can reach: state
holds closed incidents for days after their last report (`allowed_lateness_s`, for late
reports), and a look-up `since` a time skips every bucket that ended before it (an incident
changes bucket only when a report later than its latest one joins it, at most once a
bucket's length). The categories keep it bounded by the incidents a report may join: a
look-up reads only the categories it is given (a commune holds every category's incidents;
where reports are dense, most of them are of categories the report cannot join). The index
also keeps each located incident's extent (the box of its located members), so the engine
can rule out a far incident without a distance per member.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TypeVar

from agents.core.correlation.incident import POINT, Incident, Member
from agents.core.correlation.spatial import GridCell, grid_cell, grid_disc
from agents.core.record import ReportKey

_K = TypeVar("_K")
# ((radius m, categories searched that far), ...): `Correlator._search_plan`
SearchPlan = tuple[tuple[float, tuple[str, ...]], ...]
# key (grid cell, INSEE) -> member category -> time bucket -> incidents (held, not their
# ids: a look-up hands the engine the incidents themselves, without a dict look-up per
# candidate, which dominated the search where state is dense)
_Lookup = dict[_K, dict[str, dict[int, set[Incident]]]]
# (communes, categories, no located member) of an incident's members: `_commune_keys`
_CommuneKeys = tuple[set[str], set[str], bool]
# (lat min, lat max, lon min, lon max) of an incident's located members
Extent = tuple[float, float, float, float]
# Length of a time bucket (s): about a time window, so a look-up of a recent report reads
# one or two buckets of a cell and skips the days of closed incidents kept for late ones.
BUCKET_S = 6.0 * 3600.0
_ALL_TIME = -(1 << 62)  # a bucket before any other
_LAST_BUCKET = 1 << 62  # ... and after any other


def time_bucket(t: float) -> int:
    """The time bucket of an (event) time: `BUCKET_S`-long, from the epoch. A time that is
    not finite (a hand-edited state) gets the first bucket, or the last one for +inf: no
    time window reaches NaN or -inf, every look-up reads the last bucket."""
    if math.isfinite(t):
        return math.floor(t / BUCKET_S)
    return _LAST_BUCKET if t > 0.0 else _ALL_TIME


class IncidentIndex:
    def __init__(self) -> None:
        self._incidents: dict[str, Incident] = {}
        self._reports: dict[ReportKey, str] = {}  # report identity -> incident_id
        self._grid: dict[str, list[GridCell]] = {}  # incident_id -> cells it is indexed under
        self._cells: _Lookup[GridCell] = {}
        self._communes: _Lookup[str] = {}
        self._unlocated: _Lookup[str] = {}  # incidents with no located member
        self._buckets: dict[str, int] = {}  # incident_id -> its time bucket
        self._extents: dict[str, Extent] = {}  # incident_id -> extent (located incidents)
        self._searches = 0  # searches so far (`nearby`, `in_commune`): the latest's number
        # the greatest time bucket an entry was ever added under: a look-up `since` a time
        # reads at most the buckets from its own to this one (`_gather`)
        self._last = _ALL_TIME
        # incident_id -> incident, read-only (a view: reading it costs no method call)
        self.incidents: Mapping[str, Incident] = MappingProxyType(self._incidents)

    # ---- reading ----
    def __len__(self) -> int:
        return len(self._incidents)

    def __contains__(self, incident_id: object) -> bool:
        return incident_id in self._incidents

    def has_report(self, key: ReportKey) -> bool:
        return key in self._reports

    def grid(self, incident_id: str) -> Sequence[GridCell]:
        """The search-grid cells an incident is indexed under (read-only: the index's own)."""
        return self._grid[incident_id]

    def extent(self, incident_id: str) -> Extent | None:
        """The box of a located incident's located members (None: no located member)."""
        return self._extents.get(incident_id)

    def in_commune(self, insee: str, since: float, categories: Iterable[str]) -> list[Incident]:
        """The incidents with a member in commune `insee` (a new list, each incident once, in
        no particular order: a search, marked as `nearby`'s), with a member of one of
        `categories`: at least those whose latest `occurred_at` is not before `since` (and
        maybe a few more)."""
        found: list[Incident] = []
        by_category = self._communes.get(insee)
        if by_category is not None:
            lo = _first_bucket(since)
            _gather(by_category, categories, lo, self._last, self._search(), found)
        return found

    def nearby(
        self, insee: str, lat: float, lon: float, plan: SearchPlan, since: float = -math.inf
    ) -> list[Incident]:
        """The incidents indexed, under one of a plan's categories, in a grid cell
        within that category's radius of (lat, lon), plus those of commune `insee` that have
        no located member and a member of one of the plan's categories (a new list, each
        incident once, in no particular order). With `since`, at least those whose latest
        `occurred_at` is not before it (and maybe a few more): the time buckets before it
        are not read.

        An incident is under several entries (cells, categories) a search reads: each
        search has a number, and an incident found is marked with it
        (`Incident.search_mark`) and taken only if not marked yet. A set of the incidents
        found did the same with a hash and an insert per entry read: a tenth of the
        correlator's time where reports are dense (perf); the mark reads the incident, which
        the engine reads next anyway."""
        lo, hi = _first_bucket(since), self._last
        mark = self._search()
        found: list[Incident] = []
        unlocated = self._unlocated.get(insee)
        get = self._cells.get
        for radius, categories in plan:
            if unlocated is not None:
                _gather(unlocated, categories, lo, hi, mark, found)
            for cell in grid_disc(lat, lon, radius):
                by_category = get(cell)
                if by_category is not None:
                    _gather(by_category, categories, lo, hi, mark, found)
        return found

    def _search(self) -> int:
        """The number of a new search (`Incident.search_mark`)."""
        self._searches += 1
        return self._searches

    # ---- changes ----
    def found(self, incident: Incident) -> None:
        """A new incident of one report."""
        self.restored(incident)

    def restored(self, incident: Incident) -> None:
        """An incident entering the index whole (new, or rebuilt from its exported state):
        indexed under its centre's cell and its located members' cells."""
        iid = incident.incident_id
        if iid in self._incidents:
            raise ValueError(f"incident {iid} is already in the index")
        bucket = self._bucket_of(incident)
        self._incidents[iid] = incident
        self._buckets[iid] = bucket
        for m in incident.members:
            self._reports[m.key] = iid
        categories = incident.categories()
        self._add_communes(incident, _commune_keys(incident.members), bucket)
        points = incident.points
        if points:
            lats, lons = [m.lat for m in points], [m.lon for m in points]
            self._extents[iid] = (min(lats), max(lats), min(lons), max(lons))
        grid = self._grid[iid] = list(
            dict.fromkeys(
                [grid_cell(incident.lat, incident.lon)] + [grid_cell(m.lat, m.lon) for m in points]
            )
        )
        _add(self._cells, grid, categories, bucket, incident)

    def joined(self, incident: Incident) -> None:
        """`incident`'s last member was just added (`Incident.add`): index it under the cell
        of its new centre and of that member's position, under that member's category if new
        to it, under its commune, and out of "unlocated" once it has a position; all of it
        in the time bucket of its latest `occurred_at`, where it moves if that changed."""
        iid = incident.incident_id
        member = incident.members[-1]
        self._reports[member.key] = iid
        grid = self._grid[iid]
        new = [grid_cell(incident.lat, incident.lon)]
        if member.precision == POINT:
            new.append(grid_cell(member.lat, member.lon))
            box = self._extents.get(iid)
            lat, lon = member.lat, member.lon
            self._extents[iid] = (
                (lat, lat, lon, lon)
                if box is None
                else (min(box[0], lat), max(box[1], lat), min(box[2], lon), max(box[3], lon))
            )
        fresh = [c for c in dict.fromkeys(new) if c not in grid]
        categories = incident.categories()
        bucket, was = self._bucket_of(incident), self._buckets[iid]
        if bucket != was:  # a later report: every entry moves to the new bucket
            _drop(self._cells, grid, categories, was, incident)
            grid.extend(fresh)
            self._buckets[iid] = bucket
            _add(self._cells, grid, categories, bucket, incident)
        else:
            grid.extend(fresh)
            # new cells go under every category of the incident, a category new to the
            # incident under all its cells
            _add(self._cells, fresh, categories, bucket, incident)
            category = member.category
            if sum(1 for m in incident.members if m.category == category) == 1:
                _add(self._cells, grid, (category,), bucket, incident)
        # the commune entries of the incident without its new member, and with it
        was_keys, keys = _commune_keys(incident.members[:-1]), _commune_keys(incident.members)
        if bucket != was or keys != was_keys:
            self._drop_communes(incident, was_keys, was)
            self._add_communes(incident, keys, bucket)

    def _bucket_of(self, incident: Incident) -> int:
        """The time bucket `incident` goes under (`time_bucket` of its latest
        `occurred_at`), kept in `_last` if it is the greatest yet: every bucket an entry is
        added under comes from here."""
        bucket = time_bucket(incident.last_occurred_at)
        if bucket > self._last:
            self._last = bucket
        return bucket

    def evict(self, incident_id: str) -> Incident:
        """Remove an incident from every look-up; returns it."""
        incident = self._incidents.pop(incident_id)
        grid = self._grid.pop(incident_id)
        bucket = self._buckets.pop(incident_id)
        self._extents.pop(incident_id, None)
        for m in incident.members:
            self._reports.pop(m.key, None)
        self._drop_communes(incident, _commune_keys(incident.members), bucket)
        _drop(self._cells, grid, incident.categories(), bucket, incident)
        return incident

    def _add_communes(self, incident: Incident, keys: _CommuneKeys, bucket: int) -> None:
        """Index an incident under its members' communes and categories (`_commune_keys`),
        and as unlocated too while it has no located member, in `bucket`."""
        insees, categories, unlocated = keys
        _add(self._communes, insees, categories, bucket, incident)
        if unlocated:
            _add(self._unlocated, insees, categories, bucket, incident)

    def _drop_communes(self, incident: Incident, keys: _CommuneKeys, bucket: int) -> None:
        insees, categories, unlocated = keys
        _drop(self._communes, insees, categories, bucket, incident)
        if unlocated:
            _drop(self._unlocated, insees, categories, bucket, incident)

    # ---- consistency (tests) ----
    def entries(self) -> dict[str, set[tuple[object, ...]]]:
        """Every (key, category, incident id) entry of each look-up ((report identity,
        incident id) for "reports"): for tests checking the look-ups against the incidents."""
        return {
            "reports": {(key, iid) for key, iid in self._reports.items()},
            "cells": _entries(self._cells),
            "communes": _entries(self._communes),
            "unlocated": _entries(self._unlocated),
        }

    def bucketing(self) -> dict[str, set[int]]:
        """incident id -> the time buckets its cell and commune entries are under (for
        tests: always exactly one, `time_bucket` of its latest `occurred_at`)."""
        out: dict[str, set[int]] = {}
        for lookup in (self._cells, self._communes, self._unlocated):
            for by_category in lookup.values():
                for by_bucket in by_category.values():
                    for bucket, held in by_bucket.items():
                        for incident in held:
                            out.setdefault(incident.incident_id, set()).add(bucket)
        return out


def _commune_keys(members: Sequence[Member]) -> _CommuneKeys:
    """What an incident of these members is indexed under by commune: their communes, their
    categories, and whether it has no located member (computed, not kept: a few bytes per
    incident in state add up)."""
    return (
        {m.insee for m in members},
        {m.category for m in members},
        all(m.precision != POINT for m in members),
    )


def _first_bucket(since: float) -> int:
    return time_bucket(since) if since > -math.inf else _ALL_TIME


def _gather(
    by_category: dict[str, dict[int, set[Incident]]],
    categories: Iterable[str],
    lo: int,
    hi: int,
    mark: int,
    found: list[Incident],
) -> None:
    """Append to `found` the incidents of a key's `categories` in buckets from `lo` on that
    search `mark` has not found yet, and mark them (`IncidentIndex.nearby`, `in_commune`).
    `hi`: no bucket is after it. A key's buckets reach back over the days closed incidents
    stay in state, while a look-up reads a few of them: where a key holds more buckets
    than lie between `lo` and `hi`, those are looked up one by one rather than every
    bucket of the key tested (the walk grew with the state's days, a fifth of the
    correlator's time where reports are dense)."""
    span = hi - lo + 1
    for category in categories:
        by_bucket = by_category.get(category)
        if by_bucket:
            if len(by_bucket) <= span:
                for bucket, held in by_bucket.items():
                    if bucket >= lo:
                        _take(held, mark, found)
            else:
                for bucket in range(lo, hi + 1):
                    held_or_none = by_bucket.get(bucket)
                    if held_or_none is not None:
                        _take(held_or_none, mark, found)


def _take(held: set[Incident], mark: int, found: list[Incident]) -> None:
    """Append the incidents of `held` search `mark` has not found yet, and mark them."""
    for incident in held:
        if incident.search_mark != mark:
            incident.search_mark = mark
            found.append(incident)


def _add(
    lookup: _Lookup[_K],
    keys: Iterable[_K],
    categories: Iterable[str],
    bucket: int,
    incident: Incident,
) -> None:
    for key in keys:
        by_category = lookup.setdefault(key, {})
        for category in categories:
            by_category.setdefault(category, {}).setdefault(bucket, set()).add(incident)


def _drop(
    lookup: _Lookup[_K],
    keys: Iterable[_K],
    categories: Iterable[str],
    bucket: int,
    incident: Incident,
) -> None:
    for key in keys:
        by_category = lookup.get(key)
        if by_category is None:
            continue
        for category in categories:
            by_bucket = by_category.get(category)
            if by_bucket is not None:
                held = by_bucket.get(bucket)
                if held is not None:
                    held.discard(incident)
                    if not held:
                        del by_bucket[bucket]
                if not by_bucket:
                    del by_category[category]
        if not by_category:
            del lookup[key]


def _entries(lookup: _Lookup[_K]) -> set[tuple[object, ...]]:
    return {
        (key, category, incident.incident_id)
        for key, by_category in lookup.items()
        for category, by_bucket in by_category.items()
        for held in by_bucket.values()
        for incident in held
    }
