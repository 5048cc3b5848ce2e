"""An assignment oracle for the robustness benchmark: how well the reports themselves can be
grouped by someone who knows every true incident.

The oracle knows what the pipeline has to infer: every true incident of the simulated world
(its category, its place or path, its time span, its commune) and the world's reporting
model (`offline.simulator.world.ReportingWorld`: position errors, the stated-accuracy
convention, the category confusion). It sends each report to the true incident most likely
to have produced it, under an approximation of the simulator's own model:

- time: a report's `occurred_at` falls within the incident's span (a witness's time, to the
  minute or five) with probability `IN_SPAN`; otherwise it is a guess around the start (a
  victim coming home, a police record), Gaussian with `GUESS_SD_S`;
- category: a citizen files the true category, or with the world's confusion rate one of
  the categories it is confused with (`agents.core.confusions.CONFUSED_WITH`), uniformly;
  a partner files the true category;
- place: a located report scatters around the incident's point (a moving incident's point
  at the report's time along its path) with a circular Gaussian; its per-axis sigma is
  its stated accuracy over the world's convention factor when stated, else the world's
  median error for its source kind, log-normally spread per report (integrated on
  `_SPREAD_NODES`); a commune-only report names the commune the incident began in.

Every incident is equally likely a priori to be the source of a report. The pair scores of
that assignment are a reference for the pipeline's, not a bound: the oracle knows far more
than any correlator can (where and when the incidents are, single-report ones included),
but its model is an approximation of the simulator's (it ignores, for instance, which
source kinds report which incidents, and how often).
"""

from __future__ import annotations

import bisect
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from agents.core.confusions import CONFUSED_WITH
from offline.simulator.world import (
    MEDIAN_FACTOR,
    RADIUS_FACTOR,
    REPORT_ERROR_SPREAD,
    ReportingWorld,
)

IN_SPAN = 0.75  # share of reports whose occurred_at falls within the incident's span
SPAN_MARGIN_S = 300.0  # a witness's time is rounded to the minute or to five minutes
GUESS_SD_S = 5400.0  # a guessed time (a victim's, a police record's) around the start
GUESS_REACH_S = 5.0 * GUESS_SD_S  # beyond this from the start, a guess counts for nothing
CELL_M = 2000.0  # candidate grid: incidents within the report's cell and its 8 neighbours
M_PER_DEG_LAT = 110540.0
M_PER_DEG_LON = 111320.0 * math.cos(math.radians(48.55))  # the Essonne's mid latitude
# Gauss-Hermite-like nodes and weights over the log-normal spread of a report's error scale
_SPREAD_NODES = ((-1.5, 0.13), (-0.75, 0.22), (0.0, 0.30), (0.75, 0.22), (1.5, 0.13))
CITIZEN = "citizen"


@dataclass(frozen=True, slots=True)
class TrueIncident:
    """One true incident of a simulated stream, as its `incident` truth line gives it."""

    incident_id: str
    category: str
    mobile: bool
    lat: float
    lon: float
    lat_end: float
    lon_end: float
    insee: str  # the commune it began in (a commune-only report names this one)
    start: float
    end: float

    @classmethod
    def from_truth(cls, truth: Mapping[str, object]) -> TrueIncident:
        def num(key: str) -> float:
            value = truth[key]
            assert isinstance(value, (int, float))
            return float(value)

        return cls(
            incident_id=str(truth["incident_id"]),
            category=str(truth["category"]),
            mobile=truth["kind"] == "mobile",
            lat=num("lat"),
            lon=num("lon"),
            lat_end=num("lat_end"),
            lon_end=num("lon_end"),
            insee=str(truth["insee"]),
            start=num("start"),
            end=num("end"),
        )

    def point_at(self, t: float) -> tuple[float, float]:
        """Where the incident is at `t` (a moving one along its path, else its point)."""
        if not self.mobile or self.end <= self.start:
            return self.lat, self.lon
        f = min(max((t - self.start) / (self.end - self.start), 0.0), 1.0)
        return self.lat + f * (self.lat_end - self.lat), self.lon + f * (self.lon_end - self.lon)


@dataclass(frozen=True, slots=True)
class ErrorModel:
    """The parts of a drawn world the oracle's likelihood uses."""

    citizen_sigma_m: float  # median per-axis sigma of a citizen position
    partner_sigma_m: float  # same, a partner's
    citizen_factor: float | None  # stated accuracy / per-axis sigma (None: never stated)
    partner_factor: float
    confusion: float  # share of citizen reports filed under a confused category

    @classmethod
    def of_world(cls, world: ReportingWorld) -> ErrorModel:
        return cls(
            citizen_sigma_m=world.citizen_error_m / MEDIAN_FACTOR,
            partner_sigma_m=world.partner_error_m / MEDIAN_FACTOR,
            citizen_factor=world.stated_factor(),
            partner_factor=RADIUS_FACTOR[world.accuracy_radius],
            confusion=world.confusion,
        )


