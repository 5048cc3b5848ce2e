"""Dead-letter message on `vigie.reports.rejected.v1`: nothing is dropped silently."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class RejectReason(StrEnum):
    TOO_LARGE = "too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    UNKNOWN_CATEGORY = "unknown_category"
    UNKNOWN_SOURCE_KIND = "unknown_source_kind"
    INVALID_COORDINATES = "invalid_coordinates"
    OUT_OF_AREA = "out_of_area"
    UNKNOWN_INSEE = "unknown_insee"
    TIMESTAMP_WITHOUT_OFFSET = "timestamp_without_offset"
    INVALID_TIMESTAMP = "invalid_timestamp"
    OCCURRED_AFTER_REPORTED = "occurred_after_reported"
    DESCRIPTION_TOO_LONG = "description_too_long"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    SOURCE_NOT_ALLOWED_ON_TOPIC = "source_not_allowed_on_topic"
    # a per-partner topic (`<prefix><org>.v1`) takes its own org's reports only
    SOURCE_ORG_NOT_ALLOWED_ON_TOPIC = "source_org_not_allowed_on_topic"
    # the report's identity (source.kind, source.org, report_id) was taken in before with
    # other content: an id is never re-used for another report, a correction needs a new id
    ID_REUSED_WITH_DIFFERENT_CONTENT = "id_reused_with_different_content"


class RejectedReport(BaseModel):
    """What a subscriber of the dead-letter topic receives.

    `original_b64` holds the bytes of the rejected message (base64), so that a fixed
    producer or an operator can replay it; `detail` is a short human explanation that never
    quotes personal data. A dead letter always fits in one Kafka message: when the original
    is too large for that, `original_b64` holds only its first bytes and
    `original_truncated` is true; `original_size` and `original_sha256` always describe the
    whole original, whose full bytes are kept in the ClickHouse table `rejected`. The same
    holds for the message key (`original_key_*`).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: RejectReason
    detail: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    original_b64: str
    original_key_b64: str | None = None
    report_id: str | None = None
    rejected_at: datetime
    # Added after v1's first release (older dead letters lack them, hence the defaults).
    original_size: int | None = None  # bytes of the whole original value
    original_sha256: str | None = None  # hex SHA-256 of the whole original value
    original_truncated: bool = False  # original_b64 holds only the first bytes
    original_key_size: int | None = None  # bytes of the whole original key (None: no key)
    original_key_truncated: bool = False  # original_key_b64 holds only the first bytes
    # the rejected report's source, when readable (with report_id: its identity)
    source_kind: str | None = None
    source_org: str | None = None
