"""The console's view of the partner registry: the caller's access scope, partner tokens.

`PartnerDirectory` keeps the current registry (`agents.ports.partner_registry.load`) in
memory and re-reads it every `refresh_seconds` when its fingerprint changed, so that a
partner added, changed, disabled or whose token was rotated (`vigie partners ...` or the
console's page) takes effect within seconds, without a redeploy.

Fail closed: a partner principal whose org is unknown, disabled or unreadable, or any
partner while the registry was never read, gets `AccessScope.NOTHING` (sees nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from agents.core.jurisdictions import Jurisdictions
from agents.core.partners import AccessScope, Partner
from agents.ports import partner_registry
from agents.ports.blocking import BlockingRunner
from agents.ports.partner_registry import Snapshot
from agents.ports.sql.scope import Scope
from agents.ports.store import Store
from console.auth import Principal

log = logging.getLogger(__name__)
REFRESH_SECONDS = 5.0


class PartnerDirectory:
    def __init__(
        self,
        store: Store,
        run_blocking: BlockingRunner,
        jurisdictions: Jurisdictions | None,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.store = store
        self.run_blocking = run_blocking
        self.jurisdictions = jurisdictions
        self.refresh_seconds = refresh_seconds
        self.snapshot = Snapshot()
        self.loaded = False
        self._fingerprint: tuple[int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # ---- what the handlers ask ---------------------------------------------------------
    def partner(self, org: str) -> Partner | None:
        return self.snapshot.partners.get(org)

    def access(self, who: Principal) -> AccessScope:
        """What `who` may see: the whole area for viewers and operators, its perimeter for a
        partner (nothing when unknown or disabled)."""
        if not who.is_partner:
            return AccessScope.ALL
        partner = self.snapshot.partners.get(who.org)
        if partner is None:
            return AccessScope.NOTHING
        return partner.scope(self.jurisdictions)

    def principal_for_digest(self, digest: str) -> Principal | None:
        """The principal of a registry-issued partner token (SHA-256 hex), if active."""
        partner = self.snapshot.by_token_digest(digest)
        if partner is None or not partner.active:
            return None
        return Principal(name=f"partenaire:{partner.org}", role="partner", org=partner.org)

    # ---- refresh -----------------------------------------------------------------------
    async def refresh(self, force: bool = False) -> None:
        """Re-read the registry if it changed (or when `force`)."""
        async with self._lock:
            mark = await self.run_blocking(partner_registry.fingerprint, self.store)
            if not force and self.loaded and mark == self._fingerprint:
                return
            snapshot = await self.run_blocking(partner_registry.load, self.store)
            for org, reason in snapshot.unreadable.items():
                log.warning(
                    "partner registry: entry %s unreadable (it sees nothing): %s", org, reason
                )
            self.snapshot, self._fingerprint, self.loaded = snapshot, mark, True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="console-partner-registry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                await self.refresh()
                failing = False
            except Exception as exc:  # keep the last snapshot; say it once
                if not failing:
                    log.warning("partner registry not refreshed: %s", exc)
                failing = True
            await asyncio.sleep(self.refresh_seconds)


def sql_scope(access: AccessScope, base: Scope) -> Scope:
    """`base` (the user's filters) restricted to `access` (the server's access control)."""
    if access.communes is not None:
        base.perimeter_insee = tuple(sorted(access.communes))
    if access.categories:
        base.perimeter_categories = tuple(sorted(access.categories))
    return base
