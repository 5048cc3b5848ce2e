"""Correlation stage: enriched report bundles in, incident versions out (Kafka + ClickHouse).

`CorrelateProcessor` holds no Faust code. It keeps one `Correlator` per input partition
(a report goes to the partition of its coarse spatial area, so an incident's reports share
a partition; `streams.partition_groups`). Its work is in two steps on two clocks:

`correlate(batch)`, for every batch of bundles (the agent's batch timer, ~0.1 s):
1. merges every record (event-time clock, allowed lateness per `CorrelationConfig`); a
   record further behind the clock than the allowed lateness first has its stored
   incidents put back in state (`agents.late`; the held rows are stored before that
   lookup reads the store), and every record's lateness is measured
   (`vigie_correlation_record_lateness_seconds`);
2. publishes the resulting incident versions on `vigie.incidents.v1` and waits for
   delivery: the latency a subscriber sees is this step's;
3. holds the versions' `incidents` rows, the `rattache` transitions and what changed in
   each partition's engine, for `flush()`.

`flush()`, when the held rows are due (the agent's store clock, ~1 s, or a row bound):
4. inserts the held versions into ClickHouse `incidents` (ReplacingMergeTree by version)
   and waits; then, with a feedback sink, sends and stores the `rattache` transitions of
   the reports whose incident first holds another report (`agents.core.feedback.attached`);
5. returns the incident states as they are now (and the engine's place memory and learnt
   parameters, `agents.core.correlation.estimate`, when they changed) to persist (the
   Faust agent writes them to its changelog table, each partition's as one journalled
   batch: `agents.state_journal`) and only then are the input offsets of every batch held
   acked.

Each insert writes a part that ClickHouse merges again and again into the table's growing
part (docs/sre.md, "Merges"): holding the rows of several batches for one insert cuts
those merges without holding back the publication. `process(batch)` is both steps at once
(one insert per batch).

A crash before 5 has completed replays every held batch on an engine restored from the
changelog: the same deterministic ids and versions are produced again, which both sinks
absorb (the topic's subscribers get a repeated version; the table keeps one row per
version). A crash inside 5 leaves each partition's state as it was before the held
batches or after them (the journal), never part of it, so the replay decides alike or
finds their reports already merged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from agents.core import feedback
from agents.core.correlation import (
    CommuneAt,
    CorrelationConfig,
    Correlator,
    StateDict,
    incident_json,
)
from agents.core.correlation.estimate import pooled_scales
from agents.core.correlation.places import PlaceRecord
from agents.core.record import ReportRecord
from agents.feedback import FeedbackSink, Outgoing
from agents.ingest import SendFn
from agents.late import LatePath
from agents.ports import metrics
from agents.ports.blocking import BlockingRunner
from agents.ports.health import Health
from agents.ports.retry import RetryPolicy
from agents.ports.store import Store
from agents.sink import insert_confirmed
from schemas.enums import IncidentStatus

log = logging.getLogger(__name__)

WATERMARK_KEY = "__watermark__"
# per partition: the engine's chronic-place memory, one record per day under
# `place_key(partition, name)` (older versions: the whole memory in `PLACES_KEY/<partition>`)
PLACES_KEY = "__places__"
ESTIMATES_KEY = "__estimates__"  # per partition: the engine's learnt parameters
# Hand the event loop back every this many sends (incident versions, changelog records): a
# sent record that fits the producer's batch does not suspend, and a catching-up batch has
# thousands of them (the loop was held up to 3 s, under asyncio debug).
YIELD_EVERY = 500
# The open-incident and place gauges sum every engine's counts (kept by the engines, not
# walked): refreshed at most this often (a scrape interval), not after every batch.
STATE_GAUGES_EVERY_S = 10.0


def place_key(partition: int, name: str) -> str:
    """The table key of one record of a partition's place memory (`PlaceMemory.export_changes`
    names them): the partition last, as every per-partition record's key."""
    return f"{PLACES_KEY}/{name}/{partition}"


@dataclass(slots=True)
class PartitionChanges:
    """What one batch changed in one partition's engine (to persist in the changelog).
    `states`: incident id -> its state in the changelog's JSON form (`Incident.to_dict`)."""

    states: dict[str, StateDict] = field(default_factory=dict)
    evicted: set[str] = field(default_factory=set)
    watermark: float = float("-inf")
    # the place memory's changed records (`PlaceMemory.export_changes`); None: unchanged
    places: dict[str, PlaceRecord] | None = None
    estimates: dict[str, Any] | None = None  # None: unchanged


@dataclass(slots=True)
class Held:
    """What the batches correlated since the last `CorrelateProcessor.cut` hold back, and
    then one cut tick until `CorrelateProcessor.write` wrote it: their incident versions
    (published, not yet in `incidents`), their `rattache` transitions, and each touched
    partition's changes (states exported at the cut)."""

    versions: list[dict[str, Any]] = field(default_factory=list)
    attached: list[Outgoing] = field(default_factory=list)
    changes: dict[int, PartitionChanges] = field(default_factory=dict)


