"""Bounded retries with jittered exponential backoff, then give up (the caller crashes)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class RetriesExhausted(RuntimeError):
    """Raised when an operation still fails after the last retry."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 15.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """'Full jitter' backoff: uniform in [0, min(max, base * 2**attempt)]."""
        cap = min(self.max_seconds, self.base_seconds * (2**attempt))
        return (rng or random).uniform(0.0, cap)


async def retry_async(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    what: str,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Run `operation`, retrying failures up to `policy.max_retries` times."""
    attempt = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            if attempt >= policy.max_retries:
                raise RetriesExhausted(f"{what} failed after {attempt + 1} attempts") from exc
            if on_retry is not None:
                on_retry(attempt, exc)
            pause = policy.delay(attempt)
            log.warning(
                "retrying after failure",
                extra={"operation": what, "attempt": attempt + 1, "pause_s": round(pause, 3),
                       "error": type(exc).__name__},
            )
            await asyncio.sleep(pause)
            attempt += 1
