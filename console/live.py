"""Live updates: one poller per process watches ClickHouse, every SSE client gets the news.

Every `poll_seconds` (only while someone listens) the poller reads a cheap change signature
(`queries.change_signature`). On a change it pushes to every subscriber:
- `alert` events: the current state of each alert that is new or has a new version;
- a `change` event `{"reports": bool, "incidents": bool, "alerts": bool, "actions": bool}`:
  the page then re-reads what changed through the JSON API with its own filters.

Subscriptions are capped per principal and in total (`StreamLimit` beyond): every open
stream holds a queue, a coroutine and a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from agents.ports.blocking import BlockingRunner
from agents.ports.store import Store
from console import queries

log = logging.getLogger(__name__)
QUEUE_SIZE = 200
# A subscriber's view of an event: the data it may receive (possibly reduced), None to skip
# the event (e.g. an alert outside a partner's perimeter).
EventView = Callable[[str, Any], Any]


class StreamLimit(Exception):
    """Too many open streams; `message` (French) is shown to the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LiveHub:
    def __init__(
        self,
        store: Store,
        run_blocking: BlockingRunner,
        poll_seconds: float = 1.0,
        *,
        max_streams: int = 200,
        max_per_owner: int = 10,
    ) -> None:
        self.store = store
        self.run_blocking = run_blocking
        self.poll_seconds = poll_seconds
        self.max_streams = max_streams
        self.max_per_owner = max_per_owner
        self._subscribers: dict[asyncio.Queue[bytes | None], str] = {}  # queue -> owner
        self._views: dict[asyncio.Queue[bytes | None], EventView] = {}  # queue -> its view
        self._per_owner: Counter[str] = Counter()
        self._signature: dict[str, Any] | None = None
        self._alert_versions: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.store_ok = True

    # ---- subscribers -------------------------------------------------------------------
    def subscribe(self, owner: str, view: EventView | None = None) -> asyncio.Queue[bytes | None]:
        """A new subscription of `owner` (the principal's name), receiving what `view` lets
        through (default: every event); StreamLimit when full."""
        if self._per_owner[owner] >= self.max_per_owner:
            raise StreamLimit(
                f"trop de flux en direct ouverts pour ce compte ({self.max_per_owner} au plus) :"
                " fermez d'autres onglets de la console"
            )
        if len(self._subscribers) >= self.max_streams:
            raise StreamLimit(
                f"trop de flux en direct ouverts sur la console ({self.max_streams} au plus) :"
                " réessayez plus tard"
            )
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[queue] = owner
        if view is not None:
            self._views[queue] = view
        self._per_owner[owner] += 1
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        owner = self._subscribers.pop(queue, None)
        self._views.pop(queue, None)
        if owner is not None:
            self._per_owner[owner] -= 1
            if self._per_owner[owner] <= 0:
                del self._per_owner[owner]
        if not self._subscribers:
            self._signature = None  # the next subscriber starts from a fresh baseline

    def subscribed(self, queue: asyncio.Queue[bytes | None]) -> bool:
        return queue in self._subscribers

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def streams_of(self, owner: str) -> int:
        return self._per_owner[owner]

    def publish(self, event: str, data: Any) -> None:
        frame = b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        for queue in list(self._subscribers):
            view = self._views.get(queue)
            mine = frame
            if view is not None:
                seen = view(event, data)
                if seen is None:
                    continue
                if seen is not data:
                    mine = b"event: " + event.encode() + b"\ndata: " + orjson.dumps(seen) + b"\n\n"
            try:
                queue.put_nowait(mine)
            except asyncio.QueueFull:  # a stuck client: drop it, its page reconnects
                self.unsubscribe(queue)
                while not queue.empty():  # make room for the end-of-stream mark
                    queue.get_nowait()
                queue.put_nowait(None)

    # ---- poller ------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="console-live-poller")

    async def stop(self) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._subscribers.clear()
        self._views.clear()
        self._per_owner.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            if not self._subscribers:
                continue
            try:
                await self.poll_once()
                if not self.store_ok:
                    self.store_ok = True
                    self.publish("status", {"store": "ok"})
            except Exception as exc:  # keep serving; tell the pages the data may be stale
                if self.store_ok:
                    log.warning("console poll failed: %s", exc)
                    self.store_ok = False
                    self.publish("status", {"store": "down"})

    async def ensure_baseline(self) -> None:
        """Take the baseline now if there is none, so that a page that reads the data after
        `hello` misses nothing: rows inserted after this point are reported as a change."""
        if self._signature is None:
            await self.poll_once()

    async def poll_once(self) -> None:
        async with self._lock:
            await self._poll()

    async def _poll(self) -> None:
        now = time.time()
        signature = await self.run_blocking(queries.change_signature, self.store, now)
        previous, self._signature = self._signature, signature
        since = queries.paris_midnight(now, queries.TREND_DAYS)
        if previous is None:  # baseline: remember alert versions, push nothing
            self._alert_versions = await self.run_blocking(
                queries.recent_alert_versions, self.store, since
            )
            return
        changed = {key: signature[key] != previous.get(key) for key in signature}
        if not any(changed.values()):
            return
        if changed["alerts"] or changed["actions"]:
            versions = await self.run_blocking(queries.recent_alert_versions, self.store, since)
            fresh = [a for a, v in versions.items() if self._alert_versions.get(a) != v]
            self._alert_versions = versions
            for alert in await self.run_blocking(queries.alerts_by_id, self.store, fresh, since):
                self.publish("alert", alert)
        self.publish("change", {**changed, "at": int(now)})
