"""Correlating a batch hands the event loop back between bundles: while a backlog is caught
up, Kafka heartbeats and timers keep running (a worker that holds the loop for longer than the
consumer session timeout is evicted from its group, and ingestion stalls while it rejoins)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from agents.correlate import CorrelateProcessor, PartitionChanges
from agents.faust_agents import IncidentStates
from agents.ports.retry import RetryPolicy
from tests.agents.fakes import FakeKafka, FakeStore, report, run_inline


def test_the_loop_runs_between_bundles() -> None:
    async def scenario() -> tuple[int, int]:
        processor = CorrelateProcessor(
            store=FakeStore(), send=FakeKafka().send, incidents_topic="incidents",
            retry=RetryPolicy(max_retries=1, base_seconds=0.0), run_blocking=run_inline,
        )
        bundles = [(0, [report(east_m=2000.0 * i, t=60.0 * i)]) for i in range(6)]
        ticks = 0
        stop = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        before = ticks
        changes = await processor.process(bundles, lambda p: [], lambda p: None)
        during = ticks - before
        stop.set()
        await beat
        return during, len(changes[0].states)

    during, incidents = asyncio.run(scenario())
    assert incidents == 6
    assert during >= 6  # the other task ran at least once per bundle


def test_the_loop_runs_while_a_large_batch_is_published() -> None:
    """One bundle of 1,200 reports makes over 1,200 incident versions: their sends (which do
    not suspend when they fit the producer's batch) hand the loop back every 500."""

    async def scenario() -> tuple[list[int], int]:
        kafka = FakeKafka()
        processor = CorrelateProcessor(
            store=FakeStore(), send=kafka.send, incidents_topic="incidents",
            retry=RetryPolicy(max_retries=1, base_seconds=0.0), run_blocking=run_inline,
        )
        bundle = [(0, [report(east_m=2000.0 * i, t=1.0 * i) for i in range(1200)])]
        seen: list[int] = []  # how many versions were sent when the other task ran
        stop = asyncio.Event()

        async def heartbeat() -> None:
            while not stop.is_set():
                seen.append(len(kafka.sent))
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        await processor.process(bundle, lambda p: [], lambda p: None)
        stop.set()
        await beat
        return seen, len(kafka.sent)

    seen, sent = asyncio.run(scenario())
    assert sent == 1200
    assert [n for n in seen if 0 < n < sent] == [499, 999]  # mid-publish, every 500 sends


def test_the_loop_runs_while_a_large_batch_is_persisted() -> None:
    """The changelog records of a batch hand the loop back every 500 too."""

    async def scenario() -> tuple[list[int], int]:
        writes: list[tuple[int, str, Any]] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)

        async def write(
            partition: int, key: str, value: Any, raw: bytes | None = None
        ) -> Awaitable[None]:
            writes.append((partition, key, value))
            return done

        states = IncidentStates({}, write)
        change = PartitionChanges(states={f"inc-{i}": {"version": 1} for i in range(1200)})
        seen: list[int] = []
        stop = asyncio.Event()

        async def heartbeat() -> None:
            while not stop.is_set():
                seen.append(len(writes))
                await asyncio.sleep(0)

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0)
        await states.persist({0: change})
        stop.set()
        await beat
        return seen, len(writes)

    seen, written = asyncio.run(scenario())
    assert written == 1201  # the batch's journal (one part), then the states; no watermark
    assert [n for n in seen if 0 < n < written] == [499, 999]
