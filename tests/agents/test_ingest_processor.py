"""`IngestProcessor.process` on one batch, with an in-memory store and Kafka: the intake's
outcome (re-deliveries against the batch and the `reports` table, enrichment rejections)
reaches the topics, the tables and the metrics."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
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
from agents.ingest import InboundMessage, IngestProcessor, unbundle
from agents.ports.retry import RetryPolicy
from agents.ports.sql import reports
from tests.agents.fakes import FakeKafka, FakeStore, run_inline
from tests.conftest import MetricsSince

REJECTED, ENRICHED, TOPIC = "rejected.t", "enriched.t", "vigie.reports.citizen.v1"
PSEUDO = Pseudonymiser(b"test-secret-" * 3)
EVRY = {"lat": 48.629, "lon": 2.441}


class StoreWithReports(FakeStore):
    """Answers the ingest's "already stored?" query (`reports.STORED_KEYS`) from the
    messages it was given as stored: their identities and content hashes; and where they
    were stored from (`reports.STORED_ORIGINS`): another topic (a producer's re-send)."""

    def __init__(self, *stored: bytes) -> None:
        super().__init__()
        records = [validate_report(v, message_timestamp=-1.0, pseudonymiser=PSEUDO, bounds=None)
                   for v in stored]
        assert all(isinstance(r, ReportRecord) for r in records)
        self.stored = {r.key: r.content_hash for r in records if isinstance(r, ReportRecord)}
        self.queries = 0

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self.queries += 1
        asked = set((params or {}).get("ids", ()))
        if sql == reports.STORED_ORIGINS.sql:
            return [{"report_id": k.report_id, "origin_topic": "elsewhere",
                     "origin_partition": 0, "origin_offset": 0}
                    for k in self.stored if k.report_id in asked]
        assert sql == reports.STORED_KEYS.sql
        return [{"source_kind": k.source_kind, "source_org": k.source_org,
                 "report_id": k.report_id, "content_hash": h}
                for k, h in self.stored.items() if k.report_id in asked]


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    refdata = load_refdata()
    return Geocoder(refdata, load_jurisdictions(None, refdata))


def message(offset: int, value: bytes) -> InboundMessage:
    return InboundMessage(TOPIC, 2, offset, b"k", value, 1_710_792_000.0)


def report(report_id: str, location: dict[str, object]) -> bytes:
    return orjson.dumps({
        "report_id": report_id,
        "source": {"kind": "citizen", "org": "citoyen"},
        "category": "rodeo",
        "occurred_at": "2024-03-18T21:00:00+01:00",
        "location": location,
    })


async def test_one_batch_through_intake_topics_tables_and_metrics(
    metrics: MetricsSince, geocoder: Geocoder
) -> None:
    store, kafka = StoreWithReports(report("old", EVRY)), FakeKafka()
    processor = IngestProcessor(
        store=store, enricher=geocoder, pseudonymiser=Pseudonymiser(b"test-secret-" * 3),
        send=kafka.send, rejected_topic=REJECTED, enriched_topic=ENRICHED,
        partition_key=partition_key, retry=RetryPolicy(max_retries=0), run_blocking=run_inline,
    )
    evry = {"lat": 48.629, "lon": 2.441}
    batch = [
        message(10, report("new", evry)),
        message(11, report("new", evry)),  # re-delivered within the batch
        message(12, report("old", evry)),  # already in the reports table
        message(13, report("paris", {"lat": 48.857, "lon": 2.352})),  # outside the area
        message(14, b"{oops"),
    ]
    outcome = await processor.process(batch)

    assert [r.report_id for r in outcome.accepted] == ["new"]
    assert (outcome.accepted[0].origin_topic, outcome.accepted[0].origin_partition,
            outcome.accepted[0].origin_offset) == (TOPIC, 2, 10)
    assert outcome.redeliveries == 2 and outcome.unlocated == 1
    assert store.queries == 2  # stored? then, for the re-deliveries, stored from where?
    assert outcome.replayed == []  # neither is this very message read again
    assert [(m.offset, r.reason.value) for m, r in outcome.rejected] == [
        (14, "not_json"), (13, "out_of_area")
    ]
    # topics: a dead letter per rejection (original bytes), one bundle with the new report
    letters = [v for _k, v in kafka.on(REJECTED)]
    assert [(d["origin_offset"], d["reason"]) for d in letters] == [
        (14, "not_json"), (13, "out_of_area")
    ]
    assert base64.b64decode(letters[0]["original_b64"]) == b"{oops"
    bundles = [v for t, _k, v in kafka.sent if t == ENRICHED]
    assert [[r.report_id for r in unbundle(b)] for b in bundles] == [["new"]]
    # tables
    assert [(r["report_id"], r["origin_offset"]) for r in store.rows["reports"]] == [("new", 10)]
    assert sorted(r["reason"] for r in store.rows["rejected"]) == ["not_json", "out_of_area"]
    # metrics
    s = metrics.sample
    assert s("vigie_reports_received_total", topic=TOPIC) == 5
    assert s("vigie_reports_redelivered_dropped_total") == 2
    assert s("vigie_enrichment_failures_total") == 1
    assert s("vigie_reports_rejected_total", reason="out_of_area") == 1
    assert s("vigie_reports_rejected_total", reason="not_json") == 1
    assert s("vigie_reports_accepted_total", source_kind="citizen") == 1


async def test_batches_taken_are_forwarded_at_once_and_written_together_by_flush(
    metrics: MetricsSince, geocoder: Geocoder
) -> None:
    """`take` forwards each batch at once and holds its rows; until `flush` wrote them, a
    re-delivery of a held report is dropped as if it were stored and the same id with
    other content is rejected, as against the table; `flush` writes both batches in one
    insert per table, and only then observes the stored latency."""
    store, kafka = StoreWithReports(), FakeKafka()
    processor = IngestProcessor(
        store=store, enricher=geocoder, pseudonymiser=PSEUDO, send=kafka.send,
        rejected_topic=REJECTED, enriched_topic=ENRICHED, partition_key=partition_key,
        retry=RetryPolicy(max_retries=0), run_blocking=run_inline,
    )
    first = await processor.take([message(10, report("a", EVRY))])
    assert [r.report_id for r in first.accepted] == ["a"]
    assert len(kafka.on(ENRICHED)) == 1 and store.inserts == []
    moved = {"lat": 48.631, "lon": 2.441}
    second = await processor.take([
        message(11, report("a", EVRY)),  # re-delivered: held, not stored yet
        message(12, report("a", moved)),  # the same id, other content
        message(13, report("b", EVRY)),
    ])
    assert [r.report_id for r in second.accepted] == ["b"] and second.redeliveries == 1
    assert [r.reason.value for _m, r in second.rejected] == ["id_reused_with_different_content"]
    assert len(kafka.on(ENRICHED)) == 2 and len(kafka.on(REJECTED)) == 1
    assert store.inserts == [] and processor.held_rows == 3
    assert metrics.sample("vigie_end_to_end_latency_seconds_count", stage="stored") == 0

    await processor.flush()
    assert store.inserts == [("reports", 2), ("rejected", 1)]
    assert [r["report_id"] for r in store.rows["reports"]] == ["a", "b"]
    assert processor.held_rows == 0
    assert metrics.sample("vigie_end_to_end_latency_seconds_count", stage="stored") == 2
    await processor.flush()  # nothing held: nothing written
    assert len(store.inserts) == 2


async def test_batches_taken_while_a_flush_writes_are_held_for_the_next_one(
    geocoder: Geocoder,
) -> None:
    """`flush` writes the batches taken before it, while the loop goes on taking: a batch
    taken during the write is neither written by it nor dropped when it ends (held for
    the next `flush`), and a re-delivery of a report being written is dropped as stored."""
    store, kafka = StoreWithReports(), FakeKafka()
    gate = asyncio.Event()

    async def slow_inserts(fn: Callable[..., Any], *args: Any) -> Any:
        if getattr(fn, "__name__", "") == "insert":
            await gate.wait()
        return fn(*args)

    processor = IngestProcessor(
        store=store, enricher=geocoder, pseudonymiser=PSEUDO, send=kafka.send,
        rejected_topic=REJECTED, enriched_topic=ENRICHED, partition_key=partition_key,
        retry=RetryPolicy(max_retries=0), run_blocking=slow_inserts,
    )
    await processor.take([message(10, report("a", EVRY))])
    writing = asyncio.ensure_future(processor.flush())
    await asyncio.sleep(0.01)  # the write of "a" has begun and waits for the store
    during = await processor.take([
        message(11, report("a", EVRY)),  # re-delivered while being written
        message(12, report("b", EVRY)),
    ])
    assert [r.report_id for r in during.accepted] == ["b"] and during.redeliveries == 1
    gate.set()
    await writing
    assert [r["report_id"] for r in store.rows["reports"]] == ["a"]
    assert processor.held_rows == 1  # "b", for the next flush
    await processor.flush()
    assert [r["report_id"] for r in store.rows["reports"]] == ["a", "b"]
    assert processor.held_rows == 0
