"""A report's identity is (source kind, source org, report_id) — `report_id` is unique per
source system only (contract v1) — and an exact re-delivery is the same identity with the
same content. Validation, the intake (real geocoder), the correlation engine and the
incident message all follow it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from agents.core.correlation import Correlator, incident_json, incident_model
from agents.core.geo import Geocoder
from agents.core.intake import Intake
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportKey, ReportRecord
from agents.core.refdata import load_refdata
from agents.core.validation import validate_report
from schemas.incident import Incident
from schemas.rejection import RejectReason
from tests.agents.fakes import report as enriched

PSEUDO = Pseudonymiser(b"unit-test-secret-0123456789abcdefghi")
KAFKA_TIME = 1_710_792_000.0  # 2024-03-18 20:00 UTC
REUSED = RejectReason.ID_REUSED_WITH_DIFFERENT_CONTENT


def message(
    report_id: str = "000042",
    kind: str = "police_nationale",
    org: str = "csp-evry",
    **changes: Any,
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "report_id": report_id,
        "source": {"kind": kind, "org": org, "channel": "api"},
        "category": "cambriolage",
        "occurred_at": "2024-03-18T20:30:00+01:00",
        "reported_at": "2024-03-18T20:45:00+01:00",
        "location": {"lat": 48.629, "lon": 2.441, "accuracy_m": 15},
        "description": "porte fracturée",
        "severity": 3,
    }
    msg.update(changes)
    return msg


def raw(msg: dict[str, Any]) -> bytes:
    return orjson.dumps(msg)


def record(value: bytes, kafka_time: float = KAFKA_TIME) -> ReportRecord:
    out = validate_report(value, message_timestamp=kafka_time, pseudonymiser=PSEUDO)
    assert isinstance(out, ReportRecord), out
    return out


# ---- content ---------------------------------------------------------------------------------
def test_the_content_hash_ignores_the_form_and_sees_every_field() -> None:
    base = record(raw(message())).content_hash
    assert len(base) == 32
    same_report_written_otherwise = [
        # keys in another order, other spacing, an unknown field, times in UTC
        b'{"severity":3,"description":"porte fractur\xc3\xa9e","report_id":"000042",'
        b' "category":"cambriolage","source":{"org":"csp-evry","channel":"api",'
        b'"kind":"police_nationale"},"location":{"accuracy_m":15,"lon":2.441,"lat":48.629},'
        b'"occurred_at":"2024-03-18T19:30:00Z","reported_at":"2024-03-18T19:45:00+00:00",'
        b'"x_partner_field":1}',
    ]
    for value in same_report_written_otherwise:
        assert record(value).content_hash == base
    other_content = [
        message(category="vol"),
        message(occurred_at="2024-03-18T20:31:00+01:00"),
        message(reported_at="2024-03-18T20:46:00+01:00"),
        message(location={"lat": 48.629, "lon": 2.442, "accuracy_m": 15}),
        message(location={"insee": "91228"}),
        message(description="porte fracturée, vitre brisée"),
        message(description=None),
        message(severity=4),
        message(reporter={"contact": "06 12 34 56 78"}),
        message(source={"kind": "police_nationale", "org": "csp-evry", "channel": "radio"}),
    ]
    hashes = {record(raw(m)).content_hash for m in other_content}
    assert base not in hashes and len(hashes) == len(other_content)


def test_a_resend_without_reported_at_keeps_its_content_at_another_kafka_time() -> None:
    """Without `reported_at` the record's is the Kafka timestamp, which a re-send does not
    keep: it is not part of the content."""
    msg = message()
    del msg["reported_at"]
    first, resent = record(raw(msg), KAFKA_TIME), record(raw(msg), KAFKA_TIME + 3600.0)
    assert first.reported_at != resent.reported_at
    assert first.content_hash == resent.content_hash
    assert first.content_hash != record(raw(message())).content_hash  # reported_at given


def test_the_content_hash_reveals_no_contact_without_the_key() -> None:
    """The contact enters through its keyed hash: another key gives another content hash."""
    value = raw(message(reporter={"contact": "+33612345678"}))
    mine = record(value).content_hash
    other = validate_report(value, message_timestamp=KAFKA_TIME,
                            pseudonymiser=Pseudonymiser(b"another-secret-0123456789abcdefghij"))
    assert isinstance(other, ReportRecord) and other.content_hash != mine


# ---- the intake ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    refdata = load_refdata()
    return Geocoder(refdata, load_jurisdictions(None, refdata))


def run(geocoder: Geocoder, values: list[bytes], stored: dict[ReportKey, str] | None = None,
        ) -> tuple[list[tuple[int, ReportRecord]], list[tuple[int, Any]], int]:
    it: Intake[int] = Intake(pseudonymiser=PSEUDO, enricher=geocoder)
    for tag, value in enumerate(values):
        it.add(tag, value, KAFKA_TIME)
    chunk = it.flush(stored)
    return chunk.accepted, chunk.rejected, chunk.redeliveries


def test_two_sources_may_use_the_same_id(geocoder: Geocoder) -> None:
    values = [
        raw(message(org="csp-evry")),
        raw(message(org="csp-massy", category="vol")),
        raw(message(kind="gendarmerie", org="csp-evry")),
    ]
    accepted, rejected, redeliveries = run(geocoder, values)
    assert [(tag, rec.key) for tag, rec in accepted] == [
        (0, ReportKey("police_nationale", "csp-evry", "000042")),
        (1, ReportKey("police_nationale", "csp-massy", "000042")),
        (2, ReportKey("gendarmerie", "csp-evry", "000042")),
    ]
    assert not rejected and redeliveries == 0


def test_a_citizen_cannot_take_a_police_id_in_advance(geocoder: Geocoder) -> None:
    squat = raw(message(kind="citizen", org="csp-evry", category="autre"))
    police = raw(message())
    accepted, rejected, redeliveries = run(geocoder, [squat, police])
    assert [rec.source_kind for _, rec in accepted] == ["citizen", "police_nationale"]
    assert not rejected and redeliveries == 0


def test_an_id_resent_with_other_content_is_rejected_never_dropped(geocoder: Geocoder) -> None:
    first, exact, changed = raw(message()), raw(message()), raw(message(category="vol"))
    accepted, rejected, redeliveries = run(geocoder, [first, exact, changed, exact])
    assert [tag for tag, _ in accepted] == [0]
    assert redeliveries == 2  # the exact copies only
    assert [(tag, r.reason) for tag, r in rejected] == [(2, REUSED)]
    rejection = rejected[0][1]
    assert (rejection.source_kind, rejection.source_org, rejection.report_id) == (
        "police_nationale", "csp-evry", "000042")
    assert "vol" not in rejection.detail and "cambriolage" not in rejection.detail


def test_the_store_settles_each_identity_against_what_it_holds(geocoder: Geocoder) -> None:
    stored_msg, other = message(), message(category="vol")
    key = ReportKey("police_nationale", "csp-evry", "000042")
    stored = {key: record(raw(stored_msg)).content_hash}
    # the batch's first copy differs from the stored report, its second is a re-delivery of it
    accepted, rejected, redeliveries = run(geocoder, [raw(other), raw(stored_msg)], stored)
    assert not accepted and redeliveries == 1
    assert [(tag, r.reason) for tag, r in rejected] == [(0, REUSED)]
    # a row stored before content hashes ("") matches any content: a re-delivery, as before
    accepted, rejected, redeliveries = run(geocoder, [raw(other)], {key: ""})
    assert not accepted and not rejected and redeliveries == 1
    # another source's stored report with this id changes nothing for this one
    elsewhere = {ReportKey("police_nationale", "csp-massy", "000042"): "f" * 32}
    accepted, rejected, redeliveries = run(geocoder, [raw(other)], elsewhere)
    assert [rec.key for _, rec in accepted] == [key] and not rejected


def test_memory_across_flushes_rejects_a_later_change(geocoder: Geocoder) -> None:
    it: Intake[int] = Intake(pseudonymiser=PSEUDO, enricher=geocoder)
    it.add(0, raw(message()), KAFKA_TIME)
    assert len(it.flush().accepted) == 1
    it.add(1, raw(message()), KAFKA_TIME)
    it.add(2, raw(message(severity=5)), KAFKA_TIME)
    chunk = it.flush()
    assert chunk.redeliveries == 1 and not chunk.accepted
    assert [(tag, r.reason) for tag, r in chunk.rejected] == [(2, REUSED)]


def test_rejections_carry_the_readable_source(geocoder: Geocoder) -> None:
    values = [
        raw(message(category="inconnue")),  # validation: kind and org readable
        raw(message(kind="martian", category="inconnue")),  # not a contract kind
        raw(message(location={"lat": 48.857, "lon": 2.352})),  # enrichment: out of area
        b"{not json",
    ]
    _, rejected, _ = run(geocoder, values)
    got = {tag: (r.reason, r.report_id, r.source_kind, r.source_org) for tag, r in rejected}
    assert got == {
        0: (RejectReason.UNKNOWN_CATEGORY, "000042", "police_nationale", "csp-evry"),
        1: (RejectReason.UNKNOWN_SOURCE_KIND, "000042", None, "csp-evry"),
        2: (RejectReason.OUT_OF_AREA, "000042", "police_nationale", "csp-evry"),
        3: (RejectReason.NOT_JSON, None, None, None),
    }


# ---- correlation and the incident message -----------------------------------------------------
def same_id(kind: str, org: str, east_m: float = 0.0) -> ReportRecord:
    rec = enriched(kind=kind, org=org, east_m=east_m)
    rec.report_id = "000042"
    return rec


def test_the_engine_keeps_two_sources_reports_with_one_id() -> None:
    engine = Correlator()
    police = engine.process(same_id("police_nationale", "csp-evry"))
    citizen = engine.process(same_id("citizen", "citoyen", east_m=40.0))
    assert police and citizen, "the second report is not a re-delivery of the first"
    last = citizen[-1]
    assert last["report_ids"] == ["000042", "000042"]
    assert last["report_source_kinds"] == ["police_nationale", "citizen"]
    assert last["report_source_orgs"] == ["csp-evry", "citoyen"]
    assert engine.process(same_id("citizen", "citoyen", east_m=40.0)) == []  # a re-delivery


def test_same_org_and_id_under_two_kinds_found_two_incidents() -> None:
    """Far apart, each founds its own incident, with its own id (the id is derived from the
    founding report's identity, not from its org and id alone)."""
    engine = Correlator()
    a = engine.process(same_id("police_nationale", "mairie-91228"))
    b = engine.process(same_id("police_municipale", "mairie-91228", east_m=20_000.0))
    assert a[-1]["incident_id"] != b[-1]["incident_id"]
    assert len(engine) == 2


def test_the_incident_message_lists_each_reports_identity() -> None:
    engine = Correlator()
    engine.process(same_id("police_nationale", "csp-evry"))
    version = engine.process(same_id("citizen", "citoyen", east_m=40.0))[-1]
    sent = orjson.loads(incident_json(version))
    assert list(zip(sent["report_source_kinds"], sent["report_source_orgs"], sent["report_ids"],
                    strict=True)) == [
        ("police_nationale", "csp-evry", "000042"),
        ("citizen", "citoyen", "000042"),
    ]
    assert incident_model(version).report_source_orgs == ["csp-evry", "citoyen"]
    # a version of before the addition still validates (v1 consumers, old messages)
    old = {k: v for k, v in sent.items() if not k.startswith("report_source_")}
    assert Incident.model_validate(old).report_source_kinds == []
    with pytest.raises(ValidationError, match="must match report_ids"):
        Incident.model_validate({**sent, "report_source_orgs": ["csp-evry"]})
