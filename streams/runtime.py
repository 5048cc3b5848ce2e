"""Run blocking store calls off the event loop, on one dedicated thread.

chDB sessions and clickhouse-driver clients are not meant to be shared across threads;
one worker thread serialises every call to the store and keeps the event loop free.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

_STORE_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigie-store")


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_STORE_THREAD, fn, *args)


def crash(reason: str, exc: BaseException | None = None) -> None:
    """Stop the process at once so that uncommitted messages are replayed by the next run.

    Used when a write is still failing after its bounded retries: exiting without a
    graceful shutdown guarantees nothing past the last confirmed batch gets committed.
    """
    log.critical("fatal: %s", reason, exc_info=exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(70)
