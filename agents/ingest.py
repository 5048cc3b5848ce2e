"""Ingestion of report batches: validate, drop exact re-deliveries, enrich, store, forward.

`IngestProcessor` holds no Faust code so it is tested directly; `agents.faust_agents`
drives it from a Faust stream with manual acks. For one batch the order is:

1. validate every message (contract v1) and pseudonymise personal data;
2. drop exact re-deliveries: report_ids seen earlier in the batch or already stored
   (the `reports` table is the memory of what was seen, so this holds across
   restarts and replays with no extra state);
3. enrich the accepted records in one vectorised call (commune, jurisdiction, H3);
4. send dead letters and enriched records to Kafka and wait for every delivery;
5. insert `reports` and `rejected` rows into ClickHouse and wait for confirmation.

Only then does the caller ack the messages (offsets are committed after the writes).
A crash before 5 replays the batch: deliveries may repeat (the correlator ignores known
report_ids, subscribers get the same dead letter again) but nothing is lost, and the
ReplacingMergeTree tables keep one row per id.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportRecord
from agents.core.validation import Rejection, validate_report
from agents.sink import BlockingRunner, insert_confirmed, query_confirmed
from streams import metrics
from streams.retry import RetryPolicy
from streams.storage.base import Store

log = logging.getLogger(__name__)

# send(topic, key, value) -> awaitable delivery confirmation
SendFn = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[Any]]]


class Enricher(Protocol):
    def enrich_batch(self, records: list[ReportRecord]) -> list[ReportRecord | Rejection]: ...


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One Kafka message as the processor needs it (decoupled from Faust's Event)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: float  # broker timestamp, UTC epoch seconds


@dataclass(slots=True)
class BatchOutcome:
    accepted: list[ReportRecord] = field(default_factory=list)
    rejected: list[tuple[InboundMessage, Rejection]] = field(default_factory=list)
    redeliveries: int = 0


def dead_letter(message: InboundMessage, rejection: Rejection, now: float) -> bytes:
    """The dead-letter message: original bytes, reason, origin (schemas.RejectedReport)."""
    return orjson.dumps(
        {
            "reason": rejection.reason.value,
            "detail": rejection.detail,
            "origin_topic": message.topic,
            "origin_partition": message.partition,
            "origin_offset": message.offset,
            "original_b64": base64.b64encode(message.value).decode("ascii"),
            "original_key_b64": (
                base64.b64encode(message.key).decode("ascii") if message.key is not None else None
            ),
            "report_id": rejection.report_id,
            "rejected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        }
    )


def rejected_row(message: InboundMessage, rejection: Rejection, now: float) -> dict[str, Any]:
    return {
        "rejected_at": now,
        "origin_topic": message.topic,
        "origin_partition": message.partition,
        "origin_offset": message.offset,
        "reason": rejection.reason.value,
        "detail": rejection.detail,
        "report_id": rejection.report_id or "",
        "size_bytes": len(message.value),
    }


BUNDLE_MAX_RECORDS = 400  # ~1 KiB a record: bundles stay far below Kafka's 1 MiB message limit


def bundle_by_key(
    records: Sequence[ReportRecord],
    dicts: Sequence[dict[str, Any]],
    partition_key: Callable[[ReportRecord], str],
) -> list[tuple[str, bytes]]:
    """Enriched records grouped by spatial partition key: messages of up to
    `BUNDLE_MAX_RECORDS` records (a JSON array) per key on the internal topic, instead of one
    message per report (the correlator reads the records of an area in order either way)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec, item in zip(records, dicts, strict=True):
        groups.setdefault(partition_key(rec), []).append(item)
    return [
        (key, orjson.dumps(items[i : i + BUNDLE_MAX_RECORDS]))
        for key, items in groups.items()
        for i in range(0, len(items), BUNDLE_MAX_RECORDS)
    ]


def unbundle(value: bytes) -> list[ReportRecord]:
    """The records of one enriched bundle; raises ValueError/TypeError if it is not one."""
    items = orjson.loads(value)
    if not isinstance(items, list):
        raise ValueError("an enriched bundle is a JSON array of records")
    return [ReportRecord.from_dict(item) for item in items]


