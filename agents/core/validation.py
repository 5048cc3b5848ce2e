"""Contract v1 validation of raw report bytes: a `ReportRecord` or a `Rejection` with a reason.

Geographic checks (`out_of_area`, `unknown_insee`) belong to enrichment
(`agents.core.geo`), which rejects with the same `Rejection` type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportRecord
from schemas.rejection import RejectReason
from schemas.report import MAX_FUTURE_SKEW_SECONDS, MAX_MESSAGE_BYTES, PointLocation, Report


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    detail: str
    report_id: str | None = None


def _loc(error: Any) -> str:
    return ".".join(str(p) for p in error["loc"] if p not in ("point", "commune"))


def _reason_for(error: Any) -> tuple[RejectReason, str]:
    """Map the first pydantic error to a stable reason code and a short detail.

    The detail names the field and the rule, never the offending value (it may be
    personal data).
    """
    kind: str = error["type"]
    path = _loc(error)
    loc = tuple(error["loc"])
    if kind == "json_invalid":
        return RejectReason.NOT_JSON, "message is not valid JSON"
    if kind in ("model_type", "model_attributes_type") and not loc:
        return RejectReason.NOT_OBJECT, "message is not a JSON object"
    if kind == "missing":
        return RejectReason.MISSING_FIELD, f"missing field {path}"
    if loc == ("category",):
        return RejectReason.UNKNOWN_CATEGORY, "category is not in the contract's list"
    if loc == ("source", "kind"):
        return RejectReason.UNKNOWN_SOURCE_KIND, "source.kind is not in the contract's list"
    if loc[:1] == ("location",) and len(loc) >= 3 and loc[2] in ("lat", "lon", "accuracy_m"):
        return RejectReason.INVALID_COORDINATES, f"{path}: {error['msg']}"
    if loc in (("occurred_at",), ("reported_at",)):
        if "no UTC offset" in error["msg"]:
            return RejectReason.TIMESTAMP_WITHOUT_OFFSET, f"{path} has no UTC offset"
        return RejectReason.INVALID_TIMESTAMP, f"{path} is not an RFC 3339 timestamp"
    if loc == ("description",) and kind == "string_too_long":
        return RejectReason.DESCRIPTION_TOO_LONG, "description is over 4000 characters"
    return RejectReason.INVALID_FIELD, f"{path or 'message'}: {error['msg']}"


def _report_id_of(raw: bytes) -> str | None:
    """Best-effort report_id of a rejected message, for the dead-letter record."""
    try:
        import orjson

        obj = orjson.loads(raw)
    except Exception:
        return None
    rid = obj.get("report_id") if isinstance(obj, dict) else None
    return rid[:128] if isinstance(rid, str) else None


def validate_report(
    raw: bytes,
    *,
    message_timestamp: float,
    pseudonymiser: Pseudonymiser,
) -> ReportRecord | Rejection:
    """Validate one message against contract v1.

    `message_timestamp` (UTC epoch seconds, the Kafka timestamp or, in a backtest,
    `occurred_at`) stands in for a missing `reported_at`; pass a negative value to
    use `occurred_at` instead.
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(RejectReason.TOO_LARGE, f"message is {len(raw)} bytes, over 65536")
    try:
        report = Report.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return Rejection(RejectReason.NOT_UTF8, "message is not UTF-8")
        reason, detail = _reason_for(first)
        return Rejection(reason, detail, _report_id_of(raw))

    occurred = report.occurred_at.timestamp()
    if report.reported_at is not None:
        reported = report.reported_at.timestamp()
    else:
        reported = message_timestamp if message_timestamp >= 0 else occurred
    if occurred > reported + MAX_FUTURE_SKEW_SECONDS:
        return Rejection(
            RejectReason.OCCURRED_AFTER_REPORTED,
            "occurred_at is more than 10 minutes after reported_at",
            report.report_id,
        )

    location = report.location
    if isinstance(location, PointLocation):
        lat: float | None = location.lat
        lon: float | None = location.lon
        accuracy = location.accuracy_m
        insee = None
    else:
        lat = lon = accuracy = None
        insee = location.insee
    description = report.description
    return ReportRecord(
        report_id=report.report_id,
        source_kind=report.source.kind.value,
        source_org=report.source.org,
        source_channel=report.source.channel,
        category=report.category.value,
        occurred_at=occurred,
        reported_at=reported,
        lat=lat,
        lon=lon,
        accuracy_m=accuracy,
        insee=insee,
        severity=report.severity,
        contact_hash=pseudonymiser.contact(report.reporter.contact if report.reporter else None),
        description_hash=pseudonymiser.text(description),
        description_len=len(description) if description else 0,
        precision="point" if insee is None else "commune",
    )
