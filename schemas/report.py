"""Report (input) on `vigie.reports.partner.v1` and `vigie.reports.citizen.v1`."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from schemas.enums import Category, SourceKind

MAX_MESSAGE_BYTES = 64 * 1024
MAX_DESCRIPTION_CHARS = 4000
MAX_FUTURE_SKEW_SECONDS = 600  # occurred_at may be at most 10 min after reported_at
# Plausible times, against the message time (the Kafka timestamp; in a backtest, the file's
# own clock): `occurred_at` and `reported_at` may be at most this far after it (producers'
# clock skew) ...
DEFAULT_FUTURE_TOLERANCE_SECONDS = 15 * 60
# ... and at most this far before it: partners upload late batches (hours, a weekend's
# backlog, a monthly export), but an older report cannot join any incident any more and
# belongs to a history import (`vigie backtest --history`), not the live stream.
DEFAULT_MAX_AGE_SECONDS = 30 * 86400

# The source kinds each report topic accepts: the citizen topic carries citizens only, the
# partner topic every other kind (a message elsewhere is rejected `source_not_allowed_on_topic`).
CITIZEN_KINDS: frozenset[str] = frozenset({SourceKind.CITIZEN.value})
PARTNER_KINDS: frozenset[str] = frozenset(k.value for k in SourceKind) - CITIZEN_KINDS


def parse_rfc3339(value: object) -> datetime:
    """Parse an RFC 3339 timestamp; one without a UTC offset is rejected."""
    if not isinstance(value, str):
        raise ValueError("timestamp must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("timestamp is not RFC 3339") from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp has no UTC offset")
    return parsed


class _Model(BaseModel):
    # Unknown fields are ignored: producers may add fields (contract evolution).
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class Source(_Model):
    kind: SourceKind
    org: Annotated[str, Field(min_length=1, max_length=64)]
    channel: Annotated[str, Field(max_length=32)] | None = None


class PointLocation(_Model):
    lat: Annotated[float, Field(ge=-90.0, le=90.0)]
    lon: Annotated[float, Field(ge=-180.0, le=180.0)]
    accuracy_m: (
        Annotated[
            float,
            Field(
                ge=0.0,
                le=100_000.0,
                description="radius (m) of the circle holding the true position with 95 % "
                "confidence (contract v1, Position accuracy); omit when unknown",
            ),
        ]
        | None
    ) = None

    @field_validator("lat", "lon", "accuracy_m")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("coordinate is not finite")
        return v


class CommuneLocation(_Model):
    insee: Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$")]


class Reporter(_Model):
    contact: Annotated[str, Field(max_length=256)] | None = None


def _location_kind(value: Any) -> str | None:
    """Pick the location variant by its keys: `insee` means commune-only, else a point."""
    if isinstance(value, dict):
        return "commune" if "insee" in value else "point"
    if isinstance(value, CommuneLocation):
        return "commune"
    if isinstance(value, PointLocation):
        return "point"
    return None


Location = Annotated[
    Annotated[PointLocation, Tag("point")] | Annotated[CommuneLocation, Tag("commune")],
    Discriminator(_location_kind),
]


class Report(_Model):
    report_id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Source
    category: Category
    occurred_at: datetime
    reported_at: datetime | None = None
    location: Location
    description: Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS)] | None = None
    reporter: Reporter | None = None
    severity: Annotated[int, Field(ge=1, le=5)] | None = None

    @field_validator("occurred_at", "reported_at", mode="before")
    @classmethod
    def _rfc3339(cls, v: object) -> datetime | None:
        if v is None:
            return None
        return parse_rfc3339(v)