class IngestProcessor:
    def __init__(
        self,
        *,
        store: Store,
        enricher: Enricher,
        pseudonymiser: Pseudonymiser,
        send: SendFn,
        rejected_topic: str,
        enriched_topic: str,
        partition_key: Callable[[ReportRecord], str],
        retry: RetryPolicy,
        run_blocking: BlockingRunner,
    ) -> None:
        self.store = store
        self.enricher = enricher
        self.pseudonymiser = pseudonymiser
        self.send = send
        self.rejected_topic = rejected_topic
        self.enriched_topic = enriched_topic
        self.partition_key = partition_key
        self.retry = retry
        self.run_blocking = run_blocking

    # ---- steps -------------------------------------------------------------------------
    def _validate(
        self, messages: Sequence[InboundMessage], outcome: BatchOutcome
    ) -> list[tuple[InboundMessage, ReportRecord]]:
        valid: list[tuple[InboundMessage, ReportRecord]] = []
        for msg in messages:
            result = validate_report(
                msg.value, message_timestamp=msg.timestamp, pseudonymiser=self.pseudonymiser
            )
            if isinstance(result, Rejection):
                outcome.rejected.append((msg, result))
                continue
            result.origin_topic = msg.topic
            result.origin_partition = msg.partition
            result.origin_offset = msg.offset
            valid.append((msg, result))
        return valid

    async def _drop_redeliveries(
        self, valid: list[tuple[InboundMessage, ReportRecord]], outcome: BatchOutcome
    ) -> list[tuple[InboundMessage, ReportRecord]]:
        ids = tuple({rec.report_id for _, rec in valid})
        stored: set[str] = set()
        if ids:
            rows = await query_confirmed(
                self.store,
                "SELECT report_id FROM reports WHERE report_id IN %(ids)s",
                {"ids": ids},
                table="reports",
                retry=self.retry,
                run_blocking=self.run_blocking,
            )
            stored = {row["report_id"] for row in rows}
        fresh: list[tuple[InboundMessage, ReportRecord]] = []
        seen_in_batch: set[str] = set()
        for msg, rec in valid:
            if rec.report_id in stored or rec.report_id in seen_in_batch:
                outcome.redeliveries += 1
                continue
            seen_in_batch.add(rec.report_id)
            fresh.append((msg, rec))
        return fresh

    def _enrich(
        self, fresh: list[tuple[InboundMessage, ReportRecord]], outcome: BatchOutcome
    ) -> None:
        results = self.enricher.enrich_batch([rec for _, rec in fresh])
        for (msg, _), result in zip(fresh, results, strict=True):
            if isinstance(result, Rejection):
                outcome.rejected.append((msg, result))
            else:
                outcome.accepted.append(result)

    async def _forward(
        self, outcome: BatchOutcome, dicts: Sequence[dict[str, Any]], now: float
    ) -> None:
        deliveries: list[Awaitable[Any]] = []
        for msg, rejection in outcome.rejected:
            deliveries.append(
                await self.send(self.rejected_topic, msg.key, dead_letter(msg, rejection, now))
            )
        for key, bundle in bundle_by_key(outcome.accepted, dicts, self.partition_key):
            deliveries.append(await self.send(self.enriched_topic, key.encode(), bundle))
        await asyncio.gather(*deliveries)

    async def _store(
        self, outcome: BatchOutcome, dicts: list[dict[str, Any]], now: float
    ) -> None:
        for row in dicts:
            row["ingested_at"] = now
        writes = (
            ("reports", dicts),
            ("rejected", [rejected_row(m, r, now) for m, r in outcome.rejected]),
        )
        for table, rows in writes:
            await insert_confirmed(
                self.store, table, rows, retry=self.retry, run_blocking=self.run_blocking
            )

    # ---- the batch ------------------------------------------------------------------------
    async def process(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        """Process one batch; returns only when every write is confirmed, else raises."""
        metrics.observe_consumer_batch("ingest", len(messages))
        outcome = BatchOutcome()
        valid = self._validate(messages, outcome)
        fresh = await self._drop_redeliveries(valid, outcome)
        self._enrich(fresh, outcome)
        now = time.time()
        dicts = [rec.to_dict() for rec in outcome.accepted]
        await self._forward(outcome, dicts, now)
        await self._store(outcome, dicts, now)  # adds ingested_at to the dicts
        self._count(outcome, Counter(m.topic for m in messages), now)
        return outcome

    @staticmethod
    def _count(outcome: BatchOutcome, received: Counter[str], now: float) -> None:
        """Metrics once per batch and label (labels() lookups cost more than the counts)."""
        for topic, n in received.items():
            metrics.REPORTS_IN.labels(topic=topic).inc(n)
        metrics.REDELIVERIES_DROPPED.inc(outcome.redeliveries)
        reasons = Counter(rejection.reason.value for _msg, rejection in outcome.rejected)
        for reason, n in reasons.items():
            metrics.REJECTIONS.labels(reason=reason).inc(n)
        for _msg, rejection in outcome.rejected:
            log.info(
                "report rejected",
                extra={"report_id": rejection.report_id, "reason": rejection.reason.value},
            )
        for kind, n in Counter(rec.source_kind for rec in outcome.accepted).items():
            metrics.REPORTS_ACCEPTED.labels(source_kind=kind).inc(n)
        for category, n in Counter(rec.category for rec in outcome.accepted).items():
            metrics.REPORTS_BY_CATEGORY.labels(category=category).inc(n)
        observe = metrics.LATENCY_STORED.observe
        for rec in outcome.accepted:
            observe(max(0.0, now - rec.reported_at))
