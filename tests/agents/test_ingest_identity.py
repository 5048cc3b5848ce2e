"""`IngestProcessor.process` with reports that share a `report_id` (in-memory store and
Kafka): the re-delivery check asks the `reports` table by identity, two sources' reports with
one id are both stored and forwarded, and an id re-used with other content is dead-lettered
with its reason and source, never dropped."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from agents.core.correlation import partition_key
from agents.core.geo import Geocoder
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportRecord
from agents.core.refdata import load_refdata
from agents.core.validation import validate_report
from agents.ingest import InboundMessage, IngestProcessor, lookup_chunks, unbundle
from agents.ports.retry import RetryPolicy
from tests.agents.fakes import FakeKafka, FakeStore, run_inline
from tests.conftest import MetricsSince

REJECTED, ENRICHED, PARTNER = "rejected.t", "enriched.t", "vigie.reports.partner.v1"
PSEUDO = Pseudonymiser(b"test-secret-identity-0123456789abcdef")
KAFKA_TIME = 1_710_792_000.0


class StoreOfReports(FakeStore):
    """Answers the ingest's look-ups of `reports` from the rows inserted into it
    (`FakeStore.reports_lookup`), and records what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[Mapping[str, Any]] = []

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        found = self.reports_lookup(sql, params)
        assert found is not None and params is not None
        self.asked.append(params)
        return found[1]


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    refdata = load_refdata()
    return Geocoder(refdata, load_jurisdictions(None, refdata))


def value(org: str, category: str = "cambriolage", kind: str = "police_nationale") -> bytes:
    return orjson.dumps({
        "report_id": "000042",
        "source": {"kind": kind, "org": org},
        "category": category,
        "occurred_at": "2024-03-18T20:30:00+01:00",
        "location": {"lat": 48.629, "lon": 2.441},
    })


def msg(offset: int, data: bytes) -> InboundMessage:
    return InboundMessage(PARTNER, 0, offset, b"000042", data, KAFKA_TIME + offset)


def processor(store: StoreOfReports, kafka: FakeKafka, geocoder: Geocoder) -> IngestProcessor:
    return IngestProcessor(
        store=store, enricher=geocoder, pseudonymiser=PSEUDO, send=kafka.send,
        rejected_topic=REJECTED, enriched_topic=ENRICHED, partition_key=partition_key,
        retry=RetryPolicy(max_retries=0), run_blocking=run_inline,
    )


async def test_identity_across_batches_tables_topics_and_metrics(
    metrics: MetricsSince, geocoder: Geocoder
) -> None:
    store, kafka = StoreOfReports(), FakeKafka()
    ingest = processor(store, kafka, geocoder)

    first = await ingest.process([msg(0, value("csp-evry")), msg(1, value("csp-massy"))])
    assert [(r.source_org, r.report_id) for r in first.accepted] == [
        ("csp-evry", "000042"), ("csp-massy", "000042")]
    stored = store.rows["reports"]
    assert [(r["source_org"], r["content_hash"]) for r in stored] == [
        ("csp-evry", first.accepted[0].content_hash),
        ("csp-massy", first.accepted[1].content_hash),
    ]
    assert all(len(r["content_hash"]) == 32 for r in stored)
    forwarded = [rec for t, _k, v in kafka.sent if t == ENRICHED for rec in unbundle(v)]
    assert sorted(r.source_org for r in forwarded) == ["csp-evry", "csp-massy"]

    # a later batch: an exact re-send, the same id re-used by csp-evry for another report,
    # and a third station's own 000042
    second = await ingest.process([
        msg(2, value("csp-evry")),
        msg(3, value("csp-evry", category="vol")),
        msg(4, value("csp-corbeil")),
    ])
    assert store.asked[-1] == {"ids": ("000042",)}  # csp-massy's 000042 comes back too
    assert [r.source_org for r in second.accepted] == ["csp-corbeil"]
    assert second.redeliveries == 1
    assert [(m.offset, r.reason.value) for m, r in second.rejected] == [
        (3, "id_reused_with_different_content")]

    letters = [v for _k, v in kafka.on(REJECTED)]
    assert len(letters) == 1
    letter = letters[0]
    assert letter["reason"] == "id_reused_with_different_content"
    assert (letter["source_kind"], letter["source_org"], letter["report_id"]) == (
        "police_nationale", "csp-evry", "000042")
    assert base64.b64decode(letter["original_b64"]) == value("csp-evry", category="vol")
    row = store.rows["rejected"][0]
    assert (row["reason"], row["source_kind"], row["source_org"], row["report_id"]) == (
        "id_reused_with_different_content", "police_nationale", "csp-evry", "000042")
    # the report first taken in is kept as it was
    assert [r["category"] for r in store.rows["reports"] if r["source_org"] == "csp-evry"] == [
        "cambriolage"]

    assert metrics.sample("vigie_reports_redelivered_dropped_total") == 1
    assert metrics.sample("vigie_reports_rejected_total",
                          reason="id_reused_with_different_content") == 1
    assert metrics.sample("vigie_reports_accepted_total", source_kind="police_nationale") == 3


def test_the_enriched_topic_carries_no_content_hash() -> None:
    """Workers of a version before the hash read the enriched topic too: a record on it has
    the fields it always had, and a record of theirs (without a hash) is read back."""
    out = validate_report(value("csp-evry"), message_timestamp=KAFKA_TIME, pseudonymiser=PSEUDO)
    assert isinstance(out, ReportRecord) and out.content_hash
    wire = out.to_dict()
    assert "content_hash" not in wire
    back = ReportRecord.from_dict(wire)
    assert back.key == out.key and back.content_hash == ""


def test_lookup_chunks_bound_each_query() -> None:
    ids = [f"{i:04d}-" + "é" * 60 for i in range(500)]  # 125 bytes each in UTF-8
    chunks = lookup_chunks(ids, max_bytes=10_000)
    assert [rid for chunk in chunks for rid in chunk] == ids
    assert all(sum(len(r.encode()) + 4 for r in c) <= 10_000 for c in chunks)
    assert len(chunks) == 7 and lookup_chunks([]) == []
    assert lookup_chunks(["x" * 200], max_bytes=100) == [("x" * 200,)]  # never empty
