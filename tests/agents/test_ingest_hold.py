"""agents.ingest_loop while a dependency is down, and the replay count.

- A batch whose writes wait (ClickHouse down) is held: the loop pauses every partition and
  polls now and then (the consumer group keeps the member, nothing new is taken); records of
  a partition assigned meanwhile are put back; input resumes once the batch is written.
- Of the re-deliveries a batch dropped, those whose stored copy came from the very same
  topic/partition/offset are counted as replays, the others as producer re-sends.
- streams.storage.gate: no store call goes through before the schema was ensured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
from aiokafka import TopicPartition

from agents import ingest_loop as loop_module
from agents.ingest import BatchOutcome, InboundMessage, IngestProcessor
from agents.ingest_loop import IngestLoop, IngestLoopConfig
from agents.ports.store import StoreUnavailable
from streams.storage.gate import SchemaFirstStore
from tests.agents.fakes import FakeStore

CONFIG = IngestLoopConfig(kafka_bootstrap="unused:9092", app_id="t", input_topics=("p", "c"),
                          sink_batch_rows=100, sink_batch_seconds=0.1)


class FakeConsumer:
    """The bits of AIOKafkaConsumer the hold uses; `assign_during_poll` simulates a
    partition assigned (by a rebalance) while a poll runs, which returns its records."""

    def __init__(self, partitions: set[TopicPartition]) -> None:
        self.partitions = set(partitions)
        self.paused: set[TopicPartition] = set()
        self.polls = 0
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.assign_during_poll: tuple[TopicPartition, list[Any]] | None = None

    def assignment(self) -> set[TopicPartition]:
        return set(self.partitions)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        self.polls += 1
        if self.assign_during_poll is None:
            return {}
        tp, records = self.assign_during_poll
        self.assign_during_poll = None
        self.partitions.add(tp)
        return {tp: records}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


class HeldProcessor:
    """Its `process` waits until `release` is set (a write waiting for ClickHouse)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.processed: list[int] = []

    async def process(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        await self.release.wait()
        self.processed.append(len(messages))
        return BatchOutcome()


async def until(probe: Any, what: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not probe():
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.005)


def message(offset: int, report_id: str, partition: int = 0) -> InboundMessage:
    return InboundMessage(topic="p", partition=partition, offset=offset, key=None,
                          value=orjson.dumps({"report_id": report_id}), timestamp=0.0)


async def test_a_held_batch_pauses_input_keeps_polling_and_resumes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loop_module, "KEEPALIVE_SECONDS", 0.01)
    tp0, tp1 = TopicPartition("p", 0), TopicPartition("p", 1)
    consumer = FakeConsumer({tp0})
    processor = HeldProcessor()
    loop = IngestLoop(CONFIG, cast(IngestProcessor, processor))
    task = asyncio.ensure_future(
        loop.waiting(cast(Any, consumer), loop.processor.process([message(1, "r1")]), 1))
    await until(lambda: consumer.polls >= 2, "polls while the batch is held")
    assert consumer.paused == {tp0} and not task.done()
    # a rebalance hands over partition 1 during a poll: its records are put back
    consumer.assign_during_poll = (tp1, [SimpleNamespace(offset=42), SimpleNamespace(offset=43)])
    polls = consumer.polls
    await until(lambda: consumer.polls >= polls + 2, "more polls")
    assert consumer.seeks == [(tp1, 42)]
    assert consumer.paused == {tp0, tp1}
    processor.release.set()
    await task
    assert processor.processed == [1]
    assert consumer.paused == set()  # input resumed


async def test_a_quick_batch_does_not_touch_the_consumer() -> None:
    consumer = FakeConsumer({TopicPartition("p", 0)})
    processor = HeldProcessor()
    processor.release.set()
    loop = IngestLoop(CONFIG, cast(IngestProcessor, processor))
    await loop.waiting(cast(Any, consumer), loop.processor.process([message(1, "r1")]), 1)
    assert consumer.polls == 0 and consumer.paused == set()


class SchemaStore(FakeStore):
    def __init__(self, down_for: int) -> None:
        super().__init__()
        self.down_for = down_for
        self.schema_calls = 0
        self.calls: list[str] = []

    def ensure_schema(self) -> None:
        self.schema_calls += 1
        self.calls.append("schema")
        if self.schema_calls <= self.down_for:
            raise StoreUnavailable("schema creation failed: Connection refused (test)")

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self.calls.append("query")
        return []

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.calls.append("insert")


def test_no_call_goes_through_before_the_schema() -> None:
    inner = SchemaStore(down_for=1)
    store = SchemaFirstStore(inner)
    with pytest.raises(StoreUnavailable):
        store.query("SELECT 1")  # ClickHouse down: neither schema nor query
    assert inner.calls == ["schema"]
    store.insert("reports", [{"a": 1}])
    store.query("SELECT 1")
    assert inner.calls == ["schema", "schema", "insert", "query"]  # schema once it worked
