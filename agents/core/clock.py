"""A stream clock on event time that a few bogus timestamps cannot drag into the future.

The stream clocks of Vigie (the correlation watermark, the backtest's detection clock and the
backtest's estimate of a line's message time) follow the greatest event time read. Taken
literally, one report stamped 2100-01-01 would move such a clock to 2100 for good: every open
incident closes at once and later versions carry that date. `StreamClock` follows a normal
stream exactly and ignores lone outliers:

- a time at most `max_step_s` ahead of the clock moves it there at once (a stream in time
  order, with its quiet spells, never goes further in one step);
- a time further ahead (a *leap*: a long quiet spell, or a bogus timestamp) moves it only
  once `quorum` of the last `window` times read are that far ahead: the clock then goes to
  the `quorum`-th greatest of them, a time that `quorum` records agree it has reached.
  A leap that is never confirmed is forgotten after `window` more times;
- the clock never goes back.

With `start_quorum`, the first time needs the quorum too (the clock starts at the smallest
of the first `quorum` times), so that an outlier at the very start cannot set it either; the
correlation engine starts on its first record (its input is validated against the message
time first).
"""

from __future__ import annotations

import math
from collections import deque

DEFAULT_MAX_STEP_S = 6 * 3600.0  # longer than a quiet night in one partition of the stream
DEFAULT_QUORUM = 3  # records that must agree on a leap
DEFAULT_WINDOW = 50  # ... among this many consecutive records


class StreamClock:
    """Robust greatest-event-time clock (see the module docstring); `now` is -inf until it
    starts."""

    __slots__ = ("_leaps", "_seq", "max_step_s", "now", "quorum", "start_quorum", "window")

    def __init__(
        self,
        max_step_s: float = DEFAULT_MAX_STEP_S,
        quorum: int = DEFAULT_QUORUM,
        window: int = DEFAULT_WINDOW,
        *,
        start_quorum: bool = False,
    ) -> None:
        if max_step_s < 0 or quorum < 1 or window < quorum:
            raise ValueError("StreamClock needs max_step_s >= 0 and 1 <= quorum <= window")
        self.max_step_s = max_step_s
        self.quorum = quorum
        self.window = window
        self.start_quorum = start_quorum
        self.now = -math.inf
        self._seq = 0  # times observed
        self._leaps: deque[tuple[int, float]] = deque()  # (seq, time) of unconfirmed leaps

    def observe(self, t: float) -> float:
        """Read one event time; returns the clock after it."""
        self._seq += 1
        now = self.now
        if t <= now:
            return now
        if t - now <= self.max_step_s or (now == -math.inf and not self.start_quorum):
            self.now = t
            return t
        leaps = self._leaps
        leaps.append((self._seq, t))
        oldest = self._seq - self.window
        while leaps and leaps[0][0] <= oldest:
            leaps.popleft()
        reach = now + self.max_step_s
        ahead = sorted((x for _, x in leaps if x > reach), reverse=True)
        if len(ahead) >= self.quorum:
            self.now = ahead[self.quorum - 1]
            step = self.now + self.max_step_s
            # what the leap did not reach stays unconfirmed; the rest is behind or in step
            self._leaps = deque((s, x) for s, x in leaps if x > step)
        return self.now

    def follow(self, t: float) -> None:
        """Move the clock to `t` unconditionally (never back): a trusted time, e.g. a
        persisted watermark being restored or an explicit advance."""
        if t > self.now:
            self.now = t
            step = t + self.max_step_s
            self._leaps = deque((s, x) for s, x in self._leaps if x > step)
