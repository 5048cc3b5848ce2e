"""Contract v1 validation of raw report bytes: a `ReportRecord` or a `Rejection` with a reason.

Besides the message's own rules, two checks need to know where the message comes from:

- its source kind must be one its topic accepts (`allowed_kinds`: the citizen topic takes
  citizens only, the partner topic the partner kinds; `source_not_allowed_on_topic`);
- on a per-partner topic `<prefix><org>.v1` (`PartnerTopics`, when the operator turns them
  on), its `source.org` must be that topic's org (`required_org`;
  `source_org_not_allowed_on_topic`): with a write ACL per partner principal on its own
  topic, a partner cannot write as another;
- its times must be plausible against the *message time* (`reference_time`: the Kafka
  timestamp live, the file's robust clock in a backtest): `occurred_at` and `reported_at`
  at most `TimeBounds.future_s` after it (`timestamp_in_future`) and at most
  `TimeBounds.max_age_s` before it (`timestamp_too_old`). One report stamped 2100 would
  otherwise move the stream clock to 2100 (closing every open incident at once).

Geographic checks (`out_of_area`, `unknown_insee`) belong to enrichment
(`agents.core.geo`), which rejects with the same `Rejection` type.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportRecord, content_hash
from schemas.rejection import RejectReason
from schemas.report import (
    DEFAULT_FUTURE_TOLERANCE_SECONDS,
    DEFAULT_MAX_AGE_SECONDS,
    MAX_FUTURE_SKEW_SECONDS,
    MAX_MESSAGE_BYTES,
    PARTNER_KINDS,
    PointLocation,
    Report,
)

# Times ClickHouse `DateTime` can hold (UInt32 seconds: 1970-01-01 to 2106-02-07); outside,
# stores clamp or wrap them silently.
_FIRST_STORABLE = 0.0
_LAST_STORABLE = float(2**32 - 1)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    detail: str
    report_id: str | None = None
    # the report's source when readable: with report_id, its identity (`ReportKey`)
    source_kind: str | None = None
    source_org: str | None = None


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """How far `occurred_at` and `reported_at` may lie from the message time, in seconds:
    `future_s` after it (producers' clock skew), `max_age_s` before it (late uploads)."""

    future_s: float = DEFAULT_FUTURE_TOLERANCE_SECONDS
    max_age_s: float = DEFAULT_MAX_AGE_SECONDS

    def check(
        self, occurred: float, reported: float, reference: float, report_id: str
    ) -> Rejection | None:
        """The rejection of times out of bounds around `reference`, else None."""
        for name, t in (("occurred_at", occurred), ("reported_at", reported)):
            if t > reference + self.future_s:
                return Rejection(
                    RejectReason.TIMESTAMP_IN_FUTURE,
                    f"{name} is {t - reference:.0f} s after the message time "
                    f"(tolerance {self.future_s:.0f} s)",
                    report_id,
                )
        for name, t in (("occurred_at", occurred), ("reported_at", reported)):
            if t < reference - self.max_age_s:
                return Rejection(
                    RejectReason.TIMESTAMP_TOO_OLD,
                    f"{name} is {(reference - t) / 86400.0:.1f} days before the message time "
                    f"(at most {self.max_age_s / 86400.0:g})",
                    report_id,
                )
        return None


DEFAULT_TIME_BOUNDS = TimeBounds()

# The org of a per-partner topic: a slug (what a topic name and an ACL can carry safely).
ORG_SLUG = r"[a-z0-9-]{1,64}"
PARTNER_TOPIC_SUFFIX = ".v1"


@dataclass(frozen=True, slots=True)
class PartnerTopics:
    """Per-partner topics `<prefix><org>.v1`: each is for one partner org (a slug, see
    `ORG_SLUG`), and takes the partner kinds with that `source.org` only."""

    prefix: str
    kinds: frozenset[str] = PARTNER_KINDS

    def __post_init__(self) -> None:
        if not self.prefix:
            raise ValueError("a per-partner topic prefix cannot be empty")

    @property
    def regex(self) -> str:
        """The topic names, one group: the org (the prefix is matched literally)."""
        return f"{re.escape(self.prefix)}({ORG_SLUG}){re.escape(PARTNER_TOPIC_SUFFIX)}"

    def org_of(self, topic: str) -> str | None:
        """The org `topic` is for, or None when it is not a per-partner topic."""
        found = re.fullmatch(self.regex, topic)
        return found.group(1) if found else None

    def topic(self, org: str) -> str:
        """The topic of `org` (a slug)."""
        if not re.fullmatch(ORG_SLUG, org):
            raise ValueError(f"{org!r} is not an org slug ({ORG_SLUG})")
        return f"{self.prefix}{org}{PARTNER_TOPIC_SUFFIX}"

    def subscription(self, topics: Iterable[str]) -> str:
        """A regex matching exactly `topics` and every per-partner topic (a consumer
        subscribes to a pattern or to names, not both)."""
        names = "|".join(re.escape(t) for t in sorted(set(topics)))
        alternatives = f"{names}|{self.regex}" if names else self.regex
        return f"^(?:{alternatives})\\Z"


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
    reference_time: float | None = None,
    bounds: TimeBounds | None = DEFAULT_TIME_BOUNDS,
    allowed_kinds: Collection[str] | None = None,
    required_org: str | None = None,
) -> ReportRecord | Rejection:
    """Validate one message against contract v1.

    `message_timestamp` (UTC epoch seconds, the Kafka timestamp) stands in for a missing
    `reported_at`; pass a negative value to use `occurred_at` instead (a backtest).
    `reference_time`: the message time that `bounds` apply to (default: `message_timestamp`
    when it is not negative; no time bounds when there is none, or with `bounds=None`).
    `allowed_kinds`: the source kinds the message's topic accepts (None: any).
    `required_org`: the `source.org` the message's topic is for (None: any).
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

    kind = report.source.kind.value
    if allowed_kinds is not None and kind not in allowed_kinds:
        return Rejection(
            RejectReason.SOURCE_NOT_ALLOWED_ON_TOPIC,
            f"source.kind {kind} is not accepted on this topic",
            report.report_id,
        )
    if required_org is not None and report.source.org != required_org:
        return Rejection(
            RejectReason.SOURCE_ORG_NOT_ALLOWED_ON_TOPIC,
            f"source.org is not {required_org}, the only org this topic is for",
            report.report_id,
        )
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
    if reference_time is None and message_timestamp >= 0:
        reference_time = message_timestamp
    if bounds is not None and reference_time is not None:
        out_of_bounds = bounds.check(occurred, reported, reference_time, report.report_id)
        if out_of_bounds is not None:
            return out_of_bounds
    for name, t in (("occurred_at", occurred), ("reported_at", reported)):
        if not _FIRST_STORABLE <= t <= _LAST_STORABLE:
            return Rejection(
                RejectReason.INVALID_TIMESTAMP,
                f"{name} is outside 1970-01-01..2106-02-07 (what the store can hold)",
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
    record = ReportRecord(
        report_id=report.report_id,
        source_kind=kind,
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
    record.content_hash = content_hash(record, reported_at_sent=report.reported_at is not None)
    return record
