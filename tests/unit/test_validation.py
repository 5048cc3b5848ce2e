"""Contract v1 validation: every rejection reason, defaults, and pseudonymisation."""

from __future__ import annotations

import orjson
import pytest

from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportRecord
from agents.core.validation import Rejection, validate_report
from schemas.rejection import RejectReason

PSEUDO = Pseudonymiser(b"unit-test-secret-0123456789abcdefghi")


def good(**changes: object) -> dict[str, object]:
    report: dict[str, object] = {
        "report_id": "r-1",
        "source": {"kind": "citizen", "org": "citoyen", "channel": "app"},
        "category": "rodeo",
        "occurred_at": "2026-11-25T21:00:00+01:00",
        "reported_at": "2026-11-25T21:05:00+01:00",
        "location": {"lat": 48.63, "lon": 2.44, "accuracy_m": 30},
        "description": "Deux motos sur le parking",
        "reporter": {"contact": "Someone@example.org "},
        "severity": 3,
    }
    report.update(changes)
    return report


def run(obj: object, ts: float = 1_795_640_000.0) -> ReportRecord | Rejection:
    # ts: the Kafka timestamp, just after good()'s reported_at (times are checked against it)
    raw = obj if isinstance(obj, bytes) else orjson.dumps(obj)
    return validate_report(raw, message_timestamp=ts, pseudonymiser=PSEUDO)


def test_valid_report_is_converted_and_pseudonymised() -> None:
    rec = run(good())
    assert isinstance(rec, ReportRecord)
    assert rec.report_id == "r-1" and rec.category == "rodeo" and rec.source_kind == "citizen"
    assert rec.occurred_at == 1_795_636_800.0  # 2026-11-25T20:00:00Z
    assert rec.reported_at - rec.occurred_at == 300
    assert rec.precision == "point" and rec.lat == 48.63 and rec.accuracy_m == 30
    # personal data never kept in clear; contact normalised before hashing
    assert rec.contact_hash == PSEUDO.contact("someone@example.org")
    assert "example" not in repr(rec) and "motos" not in repr(rec)
    assert rec.description_len == len("Deux motos sur le parking")


def test_commune_only_location_and_default_reported_at() -> None:
    report = good(location={"insee": "91228"})
    del report["reported_at"]
    rec = run(report, ts=1_795_700_000.0)
    assert isinstance(rec, ReportRecord)
    assert rec.insee == "91228" and rec.lat is None and rec.precision == "commune"
    assert rec.reported_at == 1_795_700_000.0  # the Kafka message timestamp
    rec2 = validate_report(orjson.dumps(report), message_timestamp=-1, pseudonymiser=PSEUDO)
    assert isinstance(rec2, ReportRecord) and rec2.reported_at == rec2.occurred_at


def test_unknown_fields_are_ignored() -> None:
    assert isinstance(run(good(extra_field={"x": 1})), ReportRecord)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * (64 * 1024 + 1), RejectReason.TOO_LARGE),
        (b"\xff\xfe\x00", RejectReason.NOT_UTF8),
        (b"{not json", RejectReason.NOT_JSON),
        (b"[1, 2]", RejectReason.NOT_OBJECT),
        (b'"text"', RejectReason.NOT_OBJECT),
        ({k: v for k, v in good().items() if k != "category"}, RejectReason.MISSING_FIELD),
        ({k: v for k, v in good().items() if k != "location"}, RejectReason.MISSING_FIELD),
        (good(category="tapage"), RejectReason.UNKNOWN_CATEGORY),
        (good(source={"kind": "mairie", "org": "x"}), RejectReason.UNKNOWN_SOURCE_KIND),
        (good(location={"lat": 91.0, "lon": 2.4}), RejectReason.INVALID_COORDINATES),
        (good(location={"lat": 48.6, "lon": "2.4"}), RejectReason.INVALID_COORDINATES),
        (b'{"report_id":"a","source":{"kind":"citizen","org":"c"},"category":"vol",'
         b'"occurred_at":"2026-11-25T10:00:00Z","location":{"lat":NaN,"lon":2}}',
         RejectReason.INVALID_COORDINATES),
        (good(location={"lat": 48.6, "lon": 2.4, "accuracy_m": -1}),
         RejectReason.INVALID_COORDINATES),
        (good(occurred_at="2026-11-25T21:00:00"), RejectReason.TIMESTAMP_WITHOUT_OFFSET),
        (good(occurred_at="hier soir"), RejectReason.INVALID_TIMESTAMP),
        (good(occurred_at=1795600800), RejectReason.INVALID_TIMESTAMP),
        (good(occurred_at="2026-11-25T21:16:00+01:00"), RejectReason.OCCURRED_AFTER_REPORTED),
        (good(description="a" * 4001), RejectReason.DESCRIPTION_TOO_LONG),
        (good(report_id=""), RejectReason.INVALID_FIELD),
        (good(report_id="x" * 129), RejectReason.INVALID_FIELD),
        (good(severity=6), RejectReason.INVALID_FIELD),
        (good(severity="3"), RejectReason.INVALID_FIELD),
        (good(location={"insee": "9122"}), RejectReason.INVALID_FIELD),
    ],
)
def test_rejections_have_the_right_reason(payload: object, reason: RejectReason) -> None:
    result = run(payload)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    assert result.detail


def test_rejection_keeps_report_id_but_never_the_values() -> None:
    result = run(good(category="tapage", description="Jean Dupont 06 12 34 56 78"))
    assert isinstance(result, Rejection)
    assert result.report_id == "r-1"
    assert "Dupont" not in result.detail and "tapage" not in result.detail


def test_occurred_at_within_ten_minutes_after_reported_is_accepted() -> None:
    assert isinstance(run(good(occurred_at="2026-11-25T21:14:59+01:00")), ReportRecord)
