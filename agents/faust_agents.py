"""Thin Faust agents: they move messages between Kafka and the processors, nothing more.

Acks are manual: `noack_take` hands over a batch without acking it; the batch is acked only
after the processor returns (every write confirmed). A processor that still fails after its
bounded retries ends the process (`streams.runtime.crash`), so the batch is replayed by the
next run from the last committed offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import faust

from agents.ingest import InboundMessage, IngestProcessor
from streams.runtime import crash
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)


def inbound(event: Any) -> InboundMessage:
    msg = event.message
    return InboundMessage(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=msg.key,
        value=msg.value if isinstance(msg.value, bytes) else bytes(msg.value or b""),
        timestamp=float(msg.timestamp or 0.0),
    )


async def ack_all(stream: Any, events: Sequence[Any]) -> None:
    for event in events:
        await stream.ack(event)


async def declare_outputs(topics: Topics) -> None:
    """Create the topics this worker writes to (consumed ones are declared by Faust)."""
    for topic in (topics.rejected, topics.enriched, topics.incidents, topics.alerts,
                  topics.alert_actions):
        await topic.maybe_declare()


def install_ingest(
    app: faust.App, topics: Topics, settings: Settings, processor: IngestProcessor
) -> Any:
    @app.agent(topics.reports, name="vigie.ingest")
    async def ingest(stream: Any) -> None:
        await declare_outputs(topics)
        async for events in stream.noack_take(
            settings.sink_batch_rows, within=settings.sink_batch_seconds
        ):
            try:
                await processor.process([inbound(ev) for ev in events])
            except Exception as exc:  # retries are exhausted inside: replay from commit
                crash("ingest batch could not be written", exc)
            await ack_all(stream, events)

    return ingest
