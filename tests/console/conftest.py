"""Fixtures of the console tests: a seeded store (chDB, and ClickHouse 18.16 with the
`clickhouse` marker) and a test client of the console over it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agents.core.refdata import RefData, load_refdata
from console import TokenRegistry, create_console_app
from console.security import ConsoleLimits
from streams.storage import Store
from tests.console import rows
from tests.console.support import NOW, TOKENS, Recorder, run_blocking


@pytest.fixture(scope="module")
def refdata() -> RefData:
    return load_refdata()


@pytest.fixture
def seeded(store: Store) -> Store:
    reports = [rows.report(f"r{i}", NOW - 60 - i * 300, "vol") for i in range(6)]  # last 30 min
    reports += [
        rows.report(f"m{i}", NOW - 7200 - i, "rodeo", rows.MASSY, "csp-massy") for i in range(3)
    ]
    reports.append(rows.report("old", NOW - 3 * 86_400, "vol"))  # 3 days ago
    store.insert("reports", reports)
    incidents = [rows.incident(f"i{i}", NOW - 100 - i * 60, reports=[f"r{i}"]) for i in range(7)]
    incidents.append(
        rows.incident(
            "im",
            NOW - 7200,
            category="rodeo",
            place=rows.MASSY,
            jurisdiction="csp-massy",
            reports=["m0", "m1", "m2"],
        )
    )
    store.insert("incidents", incidents)
    # i0 got closed later (version 2)
    store.insert(
        "incidents", [rows.incident("i0", NOW - 100, version=2, status="closed", reports=["r0"])]
    )
    store.insert(
        "alerts",
        [
            rows.alert("a1", NOW - 30),
            rows.alert("a2", NOW - 40, category="rodeo", insee=[rows.MASSY[0]]),
        ],
    )
    return store


@pytest.fixture
def limits() -> ConsoleLimits:
    """The console's limits (the shipped defaults unless a test parametrizes `limits`)."""
    return ConsoleLimits()


@pytest.fixture
def registry() -> TokenRegistry:
    return TokenRegistry.parse(TOKENS, b"s" * 32)


@pytest.fixture
async def client(
    seeded: Store, refdata: RefData, limits: ConsoleLimits, registry: TokenRegistry
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], Recorder]]:
    recorder = Recorder()
    app = create_console_app(
        seeded,
        refdata=refdata,
        tokens=registry,
        action_publisher=recorder,
        poll_seconds=0.2,
        run_blocking=run_blocking,
        limits=limits,
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, recorder