def incident_event(version: dict[str, Any]) -> str:
    if version["status"] == IncidentStatus.CLOSED:
        return "closed"
    return "opened" if version["version"] == 1 else "updated"


class CorrelateProcessor:
    def __init__(
        self,
        *,
        store: Store,
        send: SendFn,
        incidents_topic: str,
        retry: RetryPolicy,
        run_blocking: BlockingRunner,
        config: CorrelationConfig | None = None,
        health: Health | None = None,
        clock: Callable[[], float] = time.monotonic,  # paces the state gauges
        feedback_sink: FeedbackSink | None = None,  # `rattache` transitions (None: none)
        late_path: bool = True,  # look up the incidents of reports past the lateness
        commune_at: CommuneAt | None = None,  # the geocoder's (`Correlator`)
    ) -> None:
        self.store = store
        self.commune_at = commune_at
        self.feedback_sink = feedback_sink
        self.clock = clock
        self.send = send
        self.incidents_topic = incidents_topic
        self.retry = retry
        self.run_blocking = run_blocking
        self.health = health
        self.config = config or CorrelationConfig()
        self.late = LatePath(store=store, retry=retry, run_blocking=run_blocking,
                             config=self.config, health=health) if late_path else None
        self.engines: dict[int, Correlator] = {}
        self._held = Held()  # correlated and published, not yet cut (`cut`)
        self._ticks: list[Held] = []  # cut, not yet written (`write`), in cut order
        self._insert_lock = asyncio.Lock()  # a tick's writer and the late path's inserts
        self._gauges_at = float("-inf")  # clock() at the last state gauge refresh

    # ---- engine per partition ------------------------------------------------------------
    def engine(self, partition: int, restore: Callable[[], Iterable[Mapping[str, Any]]],
               watermark: float | None,
               places: dict[str, list[int]] | None = None,
               estimates: dict[str, Any] | None = None) -> Correlator:
        engine = self.engines.get(partition)
        if engine is None:
            engine = Correlator(self.config, commune_at=self.commune_at)
            states = list(restore())
            if states or places or estimates:
                engine.restore(states, watermark=watermark, places=places,
                               estimates=estimates)
            self.engines[partition] = engine
            log.info("correlator ready", extra={"partition": partition,
                                                "incidents": len(engine),
                                                "places": engine.place_count})
        return engine

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked by a rebalance: their next owner restores them (from the
        changelog: what they hold must have been stored first, `flush`)."""
        partitions = set(partitions)
        if any(partitions & set(h.changes) for h in (self._held, *self._ticks)):
            raise RuntimeError("partitions forgotten with changes not yet stored")
        for p in partitions:
            self.engines.pop(p, None)

    # ---- one batch ----------------------------------------------------------------------
    async def before(self, engine: Correlator, record: ReportRecord) -> bool:
        """Before a record is merged: how far behind the engine's clock it is (metric) and,
        past the allowed lateness, its stored incidents put back in state (`agents.late`,
        which reads `incidents`: the rows of the ticks being written and the held rows are
        inserted first, so it reads their latest versions). False: a stored incident the
        engine no longer holds already lists the record, which is not merged again."""
        lateness = engine.watermark - record.reported_at
        metrics.RECORD_LATENESS.observe(lateness if lateness > 0 else 0.0)  # -inf: first
        if self.late is not None and lateness > self.config.allowed_lateness_s:
            for held in (*self._ticks, self._held):  # in publication order
                await self._insert(held)
            return await self.late.readmit(engine, record) != "known"
        return True

    @property
    def held_rows(self) -> int:
        """Incident versions correlated and published, not yet cut (`cut`)."""
        return len(self._held.versions)

    @property
    def holding(self) -> bool:
        """Something is not yet written: held rows, transitions or changed engines, or a
        tick cut and not yet written."""
        held = self._held
        return bool(held.versions or held.attached or held.changes or self._ticks)

    async def process(
        self, batch: Sequence[tuple[int, Sequence[ReportRecord]]],
        restore: Callable[[int], Iterable[Mapping[str, Any]]],
        watermark_of: Callable[[int], float | None],
        places_of: Callable[[int], dict[str, list[int]] | None] = lambda _p: None,
        estimates_of: Callable[[int], dict[str, Any] | None] = lambda _p: None,
    ) -> dict[int, PartitionChanges]:
        """One batch correlated, published and written at once (`correlate`, then `flush`)."""
        await self.correlate(batch, restore, watermark_of, places_of, estimates_of)
        return await self.flush()

    async def correlate(
        self, batch: Sequence[tuple[int, Sequence[ReportRecord]]],
        restore: Callable[[int], Iterable[Mapping[str, Any]]],
        watermark_of: Callable[[int], float | None],
        places_of: Callable[[int], dict[str, list[int]] | None] = lambda _p: None,
        estimates_of: Callable[[int], dict[str, Any] | None] = lambda _p: None,
    ) -> None:
        """Merge a batch, publish its incident versions (delivery confirmed) and hold their
        rows, transitions and the engines' changes for the next `cut`."""
        versions: list[dict[str, Any]] = []
        newest_report: dict[str, float] = {}
        changes = self._held.changes
        for partition, records in batch:
            # correlation is CPU work on the event loop: hand it back between bundles so
            # Kafka heartbeats (ingest consumer, Faust) and timers keep running
            await asyncio.sleep(0)
            # the saved watermark, places and estimates are read only to build a partition's
            # engine: reading them for every batch cost a walk of the place memory each time
            # (`is None`: an engine holding no incident is falsy, `Correlator.__len__`)
            engine = self.engines.get(partition)
            if engine is None:
                engine = self.engine(partition, partial(restore, partition),
                                     watermark_of(partition), places_of(partition),
                                     estimates_of(partition))
            touched = changes.setdefault(partition, PartitionChanges())
            for record in records:
                if not await self.before(engine, record):
                    continue
                for version in engine.process(record):
                    versions.append(version)
                    touched.states[version["incident_id"]] = {}  # exported by `cut`
                    touched.evicted.discard(version["incident_id"])
                    newest_report[version["incident_id"]] = record.reported_at
                    if self.feedback_sink is not None:
                        self._held.attached += [
                            (event, record.reported_at if event.key == record.key else None)
                            for event in feedback.attached(version, record.key)]
            for iid in engine.drain_evicted():
                if iid not in engine:  # else founded again since (a late re-delivery)
                    touched.states.pop(iid, None)
                    touched.evicted.add(iid)
            touched.watermark = engine.watermark
            if engine.places_changed:  # merged: the held batches may hold several bundles
                touched.places = {**(touched.places or {}), **engine.export_place_changes()}
            if engine.estimates_changed:
                touched.estimates = engine.export_estimates()
        await self.publish(versions, newest_report)
        self._held.versions += versions

    async def flush(self) -> dict[int, PartitionChanges]:
        """What the batches since the last cut hold, cut and written at once (`cut`, then
        `write`): returns the changes to persist before those batches are acked."""
        return await self.write(self.cut())

    def cut(self) -> Held:
        """Close what the batches since the last cut hold into a tick for `write`, each
        touched partition's incidents exported as they are now; the next batches are held
        apart, so they can be correlated while the tick is written. Ticks are written in
        the order they were cut (`StoreClock`: one writer)."""
        held = self._held
        for partition, touched in held.changes.items():
            engine = self.engines[partition]  # a revoked partition is written before `forget`
            for iid in touched.states:
                touched.states[iid] = engine.export_incident(iid)
        self._held = Held()
        self._ticks.append(held)
        if self.clock() - self._gauges_at >= STATE_GAUGES_EVERY_S:
            self._gauges_at = self.clock()
            engines = self.engines.values()
            metrics.set_state_size("open_incidents", sum(e.open_count for e in engines))
            metrics.set_state_size("chronic_places", sum(e.place_count for e in engines))
            metrics.set_dispersion_scales(pooled_scales(e.estimates for e in engines))
        return held

    async def write(self, tick: Held) -> dict[int, PartitionChanges]:
        """Write a cut tick: its incident versions to `incidents` (unless the late path
        inserted them first), then its `rattache` transitions (feedback sink); returns its
        partitions' changes, to persist before its batches are acked. A failure propagates
        with the tick still pending (the caller crashes, and the replay produces it again)."""
        await self._insert(tick)
        if self.feedback_sink is not None:  # after the incidents, before the changelog
            await self.feedback_sink.publish(tick.attached)
        self._ticks.remove(tick)
        return tick.changes

    async def _insert(self, held: Held) -> None:
        """`held`'s incident versions into `incidents`, confirmed (then no longer held)."""
        async with self._insert_lock:
            if held.versions:
                await insert_confirmed(
                    self.store, "incidents", held.versions, retry=self.retry,
                    run_blocking=self.run_blocking, health=self.health,
                )
                held.versions = []

    async def publish(self, versions: list[dict[str, Any]], newest: dict[str, float]) -> None:
        """Send the versions to the incidents topic and wait until each is delivered."""
        if not versions:
            return
        deliveries: list[Awaitable[Any]] = []
        for i, version in enumerate(versions):
            if i % YIELD_EVERY == YIELD_EVERY - 1:  # a batch has thousands: let others run
                await asyncio.sleep(0)
            deliveries.append(await self.send(
                self.incidents_topic, version["incident_id"].encode(), incident_json(version)))
        await asyncio.gather(*deliveries)
        now = time.time()
        for version in versions:
            reported = newest.get(version["incident_id"])
            metrics.count_incident(incident_event(version), version["category"],
                                   None if reported is None else now - reported)
