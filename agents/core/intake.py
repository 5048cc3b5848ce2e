"""The intake of raw reports: validate -> drop re-deliveries -> enrich, in that order.

One implementation for every path a raw report takes: the live ingest stage
(`agents.ingest`), `vigie backtest` (`offline.replay`) and `vigie eval`
(`offline.evaluation`). Pure: no I/O. Reports go in one at a time (`add`) and come out in
chunks (`flush`), so a caller chooses its batch size (live: one Kafka batch; offline: a few
thousand lines) without changing what comes out.

- `add` validates one message against contract v1 (personal data pseudonymised), with the
  caller's context: the source kinds its topic accepts (and, on a per-partner topic, the
  one `source.org`) and its message time, which its timestamps must agree with
  (`TimeBounds`: live, the Kafka timestamp; in a backtest, the file's robust clock); a
  rejection waits for the next chunk.
- A report's identity is (source kind, source org, report_id) (`ReportKey`): ids are unique
  per source system only, so the same id from two sources is two reports. A valid record
  whose identity was taken in before (earlier in the chunk, or earlier in the stream: the
  intake's memory) is an exact re-delivery when its content is the same
  (`ReportRecord.content_hash`), and is dropped (counted); with other content it is
  rejected `id_reused_with_different_content` (never dropped silently).
- The "already seen?" question can also need a store: the caller asks its store about
  `pending_keys()` and passes what it found, identity -> content hash, to
  `flush(stored=...)` (live: the `reports` table, which remembers across restarts; offline:
  nothing, the intake's memory is the stream's). A stored content hash "" (a row stored
  before hashes were) matches any content.
- `flush` settles the pending records against the stored ones, enriches the new ones in one
  vectorised call, and returns the chunk: accepted records in input order, then the
  rejections: validation's, re-used ids', enrichment's (each in input order).

Each item carries a caller's tag (the Kafka message, a line number, a simulator message) that
comes back with its record or rejection.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

import orjson

from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportKey, ReportRecord
from agents.core.validation import DEFAULT_TIME_BOUNDS, Rejection, TimeBounds, validate_report
from schemas.enums import SOURCE_KINDS
from schemas.rejection import RejectReason

T = TypeVar("T")


class Enricher(Protocol):
    """Adds location, commune, jurisdiction and H3 cells (`agents.core.geo.Geocoder`)."""

    def enrich_batch(self, records: list[ReportRecord]) -> list[ReportRecord | Rejection]: ...


@dataclass(slots=True)
class IntakeChunk(Generic[T]):
    """What one `flush` lets through, with the caller's tags."""

    accepted: list[tuple[T, ReportRecord]] = field(default_factory=list)
    invalid: list[tuple[T, Rejection]] = field(default_factory=list)  # refused by validation
    reused: list[tuple[T, Rejection]] = field(default_factory=list)  # id re-used, other content
    unlocated: list[tuple[T, Rejection]] = field(default_factory=list)  # refused by enrichment
    # exact re-deliveries dropped, in the order met (the live ingest tells the same message
    # read again from a producer's re-send by its tag)
    redelivered: list[tuple[T, ReportRecord]] = field(default_factory=list)

    @property
    def redeliveries(self) -> int:
        return len(self.redelivered)

    @property
    def rejected(self) -> list[tuple[T, Rejection]]:
        """Every rejection: validation's, re-used ids', then enrichment's (each in input
        order)."""
        return self.invalid + self.reused + self.unlocated


