"""The ingest stage applies the message's context (issue #21, items 2 and 4): the worker binds
each input topic to its source kinds, and a report's times are checked against its Kafka
timestamp. Before, a citizen-topic message claiming `police_nationale` was stored as police,
and a valid report stamped 2100 was stored and forwarded."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from agents.core.correlation import partition_key
from agents.core.geo import Geocoder
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.refdata import load_refdata
from agents.ingest import InboundMessage, IngestProcessor
from agents.ports.retry import RetryPolicy
from schemas.report import CITIZEN_KINDS, PARTNER_KINDS
from streams.settings import Settings, time_bounds, topic_kinds
from tests.agents.fakes import FakeKafka, FakeStore, run_inline

PARTNER, CITIZEN = "vigie.reports.partner.v1", "vigie.reports.citizen.v1"
TS = 1_710_792_000.0  # 2024-03-18T20:00:00Z


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    refdata = load_refdata()
    return Geocoder(refdata, load_jurisdictions(None, refdata))


def report(rid: str, kind: str, org: str, **changes: Any) -> bytes:
    obj: dict[str, Any] = {
        "report_id": rid, "source": {"kind": kind, "org": org}, "category": "rodeo",
        "occurred_at": "2024-03-18T20:55:00+01:00", "location": {"lat": 48.629, "lon": 2.441}}
    obj.update(changes)
    return orjson.dumps(obj)


def test_the_settings_bind_each_input_topic_to_its_kinds() -> None:
    settings = Settings(topic_partner="p.t", topic_citizen="c.t")
    assert topic_kinds(settings) == {"p.t": PARTNER_KINDS, "c.t": CITIZEN_KINDS}
    bounds = time_bounds(Settings(timestamp_future_tolerance_seconds=60,
                                  timestamp_max_age_days=2))
    assert (bounds.future_s, bounds.max_age_s) == (60.0, 2 * 86400.0)


async def test_kind_off_topic_and_far_future_reports_are_dead_lettered(
    geocoder: Geocoder,
) -> None:
    store, kafka = FakeStore(), FakeKafka()
    processor = IngestProcessor(
        store=store, enricher=geocoder, pseudonymiser=Pseudonymiser(b"test-secret-" * 3),
        send=kafka.send, rejected_topic="rej", enriched_topic="enr",
        partition_key=partition_key, retry=RetryPolicy(max_retries=0), run_blocking=run_inline,
        topic_kinds=topic_kinds(Settings(topic_partner=PARTNER, topic_citizen=CITIZEN)),
    )
    batch = [
        InboundMessage(CITIZEN, 0, 1, None, report("fake-police", "police_nationale",
                                                   "csp-evry"), TS),
        InboundMessage(PARTNER, 0, 2, None, report("real-police", "police_nationale",
                                                   "csp-evry"), TS),
        InboundMessage(PARTNER, 0, 3, None, report("citizen-on-partner", "citizen",
                                                   "citoyen"), TS),
        InboundMessage(CITIZEN, 0, 4, None, report("citizen", "citizen", "citoyen"), TS),
        InboundMessage(CITIZEN, 0, 5, None, report(
            "y2100", "citizen", "citoyen", reported_at="2100-01-01T00:00:00+00:00"), TS),
        InboundMessage("another.topic", 0, 6, None, report("stray", "citizen", "citoyen"), TS),
    ]
    outcome = await processor.process(batch)

    assert sorted(r.report_id for r in outcome.accepted) == ["citizen", "real-police"]
    reasons = {letter["report_id"]: letter["reason"] for _, letter in kafka.on("rej")}
    assert reasons == {
        "fake-police": "source_not_allowed_on_topic",
        "citizen-on-partner": "source_not_allowed_on_topic",
        "y2100": "timestamp_in_future",
        "stray": "source_not_allowed_on_topic",
    }
    stored = {r["report_id"]: r["source_kind"] for r in store.rows["reports"]}
    assert stored == {"citizen": "citizen", "real-police": "police_nationale"}
    assert {r["reason"] for r in store.rows["rejected"]} == set(reasons.values())
