"""The worker's HTTP port: bound where VIGIE_WEB_HOST says, serving health, metrics and
(to loopback clients bearing the local API token) counts, and none of Faust's own views
(table browser, router, ...)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from agents.ports.store import Store
from streams.counts import fetch_from_worker
from streams.local_api import LocalTokenError, auth_header, read_token, token_path
from streams.settings import Settings
from streams.storage import open_store
from streams.web import LOOPBACK_ONLY_PATHS, WORKER_PATHS, worker_pages_only
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
async def worker(store: Store, tmp_path: Path) -> AsyncIterator[WorkerWeb]:
    settings = Settings(web_host="127.0.0.1", web_port=free_port(),
                        worker_data_dir=str(tmp_path / "worker"))
    async with worker_web(settings, store) as running:
        running.health.mark_started()
        yield running


async def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as response,
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
    status, body = await get(worker.port, "/counts?only=reports", auth_header(worker.data_dir))
    assert (status, body.replace(" ", "")) == (200, '{"reports":0}')
    status, body = await get(worker.port, "/counts", auth_header(worker.data_dir))
    assert status == 200 and '"top_communes"' in body


async def test_counts_ask_for_the_local_token(worker: WorkerWeb) -> None:
    token = read_token(worker.data_dir)
    refused = {
        "no header": None,
        "wrong token": {"Authorization": "Bearer " + "x" * len(token)},
        "token prefix": {"Authorization": "Bearer " + token[:-1]},
        "other scheme": {"Authorization": "Basic " + token},
        "bare token": {"Authorization": token},
    }
    for case, headers in refused.items():
        for path in ("/counts", "/counts?only=reports"):
            status, body = await get(worker.port, path, headers)
            assert status == 401, (case, path)
            assert '"unauthorized"' in body and '"reports"' not in body, (case, path)
    status, _ = await get(worker.port, "/counts", {"Authorization": f"Bearer {token}"})
    assert status == 200
    status, _ = await get(worker.port, "/counts", {"Authorization": f"bearer {token}"})
    assert status == 200  # the scheme is case-insensitive (RFC 9110)


async def test_vigie_counts_reads_the_token_of_the_worker_data_dir(
    worker: WorkerWeb, tmp_path: Path
) -> None:
    counts = await asyncio.to_thread(fetch_from_worker, "127.0.0.1", worker.port,
                                     str(worker.data_dir))
    assert counts["reports"] == 0 and "by_category" in counts
    with pytest.raises(LocalTokenError, match="is a worker running with this VIGIE_WORKER"):
        await asyncio.to_thread(fetch_from_worker, "127.0.0.1", worker.port,
                                str(tmp_path / "no-worker"))


async def test_the_token_file_is_private_and_new_at_each_start(
    store: Store, tmp_path: Path
) -> None:
    settings = Settings(web_host="127.0.0.1", web_port=free_port(),
                        worker_data_dir=str(tmp_path / "worker"))
    tokens = []
    for _ in range(2):
        async with worker_web(settings, store) as running:
            path = token_path(running.data_dir)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert [p.name for p in running.data_dir.iterdir()] == [path.name]  # no temp left
            tokens.append(read_token(running.data_dir))
    assert len(set(tokens)) == 2 and all(len(t) >= 43 for t in tokens)  # 32 random bytes


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
    for path in sorted(WORKER_PATHS - LOOPBACK_ONLY_PATHS):
        request = make_mocked_request("GET", path, transport=Transport("10.1.2.3"))
        assert (await worker_pages_only(request, handler)).status == 200, path