@dataclass(frozen=True, slots=True)
class OracleReport:
    """The fields of one report line the oracle reads."""

    report_id: str
    citizen: bool
    category: str
    occurred_at: float
    lat: float | None
    lon: float | None
    insee: str | None  # a commune-only report's commune
    accuracy_m: float | None

    @classmethod
    def of_line(cls, line: bytes) -> OracleReport:
        data = json.loads(line)
        location = data.get("location") or {}
        located = "lat" in location and "lon" in location
        accuracy = location.get("accuracy_m")
        return cls(
            report_id=str(data["report_id"]),
            citizen=data["source"]["kind"] == CITIZEN,
            category=str(data["category"]),
            occurred_at=datetime.fromisoformat(data["occurred_at"]).timestamp(),
            lat=float(location["lat"]) if located else None,
            lon=float(location["lon"]) if located else None,
            insee=None if located else str(location.get("insee")),
            accuracy_m=float(accuracy) if located and accuracy is not None else None,
        )


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return int(lat * M_PER_DEG_LAT // CELL_M), int(lon * M_PER_DEG_LON // CELL_M)


class _ByStart:
    """Incidents of one cell or commune by start time: those a report at `t` may come from
    (within an incident's span, or a guess within `GUESS_REACH_S` of its start)."""

    def __init__(self, incidents: list[TrueIncident]) -> None:
        self.incidents = sorted(incidents, key=lambda i: (i.start, i.incident_id))
        self.starts = [i.start for i in self.incidents]
        self.longest = max((i.end - i.start for i in self.incidents), default=0.0)

    def around(self, t: float) -> list[TrueIncident]:
        lo = t - max(self.longest + SPAN_MARGIN_S, GUESS_REACH_S)
        hi = t + max(SPAN_MARGIN_S, GUESS_REACH_S)
        a, b = bisect.bisect_left(self.starts, lo), bisect.bisect_right(self.starts, hi)
        return self.incidents[a:b]


class AssignmentOracle:
    """Sends each report to its likeliest true incident (see the module's docstring)."""

    def __init__(self, incidents: Iterable[TrueIncident], model: ErrorModel) -> None:
        self.model = model
        grid: dict[tuple[int, int], list[TrueIncident]] = defaultdict(list)
        by_commune: dict[str, list[TrueIncident]] = defaultdict(list)
        for inc in incidents:
            for cell in {_cell(inc.lat, inc.lon), _cell(inc.lat_end, inc.lon_end)}:
                grid[cell].append(inc)
            by_commune[inc.insee].append(inc)
        self._grid = {cell: _ByStart(incs) for cell, incs in grid.items()}
        self._by_commune = {insee: _ByStart(incs) for insee, incs in by_commune.items()}

    def _candidates(self, report: OracleReport) -> list[TrueIncident]:
        t = report.occurred_at
        if report.lat is None or report.lon is None:
            found = self._by_commune.get(report.insee or "")
            return found.around(t) if found is not None else []
        gy, gx = _cell(report.lat, report.lon)
        seen: dict[str, TrueIncident] = {}
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                cell = self._grid.get((gy + dy, gx + dx))
                if cell is not None:
                    for inc in cell.around(t):
                        seen[inc.incident_id] = inc
        return sorted(seen.values(), key=lambda i: i.incident_id)

    def time_likelihood(self, report: OracleReport, inc: TrueIncident) -> float:
        t = report.occurred_at
        span = inc.end - inc.start + 2.0 * SPAN_MARGIN_S
        inside = 1.0 / span if inc.start - SPAN_MARGIN_S <= t <= inc.end + SPAN_MARGIN_S else 0.0
        z = (t - inc.start) / GUESS_SD_S
        guess = (
            math.exp(-0.5 * z * z) / (GUESS_SD_S * math.sqrt(2.0 * math.pi))
            if abs(t - inc.start) <= GUESS_REACH_S
            else 0.0
        )
        return IN_SPAN * inside + (1.0 - IN_SPAN) * guess

    def category_likelihood(self, report: OracleReport, inc: TrueIncident) -> float:
        alternatives = CONFUSED_WITH.get(inc.category, frozenset())
        if not report.citizen or not alternatives:
            return 1.0 if report.category == inc.category else 0.0
        if report.category == inc.category:
            return 1.0 - self.model.confusion
        if report.category in alternatives:
            return self.model.confusion / len(alternatives)
        return 0.0

    def place_likelihood(self, report: OracleReport, inc: TrueIncident) -> float:
        """Density of the report's position given the incident (1 for a commune-only
        report: all its candidates share the commune it names)."""
        if report.lat is None or report.lon is None:
            return 1.0
        # a witness's occurred_at is floored to the minute, up to 3 minutes before seeing
        lat, lon = inc.point_at(report.occurred_at + 90.0)
        dy = (report.lat - lat) * M_PER_DEG_LAT
        dx = (report.lon - lon) * M_PER_DEG_LON
        d2 = dx * dx + dy * dy
        m = self.model
        factor = m.citizen_factor if report.citizen else m.partner_factor
        if report.accuracy_m is not None and factor is not None:
            s2 = max(report.accuracy_m / factor, 1.0) ** 2
            return math.exp(-0.5 * d2 / s2) / (2.0 * math.pi * s2)
        median = m.citizen_sigma_m if report.citizen else m.partner_sigma_m
        density = 0.0
        for node, weight in _SPREAD_NODES:
            s2 = max(median * math.exp(REPORT_ERROR_SPREAD * node), 1.0) ** 2
            density += weight * math.exp(-0.5 * d2 / s2) / (2.0 * math.pi * s2)
        return density

    def assign(self, report: OracleReport) -> str | None:
        """The id of the likeliest true incident, or None when none can have produced it."""
        best: str | None = None
        best_score = 0.0
        for inc in self._candidates(report):
            score = self.time_likelihood(report, inc)
            if score > 0.0:
                score *= self.category_likelihood(report, inc)
            if score > 0.0:
                score *= self.place_likelihood(report, inc)
            if score > best_score:
                best, best_score = inc.incident_id, score
        return best


def oracle_incidents(oracle: AssignmentOracle, lines: Mapping[str, bytes]) -> dict[str, str]:
    """report id -> the oracle's incident for each report line (a report no incident can
    have produced stands alone, under its own id)."""
    out: dict[str, str] = {}
    for rid, line in lines.items():
        found = oracle.assign(OracleReport.of_line(line))
        out[rid] = found if found is not None else f"alone:{rid}"
    return out
