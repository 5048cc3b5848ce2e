"""The webhook stage: incidents and alerts to the partners that subscribed to them.

Two loops, as tasks of the worker:

- the queue: a consumer of its own group (`<app_id>-webhooks`) reads `vigie.incidents.v1`
  and `vigie.alerts.v1`, matches each message with the partner registry's webhooks and
  writes one `queued` event per (partner, object version) to the ClickHouse outbox
  `webhook_deliveries`, with the body to send; only once ClickHouse confirmed the rows are
  the offsets committed. A crash (even kill -9) before the commit replays the messages,
  whose queued rows fold into the first ones (same delivery id): nothing is lost, nothing
  doubles in the outbox;
- the sender: every `poll_seconds` it reads the deliveries that are due, POSTs each one
  (signed, `agents.core.delivery`), and logs every attempt as an event (failed with its
  status/error and the next attempt's time, delivered, parked after `max_attempts`). A crash
  between a POST and its logged outcome sends it again after the restart, with the same
  `Vigie-Delivery-Id`: delivery is at-least-once, receivers deduplicate on that key.

Why an outbox table rather than a Kafka topic: retries are scheduled by time and parked
deliveries are listed and replayed by an operator, which a table answers with one query;
the consumer's offsets then only need to wait for one confirmed insert, as every stage's.

Each worker sends the deliveries of the topic partitions its queue consumer holds, so that
with several workers a delivery has one sender (until a rebalance moves it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from agents.core.delivery import (
    DELIVERY_ID_HEADER,
    KIND_HEADER,
    SIGNATURE_HEADER,
    Backoff,
    DeliveryEvent,
    DeliveryObject,
    DeliveryState,
    EventRow,
    Fold,
    ObjectKind,
    WebhookSubscription,
    alert_object,
    body_of,
    delivery_id,
    fold,
    incident_object,
    matching,
    signature_header,
    subscriptions_of,
    url_problem,
)
from agents.core.jurisdictions import Jurisdictions
from agents.ports import metrics, partner_registry
from agents.ports.blocking import BlockingRunner
from agents.ports.health import Health
from agents.ports.process import crash
from agents.ports.retry import RetriesExhausted, RetryPolicy, retry_async
from agents.ports.sql import webhooks as sql
from agents.ports.store import Store
from agents.sink import insert_confirmed, query_confirmed, unavailable
from schemas.alert import Alert
from schemas.incident import Incident

log = logging.getLogger(__name__)

DUE_LIMIT = 500  # deliveries read per sender round
ERROR_MAX = 200  # characters of an attempt's error kept in the log


class Subscriptions(Protocol):
    """The partner registry's current webhooks (re-read by the caller as it changes)."""

    async def current(self) -> Sequence[WebhookSubscription]: ...


@dataclass(frozen=True, slots=True)
class PostResult:
    """One HTTP attempt: `status` (0: no response) and `error` ('' on a 2xx)."""

    status: int
    error: str
    seconds: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


# post(url, body, headers, timeout_s) -> PostResult; never raises for the receiver's faults
Poster = Callable[[str, bytes, Mapping[str, str], float], Awaitable[PostResult]]


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    kafka_bootstrap: str
    app_id: str
    topics: Mapping[str, ObjectKind]  # the incidents and alerts topics
    backoff: Backoff = field(default_factory=Backoff)
    timeout_seconds: float = 10.0
    poll_seconds: float = 1.0
    concurrency: int = 8
    allow_loopback_http: bool = False
    batch_seconds: float = 1.0

    @property
    def group_id(self) -> str:
        return f"{self.app_id}-webhooks"


# --- messages to queued rows --------------------------------------------------------------
def parse_object(kind: ObjectKind, value: bytes) -> DeliveryObject:
    """A published incident or alert (raises ValueError when it does not follow the
    contract)."""
    try:
        if kind is ObjectKind.INCIDENT:
            return incident_object(Incident.model_validate_json(value).model_dump(mode="json"))
        return alert_object(Alert.model_validate_json(value).model_dump(mode="json"))
    except ValidationError as exc:
        raise ValueError(f"not a valid {kind.value}: {exc.error_count()} errors") from None


def queued_rows(
    obj: DeliveryObject,
    subscriptions: Iterable[WebhookSubscription],
    topic: str,
    partition: int,
    now: float,
) -> list[dict[str, Any]]:
    """The `queued` outbox row of each partner `obj` goes to."""
    rows = []
    for sub in matching(subscriptions, obj):
        did = delivery_id(sub.org, obj.kind, obj.object_id, obj.version)
        body = orjson.dumps(body_of(obj.kind, did, obj.data)).decode()
        rows.append(
            outbox_row(
                did,
                0,
                DeliveryEvent.QUEUED,
                now,
                org=sub.org,
                kind=obj.kind.value,
                object_id=obj.object_id,
                object_version=obj.version,
                source_topic=topic,
                source_partition=partition,
                payload=body,
                next_at=now,
            )
        )
    return rows


