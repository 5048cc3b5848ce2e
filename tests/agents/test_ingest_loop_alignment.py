"""agents.ingest_loop with event-time alignment, on a fake consumer that hands over a whole
partition's backlog in one fetch (as a catch-up does): batches come in time order across the
partitions, the partition ahead is paused while the one behind has data pending, and a held
batch's keepalive pauses do not undo that (the aligner's pause set is applied again)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiokafka import TopicPartition

from agents import ingest_loop as loop_module
from agents.ingest import BatchOutcome, InboundMessage, IngestProcessor
from agents.ingest_loop import IngestLoop, IngestLoopConfig

A, B = TopicPartition("in", 0), TopicPartition("in", 1)


def config(max_skew_s: float, rows: int = 100) -> IngestLoopConfig:
    return IngestLoopConfig(
        kafka_bootstrap="unused:9092",
        app_id="t",
        input_topics=("in",),
        sink_batch_rows=rows,
        sink_batch_seconds=0.01,
        max_skew_s=max_skew_s,
    )


class BacklogConsumer:
    """Partitions with a backlog each; a fetch hands over `fetch` records of every
    partition that is not paused (from its position), and knows the highwater."""

    def __init__(self, backlog: dict[TopicPartition, list[float]], fetch: int = 1000) -> None:
        self.backlog = backlog
        self.fetch = fetch
        self.pos = dict.fromkeys(backlog, 0)
        self.fetched: set[TopicPartition] = set()
        self.paused: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.backlog)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.backlog[tp]) if tp in self.fetched else None

    async def position(self, tp: TopicPartition) -> int:
        return self.pos[tp]

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        await asyncio.sleep(0)
        out: dict[TopicPartition, list[Any]] = {}
        for tp, times in self.backlog.items():
            if tp in self.paused:
                continue
            self.fetched.add(tp)
            start = self.pos[tp]
            end = min(len(times), start + self.fetch)
            records = [
                SimpleNamespace(
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=i,
                    key=None,
                    value=b"{}",
                    timestamp=int(times[i] * 1000),
                )
                for i in range(start, end)
            ]
            self.pos[tp] = end
            if records:
                out[tp] = records
        return out


def order(batch: Sequence[InboundMessage]) -> list[tuple[int, float]]:
    return [(m.partition, m.timestamp) for m in batch]


def collect(loop: IngestLoop, consumer: BacklogConsumer) -> list[InboundMessage]:
    return asyncio.run(loop.collect(cast(Any, consumer)))


def test_a_backlog_comes_in_time_order_across_partitions() -> None:
    consumer = BacklogConsumer({A: [0.0, 100.0, 200.0, 300.0], B: [50.0, 150.0, 250.0]})
    loop = IngestLoop(config(0.0), cast(IngestProcessor, None))
    batch = collect(loop, consumer)
    assert [t for _, t in order(batch)] == [0.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0]


def test_without_alignment_a_backlog_comes_partition_by_partition() -> None:
    consumer = BacklogConsumer({A: [0.0, 100.0, 200.0, 300.0], B: [50.0, 150.0, 250.0]})
    loop = IngestLoop(config(-1.0), cast(IngestProcessor, None))
    batch = collect(loop, consumer)
    assert [t for _, t in order(batch)] == [0.0, 100.0, 200.0, 300.0, 50.0, 150.0, 250.0]


def test_the_partition_ahead_waits_for_the_one_behind() -> None:
    # B brings one record a fetch: A, far ahead, stays paused until B has caught up
    consumer = BacklogConsumer({A: [1000.0, 1001.0], B: [0.0, 10.0, 20.0]}, fetch=1)
    loop = IngestLoop(config(60.0), cast(IngestProcessor, None))
    batch = collect(loop, consumer)
    assert [t for _, t in order(batch)] == [0.0, 10.0, 20.0, 1000.0, 1001.0]


class HeldProcessor:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def process(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        await self.release.wait()
        return BatchOutcome()


def test_a_held_batch_gives_back_the_alignment_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop_module, "KEEPALIVE_SECONDS", 0.01)

    async def scenario() -> tuple[set[TopicPartition], set[TopicPartition]]:
        consumer = BacklogConsumer({A: [1000.0, 1001.0], B: [0.0, 10.0, 20.0]}, fetch=1)
        processor = HeldProcessor()
        loop = IngestLoop(config(60.0, rows=1), cast(IngestProcessor, processor))
        batch = await loop.collect(cast(Any, consumer))  # B's first record; A waits
        assert order(batch) == [(1, 0.0)]
        task = asyncio.ensure_future(
            loop.waiting(cast(Any, consumer), loop.processor.process(batch), len(batch)))
        while consumer.paused != {A, B}:  # the keepalive paused everything
            await asyncio.sleep(0.005)
        during = set(consumer.paused)
        processor.release.set()
        await task
        return during, set(consumer.paused)

    during, after = asyncio.run(scenario())
    assert during == {A, B}
    assert after == {A}  # A is still ahead: only B resumes
