"""Run blocking store calls off the event loop, on one dedicated thread per owner.

chDB sessions and clickhouse-driver clients are not meant to be shared across threads;
one worker thread serialises every call to the store and keeps the event loop free. The
runtime makes one `StoreThread` per store connection it opens (the main one; the detector's,
so that its long runs do not hold up the other stages) and hands its `run` to the stages
and the console (the `BlockingRunner` port): no module-level pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

# run(fn, *args) -> awaitable result of fn(*args), computed off the event loop
BlockingRunner = Callable[..., Awaitable[Any]]


class StoreThread:
    """One thread that runs every blocking call of one store, in order."""

    def __init__(self, name: str = "vigie-store") -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
