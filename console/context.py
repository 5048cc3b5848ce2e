"""What every handler needs, stored once on the aiohttp application."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from agents.core.refdata import RefData
from agents.ports.blocking import BlockingRunner
from agents.ports.store import Store
from console.audit import AuditTrail
from console.auth import Principal, TokenRegistry
from console.live import LiveHub
from console.partners import PartnerDirectory
from console.publisher import ActionPublisher
from console.security import ConsoleLimits, FailureLimiter


@dataclass
class ConsoleContext:
    store: Store
    run_blocking: BlockingRunner  # the store's thread: every store call goes through it
    refdata: RefData
    tokens: TokenRegistry
    hub: LiveHub
    action_publisher: ActionPublisher | None
    limits: ConsoleLimits
    failures: FailureLimiter  # failed authentications per client address
    audit: AuditTrail
    jurisdiction_names: dict[str, str] = field(default_factory=dict)  # id → display name
    jurisdiction_codes: dict[str, list[str]] = field(default_factory=dict)  # id → INSEE codes
    geojson: bytes | None = None  # commune outlines, built on first request
    partners: PartnerDirectory | None = None  # the partner registry (scopes, partner tokens)
    jurisdiction_geojson: bytes | None = None  # jurisdiction outlines, idem
    # one action check-then-insert at a time: an action_id is never stored twice
    action_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


CTX = web.AppKey("console_context", ConsoleContext)
PRINCIPAL = web.RequestKey("console_principal", Principal)  # the authenticated caller
# when the caller's credentials stop being valid for a stream (UTC epoch seconds)
EXPIRES = web.RequestKey("console_credentials_expire", int)
__all__ = ["CTX", "EXPIRES", "PRINCIPAL", "ConsoleContext", "Principal"]
