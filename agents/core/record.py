"""The internal record of one accepted report, filled in step by step by the pure core."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class ReportRecord:
    """A validated report; times are UTC epoch seconds.

    Personal data never reaches this record in clear: `contact_hash` and
    `description_hash` are keyed hashes (see `agents.core.pseudonym`).
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
    # ---- enrichment ----
    commune: str = ""
    jurisdiction: str = ""
    precision: str = "point"  # "point" (lat/lon given) or "commune" (INSEE only)
    h3_r7: str = ""
    h3_r8: str = ""
    h3_r9: str = ""

    @property
    def is_citizen(self) -> bool:
        return self.source_kind == "citizen"

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportRecord:
        """A record from `to_dict`'s output (decoded JSON: the values are not checked; an
        unknown or missing key raises TypeError)."""
        return cls(**data)


def rfc3339(epoch: float) -> str:
    """UTC epoch seconds as the contract's RFC 3339 text (`...Z`)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
