"""Ingestion of report batches: validate, drop exact re-deliveries, enrich, store, forward.

`IngestProcessor` holds no Faust code so it is tested directly; `agents.faust_agents`
drives it from a Faust stream with manual acks. For one batch the order is:

1. validate every message (contract v1) and pseudonymise personal data;
2. drop exact re-deliveries: reports of the same identity (source kind, source org,
   report_id) and content seen earlier in the batch or already stored (the `reports`
   table is the memory of what was seen, so this holds across restarts and replays with
   no extra state); the same identity with other content is rejected
   `id_reused_with_different_content`;
3. enrich the accepted records in one vectorised call (commune, jurisdiction, H3);
   steps 1-3 are `agents.core.intake`, which `vigie backtest` and `vigie eval` run too;
4. send dead letters and enriched records to Kafka and wait for every delivery; with a
   feedback sink, send the `recu` / `rejete` transitions and wait for them (`recu` also
   for a message read again whose report was stored from it: `_replayed`);
5. write the `reports` and `rejected` rows, then the transitions to `report_feedback` (a
   `recu` recorded is of a report stored: a report not stored has none; and each
   transition is a function of its message, so no recorded bytes are looked up), and
   wait for confirmation.

Steps 1-4 are `take(batch)`, run for every batch; step 5 is `flush()`, run on the loop's
store clock (`agents.ingest_loop`, about once a second) for every batch taken since: each
insert is a part the server merges again (docs/sre.md, "Merges"), and the reports go on to
the correlator without waiting for it. Meanwhile the held rows count as stored for step 2
(`_stored`) and the held transitions as recorded (`FeedbackSink`). `process(batch)` is both.

Only then does the caller ack the messages (offsets are committed after the writes).
A crash before 5 is done replays every batch taken since the last commit: deliveries may
repeat (the correlator ignores known report_ids, subscribers get the same dead letter
again) but nothing is lost, and the ReplacingMergeTree tables keep one row per id.

No single message can stop the stage: every message the stage produces fits in
`max_message_bytes` (the producer's limit, `VIGIE_KAFKA_MAX_MESSAGE_BYTES`). A dead letter
carries the original whole when it fits, else its first bytes (`original_truncated`, with
the whole original's size and SHA-256), and then the `rejected` row keeps the whole bytes;
enriched bundles close at `BUNDLE_MAX_RECORDS` records or at the byte limit. A message
with a 1 MB key or value (the broker's own limit) would otherwise make a dead letter over
the producer's limit: the batch fails, the worker exits, and its successor replays the same
batch for ever.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from agents.core import feedback
from agents.core.intake import Enricher, Intake, IntakeChunk
from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportKey, ReportRecord
from agents.core.validation import DEFAULT_TIME_BOUNDS, PartnerTopics, Rejection, TimeBounds
from agents.ports import metrics
from agents.ports.blocking import BlockingRunner
from agents.ports.health import Health
from agents.ports.retry import RetryPolicy
from agents.ports.sql import reports
from agents.ports.sql.query import Query
from agents.ports.store import Store
from agents.sink import insert_confirmed, query_confirmed

if TYPE_CHECKING:  # agents.feedback imports this module
    from agents.feedback import FeedbackSink, Outgoing

log = logging.getLogger(__name__)

# send(topic, key, value) -> awaitable delivery confirmation
SendFn = Callable[[str, bytes | None, bytes], Awaitable[Awaitable[Any]]]

# The largest record the stage produces, key and value (`VIGIE_KAFKA_MAX_MESSAGE_BYTES`; the
# producer's `max_request_size`, Faust's default; the broker's `message.max.bytes` is
# 1,048,588 by default).
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
# Room left for Kafka's record batch and record headers around a key and a value (the
# producer counts them against its limit: 61 bytes of batch header plus a few varints).
RECORD_OVERHEAD_BYTES = 512
# A dead letter's own key is the original key when it is at most this long, else the
# original key's SHA-256 (hex); `original_key_b64` then holds the key's first bytes.
DEAD_LETTER_KEY_MAX_BYTES = 1024


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
    # exact re-deliveries dropped (`agents.core.intake`), with their messages
    redelivered: list[tuple[InboundMessage, ReportRecord]] = field(default_factory=list)
    unlocated: int = 0  # rejections made by enrichment (the last ones of `rejected`)
    # of `redelivered`, the messages read again (their report stored from their own
    # topic/partition/offset: a crash, stop or rebalance before the commit), as opposed to
    # a producer's re-sends (`IngestProcessor._replayed`)
    replayed: list[tuple[InboundMessage, ReportRecord]] = field(default_factory=list)

    @property
    def redeliveries(self) -> int:
        return len(self.redelivered)

    @classmethod
    def of(cls, chunk: IntakeChunk[InboundMessage]) -> BatchOutcome:
        """The batch's intake, accepted records stamped with their Kafka origin."""
        accepted = []
        for msg, rec in chunk.accepted:
            rec.origin_topic = msg.topic
            rec.origin_partition = msg.partition
            rec.origin_offset = msg.offset
            accepted.append(rec)
        return cls(accepted, chunk.rejected, chunk.redelivered, len(chunk.unlocated))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead letter as produced (`key`, `value`: schemas.RejectedReport) and whether it
    had to leave out part of the original value or key."""

    key: bytes | None
    value: bytes
    truncated: bool
    key_truncated: bool
    sha256: str  # of the whole original value


def dead_letter(
    message: InboundMessage,
    rejection: Rejection,
    now: float,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> DeadLetter:
    """The dead letter of a rejected message: original bytes, reason, origin; key and value
    together at most `max_bytes` minus the record overhead, whatever the original's size.

    The original value travels whole when it fits, else its first bytes (a multiple of 3,
    so that the base64 has no padding) with `original_truncated`; `original_size` and
    `original_sha256` always describe the whole value. A key longer than
    `DEAD_LETTER_KEY_MAX_BYTES` is cut likewise, and the dead letter is keyed by its SHA-256.
    """
    value, key = message.value, message.key
    key_truncated = key is not None and len(key) > DEAD_LETTER_KEY_MAX_BYTES
    letter_key = hashlib.sha256(key).hexdigest().encode() if key_truncated and key else key
    kept_key = key[:DEAD_LETTER_KEY_MAX_BYTES] if key is not None else None
    sha256 = hashlib.sha256(value).hexdigest()
    envelope: dict[str, Any] = {
        "reason": rejection.reason.value,
        "detail": rejection.detail,
        "origin_topic": message.topic,
        "origin_partition": message.partition,
        "origin_offset": message.offset,
        "original_b64": "",
        "original_key_b64": _b64(kept_key) if kept_key is not None else None,
        "report_id": rejection.report_id,
        "source_kind": rejection.source_kind,
        "source_org": rejection.source_org,
        "rejected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "original_size": len(value),
        "original_sha256": sha256,
        "original_truncated": False,  # "false" is longer than "true": the size is an upper bound
        "original_key_size": len(key) if key is not None else None,
        "original_key_truncated": key_truncated,
    }
    room = (
        max_bytes - RECORD_OVERHEAD_BYTES - len(letter_key or b"") - len(orjson.dumps(envelope))
    )
    if 4 * ((len(value) + 2) // 3) <= room:
        envelope["original_b64"] = _b64(value)
        truncated = False
    else:
        envelope["original_b64"] = _b64(value[: max(0, room // 4) * 3])
        envelope["original_truncated"] = truncated = True
    return DeadLetter(letter_key, orjson.dumps(envelope), truncated, key_truncated, sha256)


def rejected_row(
    message: InboundMessage, rejection: Rejection, now: float, letter: DeadLetter
) -> dict[str, Any]:
    """The `rejected` row of a dead letter: the whole original bytes (base64) only when the
    dead letter could not carry them (`original_b64`, `original_key_b64`, else empty)."""
    key = message.key
    return {
        "rejected_at": now,
        "origin_topic": message.topic,
        "origin_partition": message.partition,
        "origin_offset": message.offset,
        "reason": rejection.reason.value,
        "detail": rejection.detail,
        "report_id": rejection.report_id or "",
        "source_kind": rejection.source_kind or "",
        "source_org": rejection.source_org or "",
        "size_bytes": len(message.value),
        "original_sha256": letter.sha256,
        "original_b64": _b64(message.value) if letter.truncated else "",
        "original_key_b64": _b64(key) if letter.key_truncated and key is not None else "",
    }


# Report ids per store look-up, in bytes: ClickHouse refuses a query text over its
# `max_query_size` (262,144 bytes by default), and an id may take twice its size once escaped
# (up to 128 characters, 4 bytes each in UTF-8).
LOOKUP_MAX_BYTES = 64 * 1024


def lookup_chunks(ids: Sequence[str], max_bytes: int = LOOKUP_MAX_BYTES) -> list[tuple[str, ...]]:
    """`ids` in consecutive groups of at most `max_bytes` (UTF-8, plus 4 for the quotes and
    the separator of each), one group per query; a batch of 5,000 short ids is one group."""
    chunks: list[tuple[str, ...]] = []
    group: list[str] = []
    size = 0
    for rid in ids:
        n = len(rid.encode()) + 4
        if group and size + n > max_bytes:
            chunks.append(tuple(group))
            group, size = [], 0
        group.append(rid)
        size += n
    if group:
        chunks.append(tuple(group))
    return chunks


BUNDLE_MAX_RECORDS = 400  # ~1 KiB a record: a bundle is usually far below the byte limit


def bundle_by_key(
    records: Sequence[ReportRecord],
    dicts: Sequence[dict[str, Any]],
    partition_key: Callable[[ReportRecord], str],
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> list[tuple[str, bytes]]:
    """Enriched records grouped by spatial partition key: messages (a JSON array) of up to
    `BUNDLE_MAX_RECORDS` records and, key and record overhead included, `max_bytes` per key
    on the internal topic, instead of one message per report (the correlator reads the
    records of an area in order either way). A record is at most a few KiB (validation
    bounds every text field), so a bundle always fits."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec, item in zip(records, dicts, strict=True):
        groups.setdefault(partition_key(rec), []).append(item)
    out: list[tuple[str, bytes]] = []
    for key, items in groups.items():
        budget = max_bytes - RECORD_OVERHEAD_BYTES - len(key.encode())
        for i in range(0, len(items), BUNDLE_MAX_RECORDS):
            _fit(key, items[i : i + BUNDLE_MAX_RECORDS], budget, out)
    return out


