"""Validation against a message's context (issue #21, items 2 and 4): its times against the
message time, its source kind against its topic. Both used to be accepted as they came."""

from __future__ import annotations

import orjson
import pytest

from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportRecord, rfc3339
from agents.core.validation import Rejection, TimeBounds, validate_report
from schemas.rejection import RejectReason
from schemas.report import CITIZEN_KINDS, PARTNER_KINDS

PSEUDO = Pseudonymiser(b"unit-test-secret-0123456789abcdefghi")
KAFKA_TS = 1_795_640_000.0  # 2026-11-25T20:53:20Z, the message's Kafka timestamp
MIN, DAY = 60.0, 86400.0


def iso(epoch: float) -> str:
    return rfc3339(epoch)


def report(**changes: object) -> bytes:
    obj: dict[str, object] = {
        "report_id": "r-1",
        "source": {"kind": "citizen", "org": "citoyen"},
        "category": "rodeo",
        "occurred_at": iso(KAFKA_TS - 10 * MIN),
        "reported_at": iso(KAFKA_TS - 5 * MIN),
        "location": {"lat": 48.63, "lon": 2.44},
    }
    obj.update(changes)
    return orjson.dumps(obj)


def run(raw: bytes, ts: float = KAFKA_TS, **options: object) -> ReportRecord | Rejection:
    return validate_report(raw, message_timestamp=ts, pseudonymiser=PSEUDO, **options)  # type: ignore[arg-type]


def reason(out: ReportRecord | Rejection) -> RejectReason | None:
    return out.reason if isinstance(out, Rejection) else None


# ---- times against the message time -----------------------------------------------------
def test_far_future_reported_at_is_rejected() -> None:
    """The report of the issue: reported_at 2100-01-01, a valid report otherwise."""
    out = run(report(reported_at="2100-01-01T00:00:00+00:00"))
    assert reason(out) == RejectReason.TIMESTAMP_IN_FUTURE
    assert isinstance(out, Rejection) and out.report_id == "r-1"
    assert "reported_at" in out.detail and "2100" not in out.detail


@pytest.mark.parametrize(("occurred", "reported", "expected"), [
    (13 * MIN, 14 * MIN, None),  # clock skew within the 15 min tolerance
    (15 * MIN, 16 * MIN, RejectReason.TIMESTAMP_IN_FUTURE),
    (16 * MIN, 14 * MIN, RejectReason.TIMESTAMP_IN_FUTURE),  # occurred_at alone ahead
    (-29 * DAY, -MIN, None),  # a late batch: accepted
    (-31 * DAY, -MIN, RejectReason.TIMESTAMP_TOO_OLD),
    (-31 * DAY, -31 * DAY, RejectReason.TIMESTAMP_TOO_OLD),
])
def test_time_bounds_around_the_kafka_timestamp(
    occurred: float, reported: float, expected: RejectReason | None
) -> None:
    raw = report(occurred_at=iso(KAFKA_TS + occurred), reported_at=iso(KAFKA_TS + reported))
    assert reason(run(raw)) == expected


def test_a_far_past_occurred_at_is_rejected_not_clamped() -> None:
    out = run(report(occurred_at="1900-01-01T00:00:00+00:00"))
    assert reason(out) == RejectReason.TIMESTAMP_TOO_OLD


def test_bounds_are_settings_and_can_be_turned_off() -> None:
    late = report(occurred_at=iso(KAFKA_TS - 40 * DAY), reported_at=iso(KAFKA_TS - 40 * DAY))
    assert reason(run(late)) == RejectReason.TIMESTAMP_TOO_OLD
    assert reason(run(late, bounds=TimeBounds(max_age_s=60 * DAY))) is None
    assert reason(run(late, bounds=None)) is None


def test_a_missing_reported_at_takes_the_kafka_timestamp() -> None:
    raw = orjson.dumps({k: v for k, v in orjson.loads(report()).items() if k != "reported_at"})
    out = run(raw)
    assert isinstance(out, ReportRecord) and out.reported_at == KAFKA_TS


def test_backtest_reference_time_replaces_the_missing_kafka_timestamp() -> None:
    bogus = report(reported_at="2100-01-01T00:00:00+00:00")
    assert reason(run(bogus, ts=-1.0)) is None  # nothing to compare with
    assert reason(run(bogus, ts=-1.0, reference_time=KAFKA_TS)) == (
        RejectReason.TIMESTAMP_IN_FUTURE)


def test_times_the_store_cannot_hold_are_rejected_even_without_a_reference() -> None:
    out = run(report(occurred_at="2200-01-01T00:00:00+00:00",
                     reported_at="2200-01-01T00:00:00+00:00"), ts=-1.0)
    assert reason(out) == RejectReason.INVALID_TIMESTAMP


def test_occurred_after_reported_keeps_its_reason() -> None:
    out = run(report(occurred_at=iso(KAFKA_TS + 10 * MIN), reported_at=iso(KAFKA_TS - 5 * MIN)))
    assert reason(out) == RejectReason.OCCURRED_AFTER_REPORTED


# ---- source kind against the topic ------------------------------------------------------
def test_a_citizen_message_claiming_police_is_rejected_on_the_citizen_topic() -> None:
    """The issue's message: on the citizen topic, source police_nationale / csp-evry."""
    police = report(source={"kind": "police_nationale", "org": "csp-evry"})
    out = run(police, allowed_kinds=CITIZEN_KINDS)
    assert reason(out) == RejectReason.SOURCE_NOT_ALLOWED_ON_TOPIC
    assert isinstance(out, Rejection) and "police_nationale" in out.detail
    assert isinstance(run(police, allowed_kinds=PARTNER_KINDS), ReportRecord)


def test_each_topic_takes_only_its_kinds() -> None:
    assert PARTNER_KINDS.isdisjoint(CITIZEN_KINDS) and len(PARTNER_KINDS) == 8
    citizen = report()
    assert isinstance(run(citizen, allowed_kinds=CITIZEN_KINDS), ReportRecord)
    assert reason(run(citizen, allowed_kinds=PARTNER_KINDS)) == (
        RejectReason.SOURCE_NOT_ALLOWED_ON_TOPIC)
    for kind in PARTNER_KINDS:
        partner = report(source={"kind": kind, "org": "org-1"})
        assert isinstance(run(partner, allowed_kinds=PARTNER_KINDS), ReportRecord)
        assert reason(run(partner, allowed_kinds=CITIZEN_KINDS)) == (
            RejectReason.SOURCE_NOT_ALLOWED_ON_TOPIC)
    assert reason(run(citizen, allowed_kinds=())) == RejectReason.SOURCE_NOT_ALLOWED_ON_TOPIC
