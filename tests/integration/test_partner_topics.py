"""Per-partner topics on the real broker and a real ClickHouse server (issue #21, item 4).

With `VIGIE_PARTNER_TOPIC_PREFIX` set, the worker reads `<prefix><org>.v1` besides the
shared topics, including a topic created while it runs, and takes there only its own org's
reports: `csp-massy` writing as `csp-evry` on `csp-evry`'s topic is dead-lettered
`source_org_not_allowed_on_topic` instead of being stored as `csp-evry`."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import pytest

from agents.core.record import rfc3339
from agents.core.validation import PartnerTopics
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.vigie import Pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def report(rid: str, kind: str, org: str) -> bytes:
    now = time.time()
    return orjson.dumps({
        "report_id": rid, "source": {"kind": kind, "org": org}, "category": "rodeo",
        "occurred_at": rfc3339(now - 600), "reported_at": rfc3339(now - 60),
        "location": {"lat": 48.629, "lon": 2.441}})


def test_a_partner_cannot_write_as_another_on_its_own_topic(
    pipeline_factory: Any, clickhouse_server: ClickHouseServer
) -> None:
    from kafka import KafkaProducer

    p: Pipeline = pipeline_factory(clickhouse_server.url_for("it_partner_topics"))
    topics = PartnerTopics(p.topics["partner"] + ".")
    evry, massy = topics.topic("csp-evry"), topics.topic("csp-massy")
    p.broker.create_topics([evry], partitions=2)
    worker = p.worker(VIGIE_PARTNER_TOPIC_PREFIX=topics.prefix)
    worker.wait_ready(120)

    producer = KafkaProducer(bootstrap_servers=p.broker.bootstrap, acks="all")
    try:
        sends = {
            "evry-own": (evry, report("evry-own", "police_nationale", "csp-evry")),
            "evry-forged": (evry, report("evry-forged", "police_nationale", "csp-massy")),
            "evry-citizen": (evry, report("evry-citizen", "citizen", "csp-evry")),
            "shared": (p.topics["partner"], report("shared", "gendarmerie", "bta-91")),
        }
        for rid, (topic, value) in sends.items():
            producer.send(topic, key=rid.encode(), value=value).get(timeout=30)
    finally:
        producer.close()

    p.wait_for(lambda: p.scalar("SELECT count() FROM reports FINAL") >= 2
               and p.scalar("SELECT count() FROM rejected FINAL") >= 2, 120,
               "2 reports and 2 rejections stored")
    stored = {r["report_id"]: (r["source_kind"], r["source_org"], r["origin_topic"])
              for r in p.store.query(
                  "SELECT report_id, source_kind, source_org, origin_topic FROM reports FINAL")}
    assert stored == {"evry-own": ("police_nationale", "csp-evry", evry),
                      "shared": ("gendarmerie", "bta-91", p.topics["partner"])}
    rows = {r["report_id"]: (r["reason"], r["origin_topic"]) for r in p.store.query(
        "SELECT report_id, reason, origin_topic FROM rejected FINAL")}
    assert rows == {"evry-forged": ("source_org_not_allowed_on_topic", evry),
                    "evry-citizen": ("source_not_allowed_on_topic", evry)}
    letters = {}
    for record in p.read_topic("rejected", 2):
        letter = json.loads(record.value)
        letters[letter["report_id"]] = letter
    forged = letters["evry-forged"]
    assert forged["reason"] == "source_org_not_allowed_on_topic"
    assert (forged["source_kind"], forged["source_org"]) == ("police_nationale", "csp-massy")
    assert forged["origin_topic"] == evry

    # a partner added while the worker runs: its topic is read without a restart (the
    # consumer's next metadata refresh, at most 30 s)
    p.broker.create_topics([massy], partitions=1)
    producer = KafkaProducer(bootstrap_servers=p.broker.bootstrap, acks="all")
    try:
        producer.send(massy, key=b"massy-own",
                      value=report("massy-own", "police_municipale", "csp-massy")).get(30)
    finally:
        producer.close()
    p.wait_for(lambda: p.scalar("SELECT count() FROM reports FINAL") >= 3, 120,
               "the report on the topic created later")
    org = p.scalar("SELECT source_org FROM reports FINAL WHERE report_id = 'massy-own'")
    assert org == "csp-massy"
    assert worker.running, worker.tail()