def outbox_row(
    did: str, seq: int, event: DeliveryEvent, at: float, **values: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "delivery_id": did,
        "seq": seq,
        "event": event.value,
        "at": int(at),
        "next_at": int(values.pop("next_at", at)),
        "org": "",
        "kind": "",
        "object_id": "",
        "object_version": 0,
        "source_topic": "",
        "source_partition": 0,
        "payload": "",
        "status": 0,
        "latency_ms": 0,
        "error": "",
    }
    row.update(values)
    return row


# --- the outbox read back -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery as the outbox knows it: its folded state and its identity."""

    state: Fold
    org: str
    kind: str
    object_id: str
    object_version: int
    source_topic: str
    source_partition: int

    def event(
        self, event: DeliveryEvent, at: float, after: int = 0, **values: Any
    ) -> dict[str, Any]:
        """The row of this delivery's next event (`after` more events before it)."""
        return outbox_row(
            self.state.delivery_id,
            self.state.next_seq + after,
            event,
            at,
            org=self.org,
            kind=self.kind,
            object_id=self.object_id,
            object_version=self.object_version,
            source_topic=self.source_topic,
            source_partition=self.source_partition,
            **values,
        )


def deliveries_of(rows: Iterable[Mapping[str, Any]]) -> list[Delivery]:
    """Deliveries from their event rows (`sql.EVENT_COLUMNS`), in order of first row."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row["delivery_id"]), []).append(row)
    out = []
    for did, events in grouped.items():
        state = fold(
            [
                EventRow(
                    did,
                    int(r["seq"]),
                    DeliveryEvent(r["event"]),
                    float(r["at_s"]),
                    float(r["next_s"]),
                    str(r["payload"]),
                )
                for r in events
            ]
        )
        first = events[0]
        out.append(
            Delivery(
                state,
                str(first["org"]),
                str(first["kind"]),
                str(first["object_id"]),
                int(first["object_version"]),
                str(first["source_topic"]),
                int(first["source_partition"]),
            )
        )
    return out


# --- sending ------------------------------------------------------------------------------
def attempt_outcome(result: PostResult) -> str:
    """The bounded `outcome` label of an attempt."""
    if result.ok:
        return "delivered"
    if result.status:
        return "http_error"
    return result.error.split(":", 1)[0] if result.error else "error"


async def attempt(
    delivery: Delivery,
    sub: WebhookSubscription | None,
    post: Poster,
    config: DeliveryConfig,
    now: Callable[[], float],
) -> list[dict[str, Any]]:
    """POST one delivery and return the event rows of its outcome (failed, and parked
    when it was the last allowed attempt; or delivered)."""
    body = delivery.state.payload.encode()
    if sub is None:
        gone = "unsubscribed: the partner has no webhook any more (disabled, no URL or secret)"
        result = PostResult(0, gone, 0)
    elif problem := url_problem(sub.url, allow_loopback_http=config.allow_loopback_http):
        result = PostResult(0, f"refused_url: {problem}", 0)
    else:
        stamp = int(now())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(sub.secret, stamp, body),
            DELIVERY_ID_HEADER: delivery.state.delivery_id,
            KIND_HEADER: delivery.kind,
        }
        result = await post(sub.url, body, headers, config.timeout_seconds)
    outcome = attempt_outcome(result)
    metrics.observe_webhook_attempt(outcome, result.seconds)
    at = now()
    common: dict[str, Any] = {
        "status": result.status,
        "latency_ms": int(result.seconds * 1000),
        "error": result.error[:ERROR_MAX],
    }
    extra = {
        "delivery_id": delivery.state.delivery_id,
        "org": delivery.org,
        "kind": delivery.kind,
        "status": result.status,
    }
    if result.ok:
        metrics.count_webhook_delivery("delivered")
        log.info("webhook delivered", extra=extra)
        return [delivery.event(DeliveryEvent.DELIVERED, at, **common)]
    failures = delivery.state.failures + 1
    pause = config.backoff.delay(failures)
    rows = [delivery.event(DeliveryEvent.FAILED, at, next_at=at + pause, **common)]
    if config.backoff.parks(failures):
        rows.append(delivery.event(DeliveryEvent.PARKED, at, after=1, **common))
        metrics.count_webhook_delivery("parked")
        log.warning(
            "webhook delivery parked",
            extra={**extra, "attempts": failures, "error": result.error[:ERROR_MAX]},
        )
    else:
        log.info(
            "webhook attempt failed",
            extra={
                **extra,
                "attempt": failures,
                "retry_in_s": round(pause, 1),
                "error": result.error[:ERROR_MAX],
            },
        )
    return rows


def aiohttp_poster() -> tuple[Poster, Callable[[], Awaitable[None]]]:
    """The production transport (TLS verified, no redirects followed, bounded time) and
    its closer."""
    import aiohttp

    session: aiohttp.ClientSession | None = None

    async def post(
        url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> PostResult:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
        started = time.perf_counter()
        try:
            async with session.post(
                url, data=body, headers=dict(headers), allow_redirects=False
            ) as resp:
                await resp.content.read(4096)  # a little of the answer, never all of it
                status = resp.status
        except TimeoutError:
            return PostResult(0, "timeout", time.perf_counter() - started)
        except aiohttp.ClientError as exc:
            return PostResult(
                0, f"connection_error: {type(exc).__name__}", time.perf_counter() - started
            )
        seconds = time.perf_counter() - started
        return PostResult(status, "" if 200 <= status < 300 else f"http {status}", seconds)

    async def close() -> None:
        if session is not None:
            await session.close()

    return post, close


class RegistrySubscriptions:
    """The webhooks of the partner registry (`agents.ports.partner_registry`), re-read at
    most every `refresh_seconds`; an unreadable registry keeps the last good read."""

    def __init__(
        self,
        store: Store,
        run_blocking: BlockingRunner,
        jurisdictions: Jurisdictions | None,
        retry: RetryPolicy,
        refresh_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.run_blocking = run_blocking
        self.jurisdictions = jurisdictions
        self.retry = retry
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._read_at: float | None = None
        self._subs: list[WebhookSubscription] = []

    async def current(self) -> Sequence[WebhookSubscription]:
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.refresh_seconds:
            try:
                snapshot = await retry_async(
                    partial(self.run_blocking, partner_registry.load, self.store),
                    self.retry,
                    what="partner registry read",
                    transient=unavailable,
                )
            except RetriesExhausted:
                if self._read_at is None:
                    raise
                log.warning("partner registry not re-read: the last read is kept")
                return self._subs
            self._subs = subscriptions_of(snapshot.partners.values(), self.jurisdictions)
            self._read_at = now
        return self._subs


# --- the stage ----------------------------------------------------------------------------
@dataclass
class DeliveryStage:
    config: DeliveryConfig
    store: Store
    subscriptions: Subscriptions
    run_blocking: BlockingRunner
    retry: RetryPolicy
    post: Poster
    health: Health | None = None
    clock: Callable[[], float] = time.time
    owned: set[tuple[str, int]] = field(default_factory=set)
    consumer: Any = None

    # the queue -------------------------------------------------------------------------
    def make_consumer(self) -> Any:
        from aiokafka import AIOKafkaConsumer

        c = self.config
        return AIOKafkaConsumer(
            bootstrap_servers=c.kafka_bootstrap.split(","),
            group_id=c.group_id,
            client_id=c.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
        )

    async def queue(self, records: Sequence[Any]) -> int:
        """Write the queued rows of a batch of records (confirmed); returns how many."""
        subscriptions = await self.subscriptions.current()
        now = self.clock()
        rows: list[dict[str, Any]] = []
        for record in records:
            kind = self.config.topics[record.topic]
            try:
                obj = parse_object(kind, record.value or b"")
            except ValueError as exc:
                metrics.UNDECODABLE_INTERNAL.labels(topic=record.topic).inc()
                log.error(
                    "undecodable message skipped by the webhook stage",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "error": str(exc),
                    },
                )
                continue
            rows += queued_rows(obj, subscriptions, record.topic, record.partition, now)
        await insert_confirmed(
            self.store,
            sql.TABLE,
            rows,
            retry=self.retry,
            run_blocking=self.run_blocking,
            health=self.health,
        )
        metrics.count_webhook_delivery("queued", len(rows))
        return len(rows)

    async def consume(self) -> None:
        from aiokafka import ConsumerRebalanceListener, TopicPartition
        from aiokafka.errors import CommitFailedError, IllegalStateError

        stage = self

        class Owned(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                stage.owned.clear()

            async def on_partitions_assigned(self, assigned: Any) -> None:
                stage.owned = {(tp.topic, tp.partition) for tp in assigned}

        consumer = self.consumer = self.make_consumer()
        consumer.subscribe(list(self.config.topics), listener=Owned())
        await consumer.start()
        log.info("webhook queue consumer started", extra={"group": self.config.group_id})
        try:
            while True:
                fetched = await consumer.getmany(
                    timeout_ms=int(self.config.batch_seconds * 1000), max_records=500
                )
                records = [r for batch in fetched.values() for r in batch]
                if not records:
                    continue
                try:
                    await self.queue(records)
                except Exception as exc:  # retries exhausted: replay from the last commit
                    crash("webhook deliveries could not be queued", exc)
                offsets: dict[Any, int] = {}
                for r in records:
                    tp = TopicPartition(r.topic, r.partition)
                    offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
                try:
                    await consumer.commit(offsets)
                except (CommitFailedError, IllegalStateError) as exc:
                    log.warning(
                        "webhook queue commit refused after rebalance", extra={"error": repr(exc)}
                    )
        finally:
            await consumer.stop()

    # the sender ------------------------------------------------------------------------
    async def due(self) -> list[Delivery]:
        """The pending deliveries due now of the partitions this worker holds."""
        owned = tuple(sorted(f"{topic}#{partition}" for topic, partition in self.owned))
        if not owned:  # before the first assignment, or none: nothing is this worker's
            return []
        rows = await query_confirmed(
            self.store,
            sql.DUE.sql,
            sql.DUE.bind(now=int(self.clock()), limit=DUE_LIMIT, owned=owned),
            table=sql.TABLE,
            retry=self.retry,
            run_blocking=self.run_blocking,
            health=self.health,
        )
        return [d for d in deliveries_of(rows) if d.state.state is DeliveryState.PENDING]

    async def send_round(self) -> int:
        """Attempt every due delivery this worker owns; returns how many were attempted."""
        todo = await self.due()
        if not todo:
            return 0
        subscriptions = await self.subscriptions.current()
        by_org: dict[str, WebhookSubscription] = {}
        for sub in subscriptions:
            by_org.setdefault(sub.org, sub)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(d: Delivery) -> list[dict[str, Any]]:
            async with gate:
                return await attempt(d, by_org.get(d.org), self.post, self.config, self.clock)

        results = await asyncio.gather(*(one(d) for d in todo))
        rows = [row for rows in results for row in rows]
        await insert_confirmed(
            self.store,
            sql.TABLE,
            rows,
            retry=self.retry,
            run_blocking=self.run_blocking,
            health=self.health,
        )
        return len(todo)

    async def send_loop(self) -> None:
        while True:
            try:
                await self.send_round()
            except Exception as exc:  # retries exhausted: the next run resumes from the log
                crash("webhook attempts could not be logged", exc)
            await asyncio.sleep(self.config.poll_seconds)

    async def gauges(self) -> None:
        """Pending and parked deliveries (whole outbox) every 15 s; best effort."""
        while True:
            try:
                rows = await self.run_blocking(self.store.query, sql.STATES.sql)
                counts = counts_by_state(rows)
                metrics.set_webhook_backlog(
                    counts[DeliveryState.PENDING], counts[DeliveryState.PARKED]
                )
            except Exception as exc:
                log.warning("webhook backlog not counted", extra={"error": type(exc).__name__})
            await asyncio.sleep(15.0)

    async def run(self) -> None:
        await asyncio.gather(self.consume(), self.send_loop(), self.gauges())


def counts_by_state(rows: Iterable[Mapping[str, Any]]) -> dict[DeliveryState, int]:
    """Deliveries per state from `sql.STATES` rows (last event -> count)."""
    counts = dict.fromkeys(DeliveryState, 0)
    for row in rows:
        event = DeliveryEvent(row["last_event"])
        state = (
            DeliveryState.DELIVERED
            if event is DeliveryEvent.DELIVERED
            else DeliveryState.PARKED
            if event is DeliveryEvent.PARKED
            else DeliveryState.PENDING
        )
        counts[state] += int(row["n"])
    return counts


# --- the operator's side (`vigie webhooks`) ------------------------------------------------
def parked(store: Store, org: str = "", limit: int = 1000) -> list[dict[str, Any]]:
    return store.query(sql.PARKED.sql, sql.PARKED.bind(org=org, limit=limit))


def events_of(store: Store, did: str) -> list[dict[str, Any]]:
    return store.query(sql.EVENTS_OF.sql, sql.EVENTS_OF.bind(id=did))


def replay(store: Store, ids: Iterable[str], now: float | None = None) -> list[str]:
    """Give parked deliveries a fresh attempt budget, due at once; returns the ids replayed
    (an id that is not parked is left as it is)."""
    at = time.time() if now is None else now
    rows = []
    for did in ids:
        for d in deliveries_of(events_of(store, did)):
            if d.state.state is DeliveryState.PARKED:
                rows.append(d.event(DeliveryEvent.REPLAYED, at, next_at=at))
    if rows:
        store.insert(sql.TABLE, rows)
        metrics.count_webhook_delivery("replayed", len(rows))
    return [str(r["delivery_id"]) for r in rows]
