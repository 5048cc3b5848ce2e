"""Consumer lag of every stage, read from the broker, and Kafka's health.

Every `interval_seconds` the monitor asks the broker, for each consumer group of the worker
(the ingest consumer `<app_id>-ingest`, the correlate agent's Faust group `<app_id>`), the
committed offsets of the partitions this worker holds and the end of their logs, and exports
`vigie_consumer_lag_messages{consumer, topic, partition}` = end - committed (a partition
without a commit counts from the start of its log: the consumers start there). It runs on its
own, beside the stages: a stage that holds its batch while ClickHouse is down still shows a
growing lag. Each round is also the Kafka probe of `Health` (`kafka` dependency): a round
that fails marks Kafka down (the lag then keeps its last values), the next one that succeeds
marks it up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from agents.ports import metrics
from agents.ports.health import KAFKA, Health

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LaggedConsumer:
    """One consumer group of this worker: the `consumer` label, its group id, and the
    partitions it holds now on this worker."""

    label: str
    group: str
    partitions: Callable[[], Iterable[tuple[str, int]]]


class LagMonitor:
    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        consumers: Iterable[LaggedConsumer],
        health: Health,
        *,
        interval_seconds: float = 5.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.bootstrap = bootstrap.split(",")
        self.client_id = client_id
        self.consumers = tuple(consumers)
        self.health = health
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None  # no group: reads log ends only

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap,
                                        client_id=self.client_id,
                                        request_timeout_ms=int(self.timeout_seconds * 1000))
            await admin.start()
            self._admin = admin
        if self._offsets is None:
            offsets = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                       client_id=self.client_id, group_id=None,
                                       enable_auto_commit=False,
                                       request_timeout_ms=int(self.timeout_seconds * 1000))
            await offsets.start()
            self._offsets = offsets
        return self._admin, self._offsets

    async def lags(self, consumer: LaggedConsumer) -> list[tuple[str, int, int]]:
        """(topic, partition, lag) of the partitions `consumer` holds here."""
        admin, offsets = await self._clients()
        held = sorted({TopicPartition(t, p) for t, p in consumer.partitions()})
        if not held:
            return []
        committed = await admin.list_consumer_group_offsets(consumer.group, partitions=held)
        ends = await offsets.end_offsets(held)
        starts: dict[TopicPartition, int] = {}
        fresh = [tp for tp in held if tp not in committed or committed[tp].offset < 0]
        if fresh:
            starts = await offsets.beginning_offsets(fresh)
        out = []
        for tp in held:
            done = committed[tp].offset if tp not in starts else starts[tp]
            out.append((tp.topic, tp.partition, ends[tp] - done))
        return out

    async def poll(self) -> bool:
        """One round: every consumer's lag exported; False when the broker did not answer."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                admin, _ = await self._clients()
                await admin.describe_cluster()  # the probe, also when no partition is held
                found = [(c.label, await self.lags(c)) for c in self.consumers]
        except (KafkaError, OSError, TimeoutError) as exc:
            self.health.dependency_failed(KAFKA, exc)
            log.warning("kafka unreachable: lag not updated", extra={"error": type(exc).__name__})
            await self._reset()
            return False
        for label, lags in found:
            metrics.set_consumer_lags(lags, consumer=label)
        self.health.dependency_ok(KAFKA)
        return True

    async def _reset(self) -> None:
        """Clients are made again next round (one that failed to start is unusable)."""
        admin, offsets, self._admin, self._offsets = self._admin, self._offsets, None, None
        for client in (admin, offsets):
            if client is None:
                continue
            try:
                await (client.close() if isinstance(client, AIOKafkaAdminClient)
                       else client.stop())
            except (KafkaError, OSError) as exc:
                log.debug("lag client not closed cleanly", extra={"error": type(exc).__name__})

    async def run(self) -> None:
        try:
            while True:
                await self.poll()
                await asyncio.sleep(self.interval_seconds)
        finally:
            await self._reset()