class Intake(Generic[T]):
    """validate -> drop re-deliveries -> enrich, for a stream of raw report messages.

    `drop_redeliveries=False` keeps re-deliveries (`vigie eval` checks that the correlation
    engine ignores them itself, as it must when a replay forwards a batch twice); ids are
    then not checked at all.
    `bounds`: how far a report's times may lie from its message time (None: unchecked).
    """

    def __init__(
        self,
        *,
        pseudonymiser: Pseudonymiser,
        enricher: Enricher,
        drop_redeliveries: bool = True,
        bounds: TimeBounds | None = DEFAULT_TIME_BOUNDS,
    ) -> None:
        self.pseudonymiser = pseudonymiser
        self.enricher = enricher
        self.drop_redeliveries = drop_redeliveries
        self.bounds = bounds
        # identity -> content hash of the reports taken in by earlier flushes
        self.memory: dict[ReportKey, str] = {}
        self._chunk: IntakeChunk[T] = IntakeChunk()
        self._seq = 0  # input position of the next message
        # the records since the last flush, by identity new to the memory, each with its
        # position: the first is the candidate, the others wait for what the store says
        self._pending: dict[ReportKey, list[tuple[int, T, ReportRecord]]] = {}
        self._kept: list[tuple[T, ReportRecord]] = []  # drop_redeliveries=False
        self._reused: list[tuple[int, T, Rejection]] = []  # found before the flush

    @property
    def pending(self) -> int:
        """Records waiting for the next `flush` that may be accepted: one per identity."""
        return len(self._pending) + len(self._kept)

    def add(
        self,
        tag: T,
        value: bytes,
        message_timestamp: float,
        *,
        reference_time: float | None = None,
        allowed_kinds: Collection[str] | None = None,
        required_org: str | None = None,
    ) -> None:
        """Validate one message. `message_timestamp` (UTC epoch seconds) stands in for a
        missing `reported_at`; negative: use `occurred_at`. `reference_time`: the message
        time the bounds apply to (default: `message_timestamp` when not negative).
        `allowed_kinds`: the source kinds of the message's topic (None: any).
        `required_org`: the `source.org` of a per-partner topic (None: any). See
        `validate_report`."""
        result = validate_report(
            value,
            message_timestamp=message_timestamp,
            pseudonymiser=self.pseudonymiser,
            reference_time=reference_time,
            bounds=self.bounds,
            allowed_kinds=allowed_kinds,
            required_org=required_org,
        )
        seq = self._seq
        self._seq += 1
        if isinstance(result, Rejection):
            self._chunk.invalid.append((tag, with_source(result, value)))
            return
        if not self.drop_redeliveries:
            self._kept.append((tag, result))
            return
        key = result.key
        waiting = self._pending.get(key)
        if waiting is not None:
            waiting.append((seq, tag, result))
            return
        taken = self.memory.get(key)
        if taken is None:
            self._pending[key] = [(seq, tag, result)]
        elif _same(taken, result.content_hash):
            self._chunk.redelivered.append((tag, result))
        else:
            self._reused.append((seq, tag, reused(result)))

    def pending_keys(self) -> tuple[ReportKey, ...]:
        """The identities of the pending records: what to ask a store about."""
        return tuple(self._pending)

    def flush(self, stored: Mapping[ReportKey, str] | None = None) -> IntakeChunk[T]:
        """Settle the pending records (`stored`: identity -> content hash of the reports a
        store already holds), enrich the new ones and return everything since the previous
        flush. Of the records of one identity, in input order: with a stored report, those of
        its content are re-deliveries and the others re-use its id; else the first is new,
        and the others are re-deliveries of it or re-use its id."""
        chunk, self._chunk = self._chunk, IntakeChunk()
        pending, self._pending = self._pending, {}
        # new records in input order: identities are pending in the order first met (with
        # drop_redeliveries=False, every record is kept instead and nothing is pending)
        fresh, self._kept = self._kept, []
        reused_at, self._reused = self._reused, []
        for key, records in pending.items():
            taken = None if stored is None else stored.get(key)
            if taken is None:
                _, tag, first = records[0]
                fresh.append((tag, first))
                taken, records = first.content_hash, records[1:]
            self.memory[key] = taken
            for seq, tag, rec in records:
                if _same(taken, rec.content_hash):
                    chunk.redelivered.append((tag, rec))
                else:
                    reused_at.append((seq, tag, reused(rec)))
        reused_at.sort(key=lambda item: item[0])
        chunk.reused = [(tag, rejection) for _, tag, rejection in reused_at]
        if not fresh:
            return chunk
        results = self.enricher.enrich_batch([rec for _, rec in fresh])
        for (tag, rec), result in zip(fresh, results, strict=True):
            if isinstance(result, Rejection):
                chunk.unlocated.append((tag, with_record_source(result, rec)))
            else:
                chunk.accepted.append((tag, result))
        return chunk


def _same(taken: str, content: str) -> bool:
    """Same content: equal hashes, or a stored report without one (stored before hashes)."""
    return taken == content or not taken


def reused(record: ReportRecord) -> Rejection:
    """The rejection of a record whose identity was taken in with other content."""
    return Rejection(
        RejectReason.ID_REUSED_WITH_DIFFERENT_CONTENT,
        "report_id already taken in from this source (source.kind, source.org) with other"
        " content: a re-delivery must be identical, a new or corrected report needs a new id",
        record.report_id,
        record.source_kind,
        record.source_org,
    )


def with_record_source(rejection: Rejection, record: ReportRecord) -> Rejection:
    """`rejection` (of a valid record, by enrichment) with the record's source."""
    return replace(rejection, source_kind=record.source_kind, source_org=record.source_org)


def with_source(rejection: Rejection, value: bytes) -> Rejection:
    """`rejection` with the message's `source.kind` (a contract kind) and `source.org` (a
    string, cut to the contract's 64 characters) when it has a readable report_id: read
    again from the raw bytes (rejections are rare)."""
    if rejection.report_id is None or rejection.source_kind is not None:
        return rejection
    try:
        source = orjson.loads(value).get("source")
    except (orjson.JSONDecodeError, AttributeError):
        return rejection
    if not isinstance(source, dict):
        return rejection
    kind, org = source.get("kind"), source.get("org")
    return replace(
        rejection,
        source_kind=kind if kind in SOURCE_KINDS else None,  # never a producer's free text
        source_org=org[:64] if isinstance(org, str) else None,
    )
