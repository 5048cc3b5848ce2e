"""Thin Faust wiring: the ingest task, the correlate agent, the leader-only detector timer.

They move messages between Kafka and the processors (`agents.ingest`, `agents.correlate`,
`agents.detect`), nothing more. The correlate agent's acks are manual: `noack_take` hands over
a batch without acking it; the batch is correlated and its versions published at once, and
it is acked only after the processor stored what it held (every write confirmed) and the
broker confirmed every state written to the changelog (`StoreClock`: about once a second,
for all the batches since). A processor that still fails after its bounded retries ends the
process (`agents.ports.process.crash`), so the held batches are replayed by the next run
from the last committed offsets; so are they after a stop that did not write them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import faust

from agents.core.correlation import places
from agents.correlate import (
    ESTIMATES_KEY,
    PLACES_KEY,
    WATERMARK_KEY,
    YIELD_EVERY,
    CorrelateProcessor,
    Held,
    PartitionChanges,
    place_key,
)
from agents.detect import DetectProcessor
from agents.ingest import DEFAULT_MAX_MESSAGE_BYTES, IngestProcessor, unbundle
from agents.ingest_loop import IngestLoop, IngestLoopConfig
from agents.ports import metrics
from agents.ports.process import crash
from agents.sink import TickClock
from agents.state_journal import (
    Write,
    journal_key,
    journal_parts,
    journal_writes,
    part_budget,
    pending,
)
from agents.table_data import RoutedRocksData, table_data

log = logging.getLogger(__name__)


class StageTopics(Protocol):
    """The topics the agents read or declare (the runtime's `streams.topics.Topics`)."""

    @property
    def enriched(self) -> Any: ...

    def all(self) -> Iterable[Any]: ...


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """What the correlate agent and the detector timer need from the settings."""

    table_partitions: int  # partitions of the incident-state table (= the enriched topic's)
    correlate_batch_bundles: int
    batch_seconds: float
    detect_interval_seconds: float
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # the producer's largest record
    # the correlate agent's store clock (`StoreClock`): held batches are written at most
    # this long after the first of them was published, or once they hold `store_rows`
    store_seconds: float = 5.0
    store_rows: int = 5000


async def ack_all(stream: Any, events: Sequence[Any]) -> None:
    for event in events:
        await stream.ack(event)


async def declare_outputs(topics: StageTopics) -> None:
    """Create the topics this worker uses when missing (Faust declares only what its agents
    consume; the broker may refuse auto-creation)."""
    for topic in topics.all():
        await topic.maybe_declare()


def install_ingest(app: faust.App, topics: StageTopics, processor: IngestProcessor,
                   settings: IngestLoopConfig) -> IngestLoop:
    """The ingest stage runs as an app task (batch consumer, see `agents.ingest_loop`)."""
    loop = IngestLoop(settings, processor)

    @app.task  # type: ignore[untyped-decorator]  # faust leaves its decorators untyped
    async def ingest() -> None:
        await declare_outputs(topics)
        await loop.run()

    return loop


def decode_bundle(event: Any) -> list[Any]:
    """Records of one internal message; a message that is not a bundle is logged, counted
    and skipped (acked with its batch): a worker never dies on a message."""
    msg = event.message
    try:
        return unbundle(msg.value)
    except (ValueError, TypeError) as exc:
        metrics.UNDECODABLE_INTERNAL.labels(topic=msg.topic).inc()
        log.error("undecodable internal message skipped",
                  extra={"topic": msg.topic, "partition": msg.partition, "offset": msg.offset,
                         "error": type(exc).__name__})
        return []


# how often the correlate agent reads RocksDB's memory figures (a property read per database)
MEMORY_GAUGE_EVERY_S = 10.0

# Configs of the incident-state changelog when Faust creates it (compacted: Faust's default).
# Every batch rewrites each partition's watermark, places and estimates and every touched
# incident, so without these the log holds every version ever written and a replay grows with
# history. Compaction never cleans the active segment, so `segment.ms` (1 h, default 7 days)
# rolls it hourly; `min.cleanable.dirty.ratio` 0.1 (default 0.5) lets superseded records be at
# most ~10 % of the log (the log is a few MB: a pass is cheap); `max.compaction.lag.ms` (1 day)
# cleans even when that ratio is not reached. Evicted incidents are tombstones (null values,
# `IncidentStates.persist`): `delete.retention.ms` (7 days, default 1) keeps them readable that
# long after compaction, the longest a worker's persistent store can be away and still catch
# up by reading the tail (an older store must be deleted: it would keep evicted incidents).
CHANGELOG_TOPIC_CONFIGS = {
    "segment.ms": "3600000",
    "min.cleanable.dirty.ratio": "0.1",
    "max.compaction.lag.ms": "86400000",
    "delete.retention.ms": "604800000",
}

# RocksDB options of each partition's database (`VIGIE_TABLE_STORE=rocksdb`). Faust's
# defaults (64 MiB write buffers, up to 3 per database, and a 2 GiB block cache, each per
# partition) would let a worker holding 6 partitions grow by hundreds of MiB against its
# 1 GiB limit (deploy/k8s), for a state of a few MiB per partition that is read once, at a
# restart: 8 MiB buffers (2 at most) and a 16 MiB cache per database.
TABLE_STORE_OPTIONS = {
    "write_buffer_size": 8 * 2**20,
    "max_write_buffer_number": 2,
    "block_cache_size": 16 * 2**20,
}

class ChangelogWriter(Protocol):
    """Sends one table record to the changelog (`value` None: a tombstone; `raw`: the value's
    JSON when the caller has it, sent as it is) and returns its delivery."""

    async def __call__(
        self, partition: int, key: str, value: Any, raw: bytes | None = None
    ) -> Awaitable[Any]: ...


def table_changelog(table: Any) -> ChangelogWriter:
    """The production writer: each record is handed to the producer at once (`force`: not
    held until the event's ack) and its delivery returned.

    Not `Table.send_changelog`: that goes through Faust's producer buffer, which one task
    drains a message at a time. A batch's thousands of states
    kept it full, every consumed event then waited for it to ebb, and the worker ran at half
    speed; its flush also gives up after 0.1 s without progress, so it did not even prove
    the states were written before the acks.

    A delivery's result is the record's metadata (`offset`): `IncidentStates` stores the
    batch's last offset with the batch's local writes, not here, when each record lands
    (Faust's persisted offset must never be ahead of the local data)."""
    topic = table.changelog_topic

    async def write(
        partition: int, key: str, value: Any, raw: bytes | None = None
    ) -> Awaitable[Any]:
        delivery: Awaitable[Any]
        if value is not None and raw is not None:  # already the codec's JSON
            delivery = await topic.send(key=key, value=raw, partition=partition,
                                        value_serializer="raw", force=True)
        elif value is None:  # tombstone: the raw serializer sends a null value
            delivery = await topic.send(key=key, value=None, partition=partition,
                                        value_serializer="raw", force=True)
        else:
            delivery = await topic.send(key=key, value=value, partition=partition, force=True)
        return delivery

    return write


class IncidentStates:
    """The correlate agent's view of its table: incident states, and one watermark and one
    place memory per input partition. Every change goes to the local data and to the
    changelog.

    `states_of` reads one partition's states through a key index (partition -> incident
    ids, in the table's order) instead of walking the whole table, which holds every
    partition's states. `persist` keeps the index up to date; data that reaches the table by
    another way (changelog recovery after a rebalance or a restart) is indexed by one pass
    over the table at the next `states_of` after `reindex`, not one pass per partition."""

    def __init__(self, data: MutableMapping[str, Any], write: ChangelogWriter,
                 max_part_bytes: int = part_budget(DEFAULT_MAX_MESSAGE_BYTES)) -> None:
        self.data = data
        self.write = write
        self.max_part_bytes = max_part_bytes  # a journal part's writes, encoded
        self._settled: set[int] = set()  # partitions whose journal was looked at (`settle`)
        self._parts: dict[int, int] = {}  # partition -> journal parts its last batch wrote
        # partition -> incident ids (a dict: ordered like the table); None: to build
        self._keys: dict[int, dict[str, None]] | None = None
        self._memory_read_at = -math.inf  # when RocksDB's memory figures were last read

    def reindex(self) -> None:
        """The table changed outside `persist` (recovery): rebuild the index when next read,
        and look again for journalled batches to write (`settle`)."""
        self._keys = None
        self._settled.clear()
        self._parts.clear()

    def _index(self) -> dict[int, dict[str, None]]:
        if self._keys is None and isinstance(self.data, RoutedRocksData):
            self._keys = self.data.incident_keys()  # keys only: each state is read once
        if self._keys is None:
            keys: dict[int, dict[str, None]] = {}
            for k, v in self.data.items():
                if not k.startswith("__") and isinstance(v, dict):
                    partition = v.get("_partition")
                    if isinstance(partition, int):
                        keys.setdefault(partition, {})[k] = None
            self._keys = keys
        return self._keys

    def states_of(self, partition: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for k in self._index().get(partition, {}):
            v = self.data.get(k)
            if isinstance(v, dict) and v.get("_partition") == partition:
                out.append(v)
        return out

    def places_of(self, partition: int) -> dict[str, list[int]] | None:
        whole = self.data.get(f"{PLACES_KEY}/{partition}")  # older: the whole memory
        return places.from_records(lambda name: self.data.get(place_key(partition, name)),
                                   whole if isinstance(whole, dict) else None)

    def estimates_of(self, partition: int) -> dict[str, Any] | None:
        value = self.data.get(f"{ESTIMATES_KEY}/{partition}")
        return value if isinstance(value, dict) else None

    def watermark_of(self, partition: int) -> float | None:
        value = self.data.get(f"{WATERMARK_KEY}/{partition}")
        return float(value) if value is not None else None

    def _indexed(self, partition: int) -> dict[str, None]:
        return self._index().setdefault(partition, {})

    def _writes(self, partition: int, change: PartitionChanges) -> list[Write]:
        """A batch's changes to one partition as table writes (a None value: delete)."""
        writes: list[Write] = []
        for iid, state in change.states.items():
            state["_partition"] = partition
            writes.append(Write.of(iid, state))
        writes += [Write.of(iid, None) for iid in change.evicted]
        if math.isfinite(change.watermark):  # an engine that saw no record has no clock
            writes.append(Write.of(f"{WATERMARK_KEY}/{partition}", change.watermark))
        if change.places is not None:  # only the days that changed (`places`)
            writes += [Write.of(place_key(partition, name), record)
                       for name, record in change.places.items()]
            if f"{PLACES_KEY}/{partition}" in self.data:  # the older format, now per day
                writes.append(Write.of(f"{PLACES_KEY}/{partition}", None))
        if change.estimates is not None:
            writes.append(Write.of(f"{ESTIMATES_KEY}/{partition}", change.estimates))
        return writes

    async def _send_batch(self, partition: int, token: str,
                          writes: list[Write]) -> list[Awaitable[Any]]:
        """Send one partition's writes to the changelog after their journal
        (`agents.state_journal`); returns the deliveries, in the order sent."""
        parts = journal_parts(token, writes, self.max_part_bytes)
        sends = journal_writes(partition, parts, self._parts.get(partition, 0)) + writes
        deliveries: list[Awaitable[Any]] = []
        for i, write in enumerate(sends):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            deliveries.append(await self.write(partition, write.key, write.value, write.raw))
        self._parts[partition] = len(parts)
        return deliveries

    def _apply(self, partition: int, writes: list[Write], delivered: Sequence[Any],
               journal_parts_held: int = 0) -> None:
        """Once the broker confirmed a partition's batch: its writes to the local data, and
        the local copy of a journal read by `settle` deleted. A RocksDB store takes them in
        one atomic write with the changelog offset of the batch's last record (Faust's
        persisted offset, where a restart's recovery starts), so a kill leaves it at a batch
        boundary: a restart then recovers the records after it, the journal first."""
        drop = [Write(journal_key(partition, i), None, None) for i in range(journal_parts_held)]
        if isinstance(self.data, RoutedRocksData) and not self.data.holds(partition):
            # revoked before the held batches were written (`StoreClock`, a rebalance): the
            # changelog has them, which is where this partition's next owner (this worker
            # again, or another) recovers from; its database is not opened again for them
            log.info("revoked partition written to the changelog only",
                     extra={"partition": partition, "writes": len(writes)})
            return
        for write in writes:
            if not write.key.startswith("__"):
                if write.value is None:
                    self._indexed(partition).pop(write.key, None)
                else:
                    self._indexed(partition)[write.key] = None
        if isinstance(self.data, RoutedRocksData):
            offsets = [meta.offset for meta in delivered if hasattr(meta, "offset")]
            self.data.write_batch(partition, [(w.key, w.raw) for w in writes + drop],
                                  max(offsets) if offsets else None)
            return
        for write in writes + drop:
            if write.value is None:
                self.data.pop(write.key, None)
            else:
                self.data[write.key] = write.value

    async def settle(self, partitions: Iterable[int]) -> None:
        """Before a partition's engine is built from the table: a batch journalled but
        perhaps not wholly written when the previous run stopped (its journal came back
        with the changelog's recovery) is written again, to the changelog (confirmed) and
        locally, so the engine starts from the state after it, not from part of it."""
        for partition in partitions:
            if partition in self._settled:
                continue
            self._settled.add(partition)
            batch = pending(self.data.get, partition)
            if batch is None:
                continue
            log.info("journalled batch written again",
                     extra={"partition": partition, "writes": len(batch.writes)})
            deliveries = await self._send_batch(partition, batch.token, batch.writes)
            self._apply(partition, batch.writes, await asyncio.gather(*deliveries),
                        batch.parts)

    async def persist(self, changes: dict[int, PartitionChanges]) -> None:
        """Write the changes to the changelog, each partition's as one journalled batch,
        then, once the broker confirmed every record, to the local data."""
        sent: list[tuple[int, list[Write], int]] = []  # partition, writes, deliveries
        deliveries: list[Awaitable[Any]] = []
        for partition, change in changes.items():
            writes = self._writes(partition, change)
            if writes:
                mine = await self._send_batch(partition, secrets.token_hex(8), writes)
                sent.append((partition, writes, len(mine)))
                deliveries += mine
        delivered = await asyncio.gather(*deliveries)
        at = 0
        for partition, writes, n in sent:
            self._apply(partition, writes, delivered[at:at + n])
            at += n
        metrics.set_state_size("incident_state", len(self.data))
        if isinstance(self.data, RoutedRocksData) and (
            time.monotonic() - self._memory_read_at >= MEMORY_GAUGE_EVERY_S
        ):
            self._memory_read_at = time.monotonic()
            metrics.set_table_store_memory(self.data.memory_bytes())


class StoreClock:
    """The correlate agent's two clocks: every batch is correlated and its incident
    versions published at once (`CorrelateProcessor.correlate`), while its rows, its
    changelog states and its offsets are held. Once `store_seconds` have passed since the
    first held batch was published, or once `store_rows` versions are held, they are cut
    into a tick (`CorrelateProcessor.cut`: states exported as they are then) that a writer
    task writes (`CorrelateProcessor.write`, then `IncidentStates.persist`) and only then
    acks, while the next batches are correlated and published; a timer cuts them when no
    batch follows. One tick is written at a time, in order: a cut waits for the previous
    tick's write (a store slower than the clock slows the stage instead of piling ticks).

    Every insert is a part ClickHouse merges again (docs/sre.md, "Merges"): one insert a
    tick instead of one a batch cuts those merges, and writing beside the next batches
    keeps a tick's write (its inserts, thousands of changelog records) out of their
    latency. The price: offsets are committed up to `store_seconds` and a write later, so a
    crash replays that much more (the same versions again). `store_seconds` 0: one tick
    per batch."""

    def __init__(self, processor: CorrelateProcessor, states: IncidentStates, stream: Any,
                 store_seconds: float, store_rows: int) -> None:
        self.processor = processor
        self.states = states
        self.stream = stream
        self.clock = TickClock(store_seconds, store_rows)
        self.lock = asyncio.Lock()  # a batch, the timer's cut and the rebalance's flush
        self.events: list[Any] = []  # correlated and published, not yet cut
        self.writing: asyncio.Future[None] | None = None  # the last tick's write

    def due(self) -> bool:
        return self.clock.due(self.processor.held_rows)

    async def correlate(self, events: Sequence[Any],
                        batch: Sequence[tuple[int, Sequence[Any]]]) -> None:
        async with self.lock:
            try:
                await self.states.settle(p for p, _ in batch)  # before an engine is built
                await self.processor.correlate(
                    batch, self.states.states_of, self.states.watermark_of,
                    self.states.places_of, self.states.estimates_of,
                )
            except Exception as exc:  # retries are exhausted inside: replay from commit
                crash("correlation batch could not be written", exc)
                raise  # not reached (crash ends the process)
            self.events += events
            self.clock.hold()
            if self.due():
                await self._cut()

    async def flush(self) -> None:
        """Cut what is held now and wait until every tick is written and acked (the
        rebalance hook: the next owner restores from the changelog)."""
        async with self.lock:
            await self._cut()
            if self.writing is not None:
                await self.writing

    async def _cut(self) -> None:
        if self.clock.since is None:
            return
        if self.writing is not None:
            await self.writing  # one tick in flight; a failed write raises here again
        tick = self.processor.cut()
        events, self.events = self.events, []
        self.clock.cut()
        self.writing = asyncio.ensure_future(self._write(tick, events))

    async def _write(self, tick: Held, events: list[Any]) -> None:
        try:
            changes = await self.processor.write(tick)
            await self.states.persist(changes)
        except Exception as exc:  # retries are exhausted inside: replay from commit
            crash("correlation batch could not be written", exc)
            raise  # not reached (crash ends the process): never ack an unwritten batch
        await ack_all(self.stream, events)

    async def run_timer(self) -> None:
        """Cut held batches that no later batch comes to cut (an idle input)."""
        while True:
            deadline = self.clock.deadline()
            wait = max(self.clock.seconds, 0.05) if deadline is None else (
                deadline - time.monotonic())
            await asyncio.sleep(max(wait, 0.01))
            if self.due():
                async with self.lock:
                    if self.due():
                        await self._cut()


def install_correlate(
    app: faust.App,
    topics: StageTopics,
    processor: CorrelateProcessor,
    settings: AgentConfig,
    *,
    changelog: ChangelogWriter | None = None,
) -> Any:
    """Correlation as a Faust agent over the internal enriched topic (few, bundled messages),
    its engines' state in a table with a changelog so a restarted worker resumes.

    `changelog` defaults to the table's changelog topic; tests pass their own to run the
    agent without a broker."""
    table = app.Table(
        "vigie-incident-state",
        default=None,
        partitions=settings.table_partitions,
        key_type=str,
        value_type=None,
        extra_topic_configs=CHANGELOG_TOPIC_CONFIGS,
        options=dict(TABLE_STORE_OPTIONS),  # a copy: Faust's RocksDB store pops from it
    )
    write = changelog if changelog is not None else table_changelog(table)
    live: list[IncidentStates] = []  # the running agent's (for the rebalance hooks)

    held: list[StoreClock] = []  # the running agent's (for the rebalance hook)

    @app.agent(topics.enriched, name="vigie.correlate")
    async def correlate(stream: Any) -> None:
        states = IncidentStates(table_data(table), write,
                                part_budget(settings.max_message_bytes))
        live[:] = [states]
        clock = StoreClock(processor, states, stream, settings.store_seconds,
                           settings.store_rows)
        held[:] = [clock]
        timer = asyncio.ensure_future(clock.run_timer())
        try:
            async for events in stream.noack_take(
                settings.correlate_batch_bundles, within=settings.batch_seconds
            ):
                await clock.correlate(
                    events, [(ev.message.partition, decode_bundle(ev)) for ev in events])
        finally:
            timer.cancel()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # receivers take (sender, *args)
    async def forget(app_: Any, revoked: Any, **_: Any) -> None:
        name = topics.enriched.get_topic_name()
        for clock in held:  # the next owner restores from the changelog: complete it first
            await clock.flush()
        processor.forget({tp.partition for tp in revoked if tp.topic == name})
        for states in live:
            states.reindex()

    async def recovered() -> None:  # the table got the changelog of newly assigned partitions
        for states in live:
            states.reindex()

    table.on_recover(recovered)
    return correlate


def install_detector(app: faust.App, processor: DetectProcessor, settings: AgentConfig) -> Any:
    """Detection on one worker only (the Faust leader), every `detect_interval_seconds`."""

    @app.timer(settings.detect_interval_seconds, on_leader=True)  # type: ignore[untyped-decorator]
    async def detect() -> None:
        await processor.run()

    return detect
