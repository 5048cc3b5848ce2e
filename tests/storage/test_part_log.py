"""`agents.ports.sql.merges`: the ClickHouse server's record of the parts its inserts wrote and
its merges (`system.part_log`, kept by deploy/clickhouse/config.xml), as
`benchmarks.bench_latency` reads it; chDB keeps none, and says so with a StoreError. Also the
server's record of its queries (`system.query_log`), by kind."""

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


def queries_since(store: Store, since: int) -> list[dict[str, Any]]:
    store.query(merges.FLUSH_LOGS.sql)
    return store.query(merges.QUERIES_SINCE.sql,
                       merges.QUERIES_SINCE.bind(since=since))


def test_the_server_logs_queries_by_kind_whatever_their_literals(store: Store,
                                                                 store_url: str) -> None:
    if store_url.startswith("chdb://"):
        pytest.skip("chDB keeps no query log of the server's")
    since = int(time.time()) - 1
    database = store.database  # type: ignore[attr-defined]
    for run_at in (1_780_000_000, 1_780_003_600, 1_780_007_200):
        store.query(f"SELECT count() AS n FROM {database}.detector_runs"
                    " WHERE detector = %(d)s AND run_at = %(t)s", {"d": f"x{run_at}", "t": run_at})
    # a lookup of many ids, its text cut by the log's kind within a literal
    ids = [f"PM-pm-91228-{i:07d}-{'x' * 30}" for i in range(40)]  # 5 within the cut
    store.query(f"SELECT count() AS n FROM {database}.detector_runs WHERE detector IN %(ids)s",
                {"ids": tuple(ids)})
    # a query's log entry may be queued after its client has the result (seen on a loaded
    # machine: the last query missing right after the flush): read until all four are in
    deadline = time.monotonic() + 20
    while True:
        rows = queries_since(store, since)
        logged = sum(int(r["queries"]) for r in rows if "detector_runs" in str(r["kind"]))
        if logged >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rows and {tuple(row) for row in rows} == {merges.QUERIES_SINCE.columns}
    long = [r for r in rows if "detector IN" in str(r["kind"])]
    assert len(long) == 1 and "PM-pm" not in str(long[0]["kind"])
    # the server's log is shared: another test's or process's queries on `detector_runs`
    # may fall in the same second (seen in CI: the detector's own `max(run_at)` look-up)
    lookups = [r for r in rows if str(r["kind"]).startswith("SELECT count() AS n FROM")
               and "WHERE detector = ? AND run_at = ?" in str(r["kind"])]
    # three queries differing only by their literals: one kind, digits and strings as ?
    assert len({r["kind"] for r in lookups}) == 1
    assert sum(int(r["queries"]) for r in lookups) == 3
    kind = str(lookups[0]["kind"])
    assert "1780" not in kind and "'x" not in kind and "?" in kind
    assert all(int(r["at"]) >= since for r in rows)
    assert queries_since(store, int(time.time()) + 3600) == []
