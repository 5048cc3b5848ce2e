"""Correlating a batch hands the event loop back between bundles: while a backlog is caught
up, Kafka heartbeats and timers keep running (a worker that holds the loop for longer than the
consumer session timeout is evicted from its group, and ingestion stalls while it rejoins)."""

from __future__ import annotations

import asyncio

from agents.correlate import CorrelateProcessor
from streams.retry import RetryPolicy
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
