"""Per-partner topics (issue #21, item 4): on `<prefix><org>.v1` only partner kinds with
`source.org` = org are taken. Without them, any partner on the shared partner topic could
write as another (`csp-massy` claiming to be `csp-evry` was stored as `csp-evry`)."""

from __future__ import annotations

import re

import orjson
import pytest
from pydantic import ValidationError

from agents.core.geo import Geocoder
from agents.core.intake import Intake
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportRecord
from agents.core.refdata import load_refdata
from agents.core.validation import PartnerTopics, Rejection, validate_report
from schemas.rejection import RejectReason
from schemas.report import PARTNER_KINDS
from streams.settings import Settings, input_pattern, partner_topics

PSEUDO = Pseudonymiser(b"unit-test-secret-0123456789abcdefghi")
PREFIX = "vigie.reports.partner."
TOPICS = PartnerTopics(PREFIX)
TS = 1_710_792_000.0  # 2024-03-18T20:00:00Z


def report(rid: str, kind: str, org: str) -> bytes:
    return orjson.dumps({
        "report_id": rid, "source": {"kind": kind, "org": org}, "category": "rodeo",
        "occurred_at": "2024-03-18T20:55:00+01:00", "location": {"lat": 48.629, "lon": 2.441}})


def validate(raw: bytes, topic: str) -> ReportRecord | Rejection:
    org = TOPICS.org_of(topic)
    assert org is not None
    return validate_report(raw, message_timestamp=TS, pseudonymiser=PSEUDO,
                           allowed_kinds=TOPICS.kinds, required_org=org)


# ---- topic names -------------------------------------------------------------------------
def test_the_org_of_a_per_partner_topic() -> None:
    assert TOPICS.topic("csp-evry") == "vigie.reports.partner.csp-evry.v1"
    assert TOPICS.org_of("vigie.reports.partner.csp-evry.v1") == "csp-evry"
    assert TOPICS.org_of("vigie.reports.partner." + "a" * 64 + ".v1") == "a" * 64
    for topic in (
        "vigie.reports.partner.v1",  # the shared partner topic: no org
        "vigie.reports.partner..v1",  # empty org
        "vigie.reports.partner." + "a" * 65 + ".v1",  # longer than source.org may be
        "vigie.reports.partner.CSP-Evry.v1",  # not a slug
        "vigie.reports.partner.csp_evry.v1",
        "vigie.reports.partner.csp.evry.v1",  # a dot would make the org ambiguous
        "vigie.reports.partner.csp-evry.v2",
        "vigie.reports.partner.csp-evry.v1.x",
        "vigie.reports.partnerXcsp-evry.v1",  # the prefix's dots are literal
        "x.vigie.reports.partner.csp-evry.v1",
    ):
        assert TOPICS.org_of(topic) is None, topic
    with pytest.raises(ValueError, match="slug"):
        TOPICS.topic("CSP Evry")
    with pytest.raises(ValueError):
        PartnerTopics("")


def test_the_subscription_is_the_named_topics_and_the_per_partner_ones_only() -> None:
    pattern = re.compile(TOPICS.subscription(["vigie.reports.partner.v1",
                                              "vigie.reports.citizen.v1"]))
    # aiokafka matches a subscription with `re.match` (anchored at the start only)
    assert pattern.match("vigie.reports.partner.v1")
    assert pattern.match("vigie.reports.citizen.v1")
    assert pattern.match("vigie.reports.partner.csp-evry.v1")
    for topic in ("vigie.reports.partner.v1x", "vigie.reports.citizenXv1",
                  "vigie.reports.partner.csp-evry.v1\n", "vigie.reports.rejected.v1",
                  "vigie.reports.partner.csp_evry.v1"):
        assert not pattern.match(topic), topic


