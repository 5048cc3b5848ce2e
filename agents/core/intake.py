"""The intake of raw reports: validate -> drop re-deliveries -> enrich, in that order.

One implementation for every path a raw report takes: the live ingest stage
(`agents.ingest`), `vigie backtest` (`offline.replay`) and `vigie eval`
(`offline.evaluation`). Pure: no I/O. Reports go in one at a time (`add`) and come out in
chunks (`flush`), so a caller chooses its batch size (live: one Kafka batch; offline: a few
thousand lines) without changing what comes out.

- `add` validates one message against contract v1 (personal data pseudonymised), with the
  caller's context: the source kinds its topic accepts and its message time, which its
  timestamps must agree with (`TimeBounds`: live, the Kafka timestamp; in a backtest, the
  file's robust clock); a rejection waits for the next chunk. A valid record whose
  report_id this intake has already taken in (earlier in the chunk, or earlier in the
  stream: the intake's memory) is an exact re-delivery and is dropped.
- The "already seen?" question can also need a store: the caller asks its store about
  `pending_ids()` and passes the ids found to `flush(stored=...)` (live: the `reports` table,
  which remembers across restarts; offline: nothing, the intake's memory is the stream's).
- `flush` drops the pending records whose id was stored, enriches the rest in one vectorised
  call, and returns the chunk: accepted records in input order, validation rejections in
  input order, then enrichment rejections in input order.

Each item carries a caller's tag (the Kafka message, a line number, a simulator message) that
comes back with its record or rejection.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportRecord
from agents.core.validation import DEFAULT_TIME_BOUNDS, Rejection, TimeBounds, validate_report

T = TypeVar("T")


class Enricher(Protocol):
    """Adds location, commune, jurisdiction and H3 cells (`agents.core.geo.Geocoder`)."""

    def enrich_batch(self, records: list[ReportRecord]) -> list[ReportRecord | Rejection]: ...


@dataclass(slots=True)
class IntakeChunk(Generic[T]):
    """What one `flush` lets through, with the caller's tags."""

    accepted: list[tuple[T, ReportRecord]] = field(default_factory=list)
    invalid: list[tuple[T, Rejection]] = field(default_factory=list)  # refused by validation
    unlocated: list[tuple[T, Rejection]] = field(default_factory=list)  # refused by enrichment
    redeliveries: int = 0  # exact re-deliveries dropped

    @property
    def rejected(self) -> list[tuple[T, Rejection]]:
        """Every rejection: validation's, then enrichment's (each in input order)."""
        return self.invalid + self.unlocated


class Intake(Generic[T]):
    """validate -> drop re-deliveries -> enrich, for a stream of raw report messages.

    `drop_redeliveries=False` keeps re-deliveries (`vigie eval` checks that the correlation
    engine ignores them itself, as it must when a replay forwards a batch twice).
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
        self.memory: set[str] = set()  # report_ids taken in so far
        self._chunk: IntakeChunk[T] = IntakeChunk()
        self._pending: list[tuple[T, ReportRecord]] = []

    @property
    def pending(self) -> int:
        """Valid records waiting for the next `flush`."""
        return len(self._pending)

    def add(
        self,
        tag: T,
        value: bytes,
        message_timestamp: float,
        *,
        reference_time: float | None = None,
        allowed_kinds: Collection[str] | None = None,
    ) -> None:
        """Validate one message. `message_timestamp` (UTC epoch seconds) stands in for a
        missing `reported_at`; negative: use `occurred_at`. `reference_time`: the message
        time the bounds apply to (default: `message_timestamp` when not negative).
        `allowed_kinds`: the source kinds of the message's topic (None: any). See
        `validate_report`."""
        result = validate_report(
            value,
            message_timestamp=message_timestamp,
            pseudonymiser=self.pseudonymiser,
            reference_time=reference_time,
            bounds=self.bounds,
            allowed_kinds=allowed_kinds,
        )
        if isinstance(result, Rejection):
            self._chunk.invalid.append((tag, result))
            return
        if self.drop_redeliveries:
            if result.report_id in self.memory:
                self._chunk.redeliveries += 1
                return
            self.memory.add(result.report_id)
        self._pending.append((tag, result))

    def pending_ids(self) -> tuple[str, ...]:
        """The distinct report_ids of the pending records: what to ask a store about."""
        return tuple({rec.report_id for _, rec in self._pending})

    def flush(self, stored: Collection[str] = frozenset()) -> IntakeChunk[T]:
        """Drop the pending records whose report_id is in `stored`, enrich the others and
        return everything since the previous flush."""
        chunk, self._chunk = self._chunk, IntakeChunk()
        pending, self._pending = self._pending, []
        if stored:
            fresh = [item for item in pending if item[1].report_id not in stored]
            chunk.redeliveries += len(pending) - len(fresh)
            pending = fresh
        if not pending:
            return chunk
        results = self.enricher.enrich_batch([rec for _, rec in pending])
        for (tag, _), result in zip(pending, results, strict=True):
            if isinstance(result, Rejection):
                chunk.unlocated.append((tag, result))
            else:
                chunk.accepted.append((tag, result))
        return chunk
