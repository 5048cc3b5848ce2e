"""Where the engine finds candidate incidents: the one owner of the correlation indexes.

`IncidentIndex` holds the incidents in state and every look-up built on them, and is the
only code that changes those look-ups:

- by report identity (`ReportKey`: source kind, source org, report_id; a re-delivered
  report is ignored, another source's report with the same id is not);
- by search-grid cell (`spatial.grid_cell`) and member category: an incident is indexed
  under the cells of its located members and of its successive centres (`grid`), for every
  category of its members (its voted category is always one of them);
- by commune (INSEE) of its members;
- incidents with no located member, by the communes of their members ("unlocated").

The engine tells it what happened to an incident (`found`, `joined`, `restored`, `evict`);
each keeps every look-up consistent with the incident's members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from agents.core.correlation.incident import POINT, Incident
from agents.core.correlation.spatial import GridCell, grid_box, grid_cell
from agents.core.record import ReportKey

# ((radius m, categories searched that far), ...): `Correlator._search_plan`
SearchPlan = tuple[tuple[float, tuple[str, ...]], ...]


class IncidentIndex:
    def __init__(self) -> None:
        self._incidents: dict[str, Incident] = {}
        self._reports: dict[ReportKey, str] = {}  # report identity -> incident_id
        self._grid: dict[str, list[GridCell]] = {}  # incident_id -> cells it is indexed under
        self._cells: dict[GridCell, dict[str, set[str]]] = {}  # cell -> category -> ids
        self._communes: dict[str, set[str]] = {}  # insee -> incident ids
        self._unlocated: dict[str, set[str]] = {}  # insee -> ids of incidents with no position
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

    def in_commune(self, insee: str) -> set[str]:
        """Ids of the incidents with a member in commune `insee` (a new set)."""
        return set(self._communes.get(insee, ()))

    def nearby(self, insee: str, lat: float, lon: float, plan: SearchPlan) -> set[str]:
        """Ids of the incidents indexed, under one of a plan's categories, in a grid cell
        within that category's radius of (lat, lon), plus those of commune `insee` that have
        no located member (a new set)."""
        found = set(self._unlocated.get(insee, ()))
        get = self._cells.get
        for radius, categories in plan:
            for cell in grid_box(lat, lon, radius):
                by_category = get(cell)
                if by_category is not None:
                    for category in categories:
                        ids = by_category.get(category)
                        if ids:
                            found.update(ids)
        return found

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
        self._incidents[iid] = incident
        for m in incident.members:
            self._reports[m.key] = iid
            self._communes.setdefault(m.insee, set()).add(iid)
            if incident.precision != POINT:
                self._unlocated.setdefault(m.insee, set()).add(iid)
        grid = self._grid[iid] = list(dict.fromkeys(
            [grid_cell(incident.lat, incident.lon)]
            + [grid_cell(m.lat, m.lon) for m in incident.points]
        ))
        categories = incident.categories()
        for cell in grid:
            by_category = self._cells.setdefault(cell, {})
            for category in categories:
                by_category.setdefault(category, set()).add(iid)

    def joined(self, incident: Incident) -> None:
        """`incident`'s last member was just added (`Incident.add`): index it under the cell
        of its new centre and of that member's position, under that member's category if new
        to it, under its commune, and out of "unlocated" once it has a position."""
        iid = incident.incident_id
        member = incident.members[-1]
        self._reports[member.key] = iid
        grid = self._grid[iid]
        new = [grid_cell(incident.lat, incident.lon)]
        if member.precision == POINT:
            new.append(grid_cell(member.lat, member.lon))
        fresh = [c for c in dict.fromkeys(new) if c not in grid]
        grid.extend(fresh)
        cells = self._cells
        # new cells go under every category of the incident, a category new to the
        # incident under all its cells
        if fresh:
            categories = incident.categories()
            for cell in fresh:
                by_category = cells.setdefault(cell, {})
                for category in categories:
                    by_category.setdefault(category, set()).add(iid)
        category = member.category
        if sum(1 for m in incident.members if m.category == category) == 1:
            for cell in grid:
                cells.setdefault(cell, {}).setdefault(category, set()).add(iid)
        self._communes.setdefault(member.insee, set()).add(iid)
        if incident.precision == POINT:
            for m in incident.members:
                ids = self._unlocated.get(m.insee)
                if ids is not None:
                    ids.discard(iid)
        else:
            self._unlocated.setdefault(member.insee, set()).add(iid)

    def evict(self, incident_id: str) -> Incident:
        """Remove an incident from every look-up; returns it."""
        incident = self._incidents.pop(incident_id)
        grid = self._grid.pop(incident_id)
        for m in incident.members:
            self._reports.pop(m.key, None)
            _discard(self._communes, m.insee, incident_id)
            _discard(self._unlocated, m.insee, incident_id)
        categories = incident.categories()
        for cell in grid:
            by_category = self._cells.get(cell)
            if by_category is None:
                continue
            for category in categories:
                _discard(by_category, category, incident_id)
            if not by_category:
                del self._cells[cell]
        return incident

    # ---- consistency (tests) ----
    def entries(self) -> dict[str, set[tuple[object, ...]]]:
        """Every (key, ..., incident id) entry of each look-up: for tests checking the
        look-ups against the incidents."""
        return {
            "reports": {(key, iid) for key, iid in self._reports.items()},
            "cells": {
                (cell, category, iid)
                for cell, by_category in self._cells.items()
                for category, ids in by_category.items()
                for iid in ids
            },
            "communes": {(k, iid) for k, ids in self._communes.items() for iid in ids},
            "unlocated": {(k, iid) for k, ids in self._unlocated.items() for iid in ids},
        }


def _discard(index: dict[str, set[str]], key: str, incident_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(incident_id)
        if not ids:
            del index[key]
