"""The console's protective limits: live streams and failed authentications.

- `ConsoleLimits`: the caps (from `ConsoleSettings`, defaults equal to the settings').
- `FailureLimiter`: a token bucket per client address for failed authentications. Once a
  client has spent its bucket, every authenticated route answers it 429 with `Retry-After`,
  valid token or not (otherwise guessing would go on at full speed, a right guess answered
  200), until the bucket refills. The address is the TCP peer: behind a reverse proxy every
  client shares the proxy's address, so rate-limit at the proxy too.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from console.settings import ConsoleSettings


@dataclass(frozen=True, slots=True)
class ConsoleLimits:
    max_streams: int = 200  # open live streams, whole process
    max_streams_per_principal: int = 10  # open live streams per token name
    auth_failure_burst: int = 10  # failed authentications in a row per client address
    auth_failures_per_minute: float = 6.0  # refill of that bucket

    def __post_init__(self) -> None:
        if min(self.max_streams, self.max_streams_per_principal, self.auth_failure_burst) < 1:
            raise ValueError("console limits must be at least 1")
        if not self.auth_failures_per_minute > 0:
            raise ValueError("auth_failures_per_minute must be positive")

    @classmethod
    def from_settings(cls, settings: ConsoleSettings) -> ConsoleLimits:
        return cls(
            max_streams=settings.max_streams,
            max_streams_per_principal=settings.max_streams_per_principal,
            auth_failure_burst=settings.auth_failure_burst,
            auth_failures_per_minute=settings.auth_failures_per_minute,
        )


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # clock time of `tokens`
    reported: bool = False  # the current refusal episode was already audited


class FailureLimiter:
    """Failed authentications per client address: `burst` in a row, then `per_minute`.

    Memory is bounded: at most `max_clients` addresses are tracked; beyond, the address
    whose last failure is the oldest (its bucket the fullest) is forgotten.
    """

    def __init__(
        self,
        burst: int,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.burst = burst
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, client: str) -> _Bucket | None:
        bucket = self._buckets.get(client)
        if bucket is None:
            return None
        now = self.clock()
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.reported = False
        return bucket

    def retry_after(self, client: str) -> int:
        """Whole seconds before `client` may try again; 0 when it may now."""
        bucket = self._refilled(client)
        if bucket is None or bucket.tokens >= 1:
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def first_refusal(self, client: str) -> bool:
        """True once per refusal episode of `client` (what the audit trail records)."""
        bucket = self._buckets.get(client)
        if bucket is None or bucket.reported:
            return False
        bucket.reported = True
        return True

    def failed(self, client: str) -> None:
        """Spend one token of `client`'s bucket."""
        bucket = self._refilled(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(float(self.burst), self.clock())
        bucket.tokens = max(0.0, bucket.tokens - 1)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
