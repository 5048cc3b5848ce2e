"""Pytest fixtures for ClickHouse: a real server (Debian's clickhouse-server) and chDB.

- `clickhouse_server` (session): one server on free 127.0.0.1 ports in a temp dir, started
  and stopped by `scripts/clickhouse.sh`; `.url`, `.stop()`, `.start()` (same dir and ports,
  data kept). With `VIGIE_TEST_CLICKHOUSE_URL` set, that server is used instead and
  `.stop()`/`.start()` skip the calling test.
- `chdb_path` (session): the one chDB directory of this test process (chDB runs a single
  embedded server per process: every embedded store in the tests must use this path).
- `store_url`: parametrized over ["server", "chdb"], a fresh database per test;
  `store`: an open store on it with the schema ensured, closed after the test.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from streams.storage import Store, open_store

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "clickhouse.sh"
ENV_URL = "VIGIE_TEST_CLICKHOUSE_URL"
_database_ids = itertools.count(1)


class ClickHouseServer:
    """A ClickHouse server for tests; `url` points at the `vigie_test` database."""

    def __init__(self, directory: Path | None, url: str | None = None) -> None:
        self.directory = directory
        self.url = url or ""

    @property
    def external(self) -> bool:
        return self.directory is None

    def start(self) -> None:
        if self.directory is None:
            pytest.skip(f"cannot start the external server of {ENV_URL}")
        out = _script("start", str(self.directory))
        self.url = _with_database(out.strip().splitlines()[-1], "vigie_test")

    def stop(self) -> None:
        if self.directory is None:
            pytest.skip(f"cannot stop the external server of {ENV_URL}")
        _script("stop", str(self.directory))

    def url_for(self, database: str) -> str:
        return _with_database(self.url, database)


def _script(*args: str) -> str:
    done = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"clickhouse.sh {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    external = os.environ.get(ENV_URL)
    if external:
        yield ClickHouseServer(None, _with_database(external, "vigie_test"))
        return
    if shutil.which("clickhouse-server") is None:
        pytest.skip("clickhouse-server not installed (run scripts/clickhouse.sh install)")
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(
    params=[pytest.param("server", marks=pytest.mark.clickhouse), "chdb"],
)
def store_url(request: pytest.FixtureRequest) -> str:
    """A store URL on a database of its own (per test), for each backend."""
    database = f"vigie_test_{os.getpid()}_{next(_database_ids)}"
    if request.param == "server":
        server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
        return server.url_for(database)
    path: Path = request.getfixturevalue("chdb_path")
    return f"chdb://{path}?database={database}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    opened.ensure_schema()
    try:
        yield opened
    finally:
        opened.close()