# ---- validation and intake ---------------------------------------------------------------
def test_another_org_on_a_per_partner_topic_is_rejected() -> None:
    topic = TOPICS.topic("csp-evry")
    forged = validate(report("r-1", "police_nationale", "csp-massy"), topic)
    assert isinstance(forged, Rejection)
    assert forged.reason == RejectReason.SOURCE_ORG_NOT_ALLOWED_ON_TOPIC
    assert forged.report_id == "r-1" and "csp-evry" in forged.detail
    own = validate(report("r-2", "police_nationale", "csp-evry"), topic)
    assert isinstance(own, ReportRecord) and own.source_org == "csp-evry"
    citizen = validate(report("r-3", "citizen", "csp-evry"), topic)
    assert isinstance(citizen, Rejection)
    assert citizen.reason == RejectReason.SOURCE_NOT_ALLOWED_ON_TOPIC
    # the org must be the very slug: no case folding, no prefix match
    for org in ("CSP-EVRY", "csp-evry-2", "csp-evr"):
        out = validate(report("r-4", "police_nationale", org), topic)
        assert isinstance(out, Rejection), org
        assert out.reason == RejectReason.SOURCE_ORG_NOT_ALLOWED_ON_TOPIC


def test_without_a_required_org_any_org_passes() -> None:
    out = validate_report(report("r-1", "police_nationale", "csp-massy"), message_timestamp=TS,
                          pseudonymiser=PSEUDO, allowed_kinds=PARTNER_KINDS)
    assert isinstance(out, ReportRecord) and out.source_org == "csp-massy"


def test_the_intake_dead_letters_a_forged_org_with_its_source() -> None:
    refdata = load_refdata()
    intake: Intake[str] = Intake(pseudonymiser=PSEUDO,
                                 enricher=Geocoder(refdata, load_jurisdictions(None, refdata)))
    sends: list[tuple[str, bytes]] = [
        ("forged", report("r-1", "police_nationale", "csp-massy")),
        ("own", report("r-1", "police_nationale", "csp-evry")),
        ("citizen", report("r-2", "citizen", "csp-evry")),
    ]
    for tag, value in sends:
        intake.add(tag, value, TS, allowed_kinds=TOPICS.kinds, required_org="csp-evry")
    chunk = intake.flush()
    assert [(tag, r.source_org) for tag, r in chunk.accepted] == [("own", "csp-evry")]
    rejected = {tag: r for tag, r in chunk.rejected}
    assert {tag: r.reason for tag, r in rejected.items()} == {
        "forged": RejectReason.SOURCE_ORG_NOT_ALLOWED_ON_TOPIC,
        "citizen": RejectReason.SOURCE_NOT_ALLOWED_ON_TOPIC,
    }
    # the dead letter says who the forged message claimed to be
    forged = rejected["forged"]
    assert (forged.source_kind, forged.source_org) == ("police_nationale", "csp-massy")


# ---- settings ----------------------------------------------------------------------------
def test_per_partner_topics_are_off_by_default() -> None:
    settings = Settings()
    assert partner_topics(settings) is None
    assert input_pattern(settings) == ""


def test_the_prefix_turns_them_on() -> None:
    settings = Settings(partner_topic_prefix=PREFIX, topic_partner="p.v1",
                        topic_citizen="c.v1")
    assert partner_topics(settings) == TOPICS
    pattern = re.compile(input_pattern(settings))
    assert pattern.match("p.v1") and pattern.match("c.v1")
    assert pattern.match("vigie.reports.partner.csp-evry.v1")
    assert not pattern.match("vigie.reports.partner.v1")  # not an input topic here


@pytest.mark.parametrize("prefix", ["vigie reports.", "vigie/reports.", "é.", "a" * 181])
def test_a_prefix_that_no_topic_name_can_have_is_refused(prefix: str) -> None:
    with pytest.raises(ValidationError, match="topic name prefix"):
        Settings(partner_topic_prefix=prefix)


@pytest.mark.parametrize(("prefix", "clash"), [
    ("vigie.reports.", "vigie.reports.rejected.v1"),  # the ingest would read dead letters
    ("vigie.", "vigie.incidents.v1"),
])
def test_a_prefix_that_takes_in_vigies_own_topics_is_refused(prefix: str, clash: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(clash)):
        Settings(partner_topic_prefix=prefix)


def test_the_worker_wires_the_prefix() -> None:
    from streams.worker import ingest_loop_config

    on = ingest_loop_config(Settings(partner_topic_prefix=PREFIX))
    assert re.compile(on.input_pattern).match("vigie.reports.partner.csp-evry.v1")
    assert ingest_loop_config(Settings()).input_pattern == ""
