"""Retries with jittered, capped exponential backoff; the caller crashes when they give up.

Two kinds of failure are told apart (`transient` decides, e.g. `StoreUnavailable`):

- a failure that may be an outage of the dependency (connection refused, timeout) is retried
  for as long as the outage lasts, up to `RetryPolicy.outage_seconds` from the first failure:
  the caller holds its batch meanwhile (nothing committed, nothing more consumed), so a
  ClickHouse restart or a network cut costs a delay, not a crash loop;
- any other failure (bad statement, schema mismatch, a bug) is retried `max_retries` times,
  then `RetriesExhausted` is raised: retrying would not fix it, a crash and a replay from the
  last commit is the honest outcome, and the restart makes the problem visible.

With `outage_seconds` 0 every failure is of the second kind.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class RetriesExhausted(RuntimeError):
    """Raised when an operation still fails after the last retry (or the outage outlasted
    `RetryPolicy.outage_seconds`)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 15.0
    outage_seconds: float = 0.0  # how long transient failures are waited out (0: not at all)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """'Full jitter' backoff: uniform in [0, min(max, base * 2**attempt)]."""
        cap = min(self.max_seconds, self.base_seconds * (2 ** min(attempt, 32)))
        return (rng or random).uniform(0.0, cap)


def never_transient(_exc: BaseException) -> bool:
    return False


async def retry_async(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    on_retry: Callable[[int, BaseException], None] | None = None,
    transient: Callable[[BaseException], bool] = never_transient,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `operation` until it succeeds or `policy` gives up (then `RetriesExhausted`,
    chained to the last failure). `on_retry(attempt, error)` is called before each pause."""
    attempt = 0  # pauses so far (the backoff grows with it)
    failures = 0  # failures that were not transient
    outage_since: float | None = None
    while True:
        try:
            return await operation()
        except Exception as exc:
            now = clock()
            waited_out = transient(exc) and policy.outage_seconds > 0
            if waited_out:
                outage_since = now if outage_since is None else outage_since
                if now - outage_since >= policy.outage_seconds:
                    raise RetriesExhausted(
                        f"{what}: dependency still unreachable after "
                        f"{now - outage_since:.0f} s ({attempt + 1} attempts)"
                    ) from exc
            else:
                if failures >= policy.max_retries:
                    raise RetriesExhausted(f"{what} failed after {attempt + 1} attempts") from exc
                failures += 1
            if on_retry is not None:
                on_retry(attempt, exc)
            pause = policy.delay(attempt)
            log.warning(
                "retrying after failure",
                extra={"operation": what, "attempt": attempt + 1, "pause_s": round(pause, 3),
                       "error": type(exc).__name__, "transient": waited_out,
                       "outage_s": round(now - outage_since, 1) if waited_out
                       and outage_since is not None else None},
            )
            await asyncio.sleep(pause)
            attempt += 1
