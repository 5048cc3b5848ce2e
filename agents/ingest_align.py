"""Event-time alignment of the ingest consumer's input partitions (pure: no Kafka client).

Why: the correlator's clock is event time (the greatest `reported_at` it read) and a report
more than the allowed lateness behind it founds an incident of its own. Reading a backlog
(a first load, a restart after an outage, a replay), a Kafka consumer drains what one fetch
brings, partition by partition: a correlator then read one input partition's days, then the
next one's days behind its clock, and the split incidents depended on how fast data arrived.

How: every record read is held in its partition's *lane* and handed on in event-time order:

- a record's time is its message time (the Kafka timestamp: when its source sent it) by
  default, else its `reported_at` (`VIGIE_INGEST_ALIGN_ON`; `event_time`). The message time
  gives the order in which a real-time reader, and `vigie backtest` reading the stream as a
  file, see the records: a late upload at its arrival, not at its `reported_at` (aligned on
  `reported_at`, partitions interleave by another order than the stream's, and the live
  incidents agree less with the backtest's). Its lane time is that time through the lane's
  own `StreamClock` (`agents.core.clock`), the robust running maximum: non-decreasing along
  a partition (a late `reported_at` goes on with its neighbours), and a lone bogus time does
  not move it;
- a lane's *frontier* is the lane time of its first held record; with nothing held, its
  clock while its partition still has data pending in Kafka (lag > 0, or not known yet: a
  partition never fetched), and +inf once caught up (lag 0), so a caught-up or idle
  partition never holds the others back. A lane that stays wanted without bringing anything
  for `stall_s` (a partition the broker does not serve) stops holding them back too;
- the *horizon* is the smallest frontier plus `max_skew_s`; `release` hands on the held
  records up to the horizon, smallest lane time first (a k-way merge; ties in read order);
- `wanted` is the set of partitions to fetch from: those with nothing held whose clock is
  within the horizon. The others are paused, so what is held stays bounded by about one
  fetch per partition, and a partition ahead waits while the slowest catches up.

There is always progress: the lane of the smallest frontier either holds a record within the
horizon (released) or holds nothing and is wanted (fetched). In steady state every partition
is caught up, the horizon is +inf and records go on as read: alignment adds no latency.
Records held but not released are not committed (the loop commits what it wrote); on a
rebalance the lanes of revoked partitions are dropped (their next owner reads them again).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import orjson

from agents.core.clock import StreamClock
from schemas.report import parse_rfc3339

T = TypeVar("T")
Partition = tuple[str, int]  # (topic, partition)

# A wanted partition that brings nothing for this long while it has data pending (as far
# as the consumer knows) stops holding the others back: a broker that does not serve it
# must not stop the whole ingest.
STALL_SECONDS = 30.0
INF = math.inf


def event_time(value: bytes, timestamp: float) -> float:
    """A raw report's `reported_at` (epoch seconds); `timestamp` (the message time) when it
    has none or it does not parse (validation decides about such reports later)."""
    try:
        obj = orjson.loads(value)
        if isinstance(obj, dict):
            return parse_rfc3339(obj.get("reported_at")).timestamp()
    except (orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
        pass
    return timestamp


@dataclass(slots=True)
class _Lane(Generic[T]):
    clock: StreamClock = field(default_factory=StreamClock)
    held: deque[tuple[float, int, T]] = field(default_factory=deque)  # (lane time, seq, rec)
    lag: int | None = None  # messages in Kafka past what was read; None: not known yet
    waiting_since: float | None = None  # monotonic time it was first wanted with nothing


class EventTimeAligner(Generic[T]):
    """Per-partition lanes of records read, released in event-time order (see the module
    docstring). `max_skew_s`: how far ahead of the slowest pending partition a record may be
    released."""

    def __init__(
        self,
        max_skew_s: float,
        *,
        stall_s: float = STALL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_skew_s < 0:
            raise ValueError("max_skew_s must be >= 0")
        self.max_skew_s = max_skew_s
        self.stall_s = stall_s
        self.clock = clock
        self.lanes: dict[Partition, _Lane[T]] = {}
        self._seq = 0

    # ---- partitions -----------------------------------------------------------------
    def assign(self, partitions: Iterable[Partition]) -> None:
        for p in partitions:
            self.lanes.setdefault(p, _Lane())

    def revoke(self, partitions: Iterable[Partition]) -> None:
        """Partitions taken away: what they held is dropped (their next owner reads it)."""
        for p in partitions:
            self.lanes.pop(p, None)

    def set_lag(self, partition: Partition, lag: int | None) -> None:
        """Messages of `partition` in Kafka past what was read (None: not known)."""
        lane = self.lanes.setdefault(partition, _Lane())
        lane.lag = lag
        if lag == 0:
            lane.waiting_since = None

    # ---- records --------------------------------------------------------------------
    def add(self, partition: Partition, t: float, record: T) -> None:
        """One record read from `partition` (in partition order), event time `t`."""
        lane = self.lanes.setdefault(partition, _Lane())
        self._seq += 1
        lane.held.append((lane.clock.observe(t), self._seq, record))
        lane.waiting_since = None

    @property
    def held(self) -> int:
        return sum(len(lane.held) for lane in self.lanes.values())

    def frontier(self, partition: Partition) -> float:
        """The lane time of the next record this partition will hand on, at the earliest."""
        lane = self.lanes[partition]
        if lane.held:
            return lane.held[0][0]
        if lane.lag == 0:
            return INF  # caught up: whatever comes next is new
        since = lane.waiting_since
        if since is not None and self.clock() - since > self.stall_s:
            return INF  # stalled: it does not hold the others back
        return lane.clock.now  # -inf before its first record: it is fetched first

    def horizon(self) -> float:
        if not self.lanes:
            return INF
        return min(self.frontier(p) for p in self.lanes) + self.max_skew_s

    def release(self, limit: int) -> list[T]:
        """Up to `limit` held records within the horizon, smallest lane time first.

        The record released next is the smallest head, the smallest frontier of the lanes
        holding something: it is within the horizon iff it is within `max_skew_s` of the
        smallest frontier of the lanes holding nothing (which changes only when a lane
        empties)."""
        out: list[T] = []
        heads = [
            (lane.held[0][0], lane.held[0][1], p) for p, lane in self.lanes.items() if lane.held
        ]
        heapq.heapify(heads)
        bound = self._empty_frontier() + self.max_skew_s
        while heads and len(out) < limit and heads[0][0] <= bound:
            _, _, p = heapq.heappop(heads)
            held = self.lanes[p].held
            out.append(held.popleft()[2])
            if held:
                heapq.heappush(heads, (held[0][0], held[0][1], p))
            else:  # it now bounds the others by its clock (or not at all: caught up)
                bound = min(bound, self.frontier(p) + self.max_skew_s)
        return out

    def _empty_frontier(self) -> float:
        return min(
            (self.frontier(p) for p, lane in self.lanes.items() if not lane.held), default=INF
        )

    def restart_waits(self) -> None:
        """Forget how long partitions have been waited for (call when the caller starts
        fetching again, e.g. after writing a batch, so that its own pauses count nothing)."""
        for lane in self.lanes.values():
            lane.waiting_since = None

    def wanted(self) -> set[Partition]:
        """The partitions to fetch from now (the others are paused)."""
        horizon = self.horizon()
        now = self.clock()
        out: set[Partition] = set()
        for p, lane in self.lanes.items():
            if lane.held or lane.clock.now > horizon:
                lane.waiting_since = None
                continue
            out.add(p)
            if lane.lag != 0 and lane.waiting_since is None:
                lane.waiting_since = now
        return out
