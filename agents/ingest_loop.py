"""The ingest stage's consumer loop: aiokafka batches in, commit after the writes.

Faust's per-event stream machinery tops out at a few thousand messages a second on this
hardware, and its `take()` acks a buffer even when the body raises. Ingestion is
batch-shaped anyway, so this stage reads whole batches with `getmany()` on a consumer of
its own group (`<app_id>-ingest`) and commits explicit offsets only after
`IngestProcessor.process` returned, i.e. after every write was confirmed (the
Arroyo/Snuba pattern). It runs as a task of the Faust app, beside the agents.

A batch closes at `sink_batch_rows` messages or `sink_batch_seconds` after its first
message. If a rebalance takes partitions away mid-batch, the commit is refused and the
new owner replays the batch: writes are idempotent, so nothing doubles.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from agents.ingest import InboundMessage, IngestProcessor
from streams import metrics
from streams.runtime import crash
from streams.settings import Settings

log = logging.getLogger(__name__)


def to_inbound(record: Any) -> InboundMessage:
    return InboundMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value if record.value is not None else b"",
        timestamp=record.timestamp / 1000.0 if record.timestamp is not None else -1.0,
    )


def next_offsets(messages: Sequence[InboundMessage]) -> dict[TopicPartition, int]:
    """The offsets to commit: one past the last message of each partition in the batch."""
    offsets: dict[TopicPartition, int] = {}
    for msg in messages:
        tp = TopicPartition(msg.topic, msg.partition)
        offsets[tp] = max(offsets.get(tp, 0), msg.offset + 1)
    return offsets


class RebalanceMetrics(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts assignments and exposes how many partitions this worker holds."""

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        metrics.ASSIGNED_PARTITIONS.labels(consumer="ingest").set(0)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        metrics.REBALANCES.labels(consumer="ingest").inc()
        metrics.ASSIGNED_PARTITIONS.labels(consumer="ingest").set(len(assigned))
        log.info("ingest partitions assigned", extra={"partitions": len(assigned)})


class IngestLoop:
    def __init__(self, settings: Settings, processor: IngestProcessor) -> None:
        self.settings = settings
        self.processor = processor
        self.consumer: AIOKafkaConsumer | None = None
        self.batches = 0

    def make_consumer(self) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap.split(","),
            group_id=f"{s.app_id}-ingest",
            client_id=f"{s.app_id}-ingest",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.sink_batch_rows,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            max_poll_interval_ms=300_000,
        )

    async def collect(self, consumer: AIOKafkaConsumer) -> list[InboundMessage]:
        """One batch: up to `sink_batch_rows` messages or `sink_batch_seconds` of waiting."""
        rows = self.settings.sink_batch_rows
        batch: list[InboundMessage] = []
        deadline: float | None = None
        while len(batch) < rows:
            wait_s = self.settings.sink_batch_seconds if deadline is None else max(
                0.0, deadline - time.monotonic())
            fetched = await consumer.getmany(
                timeout_ms=int(wait_s * 1000), max_records=rows - len(batch)
            )
            for records in fetched.values():
                batch.extend(to_inbound(r) for r in records)
            if batch and deadline is None:
                deadline = time.monotonic() + self.settings.sink_batch_seconds
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not batch and not fetched:
                break  # idle: give the caller a chance to report lag
        return batch

    async def report_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Consumer lag per assigned partition: log end (highwater) minus our position."""
        lags = []
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            lags.append((tp.topic, tp.partition, high - await consumer.position(tp)))
        metrics.set_consumer_lags(lags)

    async def run(self) -> None:
        consumer = self.consumer = self.make_consumer()
        consumer.subscribe([self.settings.topic_partner, self.settings.topic_citizen],
                           listener=RebalanceMetrics())
        await consumer.start()
        log.info("ingest consumer started", extra={"group": f"{self.settings.app_id}-ingest"})
        try:
            while True:
                batch = await self.collect(consumer)
                await self.report_lag(consumer)
                if not batch:
                    continue
                try:
                    await self.processor.process(batch)
                except Exception as exc:  # retries exhausted inside: replay from commit
                    crash("ingest batch could not be written", exc)
                try:
                    await consumer.commit(next_offsets(batch))
                except (CommitFailedError, IllegalStateError) as exc:
                    # Partitions moved during the batch: their new owner replays it.
                    log.warning("commit refused after rebalance", extra={"error": repr(exc)})
                self.batches += 1
        except asyncio.CancelledError:
            raise
        finally:
            await consumer.stop()
