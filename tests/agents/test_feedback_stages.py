"""The stages' feedback (in-memory store and Kafka): the ingest stage tells `recu` and
`rejete` once per report (again, byte for byte, for a message read again), records them
after the report's row and never looks them up; the correlate stage tells `rattache` once
per report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import pytest

from agents.core.correlation import partition_key
from agents.core.geo import Geocoder
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.refdata import load_refdata
from agents.correlate import CorrelateProcessor
from agents.feedback import FeedbackSink
from agents.ingest import InboundMessage, IngestProcessor
from agents.ports.blocking import BlockingRunner
from agents.ports.retry import RetryPolicy
from agents.ports.sql import feedback as sql
from agents.ports.sql import reports
from agents.ports.store import StoreError
from schemas.feedback import FEEDBACK_FIELDS, Feedback
from tests.agents.fakes import FakeKafka, FakeStore, report, run_inline
from tests.conftest import MetricsSince

FEEDBACK, REJECTED, ENRICHED = "feedback.t", "rejected.t", "enriched.t"
CITIZEN = "vigie.reports.citizen.v1"
PSEUDO = Pseudonymiser(b"test-secret-feedback-0123456789abcdef")
KAFKA_TIME = 1_710_792_000.0


class TableStore(FakeStore):
    """Answers the look-ups of the stages (stored reports, recorded transitions and their
    payloads) from the rows inserted so far, as the tables would; `fail_table`: inserts into
    that table raise; `order`: tables written."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_table: str | None = None
        self.order: list[str] = []
        self.asked: list[str] = []  # the queries run, by name

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if table == self.fail_table:
            raise StoreError(f"insert into {table} refused (test)")
        self.order.append(table)
        super().insert(table, rows)

    def query(self, sql_text: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        assert params is not None
        found = self.reports_lookup(sql_text, params)
        if found is not None:
            self.asked.append(found[0].name)
            return found[1]
        cols: tuple[str, ...]
        if sql_text == sql.STORED_IDS.sql:
            self.asked.append(sql.STORED_IDS.name)
            rows = [r for r in self.rows.get(sql.TABLE, []) if r["status"] in params["statuses"]]
            cols = ("feedback_id",)
        elif sql_text == sql.PAYLOADS.sql:
            self.asked.append(sql.PAYLOADS.name)
            rows = [r for r in self.rows.get(sql.TABLE, []) if r["feedback_id"] in params["fids"]]
            cols = ("feedback_id", "payload")
        else:
            self.asked.append(sql.RECORDED.name)
            assert sql_text == sql.RECORDED.sql
            rows = [r for r in self.rows.get(sql.TABLE, []) if r["status"] in params["statuses"]]
            cols = ("source_kind", "source_org", "report_id", "status")
        return [{k: r[k] for k in cols} for r in rows if r["report_id"] in params["ids"]]


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    refdata = load_refdata()
    return Geocoder(refdata, load_jurisdictions(None, refdata))


def citizen(rid: str, category: str = "cambriolage", contact: str | None = None) -> bytes:
    body: dict[str, Any] = {
        "report_id": rid,
        "source": {"kind": "citizen", "org": "citoyen"},
        "category": category,
        "occurred_at": "2024-03-18T20:30:00+01:00",
        "location": {"lat": 48.629, "lon": 2.441},
        "description": "Mon voisin M. Dupont a vu deux hommes",
    }
    if contact:
        body["reporter"] = {"contact": contact}
    return orjson.dumps(body)


def batch() -> list[InboundMessage]:
    values = [
        citizen("C1", contact="+33612345678"),
        citizen("C2", category="licorne"),  # unknown category: rejected, identity readable
        b"{not json",  # no identity: no one to tell
        citizen("C3"),
    ]
    return [InboundMessage(CITIZEN, 0, i, None, v, KAFKA_TIME + i) for i, v in enumerate(values)]


def ingest_stage(store: TableStore, kafka: FakeKafka, geocoder: Geocoder,
                 run_blocking: BlockingRunner = run_inline) -> IngestProcessor:
    retry = RetryPolicy(max_retries=0)
    sink = FeedbackSink(
        store=store, send=kafka.send, topic=FEEDBACK, retry=retry, run_blocking=run_blocking
    )
    return IngestProcessor(
        store=store,
        enricher=geocoder,
        pseudonymiser=PSEUDO,
        send=kafka.send,
        rejected_topic=REJECTED,
        enriched_topic=ENRICHED,
        partition_key=partition_key,
        retry=retry,
        run_blocking=run_blocking,
        feedback_sink=sink,
    )


def told(kafka: FakeKafka) -> list[tuple[str, str]]:
    return [(m["report_id"], m["status"]) for _k, m in kafka.on(FEEDBACK)]


async def test_ingest_tells_recu_and_rejete_once_across_replays(
    geocoder: Geocoder, metrics: MetricsSince
) -> None:
    store, kafka = TableStore(), FakeKafka()
    stage = ingest_stage(store, kafka, geocoder)

    await stage.process(batch())
    assert told(kafka) == [("C1", "recu"), ("C3", "recu"), ("C2", "rejete")]
    # the rows of the feedback are written after the reports': a `recu` recorded is of a
    # report stored
    assert store.order.index(sql.TABLE) > store.order.index("reports")
    # and never looked up: what the ingest tells is a function of its message alone
    assert sql.STORED_IDS.name not in store.asked and sql.PAYLOADS.name not in store.asked
    messages = kafka.on(FEEDBACK)
    for key, message in messages:
        assert set(message) == FEEDBACK_FIELDS  # nothing else: no contact, no description
        Feedback.model_validate(message)
        assert orjson.loads(key or b"") == ["citizen", "citoyen", message["report_id"]]
    rejete = messages[2][1]
    assert rejete["reason"] == "unknown_category"
    assert rejete["message"] == "Le type de signalement n'est pas reconnu."
    assert rejete["at"] == "2024-03-18T20:00:01Z"  # the message's Kafka time: deterministic
    assert b"Dupont" not in b"".join(v for _t, _k, v in kafka.sent if _t == FEEDBACK)
    assert metrics.sample("vigie_report_feedback_total", status="recu") == 2
    assert metrics.sample("vigie_report_feedback_total", status="rejete") == 1

    # the same batch again (a replay after the commit was lost): the reports read again are
    # told `recu` again, byte for byte (a crash may have come between their rows and their
    # transitions'); the rejected message's transition is recorded: not told again
    first = [v for t, _k, v in kafka.sent if t == FEEDBACK]
    await stage.process(batch())
    assert [v for t, _k, v in kafka.sent if t == FEEDBACK][3:] == first[:2]
    rows = store.rows[sql.TABLE]  # written again: the table (ReplacingMergeTree) folds them
    assert sorted((r["report_id"], r["status"]) for r in rows[:3]) == [
        ("C1", "recu"),
        ("C2", "rejete"),
        ("C3", "recu"),
    ]
    assert {(r["feedback_id"], r["payload"]) for r in rows[3:]} <= {
        (r["feedback_id"], r["payload"]) for r in rows[:3]}

    # another rejected message of a report taken in: its status stands
    await stage.process([InboundMessage(CITIZEN, 0, 9, None, citizen("C1", "licorne"), 0.0)])
    assert len(told(kafka)) == 5


async def test_held_transitions_count_as_told_until_the_store_clock_writes_them(
    geocoder: Geocoder,
) -> None:
    """Batches taken and not yet written (`IngestProcessor.take`, the loop's store clock):
    the same batch again tells nothing new, although no table holds anything yet; `flush`
    then writes each transition once, before the reports."""
    store, kafka = TableStore(), FakeKafka()
    stage = ingest_stage(store, kafka, geocoder)
    await stage.take(batch())
    await stage.take(batch())
    assert told(kafka) == [("C1", "recu"), ("C3", "recu"), ("C2", "rejete")]
    assert store.order == []
    await stage.flush()
    assert store.order == ["reports", "rejected", sql.TABLE]
    assert sorted((r["report_id"], r["status"]) for r in store.rows[sql.TABLE]) == [
        ("C1", "recu"), ("C2", "rejete"), ("C3", "recu")]


async def test_a_report_taken_while_a_tick_is_written_has_its_transition_in_the_next(
    geocoder: Geocoder,
) -> None:
    """A batch taken while `flush` writes the reports (the ingest loop goes on taking)
    belongs to the next tick, its transition too: no `recu` is recorded before its report
    is stored."""
    store, kafka = TableStore(), FakeKafka()
    gate = asyncio.Event()

    async def slow_reports(fn: Callable[..., Any], *args: Any) -> Any:
        if getattr(fn, "__name__", "") == "insert" and args[0] == "reports":
            await gate.wait()
        return fn(*args)

    stage = ingest_stage(store, kafka, geocoder, run_blocking=slow_reports)
    await stage.take([InboundMessage(CITIZEN, 0, 0, None, citizen("C1"), KAFKA_TIME)])
    writing = asyncio.ensure_future(stage.flush())
    await asyncio.sleep(0.01)  # C1's report is being written
    await stage.take([InboundMessage(CITIZEN, 0, 1, None, citizen("C3"), KAFKA_TIME + 1)])
    assert told(kafka) == [("C1", "recu"), ("C3", "recu")]
    gate.set()
    await writing
    assert [r["report_id"] for r in store.rows["reports"]] == ["C1"]
    assert [r["report_id"] for r in store.rows[sql.TABLE]] == ["C1"]
    await stage.flush()
    assert [r["report_id"] for r in store.rows["reports"]] == ["C1", "C3"]
    assert [r["report_id"] for r in store.rows[sql.TABLE]] == ["C1", "C3"]
    assert store.order == ["reports", sql.TABLE, "reports", sql.TABLE]


async def test_a_crash_before_the_reports_are_stored_tells_the_same_bytes_again(
    geocoder: Geocoder,
) -> None:
    store, kafka = TableStore(), FakeKafka()
    stage = ingest_stage(store, kafka, geocoder)
    store.fail_table = "reports"
    with pytest.raises(Exception):  # noqa: B017  # the retries are exhausted: the worker exits
        await stage.process(batch())
    first = [v for t, _k, v in kafka.sent if t == FEEDBACK]
    assert len(first) == 3 and sql.TABLE not in store.rows  # nothing recorded
    store.fail_table = None  # the next worker replays the batch from the last commit
    await ingest_stage(store, kafka, geocoder).process(batch())
    again = [v for t, _k, v in kafka.sent if t == FEEDBACK][3:]
    assert again == first  # every transition told again, byte for byte
    ids = {(r["report_id"], r["status"]): r["feedback_id"] for r in store.rows[sql.TABLE]}
    assert len(ids) == 3 and len(store.rows[sql.TABLE]) == 3


async def test_a_crash_between_the_reports_and_their_transitions_records_them_on_replay(
    geocoder: Geocoder, metrics: MetricsSince
) -> None:
    """The reports stored, their `recu` not recorded (the worker died between the two
    writes): the replay reads the same messages again, finds their reports stored from
    those very messages and tells `recu` again, the same bytes, which records them; a
    producer's re-send of a stored report (another message) is told nothing."""
    store, kafka = TableStore(), FakeKafka()
    store.fail_table = sql.TABLE
    with pytest.raises(Exception):  # noqa: B017
        await ingest_stage(store, kafka, geocoder).process(batch())
    assert [r["report_id"] for r in store.rows["reports"]] == ["C1", "C3"]
    first = [v for t, _k, v in kafka.sent if t == FEEDBACK]
    store.fail_table = None
    resent = citizen("C1", contact="+33612345678")  # the same report, another message
    replay = [*batch(), InboundMessage(CITIZEN, 1, 7, None, resent, KAFKA_TIME + 60)]
    outcome = await ingest_stage(store, kafka, geocoder).process(replay)
    assert outcome.redeliveries == 3 and len(outcome.replayed) == 2
    assert metrics.sample("vigie_reports_replayed_dropped_total") == 2
    assert metrics.sample("vigie_reports_redelivered_dropped_total") == 3
    assert [v for t, _k, v in kafka.sent if t == FEEDBACK][3:] == first
    assert sorted((r["report_id"], r["status"]) for r in store.rows[sql.TABLE]) == [
        ("C1", "recu"), ("C2", "rejete"), ("C3", "recu")]
    # a batch without re-deliveries asks nothing of the reports' origins
    asked = len(store.asked)
    await ingest_stage(store, kafka, geocoder).process(
        [InboundMessage(CITIZEN, 0, 20, None, citizen("C4"), KAFKA_TIME + 90)])
    assert store.asked[asked:] == [reports.STORED_KEYS.name]


def correlate_stage(kafka: FakeKafka, store: FakeStore) -> CorrelateProcessor:
    retry = RetryPolicy(max_retries=0)
    sink = FeedbackSink(
        store=store, send=kafka.send, topic=FEEDBACK, retry=retry, run_blocking=run_inline
    )
    return CorrelateProcessor(
        store=store,
        send=kafka.send,
        incidents_topic="incidents.t",
        retry=retry,
        run_blocking=run_inline,
        feedback_sink=sink,
    )


async def test_correlation_tells_rattache_once_per_report() -> None:
    kafka, store = FakeKafka(), FakeStore()
    stage = correlate_stage(kafka, store)
    a, b, c = report(t=0), report(east_m=40, t=300), report(east_m=-30, t=600)
    far = report(east_m=9000, t=700)  # its own incident: nothing to attach to
    for records in ([a], [b], [c, far]):
        await stage.process([(0, records)], lambda _p: [], lambda _p: None)
    messages = [m for _k, m in kafka.on(FEEDBACK)]
    assert [(m["report_id"], m["other_reports"]) for m in messages] == [
        (a.report_id, 1),
        (b.report_id, 1),
        (c.report_id, 2),
    ]
    assert {m["status"] for m in messages} == {"rattache"}
    incident = {m["incident_id"] for m in messages}
    assert len(incident) == 1 and next(iter(incident)).startswith("inc-")
    assert [r["report_id"] for r in store.rows[sql.TABLE]] == [
        a.report_id,
        b.report_id,
        c.report_id,
    ]


async def test_a_rattache_told_again_after_a_restore_is_the_first_bytes() -> None:
    """A restarted correlator whose restored state differs from the first run's (here: an
    empty one whose watermark a later report has moved on, as a changelog ahead of the
    committed offsets would) recomputes a join with another `at`: it sends the recorded
    transition's bytes again, under the same `feedback_id`, and writes no second row."""
    kafka, store = FakeKafka(), TableStore()
    a, b = report(t=0), report(east_m=40, t=300)
    later = report(east_m=9000, t=3600)  # elsewhere, an hour later: moves the watermark
    first_stage = correlate_stage(kafka, store)
    for records in ([a], [b]):
        await first_stage.process([(0, records)], lambda _p: [], lambda _p: None)
    first = [v for t, _k, v in kafka.sent if t == FEEDBACK]
    assert len(first) == 2

    # new transitions never read the wide payload column, only which ones are recorded
    assert sql.STORED_IDS.name in store.asked and sql.PAYLOADS.name not in store.asked

    restarted = correlate_stage(kafka, store)
    await restarted.process([(0, [later, a, b])], lambda _p: [], lambda _p: None)
    assert sql.PAYLOADS.name in store.asked  # the recorded ones' payloads, sent again
    again = [v for t, _k, v in kafka.sent if t == FEEDBACK][2:]
    recomputed = [m for v in again for m in [orjson.loads(v)]]
    assert [m["report_id"] for m in recomputed] == [a.report_id, b.report_id]
    assert again == first  # byte for byte, not the recomputed `at`
    assert len(store.rows[sql.TABLE]) == 2
