"""The ingest stage on per-partner topics (issue #21, item 4): a message on
`<prefix>csp-evry.v1` is taken only from `csp-evry` with a partner kind; the shared topics
keep their kind rules, and a topic that is neither is refused."""

from __future__ import annotations

from typing import Any

import orjson

from agents.core.correlation import partition_key
from agents.core.geo import Geocoder
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.refdata import load_refdata
from agents.ingest import InboundMessage, IngestProcessor
from agents.ports.retry import RetryPolicy
from streams.settings import Settings, partner_topics, topic_kinds
from tests.agents.fakes import FakeKafka, FakeStore, run_inline

PARTNER, CITIZEN = "vigie.reports.partner.v1", "vigie.reports.citizen.v1"
EVRY = "vigie.reports.partner.csp-evry.v1"
TS = 1_710_792_000.0  # 2024-03-18T20:00:00Z


def report(rid: str, kind: str, org: str) -> bytes:
    obj: dict[str, Any] = {
        "report_id": rid, "source": {"kind": kind, "org": org}, "category": "rodeo",
        "occurred_at": "2024-03-18T20:55:00+01:00", "location": {"lat": 48.629, "lon": 2.441}}
    return orjson.dumps(obj)


async def test_per_partner_topics_take_their_own_org_only() -> None:
    refdata = load_refdata()
    settings = Settings(topic_partner=PARTNER, topic_citizen=CITIZEN,
                        partner_topic_prefix="vigie.reports.partner.")
    store, kafka = FakeStore(), FakeKafka()
    processor = IngestProcessor(
        store=store, enricher=Geocoder(refdata, load_jurisdictions(None, refdata)),
        pseudonymiser=Pseudonymiser(b"test-secret-" * 3), send=kafka.send,
        rejected_topic="rej", enriched_topic="enr", partition_key=partition_key,
        retry=RetryPolicy(max_retries=0), run_blocking=run_inline,
        topic_kinds=topic_kinds(settings), partner_topics=partner_topics(settings),
    )
    batch = [
        InboundMessage(EVRY, 0, 1, None, report("own", "police_nationale", "csp-evry"), TS),
        InboundMessage(EVRY, 0, 2, None, report("forged", "police_nationale", "csp-massy"), TS),
        InboundMessage(EVRY, 0, 3, None, report("citizen", "citizen", "csp-evry"), TS),
        # the shared partner topic still takes any partner org
        InboundMessage(PARTNER, 0, 4, None, report("shared", "gendarmerie", "bta-91"), TS),
        InboundMessage(CITIZEN, 0, 5, None, report("citoyen", "citizen", "citoyen"), TS),
        # neither a listed topic nor a per-partner one (not a slug)
        InboundMessage("vigie.reports.partner.CSP.v1", 0, 6, None,
                       report("stray", "police_nationale", "CSP"), TS),
    ]
    outcome = await processor.process(batch)

    stored = {r["report_id"]: (r["source_kind"], r["source_org"], r["origin_topic"])
              for r in store.rows["reports"]}
    assert stored == {
        "own": ("police_nationale", "csp-evry", EVRY),
        "shared": ("gendarmerie", "bta-91", PARTNER),
        "citoyen": ("citizen", "citoyen", CITIZEN),
    }
    assert len(outcome.accepted) == 3
    letters = {letter["report_id"]: letter for _, letter in kafka.on("rej")}
    assert {rid: letter["reason"] for rid, letter in letters.items()} == {
        "forged": "source_org_not_allowed_on_topic",
        "citizen": "source_not_allowed_on_topic",
        "stray": "source_not_allowed_on_topic",
    }
    forged = letters["forged"]
    assert (forged["origin_topic"], forged["source_org"]) == (EVRY, "csp-massy")
    rows = {r["report_id"]: r["reason"] for r in store.rows["rejected"]}
    assert rows["forged"] == "source_org_not_allowed_on_topic"
