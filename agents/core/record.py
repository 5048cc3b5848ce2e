"""The internal record of one accepted report, filled in step by step by the pure core."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson


class ReportKey(NamedTuple):
    """A report's identity: `report_id` is unique per source system only (contract v1), so
    two sources may send the same id; (source kind, source org, report_id) is unique."""

    source_kind: str
    source_org: str
    report_id: str


def member_keys(version: Mapping[str, Any]) -> list[ReportKey]:
    """The identities of an incident version's reports, in joining order; empty for a
    version stored before versions listed the sources (`report_source_kinds` and
    `report_source_orgs` missing or not one per report id): such a version is known by its
    report ids only."""
    kinds, orgs = version.get("report_source_kinds") or [], version.get("report_source_orgs") or []
    ids = version.get("report_ids") or []
    if not (len(kinds) == len(orgs) == len(ids)):
        return []
    return [ReportKey(str(k), str(o), str(r)) for k, o, r in zip(kinds, orgs, ids, strict=True)]


@dataclass(slots=True)
class ReportRecord:
    """A validated report; times are UTC epoch seconds.

    Personal data never reaches this record in clear: `contact_hash` and
    `description_hash` are keyed hashes (see `agents.core.pseudonym`).
    `key` is its identity; `content_hash` tells an exact re-delivery of that identity from a
    re-use of the id with other content (`content_hash`, the function).
    Enrichment (`agents.core.geo`) fills the location fields below the line.
    """

    report_id: str
    source_kind: str
    source_org: str
    source_channel: str | None
    category: str
    occurred_at: float
    reported_at: float
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    insee: str | None
    severity: int | None
    contact_hash: str | None
    description_hash: str | None
    description_len: int
    origin_topic: str = ""
    origin_partition: int = -1
    origin_offset: int = -1
    content_hash: str = ""  # set by validation; not on the enriched topic (`to_dict`)
    # ---- enrichment ----
    commune: str = ""
    jurisdiction: str = ""
    precision: str = "point"  # "point" (lat/lon given) or "commune" (INSEE only)
    h3_r7: str = ""
    h3_r8: str = ""
    h3_r9: str = ""

    @property
    def key(self) -> ReportKey:
        return ReportKey(self.source_kind, self.source_org, self.report_id)

    @property
    def is_citizen(self) -> bool:
        return self.source_kind == "citizen"

    def to_dict(self) -> dict[str, object]:
        """The record as it travels on the enriched topic: every field but `content_hash`
        (the ingest's own concern, stored in `reports`: workers of a version before it
        could not read a record that has it)."""
        return {name: getattr(self, name) for name in _WIRE_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportRecord:
        """A record from `to_dict`'s output (decoded JSON: the values are not checked; an
        unknown or missing key raises TypeError)."""
        return cls(**data)


_WIRE_FIELDS = tuple(name for name in ReportRecord.__slots__ if name != "content_hash")


# Changes when the canonical form below changes (every stored hash would then differ).
_CONTENT_FORM = "report-content-1"


def content_hash(record: ReportRecord, reported_at_sent: bool) -> str:
    """The hash of a validated report's content as its producer sent it (128 bits, hex):
    equal for an exact re-delivery, whatever the JSON's key order, spacing, unknown fields
    or time zone offsets; different when any contract field differs. `reported_at_sent`:
    the message gave `reported_at` (else the record's is the message time, which a re-send
    does not keep). Personal data enters only as its keyed hashes (`contact_hash`,
    `description_hash`), so the hash reveals nothing more than they do; it changes with the
    pseudonymisation key, like them."""
    form = (
        _CONTENT_FORM,
        record.source_kind,
        record.source_org,
        record.report_id,
        record.source_channel,
        record.category,
        record.occurred_at,
        record.reported_at if reported_at_sent else None,
        record.lat,
        record.lon,
        record.accuracy_m,
        record.insee,
        record.severity,
        record.contact_hash,
        record.description_hash,
    )
    return hashlib.sha256(orjson.dumps(form)).hexdigest()[:32]


def rfc3339(epoch: float) -> str:
    """UTC epoch seconds as the contract's RFC 3339 text (`...Z`)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
