"""The console's audit trail: refused authentications, refused streams, operator actions.

Every event is written twice:
- one JSON log line on the logger `vigie.audit` (the fields as extras: the worker and
  `vigie console` log JSON lines, see `streams.logging_setup`);
- one row of the ClickHouse table `audit_events`, inserted in batches (at most one insert a
  second, whatever the rate of refused requests); rows wait in a bounded buffer while the
  store is down, the oldest dropped beyond it (and counted in the log).

Never a token (not even a hash of a wrong one), a comment's text, nor a client address in
clear: `client` is a keyed hash (HMAC-SHA256 with a key derived from the stream secret, so
replicas that share the secret give the same address the same pseudonym). The operator
account name is kept: an audit trail has to say who acted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.ports.blocking import BlockingRunner
from agents.ports.sql import audit as sql
from agents.ports.store import Store

AUDIT_LOG = logging.getLogger("vigie.audit")
log = logging.getLogger(__name__)
FLUSH_SECONDS = 1.0
MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited fact. `kind`: `auth` | `stream` | `action`; `outcome` says what happened
    (`refused`, `throttled`, `limit`, `recorded`, `replayed`, `conflict`, `forbidden`)."""

    kind: str
    outcome: str
    status: int  # the HTTP status answered
    client: str  # keyed hash of the client address
    method: str
    route: str  # the route template (`/api/alerts/{alert_id}/actions`), never the raw URL
    principal: str = ""
    role: str = ""
    alert_id: str = ""
    action_id: str = ""
    action: str = ""
    detail: str = ""
    at: int = field(default_factory=lambda: int(time.time()))
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class AuditTrail:
    def __init__(
        self,
        store: Store,
        run_blocking: BlockingRunner,
        key: bytes,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.store = store
        self.run_blocking = run_blocking
        self._key = key
        self.flush_seconds = flush_seconds
        self.max_pending = max_pending
        self._pending: list[dict[str, Any]] = []
        self._dropped = 0
        self._store_ok = True
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def client(self, address: str | None) -> str:
        """The pseudonym of a client address (16 hex digits)."""
        mac = hmac.new(self._key, (address or "").encode(), hashlib.sha256)
        return mac.hexdigest()[:16]

    def record(self, event: AuditEvent) -> None:
        row = asdict(event)
        level = logging.INFO if event.kind == "action" and event.status < 400 else logging.WARNING
        extras = {k: v for k, v in row.items() if k not in ("kind", "at")}
        AUDIT_LOG.log(
            level, "audit %s %s", event.kind, event.outcome, extra={"audit": event.kind, **extras}
        )
        self._pending.append(row)
        if len(self._pending) > self.max_pending:
            excess = len(self._pending) - self.max_pending
            del self._pending[:excess]
            self._dropped += excess

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Insert the buffered events (kept for the next try if the store fails)."""
        async with self._lock:
            if self._dropped:
                log.warning("audit trail: %d events dropped (store down)", self._dropped)
                self._dropped = 0
            if not self._pending:
                return
            rows, self._pending = self._pending, []
            try:
                await self.run_blocking(self.store.insert, sql.TABLE, rows)
            except Exception as exc:
                self._pending[:0] = rows
                excess = len(self._pending) - self.max_pending
                if excess > 0:
                    del self._pending[:excess]
                    self._dropped += excess
                if self._store_ok:
                    log.warning("audit trail not written to ClickHouse: %s", exc)
                self._store_ok = False
            else:
                self._store_ok = True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="console-audit-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()


def stored_action(store: Store, action_id: str) -> list[dict[str, Any]]:
    """Every stored row of `action_id` in `alert_actions`, oldest first (blocking)."""
    query = sql.ACTION_BY_ID
    return store.query(query.sql, query.bind(id=action_id))
