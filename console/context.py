"""What every handler needs, stored once on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from agents.core.refdata import RefData
from console.auth import Principal, TokenRegistry
from console.live import LiveHub
from console.publisher import ActionPublisher
from streams.storage.base import Store


@dataclass
class ConsoleContext:
    store: Store
    refdata: RefData
    tokens: TokenRegistry
    hub: LiveHub
    action_publisher: ActionPublisher | None
    jurisdiction_names: dict[str, str] = field(default_factory=dict)  # id → display name
    jurisdiction_codes: dict[str, list[str]] = field(default_factory=dict)  # id → INSEE codes
    geojson: bytes | None = None  # commune outlines, built on first request


CTX = web.AppKey("console_context", ConsoleContext)
PRINCIPAL = web.RequestKey("console_principal", Principal)  # the authenticated caller
__all__ = ["CTX", "PRINCIPAL", "ConsoleContext", "Principal"]
