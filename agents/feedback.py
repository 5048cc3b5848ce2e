"""Sending feedback to reporters: the stages' side of `agents.core.feedback`.

`FeedbackSink.publish` sends a batch's status transitions on the feedback topic
(`vigie.reports.feedback.v1`, key = the report's identity), waits for every delivery, then
writes them to ClickHouse `report_feedback` and waits for confirmation. The stage acks its
input only after that, so a crash replays the batch: the replay makes the same transitions
(deterministic events), the topic may get a message again (the same bytes, the same
`feedback_id`) and the table keeps one row per report and status.

A row in `report_feedback` therefore means the message was delivered: the transitions a
stage cannot re-derive from its input (a rejected identity seen before) are looked up there
(`recorded`) so that a replay does not send them as new.

`send` and `flush` are the two halves of `publish` for a stage that writes on a clock of
its own (the ingest stage, `agents.ingest_loop`): transitions sent and not yet written are
held, and count as recorded (`recorded`, `stored_payloads`) until their write is confirmed;
`flush` is `cut` (what is held now, written by the next `write`) then `write`, which the
ingest stage calls apart to write a tick's transitions after its reports.

A transition already recorded (the same `feedback_id`) is sent again with its stored bytes,
not the ones recomputed now, and not written again: what a replay recomputes may differ (a
correlator restored from a changelog ahead of or behind its committed offsets), and the
contract promises that a repeat is byte-identical to the first message. A stage whose
transitions are functions of their input message alone (the ingest's `recu` and `rejete`)
sends with `lookup=False`: what it recomputes is what was recorded, and the look-up, asked
for every batch, was the ClickHouse server's costliest query, growing with the table.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Collection, Iterable, Iterator, Sequence
from typing import Any

from agents.core.feedback import FeedbackEvent
from agents.core.record import ReportKey
from agents.ingest import SendFn, lookup_chunks
from agents.ports import metrics
from agents.ports.blocking import BlockingRunner
from agents.ports.health import Health
from agents.ports.retry import RetryPolicy
from agents.ports.sql import feedback as sql
from agents.ports.sql.query import Query
from agents.ports.store import Store
from agents.sink import insert_confirmed, query_confirmed

# (event, the time its delay is measured from: the report's reported_at, None: unknown)
Outgoing = tuple[FeedbackEvent, float | None]
# transitions sent and not yet written: feedback_id -> (event, the bytes sent)
Told = dict[str, tuple[FeedbackEvent, bytes]]


class FeedbackSink:
    """Sends a stage's transitions to the feedback topic and stores them in
    `report_feedback`. One per stage (the worker gives the ingest and the correlate stage
    each its own): what it holds counts towards its stage's row bound (`held_rows`) and is
    written by its stage's `flush`."""

    def __init__(
        self,
        *,
        store: Store,
        send: SendFn,
        topic: str,
        retry: RetryPolicy,
        run_blocking: BlockingRunner,
        health: Health | None = None,
    ) -> None:
        self.store = store
        self.send_fn = send
        self.topic = topic
        self.retry = retry
        self.run_blocking = run_blocking
        self.health = health
        # sent (delivery confirmed), not yet in `report_feedback`: feedback_id -> (event,
        # bytes sent); then cut (`cut`) and being written, until `write` has them confirmed
        self._held: Told = {}
        self._writing: list[Told] = []

    @property
    def held_rows(self) -> int:
        return len(self._held)

    def _unwritten(self) -> Iterator[tuple[str, tuple[FeedbackEvent, bytes]]]:
        """The transitions sent and not yet confirmed written: they count as recorded."""
        for told in (*self._writing, self._held):
            yield from told.items()

    async def recorded(
        self, keys: Iterable[ReportKey], statuses: Collection[str]
    ) -> set[ReportKey]:
        """The identities among `keys` with a recorded transition of one of `statuses`."""
        asked = set(keys)
        found: set[ReportKey] = set()
        for ids in lookup_chunks(sorted({k.report_id for k in asked})):
            rows = await self._query(sql.RECORDED, ids=ids, statuses=tuple(sorted(statuses)))
            for row in rows:
                key = ReportKey(row["source_kind"], row["source_org"], row["report_id"])
                if key in asked:
                    found.add(key)
        found |= {event.key for _fid, (event, _) in self._unwritten()
                  if event.key in asked and event.status.value in statuses}
        return found

    async def stored_payloads(self, events: Iterable[FeedbackEvent]) -> dict[str, bytes]:
        """The stored payload of each of `events` already recorded, by `feedback_id`. Two
        steps: which of them are recorded (`sql.STORED_IDS`, narrow columns), then the
        payloads of those only (`sql.PAYLOADS`): new transitions, nearly all of them, never
        read the wide payload column."""
        by_id = {event.feedback_id: event for event in events}
        held = {fid: value for fid, (_, value) in self._unwritten() if fid in by_id}
        for fid in held:
            del by_id[fid]
        if not by_id:
            return held
        ids = sorted({event.key.report_id for event in by_id.values()})
        statuses = tuple(sorted({event.status.value for event in by_id.values()}))
        recorded: set[str] = set()
        for chunk in lookup_chunks(ids):
            rows = await self._query(sql.STORED_IDS, ids=chunk, statuses=statuses)
            recorded.update(str(row["feedback_id"]) for row in rows)
        recorded &= by_id.keys()
        found: dict[str, bytes] = {}
        if not recorded:
            return found
        fids = tuple(sorted(recorded))
        for chunk in lookup_chunks(sorted({by_id[f].key.report_id for f in recorded})):
            for row in await self._query(sql.PAYLOADS, ids=chunk, fids=fids):
                if row["feedback_id"] in recorded:
                    found.setdefault(row["feedback_id"], str(row["payload"]).encode())
        return found

    async def _query(self, query: Query, **params: object) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await query_confirmed(
            self.store,
            query.sql,
            query.bind(**params),
            table=sql.TABLE,
            retry=self.retry,
            run_blocking=self.run_blocking,
            health=self.health,
        )
        return rows

    async def publish(self, events: Sequence[Outgoing]) -> None:
        """Send `events`, wait for every delivery, then store the new ones; raises when
        either failed after the retries (the caller then does not ack its input). A
        transition already recorded is sent with its stored bytes; one repeated within
        `events` is sent once."""
        await self.send(events)
        await self.flush()

    async def send(self, events: Sequence[Outgoing], *, lookup: bool = True) -> None:
        """`publish`'s first half: send `events` and wait for every delivery; the new ones
        are held for `flush` (and count as recorded meanwhile). `lookup=False`: the events
        are functions of their input message alone, so one already recorded has the same
        bytes; none is looked up (`stored_payloads`), each is sent and written as made."""
        if not events:
            return
        sent = await self.stored_payloads([event for event, _ in events]) if lookup else {}
        fresh: list[tuple[FeedbackEvent, bytes, float | None]] = []
        done: set[str] = set()  # the feedback_ids sent in this batch
        deliveries: list[Awaitable[Any]] = []
        for i, (event, since) in enumerate(events):
            if i % 500 == 499:  # a catching-up batch has thousands: let others run
                await asyncio.sleep(0)
            fid = event.feedback_id
            if fid in done:
                continue
            done.add(fid)
            value = sent.get(fid)
            if value is None:
                value = event.encode()
                fresh.append((event, value, since))
            deliveries.append(await self.send_fn(self.topic, event.kafka_key(), value))
        await asyncio.gather(*deliveries)
        now = time.time()
        for event, value, since in fresh:
            self._held[event.feedback_id] = (event, value)
            metrics.count_feedback(event.status.value, None if since is None else now - since)

    async def flush(self) -> None:
        """`publish`'s second half: write the held transitions to `report_feedback` and
        wait; they count as recorded for `send` until the write is confirmed."""
        await self.write(self.cut())

    def cut(self) -> Told:
        """The transitions held now, for one `write` (or `hold_again`); those sent after
        the cut wait for the next."""
        told, self._held = self._held, {}
        self._writing.append(told)
        return told

    async def write(self, told: Told) -> None:
        """Write a cut to `report_feedback` and wait; on a failure it is held again (first)
        and the error propagates."""
        try:
            if told:
                now = time.time()
                await insert_confirmed(
                    self.store,
                    sql.TABLE,
                    [event.row(now) for event, _ in told.values()],
                    retry=self.retry,
                    run_blocking=self.run_blocking,
                    health=self.health,
                )
        except BaseException:
            self.hold_again(told)
            raise
        self._writing.remove(told)

    def hold_again(self, told: Told) -> None:
        """A cut not written (its stage's write failed before it): held again, before what
        was sent since."""
        self._writing.remove(told)
        self._held = {**told, **self._held}
