"""The ingest stage's consumer loop: aiokafka batches in, commit after the writes.

Faust's per-event stream machinery tops out at a few thousand messages a second on this
hardware, and its `take()` acks a buffer even when the body raises. Ingestion is
batch-shaped anyway, so this stage reads whole batches with `getmany()` on a consumer of
its own group (`<app_id>-ingest`) and commits explicit offsets only after
`IngestProcessor.process` returned, i.e. after every write was confirmed (the
Arroyo/Snuba pattern). It runs as a task of the Faust app, beside the agents.

A batch closes at `sink_batch_rows` messages or `sink_batch_seconds` after its first
message, and is taken at once (`IngestProcessor.take`: validated, dead letters and
enriched records sent and confirmed). Its rows are written on a clock of its own: the
batches taken since are written together (`IngestProcessor.flush`) `store_seconds` after the
first of them was taken, or once they hold `sink_batch_rows` rows, and only then are their
offsets committed; that write runs beside the loop, which goes on taking batches (one
tick is written at a time: the next waits for it). Each insert is a part the server merges
again (docs/sre.md, "Merges"): one a tick instead of one per batch, while the reports still
go on to the correlator with every batch. If a rebalance takes partitions away meanwhile,
the commit is refused and the new owner replays those batches: writes are idempotent, so
nothing doubles.

While a dependency is down the processor holds the batch (its writes wait, `agents.sink`):
the loop then takes no more input. Past `KEEPALIVE_SECONDS` it pauses every partition and
polls the consumer now and then, so that the group keeps this member (and its partitions)
instead of evicting it after `max_poll_interval`; the partitions resume once the batch is
written. The lag is exported by the runtime's lag monitor (`streams.lag`), which reads the
committed offsets from the broker, so it stays true while a batch is held.

Reading a backlog, records go on in time order across the input partitions
(`agents.ingest_align.EventTimeAligner`, `max_skew_s`, `align_on`): the loop holds what it read in
per-partition lanes, hands on what is within the horizon, and pauses the partitions that run
ahead; after a held batch's keepalive pauses, the same pause set is applied again (not a
blanket resume), so the two never fight. Records held and not yet handed on are not in the
batch, hence not committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from agents.ingest import InboundMessage, IngestProcessor
from agents.ingest_align import EventTimeAligner, event_time
from agents.ports import metrics
from agents.ports.process import crash
from agents.sink import TickClock

log = logging.getLogger(__name__)
T = TypeVar("T")

# A batch still being written after this long is held (a dependency is down): the loop then
# keeps the group membership with paused polls. Well below the consumer's max_poll_interval.
KEEPALIVE_SECONDS = 20.0


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
    """Counts assignments and exposes how many partitions this worker holds; keeps the
    event-time lanes (when aligned) to the partitions held."""

    def __init__(self, aligner: EventTimeAligner[InboundMessage] | None = None) -> None:
        self.aligner = aligner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        metrics.ASSIGNED_PARTITIONS.labels(consumer="ingest").set(0)
        if self.aligner is not None:
            self.aligner.revoke((tp.topic, tp.partition) for tp in revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.aligner is not None:
            self.aligner.assign((tp.topic, tp.partition) for tp in assigned)
        metrics.REBALANCES.labels(consumer="ingest").inc()
        metrics.ASSIGNED_PARTITIONS.labels(consumer="ingest").set(len(assigned))
        log.info("ingest partitions assigned", extra={"partitions": len(assigned)})


@dataclass(frozen=True, slots=True)
class IngestLoopConfig:
    """What the ingest consumer needs (the runtime builds it from its settings)."""

    kafka_bootstrap: str
    app_id: str  # the consumer group is `<app_id>-ingest`
    input_topics: tuple[str, ...]
    sink_batch_rows: int
    sink_batch_seconds: float
    # a regex of the topics to read instead of `input_topics` (it covers them too): with
    # per-partner topics (`agents.core.validation.PartnerTopics.subscription`); "" = off
    input_pattern: str = ""
    # event-time alignment of the input partitions (`agents.ingest_align`): how far ahead
    # of the slowest pending partition a record may go on (seconds); negative: off
    max_skew_s: float = 60.0
    # the time aligned on: "message_time" (Kafka timestamp) or "reported_at"
    align_on: str = "message_time"
    # the store clock: batches taken are written (and committed) together at most this long
    # after the first of them was taken, or at `sink_batch_rows` rows; 0: every batch
    store_seconds: float = 5.0


class IngestLoop:
    def __init__(self, settings: IngestLoopConfig, processor: IngestProcessor) -> None:
        self.settings = settings
        self.processor = processor
        self.consumer: AIOKafkaConsumer | None = None
        self.batches = 0
        self.aligner: EventTimeAligner[InboundMessage] | None = (
            EventTimeAligner(settings.max_skew_s) if settings.max_skew_s >= 0 else None)

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
            # a pattern subscription sees a topic created later at the next metadata refresh
            metadata_max_age_ms=30_000 if s.input_pattern else 300_000,
        )

    async def collect(self, consumer: AIOKafkaConsumer,
                      write_at: float | None = None) -> list[InboundMessage]:
        """One batch: up to `sink_batch_rows` messages or `sink_batch_seconds` of waiting
        (aligned: the messages the aligner hands on, in event-time order); empty when
        nothing came, or at `write_at` (time.monotonic(): held batches are due) when
        nothing was handed on by then."""
        rows = self.settings.sink_batch_rows
        batch: list[InboundMessage] = []
        deadline: float | None = None
        aligner = self.aligner
        if aligner is not None:
            aligner.restart_waits()
        while len(batch) < rows:
            if aligner is not None:
                batch.extend(aligner.release(rows - len(batch)))
                if len(batch) >= rows:
                    break
                self.apply_pauses(consumer)
            wait_s = self.settings.sink_batch_seconds if deadline is None else max(
                0.0, deadline - time.monotonic())
            fetched = await consumer.getmany(
                timeout_ms=int(wait_s * 1000),
                max_records=rows - len(batch) if aligner is None else rows,
            )
            if aligner is None:
                for records in fetched.values():
                    batch.extend(to_inbound(r) for r in records)
            else:
                on_reported = self.settings.align_on == "reported_at"
                for tp, records in fetched.items():
                    lane = (tp.topic, tp.partition)
                    for r in records:
                        msg = to_inbound(r)
                        t = msg.timestamp
                        if on_reported or t < 0:
                            t = event_time(msg.value, t)
                        aligner.add(lane, t, msg)
                await self.update_lags(consumer, aligner)
                batch.extend(aligner.release(rows - len(batch)))
            if batch and deadline is None:
                deadline = time.monotonic() + self.settings.sink_batch_seconds
            if deadline is not None and time.monotonic() >= deadline:
                break
            if not batch and not fetched:
                break  # idle: give the caller a chance to report lag
            if not batch and write_at is not None and time.monotonic() >= write_at:
                break  # the aligner holds everything back: write what is held meanwhile
        return batch

    @staticmethod
    async def update_lags(consumer: AIOKafkaConsumer,
                          aligner: EventTimeAligner[InboundMessage]) -> None:
        """Each assigned partition's lag as the consumer knows it (highwater of its last
        fetch minus its position; unknown before its first fetch)."""
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            lag: int | None = None
            if highwater is not None:  # fetched once: its position is valid, no wait
                try:
                    lag = max(0, highwater - await consumer.position(tp))
                except IllegalStateError:  # revoked meanwhile
                    continue
            aligner.set_lag((tp.topic, tp.partition), lag)

    def apply_pauses(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch only from the partitions the aligner wants; pause the others (also after
        a held batch's keepalive paused everything)."""
        assigned = consumer.assignment()
        if self.aligner is None:
            consumer.resume(*assigned)
            return
        self.aligner.assign((tp.topic, tp.partition) for tp in assigned)  # new ones: fetch
        wanted = self.aligner.wanted()
        ahead = [tp for tp in assigned if (tp.topic, tp.partition) not in wanted]
        consumer.pause(*ahead)  # both idempotent
        consumer.resume(*[tp for tp in assigned if (tp.topic, tp.partition) in wanted])
        metrics.INGEST_HELD_PARTITIONS.set(len(ahead))

    def held_partitions(self) -> list[tuple[str, int]]:
        """(topic, partition) of the partitions assigned to this worker's ingest consumer."""
        if self.consumer is None:
            return []
        return [(tp.topic, tp.partition) for tp in self.consumer.assignment()]

    async def waiting(self, consumer: AIOKafkaConsumer, work: Awaitable[T],
                      messages: int) -> T:
        """`work` (a batch's or the held batches' writes); while it is held up by a
        dependency, every partition is paused and polled every `KEEPALIVE_SECONDS`
        (membership kept, nothing taken)."""
        task = asyncio.ensure_future(work)
        paused = False
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=KEEPALIVE_SECONDS)
                if done:
                    return task.result()
                if not paused:
                    log.warning("ingest batch held: its writes are waiting, input paused",
                                extra={"messages": messages})
                    paused = True
                await self.keepalive(consumer)
        finally:
            if not task.done():
                task.cancel()
            if paused:
                self.apply_pauses(consumer)
                log.info("ingest input resumed", extra={"messages": messages})

    @staticmethod
    async def keepalive(consumer: AIOKafkaConsumer) -> None:
        """Poll without taking anything: every partition paused; records of a partition
        assigned since the pause are put back (seek to the first one)."""
        consumer.pause(*consumer.assignment())
        try:
            fetched = await consumer.getmany(timeout_ms=0)
        except KafkaError as exc:  # the broker may be the dependency that is down
            log.debug("keepalive poll failed", extra={"error": type(exc).__name__})
            return
        for tp, records in fetched.items():
            if records:
                consumer.seek(tp, records[0].offset)

    async def run(self) -> None:
        consumer = self.consumer = self.make_consumer()
        if self.settings.input_pattern:
            consumer.subscribe(pattern=self.settings.input_pattern,
                               listener=RebalanceMetrics(self.aligner))
        else:
            consumer.subscribe(list(self.settings.input_topics),
                               listener=RebalanceMetrics(self.aligner))
        await consumer.start()
        log.info("ingest consumer started", extra={"group": f"{self.settings.app_id}-ingest"})
        held: list[InboundMessage] = []  # taken, not yet written nor committed
        clock = TickClock(self.settings.store_seconds, self.settings.sink_batch_rows)
        writing: asyncio.Future[None] | None = None  # the last tick's write and commit
        try:
            while True:
                if writing is not None and writing.done():
                    writing.result()  # a failed write (crash: the process ends) raises here
                    writing = None
                batch = await self.collect(  # idle: [] after sink_batch_seconds
                    consumer, clock.deadline())
                if batch:
                    try:
                        await self.waiting(consumer, self.processor.take(batch), len(batch))
                    except Exception as exc:  # not an outage, or past its ceiling: replay
                        crash("ingest batch could not be written", exc)
                    clock.hold()
                    held += batch
                    self.batches += 1
                if clock.due(self.processor.held_rows):
                    if writing is not None:  # one tick in flight: a slow store slows input
                        await self.waiting(consumer, writing, len(held))
                    writing = asyncio.ensure_future(self.commit_held(consumer, held))
                    held = []
                    clock.cut()
        except asyncio.CancelledError:
            raise
        finally:
            if writing is not None and not writing.done():
                writing.cancel()  # not committed: those batches are replayed
            await consumer.stop()

    async def commit_held(self, consumer: AIOKafkaConsumer,
                          held: list[InboundMessage]) -> None:
        """Write what the batches taken hold, then commit their offsets. It runs beside
        the loop, which goes on taking batches meanwhile (their rows held for the next
        tick); the loop waits for it, with the keepalive of a held batch, before it hands
        on the next tick."""
        try:
            await self.processor.flush()
        except Exception as exc:  # not an outage, or one past its ceiling: replay
            crash("ingest batch could not be written", exc)
        try:
            await consumer.commit(next_offsets(held))
        except (CommitFailedError, IllegalStateError) as exc:
            # Partitions moved meanwhile: their new owner replays those batches.
            log.warning("commit refused after rebalance", extra={"error": repr(exc)})
