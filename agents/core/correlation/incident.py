"""One incident's state as a plain JSON-serialisable dict, and its contract v1 version.

State keys: `incident_id`, `version`, `status`, `members` (one compact dict per merged
report, see `member_of`), `first_occurred_at`, `last_occurred_at`, `last_seen` (greatest
`reported_at` of the members: the stream-clock time of the latest evidence, drives closing),
`updated_at` (stream clock of the last change), `first_seen_at` (the founding report's
`reported_at`: when the incident was first reported, fixed for good; what the detector counts
by, live and in a backtest — a property of the data, not of the order partitions are read
in) and the derived fields recomputed by `refresh`: `category`, `lat`, `lon`, `centre_acc`
(m, accuracy of the centre), `precision`, `insee`, `commune`, `jurisdiction`, `h3`, `h3_r7`,
`h3_r8` (cells of the centre), `confidence`; plus `grid` (search-grid cells it is indexed
under, engine).
"""

from __future__ import annotations

import hashlib
from typing import Any

import h3

from agents.core.correlation.confidence import confidence, source_weight
from agents.core.correlation.config import (
    DEFAULT_ACCURACY_M,
    DEFAULT_PARTNER_ACCURACY_M,
    MIN_ACCURACY_M,
)
from agents.core.record import ReportRecord

State = dict[str, Any]

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
)


def incident_id_for(record: ReportRecord) -> str:
    """Deterministic id from the founding report (replays give the same ids)."""
    digest = hashlib.blake2b(
        f"{record.source_org}\x1f{record.report_id}".encode(), digest_size=10
    ).hexdigest()
    return f"inc-{digest}"


def accuracy_of(record: ReportRecord) -> float:
    """Stated accuracy, else a default per source (citizens' phones are coarser)."""
    if record.accuracy_m is not None and record.accuracy_m > 0:
        return max(float(record.accuracy_m), MIN_ACCURACY_M)
    return DEFAULT_ACCURACY_M.get(record.source_kind, DEFAULT_PARTNER_ACCURACY_M)


def member_of(record: ReportRecord) -> dict[str, Any]:
    """What an incident keeps of a report (no personal data: only the contact hash)."""
    return {
        "report_id": record.report_id,
        "source_kind": record.source_kind,
        "source_org": record.source_org,
        "contact_hash": record.contact_hash,
        "category": record.category,
        "occurred_at": record.occurred_at,
        "reported_at": record.reported_at,
        "lat": record.lat,
        "lon": record.lon,
        "acc": accuracy_of(record),
        "precision": record.precision,
        "insee": record.insee or "",
        "commune": record.commune,
        "jurisdiction": record.jurisdiction,
    }


def new_state(record: ReportRecord) -> State:
    state: State = {
        "incident_id": incident_id_for(record),
        "version": 0,
        "status": "open",
        "members": [],
        "first_occurred_at": record.occurred_at,
        "last_occurred_at": record.occurred_at,
        "last_seen": record.reported_at,
        "updated_at": record.reported_at,
        "first_seen_at": record.reported_at,
    }
    add_member(state, record)
    return state


def add_member(state: State, record: ReportRecord) -> None:
    state["members"].append(member_of(record))
    state["first_occurred_at"] = min(state["first_occurred_at"], record.occurred_at)
    state["last_occurred_at"] = max(state["last_occurred_at"], record.occurred_at)
    state["last_seen"] = max(state["last_seen"], record.reported_at)
    refresh(state)


def point_members(state: State) -> list[dict[str, Any]]:
    return [m for m in state["members"] if m["precision"] == "point"]


def refresh(state: State) -> None:
    """Recompute the derived fields from the members.

    Centre: inverse-variance (1 / accuracy^2) weighted mean of the point members; commune-only
    members never move it (an incident with only commune-only members sits at the commune's
    representative point, precision "commune"). Category: the vote of the members weighted
    by source (`confidence.source_weight`), ties to the earliest. Commune: the commune of the
    point member closest to the centre.
    """
    members = state["members"]
    points = point_members(state)
    located = points or members
    if points:
        wsum, lat, lon = 0.0, 0.0, 0.0
        for m in points:
            w = 1.0 / (m["acc"] * m["acc"])
            wsum += w
            lat += w * m["lat"]
            lon += w * m["lon"]
        lat, lon = lat / wsum, lon / wsum
        state["centre_acc"] = (1.0 / wsum) ** 0.5
    else:
        lat, lon = float(members[0]["lat"]), float(members[0]["lon"])
        state["centre_acc"] = 0.0
    state["lat"], state["lon"] = lat, lon
    state["precision"] = "point" if points else "commune"
    nearest = min(located, key=lambda m: (m["lat"] - lat) ** 2 + (m["lon"] - lon) ** 2)
    state["insee"], state["commune"] = nearest["insee"], nearest["commune"]
    state["jurisdiction"] = nearest["jurisdiction"]
    votes: dict[str, float] = {}
    for m in members:
        c = m["category"]
        votes[c] = votes.get(c, 0.0) + source_weight(m["source_kind"], bool(m["contact_hash"]))
    order = {m["category"]: i for i, m in reversed(list(enumerate(members)))}
    state["category"] = max(votes, key=lambda c: (votes[c], -order[c]))
    r9 = h3.latlng_to_cell(lat, lon, 9)
    state["h3"], state["h3_r7"], state["h3_r8"] = (
        r9, h3.cell_to_parent(r9, 7), h3.cell_to_parent(r9, 8)
    )
    state["confidence"] = confidence(members)


def version_dict(state: State) -> dict[str, Any]:
    """The contract v1 version of an incident (epoch-second times), keys = `VERSION_KEYS`."""
    members = state["members"]
    return {
        "incident_id": state["incident_id"],
        "version": state["version"],
        "status": state["status"],
        "category": state["category"],
        "categories": sorted({m["category"] for m in members}),
        "report_ids": [m["report_id"] for m in members],
        "report_count": len(members),
        "source_kinds": sorted({m["source_kind"] for m in members}),
        "first_occurred_at": state["first_occurred_at"],
        "last_occurred_at": state["last_occurred_at"],
        "lat": round(state["lat"], 6),
        "lon": round(state["lon"], 6),
        "insee": state["insee"],
        "commune": state["commune"],
        "jurisdiction": state["jurisdiction"],
        "h3": state["h3"],
        "h3_r7": state["h3_r7"],
        "h3_r8": state["h3_r8"],
        "precision": state["precision"],
        "confidence": state["confidence"],
        "updated_at": state["updated_at"],
        "first_seen_at": state["first_seen_at"],
    }
