"""`agents.ports.sql.merges`: the ClickHouse server's record of the parts its inserts wrote and
its merges (`system.part_log`, kept by deploy/clickhouse/config.xml), as
`benchmarks.bench_latency` reads it; chDB keeps none, and says so with a StoreError."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agents.ports.sql import merges
from agents.ports.store import StoreError
from streams.storage import Store


def parts_since(store: Store, since: int) -> list[dict[str, Any]]:
    store.query(merges.FLUSH_LOGS.sql)
    database = store.database  # type: ignore[attr-defined]
    return store.query(merges.PARTS_SINCE.sql,
                       merges.PARTS_SINCE.bind(database=database, since=since))


def test_the_server_logs_each_insert_as_a_part_and_each_merge(store: Store,
                                                              store_url: str) -> None:
    since = int(time.time()) - 1
    for run_at in (1_780_000_000, 1_780_003_600):  # two inserts: two parts
        store.insert("detector_runs", [{"detector": "poisson_scan", "run_at": run_at}])
    if store_url.startswith("chdb://"):
        with pytest.raises(StoreError, match="part_log"):
            parts_since(store, since)
        return
    database = store.database  # type: ignore[attr-defined]
    store._command(f"OPTIMIZE TABLE {database}.detector_runs FINAL")  # type: ignore[attr-defined]
    rows = parts_since(store, since)
    assert {tuple(row) for row in rows} == {merges.PARTS_SINCE.columns}
    written = [r for r in rows if r["table"] == "detector_runs" and r["event"] == "NEW_PART"]
    merged = [r for r in rows if r["table"] == "detector_runs" and r["event"] == "MERGE_PARTS"]
    assert sum(int(r["parts"]) for r in written) == 2
    assert sum(int(r["rows"]) for r in written) == 2
    # one merge of the two parts, which keeps the later run (ReplacingMergeTree(run_at))
    assert sum(int(r["parts"]) for r in merged) == 1
    assert sum(int(r["rows"]) for r in merged) == 1
    assert all(int(r["at"]) >= since for r in rows)
    # nothing from before `since`
    assert parts_since(store, int(time.time()) + 3600) == []
