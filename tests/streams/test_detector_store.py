"""The detector runs on its own store connection and thread (`streams.detector_store`): a
run in progress, however long its queries take, does not hold up the store calls of ingest
and correlate (issue #22: they queued behind it on one shared store thread, p99 latency)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agents.detect import DetectProcessor
from agents.ports.store import StoreUnavailable
from streams import worker
from streams.detector_store import open_detector_store
from streams.settings import Settings
from streams.storage.gate import SchemaFirstStore
from streams.storage.server import ServerStore

SLOW_QUERY_S = 5.0  # the detector's query blocks until released, at most this long


async def test_a_detector_run_does_not_block_a_store_write_on_the_server_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[DetectProcessor] = []

    class Recorded(DetectProcessor):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            built.append(self)

    monkeypatch.setattr(worker, "DetectProcessor", Recorded)
    monkeypatch.setattr(worker, "create_missing_topics", lambda *_: None)  # no Kafka here
    settings = Settings(
        worker_data_dir=str(tmp_path / "worker"),
        clickhouse="clickhouse://default:@127.0.0.1:9/vigie",
        pseudonym_secret=SecretStr("k" * 48),
    )
    running = worker.build_worker(settings)
    try:
        [detect] = built
        main: Any = running.store
        assert isinstance(main.inner, ServerStore)
        main.schema_ready = True  # as after the start-up task
        # the main connection answers at once (no server here: its driver calls are faked)
        inserted: list[tuple[str, list[str]]] = []
        monkeypatch.setattr(
            main.inner, "_select", lambda sql: [{"name": "report_id", "type": "String"}]
        )
        monkeypatch.setattr(
            main.inner,
            "_insert_columns",
            lambda table, names, columns: inserted.append((table, names)),
        )
        # the detector's connection: a query that runs until released (a slow detector run)
        entered, release = threading.Event(), threading.Event()
        detector_store: Any = detect.store
        assert isinstance(detector_store.inner, ServerStore)
        assert detector_store.inner is not main.inner

        def slow_select(sql: str) -> list[dict[str, Any]]:
            entered.set()
            release.wait(SLOW_QUERY_S)
            return []

        monkeypatch.setattr(detector_store.inner, "_select", slow_select)
        run = asyncio.create_task(detect.run(now=1_800_000_000.0))
        assert await asyncio.to_thread(entered.wait, SLOW_QUERY_S)  # the run is in its query
        started = time.perf_counter()
        # a store thread shared with the detector would wait out the whole slow query
        await asyncio.wait_for(
            running.store_thread.run(main.insert, "reports", [{"report_id": "r-1"}]),
            SLOW_QUERY_S / 2,
        )
        assert await asyncio.wait_for(
            running.store_thread.run(main.query, "SELECT 1"), SLOW_QUERY_S / 2
        )
        assert time.perf_counter() - started < SLOW_QUERY_S / 2
        assert inserted == [("reports", ["report_id"])]
        assert not run.done()  # the detector's query was still running meanwhile
        release.set()
        await asyncio.wait_for(run, SLOW_QUERY_S)
    finally:
        release.set()
        running.close()


def test_the_detector_connection_waits_for_the_main_store_schema() -> None:
    """The second connection never creates or migrates the schema: before the main store
    ensured it, its calls fail as unavailable (the detector retries at its next run)."""
    calls: list[str] = []

    class Inner:
        url = "clickhouse://default:@127.0.0.1:9/vigie"

        def ensure_schema(self) -> None:
            calls.append("ensure_schema")

        def insert(self, table: str, rows: Any) -> None:
            calls.append(f"insert {table}")

        def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
            calls.append(sql)
            return [{"ok": 1}]

        def ping(self) -> bool:
            return True

        def close(self) -> None:
            calls.append("close")

    main = SchemaFirstStore(Inner())
    detector = open_detector_store(main, opener=lambda url: Inner())
    try:
        with pytest.raises(StoreUnavailable, match="schema not ready"):
            detector.store.query("SELECT 1")
        with pytest.raises(StoreUnavailable, match="schema not ready"):
            detector.store.ensure_schema()
        assert calls == []
        main.ensure_schema()
        assert detector.store.query("SELECT 1") == [{"ok": 1}]
        detector.store.insert("alerts", [{"alert_id": "a"}])
        assert calls == ["ensure_schema", "SELECT 1", "insert alerts"]  # one schema run
    finally:
        detector.close()
    assert calls[-1] == "close"
