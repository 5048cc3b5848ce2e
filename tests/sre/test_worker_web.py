"""The worker's HTTP port: bound where VIGIE_WEB_HOST says, serving health, metrics and
(to loopback clients) counts, and none of Faust's own views (table browser, router, ...)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from agents.ports.store import Store
from streams.settings import Settings
from streams.storage import open_store
from streams.web import WORKER_PATHS, worker_pages_only
from tests.sre.servers import INCIDENT_TABLE, WorkerWeb, free_port, listening_addresses, worker_web

# What Faust would serve by default (faust.web.apps), with and without a trailing key.
FAUST_VIEWS = [
    "/",
    "/table/",
    f"/table/{INCIDENT_TABLE}/",
    f"/table/{INCIDENT_TABLE}/inc-0123/",
    "/router/",
    "/router/topics",
    f"/router/{INCIDENT_TABLE}/",
    f"/router/{INCIDENT_TABLE}/inc-0123/",
    "/assignment/",
    "/graph/",
    "/performance/",
]


@pytest.fixture
def store(chdb_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{chdb_path}?database=worker_web_{os.getpid()}")
    opened.ensure_schema()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
async def worker(store: Store) -> AsyncIterator[WorkerWeb]:
    settings = Settings(web_host="127.0.0.1", web_port=free_port())
    async with worker_web(settings, store) as running:
        running.health.mark_started()
        yield running


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def test_binds_the_configured_host_only(worker: WorkerWeb) -> None:
    assert listening_addresses(worker.port) == {"127.0.0.1"}


async def test_faust_default_views_are_not_served(worker: WorkerWeb) -> None:
    served = {path: (await get(worker.port, path))[0] for path in FAUST_VIEWS}
    assert served == dict.fromkeys(FAUST_VIEWS, 404)


async def test_health_metrics_and_counts_are_served(worker: WorkerWeb) -> None:
    status, body = await get(worker.port, "/healthz")
    assert status == 200 and '"status": "ok"' in body.replace('":"', '": "')
    status, body = await get(worker.port, "/readyz")
    assert status == 200 and "reasons" in body
    status, body = await get(worker.port, "/metrics")
    assert status == 200 and "vigie_" in body
    status, body = await get(worker.port, "/counts?only=reports")
    assert (status, body.replace(" ", "")) == (200, '{"reports":0}')


async def test_counts_are_refused_to_remote_clients() -> None:
    async def handler(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"reports": 0})

    class Transport:
        def __init__(self, peer: str) -> None:
            self.peer = peer

        def get_extra_info(self, name: str, default: object = None) -> object:
            return (self.peer, 40000) if name == "peername" else default

    for peer, expected in [("127.0.0.1", 200), ("::1", 200), ("10.1.2.3", 403)]:
        request = make_mocked_request("GET", "/counts", transport=Transport(peer))
        try:
            status = (await worker_pages_only(request, handler)).status
        except aiohttp.web.HTTPException as exc:
            status = exc.status
        assert status == expected, peer
    for path in sorted(WORKER_PATHS - {"/counts"}):
        request = make_mocked_request("GET", path, transport=Transport("10.1.2.3"))
        assert (await worker_pages_only(request, handler)).status == 200, path