def _fit(key: str, items: list[dict[str, Any]], budget: int,
         out: list[tuple[str, bytes]]) -> None:
    """One bundle of `items`, or halves of them until each fits in `budget` bytes (a rare
    path: 400 of the largest records the contract allows take ~790 KB)."""
    raw = orjson.dumps(items)
    if len(raw) <= budget or len(items) == 1:
        out.append((key, raw))
        return
    half = len(items) // 2
    _fit(key, items[:half], budget, out)
    _fit(key, items[half:], budget, out)


def unbundle(value: bytes) -> list[ReportRecord]:
    """The records of one enriched bundle; raises ValueError/TypeError if it is not one."""
    items = orjson.loads(value)
    if not isinstance(items, list):
        raise ValueError("an enriched bundle is a JSON array of records")
    return [ReportRecord.from_dict(item) for item in items]


@dataclass(slots=True)
class HeldRows:
    """What the batches taken since the last `IngestProcessor.flush` hold back: their
    `reports` and `rejected` rows, and the identities of the reports with their content
    hashes (a re-delivery of one of them is dropped as if it were stored)."""

    reports: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[ReportKey, str] = field(default_factory=dict)


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
        health: Health | None = None,
        topic_kinds: Mapping[str, Collection[str]] | None = None,
        time_bounds: TimeBounds | None = DEFAULT_TIME_BOUNDS,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        partner_topics: PartnerTopics | None = None,
        feedback_sink: FeedbackSink | None = None,
    ) -> None:
        """`topic_kinds`: the source kinds each input topic accepts (a message of another
        kind, or from a topic not listed, is rejected `source_not_allowed_on_topic`; None:
        any kind anywhere). `partner_topics`: per-partner topics, each taking the partner
        kinds with its own `source.org` only (`source_org_not_allowed_on_topic`).
        `time_bounds`: how far a report's times may lie from its Kafka timestamp.
        `max_message_bytes`: the largest record to produce. `feedback_sink`: where the
        `recu` / `rejete` transitions go (None: no feedback)."""
        self.store = store
        self.enricher = enricher
        self.pseudonymiser = pseudonymiser
        self.send = send
        self.rejected_topic = rejected_topic
        self.enriched_topic = enriched_topic
        self.partition_key = partition_key
        self.retry = retry
        self.run_blocking = run_blocking
        self.health = health
        self.topic_kinds = topic_kinds
        self.time_bounds = time_bounds
        self.max_message_bytes = max_message_bytes
        self.partner_topics = partner_topics
        self.feedback_sink = feedback_sink
        self._held = HeldRows()  # taken, not yet written (`flush`)
        self._writing: list[HeldRows] = []  # being written by `flush` (still count as stored)

    @property
    def held_rows(self) -> int:
        """Rows taken and not yet written (`reports`, `rejected`, transitions)."""
        sink = self.feedback_sink
        return (len(self._held.reports) + len(self._held.rejected)
                + (sink.held_rows if sink is not None else 0))

    # ---- steps -------------------------------------------------------------------------
    async def _intake(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        """validate -> drop re-deliveries -> enrich (`agents.core.intake`); a re-delivery is
        an identity seen earlier in the batch or already in the `reports` table, with the
        same content."""
        intake: Intake[InboundMessage] = Intake(
            pseudonymiser=self.pseudonymiser, enricher=self.enricher, bounds=self.time_bounds
        )
        for msg in messages:
            kinds, org = self._topic_rule(msg.topic)
            intake.add(msg, msg.value, msg.timestamp, allowed_kinds=kinds, required_org=org)
        stored = await self._stored(intake.pending_keys())
        outcome = BatchOutcome.of(intake.flush(stored))
        outcome.replayed = await self._replayed(outcome.redelivered)
        return outcome

    def _topic_rule(self, topic: str) -> tuple[Collection[str] | None, str | None]:
        """The source kinds `topic` accepts and the one `source.org` it is for (None: any):
        a listed topic's kinds; a per-partner topic's partner kinds and org; else none."""
        if self.topic_kinds is not None and topic in self.topic_kinds:
            return self.topic_kinds[topic], None
        partner = self.partner_topics
        org = None if partner is None else partner.org_of(topic)
        if partner is not None and org is not None:
            return partner.kinds, org
        return (None if self.topic_kinds is None else ()), None

    async def _stored(self, keys: tuple[ReportKey, ...]) -> dict[ReportKey, str]:
        """The identities among `keys` that the `reports` table already holds, or that a
        batch taken and not yet written holds, with their content hashes ("" for rows
        stored before hashes were). Asked by report id, a bounded number of ids per query
        (`lookup_chunks`)."""
        asked = set(keys)
        stored: dict[ReportKey, str] = {}
        for held in (*self._writing, self._held):
            stored.update((k, held.keys[k]) for k in asked if k in held.keys)
        for row in await self._ask_reports(reports.STORED_KEYS, {k.report_id for k in keys}):
            key = ReportKey(row["source_kind"], row["source_org"], row["report_id"])
            if key in asked:  # not another source's report with the same id
                stored[key] = row["content_hash"]
        return stored

    async def _ask_reports(self, query: Query, report_ids: Collection[str]) -> list[dict[str, Any]]:
        """`query`'s rows for `report_ids` (its `ids`), a bounded number of ids per query
        (`lookup_chunks`), each confirmed (`query_confirmed`)."""
        rows: list[dict[str, Any]] = []
        for ids in lookup_chunks(sorted(report_ids)):
            rows += await query_confirmed(
                self.store,
                query.sql,
                query.bind(ids=ids),
                table="reports",
                retry=self.retry,
                run_blocking=self.run_blocking,
                health=self.health,
            )
        return rows

    async def _replayed(
        self, redelivered: Sequence[tuple[InboundMessage, ReportRecord]]
    ) -> list[tuple[InboundMessage, ReportRecord]]:
        """Of `redelivered`, the messages read again: their report was stored from their own
        topic/partition/offset. Asked only when a batch dropped re-deliveries."""
        if not redelivered:
            return []
        rows = await self._ask_reports(reports.STORED_ORIGINS,
                                       {rec.report_id for _m, rec in redelivered})
        stored = {(r["report_id"], r["origin_topic"], int(r["origin_partition"]),
                   int(r["origin_offset"])) for r in rows}
        return [(m, rec) for m, rec in redelivered
                if (rec.report_id, m.topic, m.partition, m.offset) in stored]

    async def _forward(
        self,
        outcome: BatchOutcome,
        letters: Sequence[DeadLetter],
        dicts: Sequence[dict[str, Any]],
    ) -> None:
        deliveries: list[Awaitable[Any]] = []
        for letter in letters:
            deliveries.append(await self.send(self.rejected_topic, letter.key, letter.value))
        bundles = bundle_by_key(outcome.accepted, dicts, self.partition_key,
                                self.max_message_bytes)
        for key, bundle in bundles:
            deliveries.append(await self.send(self.enriched_topic, key.encode(), bundle))
        await asyncio.gather(*deliveries)

    def _hold(
        self,
        outcome: BatchOutcome,
        letters: Sequence[DeadLetter],
        dicts: list[dict[str, Any]],
        now: float,
    ) -> None:
        for rec, row in zip(outcome.accepted, dicts, strict=True):
            row["ingested_at"] = now
            row["content_hash"] = rec.content_hash  # what tells a re-delivery (`_stored`)
            self._held.keys[rec.key] = rec.content_hash
        self._held.reports += dicts
        self._held.rejected += [rejected_row(m, r, now, letter)
                                for (m, r), letter in zip(outcome.rejected, letters, strict=True)]

    # ---- the batch ------------------------------------------------------------------------
    async def process(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        """Process one batch; returns only when every write is confirmed, else raises."""
        outcome = await self.take(messages)
        await self.flush()
        return outcome

    async def take(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        """Steps 1-4 of one batch: every delivery confirmed, its rows held for `flush`."""
        metrics.observe_consumer_batch("ingest", len(messages))
        outcome = await self._intake(messages)
        now = time.time()
        dicts = [rec.to_dict() for rec in outcome.accepted]
        letters = [dead_letter(m, r, now, self.max_message_bytes) for m, r in outcome.rejected]
        await self._forward(outcome, letters, dicts)
        if self.feedback_sink is not None:  # written after `reports` (`flush`)
            # every transition here is a function of its message alone (`feedback.received`,
            # `feedback.rejected`): one recomputed is the one recorded, byte for byte, and
            # nothing needs looking up in `report_feedback`
            await self.feedback_sink.send(await self._feedback(messages, outcome),
                                          lookup=False)
        self._hold(outcome, letters, dicts, now)  # adds ingested_at, content_hash
        self._count(outcome, Counter(m.topic for m in messages), now)
        return outcome

    async def flush(self) -> None:
        """Step 5 for every batch taken before the call: the transitions, then the
        `reports` and `rejected` rows, each write confirmed. Batches taken while it writes
        are held for the next call (their re-deliveries still meet these rows: `_stored`).
        On a failure what was not written is held again, first, and the error propagates
        (the caller crashes and the batches are replayed)."""
        sink = self.feedback_sink
        tick, self._held = self._held, HeldRows()
        # the transitions of the same batches as `tick` (a batch taken while it is written
        # has its rows and its transitions in the next tick)
        told = None if sink is None else sink.cut()
        self._writing.append(tick)
        try:
            for table, rows in (("reports", tick.reports), ("rejected", tick.rejected)):
                await insert_confirmed(
                    self.store, table, rows, retry=self.retry, run_blocking=self.run_blocking,
                    health=self.health,
                )
                if table == "reports":
                    stored_at = time.time()
                    observe = metrics.LATENCY_STORED.observe
                    for row in rows:
                        observe(max(0.0, stored_at - float(row["reported_at"])))
                rows.clear()  # written: a failure of the next table does not write these again
            if sink is not None and told is not None:
                # after `reports`: a `recu` recorded is of a report stored, so a report not
                # stored has none recorded, and a message read again whose report is stored
                # from it is told `recu` again (`_replayed`), which writes it if a crash
                # came between the two (`write` holds its cut again itself if it fails)
                cut, told = told, None
                await sink.write(cut)
        except BaseException:
            later = self._held
            self._held = HeldRows(tick.reports + later.reports, tick.rejected + later.rejected,
                                  {**tick.keys, **later.keys})
            if sink is not None and told is not None:
                sink.hold_again(told)
            raise
        finally:
            self._writing.remove(tick)

    async def _feedback(
        self, messages: Sequence[InboundMessage], outcome: BatchOutcome
    ) -> list[Outgoing]:
        """`recu` for every report taken in; `rejete` for the first rejected message of each
        readable identity that is neither taken in (this batch, the `reports` table) nor
        already told `recu` or `rejete` (a replay, an earlier message)."""
        sink = self.feedback_sink
        assert sink is not None
        times = {(m.topic, m.partition, m.offset): m.timestamp for m in messages}
        out: list[Outgoing] = []
        for rec in outcome.accepted:
            at = times.get((rec.origin_topic, rec.origin_partition, rec.origin_offset))
            out.append((feedback.received(rec, rec.reported_at if at is None else at),
                        rec.reported_at))
        # read again: told again (a crash may have come between its report's row and its
        # transition's, `flush`), the same bytes as the first time
        out += [(feedback.received(rec, msg.timestamp), rec.reported_at)
                for msg, rec in outcome.replayed]
        taken = {rec.key for rec in outcome.accepted}
        candidates: dict[ReportKey, Outgoing] = {}
        for msg, rejection in outcome.rejected:
            origin = f"{msg.topic}/{msg.partition}/{msg.offset}"
            event = feedback.rejected(rejection, msg.timestamp, origin)
            if event is not None and event.key not in taken and event.key not in candidates:
                candidates[event.key] = (event, msg.timestamp)
        if candidates:
            keys = tuple(candidates)
            known = set(await self._stored(keys))
            known |= await sink.recorded(keys, ("recu", "rejete"))
            out += [item for key, item in candidates.items() if key not in known]
        return out

    def _count(self, outcome: BatchOutcome, received: Counter[str], now: float) -> None:
        """Metrics once per batch and label (labels() lookups cost more than the counts)."""
        for topic, n in received.items():
            metrics.REPORTS_IN.labels(topic=topic).inc(n)
        metrics.REDELIVERIES_DROPPED.inc(outcome.redeliveries)
        metrics.REPLAYS_DROPPED.inc(len(outcome.replayed))
        metrics.ENRICHMENT_FAILURES.inc(outcome.unlocated)
        reasons = Counter(rejection.reason.value for _msg, rejection in outcome.rejected)
        for reason, n in reasons.items():
            metrics.REJECTIONS.labels(reason=reason).inc(n)
        for msg, rejection in outcome.rejected:
            # a report_id may hold personal data (partners choose it): logs get a keyed
            # reference to it and the message's position, which the dead letter also carries
            rid = rejection.report_id
            log.info(
                "report rejected",
                extra={"reason": rejection.reason.value, "topic": msg.topic,
                       "partition": msg.partition, "offset": msg.offset,
                       "report_ref": None if rid is None else self.pseudonymiser.reference(rid)},
            )
        for kind, n in Counter(rec.source_kind for rec in outcome.accepted).items():
            metrics.REPORTS_ACCEPTED.labels(source_kind=kind).inc(n)
        for category, n in Counter(rec.category for rec in outcome.accepted).items():
            metrics.REPORTS_BY_CATEGORY.labels(category=category).inc(n)
