"""The worker's and the console's HTTP servers started in-process, as `vigie worker` and
`vigie console` build them, on a free port; and which addresses a port listens on."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import faust
from aiohttp import web
from faust.web.drivers.aiohttp import Web as FaustAiohttpWeb

from agents.core.refdata import load_refdata
from agents.ports.blocking import StoreThread
from agents.ports.health import Health
from agents.ports.store import Store
from console import create_console_app
from console.app import bound_port, start_console
from streams.app import create_app
from streams.local_api import write_token
from streams.settings import Settings
from streams.web import install_worker_pages, stored_counts

INCIDENT_TABLE = "vigie-incident-state"  # the correlation agent's Faust table


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on `port` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, _, port_hex = fields[1].partition(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            if len(raw) == 4:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


@dataclass
class WorkerWeb:
    app: faust.App
    health: Health
    port: int
    data_dir: Path  # holds the local API token `/counts` asks for


@asynccontextmanager
async def worker_web(settings: Settings, store: Store) -> AsyncIterator[WorkerWeb]:
    """The worker's web server as `streams.worker.build_worker` sets it up (pages, the
    incident-state table) and as the Faust worker starts it (`init_server`, then the site)."""
    app, _topics = create_app(settings)
    app.Table(INCIDENT_TABLE, default=None, key_type=str, value_type=None)
    health = Health(clickhouse_unready_seconds=settings.clickhouse_unready_seconds)
    store_thread = StoreThread()
    install_worker_pages(app, health, store, stored_counts, store_thread.run,
                         write_token(settings.worker_data_dir))
    server = app.web
    assert isinstance(server, FaustAiohttpWeb)  # the driver of `web="aiohttp://"`, Faust's default
    server.init_server()
    await server.start_server()
    try:
        yield WorkerWeb(app, health, settings.web_port, Path(settings.worker_data_dir))
    finally:
        await server.stop_server()
        store_thread.close()


@asynccontextmanager
async def console_web(store: Store, host: str, port: int, tokens: str) -> AsyncIterator[int]:
    """The console as `vigie console` serves it; yields the bound port."""
    app: web.Application = create_console_app(
        store, refdata=load_refdata(), tokens=tokens, poll_seconds=60.0
    )
    runner = await start_console(app, host, port)
    try:
        yield bound_port(runner)
    finally:
        await runner.cleanup()
