"""agents.ingest_loop's store clock: every batch is taken (forwarded) as it closes, while
the writes and the offset commit wait for the clock (`store_seconds` after the first batch
held, or `sink_batch_rows` rows held); the offsets committed are those of every batch held,
and only after their writes returned."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest
from aiokafka import TopicPartition

from agents import ingest_loop as loop_module
from agents.ingest import BatchOutcome, InboundMessage, IngestProcessor
from agents.ingest_loop import IngestLoop, IngestLoopConfig

TP0 = TopicPartition("p", 0)


class Record:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset = "p", 0, offset
        self.key, self.value, self.timestamp = None, b"{}", 0


class ScriptedConsumer:
    """Hands out one record per scripted poll, each followed by an empty poll (waiting as a
    poll does: the batch closes), then nothing; records the commits."""

    def __init__(self, offsets: list[int], log: list[str]) -> None:
        self.script: list[int | None] = [x for o in offsets for x in (o, None)]
        self.log = log
        self.commits: list[dict[TopicPartition, int]] = []

    def subscribe(self, *_a: Any, **_kw: Any) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return {TP0}

    def pause(self, *_tps: TopicPartition) -> None: ...

    def resume(self, *_tps: TopicPartition) -> None: ...

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None
                      ) -> dict[TopicPartition, list[Any]]:
        offset = self.script.pop(0) if self.script else None
        if offset is not None:
            return {TP0: [Record(offset)]}
        await asyncio.sleep(timeout_ms / 1000 + 0.002)  # the loop truncates to whole ms
        return {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.log.append("commit")
        self.commits.append(dict(offsets))


class ClockedProcessor:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.held = 0

    @property
    def held_rows(self) -> int:
        return self.held

    async def take(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        self.log.append(f"take {[m.offset for m in messages]}")
        self.held += len(messages)
        return BatchOutcome()

    async def flush(self) -> None:
        self.log.append("flush")
        self.held = 0


async def run_until(loop: IngestLoop, log: list[str], entries: int) -> None:
    task = asyncio.ensure_future(loop.run())
    try:
        deadline = asyncio.get_running_loop().time() + 10.0
        while len(log) < entries:
            assert asyncio.get_running_loop().time() < deadline, f"timed out: {log}"
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def clocked(monkeypatch: pytest.MonkeyPatch, offsets: list[int], **config: Any
            ) -> tuple[IngestLoop, ScriptedConsumer, list[str]]:
    log: list[str] = []
    consumer = ScriptedConsumer(offsets, log)
    settings = IngestLoopConfig(kafka_bootstrap="unused:9092", app_id="t", input_topics=("p",),
                                max_skew_s=-1, **config)
    loop = IngestLoop(settings, cast(IngestProcessor, ClockedProcessor(log)))
    monkeypatch.setattr(loop, "make_consumer", lambda: consumer)
    return loop, consumer, log


async def test_two_batches_are_written_and_committed_together_by_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop, consumer, log = clocked(monkeypatch, [5, 6], sink_batch_rows=100,
                                  sink_batch_seconds=0.02, store_seconds=0.3)
    await run_until(loop, log, 4)
    # both batches taken first, one write for both, then one commit past the last
    assert log == ["take [5]", "take [6]", "flush", "commit"]
    assert consumer.commits == [{TP0: 7}]


async def test_held_rows_at_the_bound_are_written_without_waiting_for_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop, consumer, log = clocked(monkeypatch, [5, 6, 7], sink_batch_rows=2,
                                  sink_batch_seconds=0.02, store_seconds=60.0)
    await run_until(loop, log, 4)
    assert log == ["take [5]", "take [6]", "flush", "commit"]
    assert consumer.commits == [{TP0: 7}]


async def test_a_failed_write_of_held_batches_crashes_before_the_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop, consumer, log = clocked(monkeypatch, [5, 6], sink_batch_rows=100,
                                  sink_batch_seconds=0.02, store_seconds=0.2)

    async def failing() -> None:
        log.append("flush failed")
        raise RuntimeError("insert into reports refused (test)")

    monkeypatch.setattr(loop.processor, "flush", failing)

    class Exit(Exception):
        pass

    def crash(reason: str, exc: BaseException | None = None) -> None:
        log.append(f"crash: {reason}")
        raise Exit(reason)

    monkeypatch.setattr(loop_module, "crash", crash)
    with pytest.raises(Exit):
        await asyncio.wait_for(loop.run(), 10.0)
    assert log == ["take [5]", "take [6]", "flush failed",
                   "crash: ingest batch could not be written"]
    assert consumer.commits == []


async def test_the_loop_takes_the_next_batch_while_a_tick_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tick's write runs beside the loop: the next batch is taken meanwhile; its commit
    follows the first tick's, in order."""
    loop, consumer, log = clocked(monkeypatch, [5, 6], sink_batch_rows=100,
                                  sink_batch_seconds=0.02, store_seconds=0.0)
    gate = asyncio.Event()
    processor = cast(ClockedProcessor, loop.processor)

    async def slow_flush() -> None:
        log.append("flush")
        processor.held = 0
        await gate.wait()

    monkeypatch.setattr(processor, "flush", slow_flush)
    task = asyncio.ensure_future(loop.run())
    try:
        for _ in range(2000):
            if "take [6]" in log:
                break
            await asyncio.sleep(0.005)
        assert log[:3] == ["take [5]", "flush", "take [6]"]  # taken during the write
        assert consumer.commits == []
        gate.set()
        for _ in range(2000):
            if len(consumer.commits) == 2:
                break
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert consumer.commits == [{TP0: 6}, {TP0: 7}]
