"""One incident's state (`Incident`, its reports as `Member`s), its changelog form and its
contract v1 version.

An `Incident` holds what the engine decided (`incident_id`, `version`, `status`, `members`,
`first_occurred_at`, `last_occurred_at`, `last_seen` (greatest `reported_at` of the members:
the stream-clock time of the latest evidence, drives closing), `updated_at` (stream clock of
the last change), `first_seen_at` (the founding report's `reported_at`: when the incident was
first reported, fixed for good; what the detector counts by, live and in a backtest — a
property of the data, not of the order partitions are read in)) and the fields derived from
its members by `Incident.refresh`: `category`, `lat`, `lon`, `centre_acc` (m, accuracy of the
centre), `precision`, `insee`, `commune`, `jurisdiction`, `h3`, `h3_r7`, `h3_r8` (cells of
the centre), `confidence`, `points` (the members with a position).

Changelog boundary: `Incident.to_dict` writes the JSON dict the correlate agent's Faust
table has always held (same keys, same order, plain strings; `grid` is the search-grid
cells the engine indexes it under), and `Incident.from_dict` reads it back, also from states
written by older versions (without `first_seen_at`, with r9 `cells` instead of `grid`,
with the table's `_partition`): only the decided fields are read, the derived ones are
recomputed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

import h3
import orjson

from agents.core.correlation.confidence import confidence, source_weight
from agents.core.correlation.config import (
    DEFAULT_ACCURACY_M,
    DEFAULT_PARTNER_ACCURACY_M,
    MIN_ACCURACY_M,
)
from agents.core.record import ReportKey, ReportRecord
from schemas.enums import Category, IncidentStatus, Precision, SourceKind

# The JSON form of an incident state (Faust changelog, `Correlator.export_incident`).
StateDict = dict[str, Any]

OPEN, CLOSED = IncidentStatus.OPEN, IncidentStatus.CLOSED
POINT, COMMUNE = Precision.POINT, Precision.COMMUNE

# Columns of the ClickHouse `incidents` table, in order: a version dict has exactly these.
VERSION_KEYS = (
    "incident_id",
    "version",
    "status",
    "category",
    "categories",
    "report_ids",
    "report_count",
    "source_kinds",
    "first_occurred_at",
    "last_occurred_at",
    "lat",
    "lon",
    "insee",
    "commune",
    "jurisdiction",
    "h3",
    "h3_r7",
    "h3_r8",
    "precision",
    "confidence",
    "updated_at",
    "first_seen_at",
    "report_source_kinds",
    "report_source_orgs",
)

_E = TypeVar("_E", bound=StrEnum)


# (lat, lon) -> (INSEE code, commune name, jurisdiction id) of the commune holding the point,
# or None outside the served area: `Incident.refresh` places a centre with it
CommuneAt = Callable[[float, float], "tuple[str, str, str] | None"]


def _by_value(enum: type[_E]) -> dict[str, _E]:
    return {member.value: member for member in enum}


# value -> member: a dict look-up is ~20 times cheaper than calling the enum
_CATEGORIES = _by_value(Category)
_SOURCE_KINDS = _by_value(SourceKind)
_PRECISIONS = _by_value(Precision)
_STATUSES = _by_value(IncidentStatus)


def category_member(value: str) -> str:
    """The `Category` member of a category's value: the very object members, incidents and
    the index's look-ups hold, so a dict look-up or a comparison with it matches by
    identity, without comparing the strings. A category no member has (a configuration's
    own) is returned as it is."""
    return _CATEGORIES.get(value, value)


def _invalid(enum: type[StrEnum], value: object) -> NoReturn:
    raise ValueError(f"{value!r} is not a valid {enum.__name__}")


def _member_of(table: Mapping[str, _E], enum: type[_E], value: object) -> _E:
    """The enum member of `value`; an unknown value raises ValueError naming the enum."""
    found = table.get(value) if isinstance(value, str) else None
    return _invalid(enum, value) if found is None else found


def incident_id_for(record: ReportRecord) -> str:
    """Deterministic id from the founding report's identity (replays give the same ids; two
    reports with one id from two sources found two incidents). The identity is hashed in an
    unambiguous form (a JSON array): no two identities hash the same text, whatever
    characters a source puts in its org or ids."""
    digest = hashlib.blake2b(
        orjson.dumps([record.source_kind, record.source_org, record.report_id]),
        digest_size=10,
    ).hexdigest()
    return f"inc-{digest}"


def accuracy_of(record: ReportRecord) -> float:
    """Stated accuracy, else a default per source (citizens' phones are coarser)."""
    if record.accuracy_m is not None and record.accuracy_m > 0:
        return max(float(record.accuracy_m), MIN_ACCURACY_M)
    return DEFAULT_ACCURACY_M.get(record.source_kind, DEFAULT_PARTNER_ACCURACY_M)


@dataclass(slots=True, eq=False)
class Member:
    """What an incident keeps of one report (no personal data: only the contact hash).
    Never changed once made. `lat`/`lon`: the report's position, or its commune's
    representative point when `precision` is commune; `acc`: its accuracy (m, `accuracy_of`);
    `eff`: that accuracy in the contract's units once corrected by its source's learnt
    dispersion when it joined (`acc` * learnt scale / the contract's scale, see
    `estimate.StreamEstimates`): what weighs it in the centre (a source that understates its
    accuracy, or states none while scattering widely, pulls the centre less)."""

    report_id: str
    source_kind: SourceKind
    source_org: str
    contact_hash: str | None
    category: Category
    occurred_at: float
    reported_at: float
    lat: float
    lon: float
    acc: float
    precision: Precision
    insee: str
    commune: str
    jurisdiction: str
    eff: float = 0.0  # 0: the same as `acc` (set by `of` and `from_dict`)
    _dict: StateDict | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.eff <= 0.0:
            self.eff = self.acc

    @classmethod
    def of(cls, record: ReportRecord, lat: float, lon: float, scale_ratio: float = 1.0) -> Member:
        """The member of an enriched record at (`lat`, `lon`), its position (never None
        once enriched: a commune-only report sits at its commune's point); `scale_ratio`:
        its source's learnt dispersion scale over the contract's (`eff`)."""
        acc = accuracy_of(record)
        # inline look-ups (this runs once per report): a member is a non-empty string
        return cls(
            record.report_id,
            _SOURCE_KINDS.get(record.source_kind) or _invalid(SourceKind, record.source_kind),
            record.source_org,
            record.contact_hash,
            _CATEGORIES.get(record.category) or _invalid(Category, record.category),
            record.occurred_at,
            record.reported_at,
            lat,
            lon,
            acc,
            _PRECISIONS.get(record.precision) or _invalid(Precision, record.precision),
            record.insee or "",
            record.commune,
            record.jurisdiction,
            acc * scale_ratio,
        )

    @property
    def key(self) -> ReportKey:
        """The report's identity."""
        return ReportKey(self.source_kind._value_, self.source_org, self.report_id)

    def to_dict(self) -> StateDict:
        """The changelog form (plain strings), made once and shared by every later export of
        its incident (a member never changes, and an incident is exported after each batch
        that changed it): never change it."""
        if self._dict is not None:
            return self._dict
        self._dict = {
            "report_id": self.report_id,
            "source_kind": self.source_kind._value_,
            "source_org": self.source_org,
            "contact_hash": self.contact_hash,
            "category": self.category._value_,
            "occurred_at": self.occurred_at,
            "reported_at": self.reported_at,
            "lat": self.lat,
            "lon": self.lon,
            "acc": self.acc,
            "precision": self.precision._value_,
            "insee": self.insee,
            "commune": self.commune,
            "jurisdiction": self.jurisdiction,
        }
        if self.eff != self.acc:  # states written before `eff` existed read back alike
            self._dict["eff"] = self.eff
        return self._dict

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Member:
        contact = data["contact_hash"]
        return cls(
            str(data["report_id"]),
            _member_of(_SOURCE_KINDS, SourceKind, data["source_kind"]),
            str(data["source_org"]),
            None if contact is None else str(contact),
            _member_of(_CATEGORIES, Category, data["category"]),
            float(data["occurred_at"]),
            float(data["reported_at"]),
            float(data["lat"]),
            float(data["lon"]),
            float(data["acc"]),
            _member_of(_PRECISIONS, Precision, data["precision"]),
            str(data["insee"]),
            str(data["commune"]),
            str(data["jurisdiction"]),
            float(data.get("eff", 0.0)),
        )


@dataclass(slots=True, eq=False)
class Incident:
    """One incident's state (see the module docstring). The derived fields are set at
    construction and by `refresh`, which `add` calls."""

    incident_id: str
    version: int
    status: IncidentStatus
    members: list[Member]
    first_occurred_at: float
    last_occurred_at: float
    last_seen: float
    updated_at: float
    first_seen_at: float
    # ---- derived from the members (`refresh`) ----
    centre_acc: float = field(init=False)
    lat: float = field(init=False)
    lon: float = field(init=False)
    precision: Precision = field(init=False)
    insee: str = field(init=False)
    commune: str = field(init=False)
    jurisdiction: str = field(init=False)
    category: Category = field(init=False)
    h3: str = field(init=False)
    h3_r7: str = field(init=False)
    h3_r8: str = field(init=False)
    confidence: float = field(init=False)
    points: list[Member] = field(init=False, repr=False)
    # the index's: the number of the latest search that found it (`IncidentIndex.nearby`,
    # `in_commune`; not state)
    search_mark: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError(f"incident {self.incident_id} has no member")
        self.refresh()

    @classmethod
    def found(
        cls, record: ReportRecord, lat: float, lon: float, scale_ratio: float = 1.0
    ) -> Incident:
        """A new incident of one report at (`lat`, `lon`) (`scale_ratio`: `Member.of`)."""
        return cls(
            incident_id=incident_id_for(record),
            version=0,
            status=OPEN,
            members=[Member.of(record, lat, lon, scale_ratio)],
            first_occurred_at=record.occurred_at,
            last_occurred_at=record.occurred_at,
            last_seen=record.reported_at,
            updated_at=record.reported_at,
            first_seen_at=record.reported_at,
        )

    def add(
        self,
        record: ReportRecord,
        lat: float,
        lon: float,
        scale_ratio: float = 1.0,
        commune_at: CommuneAt | None = None,
    ) -> None:
        """Merge one report at (`lat`, `lon`) (`scale_ratio`: `Member.of`; `commune_at`:
        `refresh`); the status is the caller's."""
        self.members.append(Member.of(record, lat, lon, scale_ratio))
        self.first_occurred_at = min(self.first_occurred_at, record.occurred_at)
        self.last_occurred_at = max(self.last_occurred_at, record.occurred_at)
        self.last_seen = max(self.last_seen, record.reported_at)
        self.refresh(commune_at)

    def refresh(self, commune_at: CommuneAt | None = None) -> None:
        """Recompute the derived fields from the members.

        Centre: inverse-variance (1 / `Member.eff`^2: the accuracy corrected by the source's
        learnt dispersion) weighted mean of the point members; `centre_acc` is its accuracy
        in the same units; commune-only members never move it (an incident with only
        commune-only members sits at the commune's representative point, precision
        "commune"). Category: the vote of the members weighted by source
        (`confidence.source_weight`), ties to the earliest.
        Commune: that of the centre, with `commune_at` (the geocoder's), when two point
        members or more make it (the weighted mean of several positions is nearer the true
        place than any one of them, so near a border it names the right commune more often
        than the nearest member's); otherwise, or outside the served area, the commune of
        the point member closest to the centre. Unless more commune-only members name one
        other commune than name it: a commune-only report states the commune itself, a
        position only near which commune it lies (each such report counts one vote, the
        position one; ties go to the position).
        """
        members = self.members
        points = self.points = [m for m in members if m.precision == POINT]
        if points:
            wsum, lat, lon = 0.0, 0.0, 0.0
            for m in points:
                w = 1.0 / (m.eff * m.eff)
                wsum += w
                lat += w * m.lat
                lon += w * m.lon
            lat, lon = lat / wsum, lon / wsum
            self.centre_acc = (1.0 / wsum) ** 0.5
        else:
            lat, lon = members[0].lat, members[0].lon
            self.centre_acc = 0.0
        self.lat, self.lon = lat, lon
        self.precision = POINT if points else COMMUNE
        self.place(commune_at)
        votes: dict[Category, float] = {}
        for m in members:
            c = m.category
            votes[c] = votes.get(c, 0.0) + source_weight(m.source_kind, bool(m.contact_hash))
        order = {m.category: i for i, m in reversed(list(enumerate(members)))}
        self.category = max(votes, key=lambda c: (votes[c], -order[c]))
        r9 = h3.latlng_to_cell(lat, lon, 9)
        self.h3, self.h3_r7, self.h3_r8 = r9, h3.cell_to_parent(r9, 7), h3.cell_to_parent(r9, 8)
        self.confidence = confidence(members)

    def place(self, commune_at: CommuneAt | None = None) -> None:
        """Set `insee`, `commune` and `jurisdiction` from the members and the centre
        (`refresh`'s commune rule; `refresh` must have set the centre and `points`). On its
        own: a restored incident placed with the geocoder, the rest of `refresh` unchanged."""
        members, points, lat, lon = self.members, self.points, self.lat, self.lon
        place = commune_at(lat, lon) if commune_at is not None and len(points) > 1 else None
        if place is None:  # one position, no geocoder, or a centre outside the served area
            located = points or members
            nearest = min(located, key=lambda m: (m.lat - lat) ** 2 + (m.lon - lon) ** 2)
            place = (nearest.insee, nearest.commune, nearest.jurisdiction)
        if points and len(points) < len(members):
            stated: dict[str, int] = {}
            for m in members:
                if m.precision != POINT:
                    stated[m.insee] = stated.get(m.insee, 0) + 1
            top = max(stated, key=lambda c: (stated[c], c))
            if top != place[0] and stated[top] > stated.get(place[0], 0) + 1:
                voted = next(m for m in members if m.insee == top and m.precision != POINT)
                place = (voted.insee, voted.commune, voted.jurisdiction)
        self.insee, self.commune, self.jurisdiction = place

    def categories(self) -> set[Category]:
        """The categories of its members (the voted `category` is one of them)."""
        return {m.category for m in self.members}

    # ---- boundaries: plain strings only (`_value_`, the member's own str: `str()` on an
    # enum member costs twice as much, and this runs for every version and export) ----
    def version_dict(self) -> dict[str, Any]:
        """The contract v1 version (epoch-second times, plain strings), keys = `VERSION_KEYS`."""
        members = self.members
        return {
            "incident_id": self.incident_id,
            "version": self.version,
            "status": self.status._value_,
            "category": self.category._value_,
            "categories": [c._value_ for c in sorted({m.category for m in members})],
            "report_ids": [m.report_id for m in members],
            "report_count": len(members),
            "source_kinds": [k._value_ for k in sorted({m.source_kind for m in members})],
            "first_occurred_at": self.first_occurred_at,
            "last_occurred_at": self.last_occurred_at,
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "insee": self.insee,
            "commune": self.commune,
            "jurisdiction": self.jurisdiction,
            "h3": self.h3,
            "h3_r7": self.h3_r7,
            "h3_r8": self.h3_r8,
            "precision": self.precision._value_,
            "confidence": self.confidence,
            "updated_at": self.updated_at,
            "first_seen_at": self.first_seen_at,
            "report_source_kinds": [m.source_kind._value_ for m in members],
            "report_source_orgs": [m.source_org for m in members],
        }

    def to_dict(self, grid: Sequence[int]) -> StateDict:
        """The changelog form: a new JSON-serialisable dict (later changes do not reach it);
        `grid`, the search-grid cells it is indexed under (`IncidentIndex.grid`)."""
        return {
            "incident_id": self.incident_id,
            "version": self.version,
            "status": self.status._value_,
            "members": [m.to_dict() for m in self.members],
            "first_occurred_at": self.first_occurred_at,
            "last_occurred_at": self.last_occurred_at,
            "last_seen": self.last_seen,
            "updated_at": self.updated_at,
            "first_seen_at": self.first_seen_at,
            "centre_acc": self.centre_acc,
            "lat": self.lat,
            "lon": self.lon,
            "precision": self.precision._value_,
            "insee": self.insee,
            "commune": self.commune,
            "jurisdiction": self.jurisdiction,
            "category": self.category._value_,
            "h3": self.h3,
            "h3_r7": self.h3_r7,
            "h3_r8": self.h3_r8,
            "confidence": self.confidence,
            "grid": list(grid),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        """An incident from its changelog form (any version's: see the module docstring).
        A state that lacks a decided field or holds an unknown value raises ValueError."""
        iid = data.get("incident_id", "?")
        try:
            members = [Member.from_dict(m) for m in data["members"]]
            first_seen = data.get("first_seen_at")
            return cls(
                incident_id=str(data["incident_id"]),
                version=int(data["version"]),
                status=_member_of(_STATUSES, IncidentStatus, data["status"]),
                members=members,
                first_occurred_at=float(data["first_occurred_at"]),
                last_occurred_at=float(data["last_occurred_at"]),
                last_seen=float(data["last_seen"]),
                updated_at=float(data["updated_at"]),
                first_seen_at=(
                    min(m.reported_at for m in members) if first_seen is None
                    else float(first_seen)
                ),
            )
        except KeyError as exc:
            raise ValueError(f"incident state {iid}: no {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise ValueError(f"incident state {iid}: {exc}") from exc
