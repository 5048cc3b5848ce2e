"""The Store contract on both backends (real ClickHouse 18.16 server and chDB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.ports.sql.schema import INCIDENT_HOURS_SELECT, STATEMENTS, VIEW_STATEMENTS
from streams.storage import Store, StoreError, open_store
from streams.storage.bench import make_report_rows
from streams.storage.queries import (
    count_incidents,
    count_rejected_by_reason,
    count_reports,
    counts_by,
    current_alerts,
    current_incidents,
)

TABLES = {
    "reports",
    "rejected",
    "incidents",
    "incident_hours",
    "alerts",
    "alert_events",
    "alert_actions",
    "detector_runs",
    "detector_schedules",
    "audit_events",
    "partners",
    "report_feedback",
    "incident_actions",
    "webhook_deliveries",
}
VIEWS = {"incident_hours_mv2"}


def table_names(store: Store) -> set[str]:
    rows = store.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase()",
    )
    return {row["name"] for row in rows}


def incident(incident_id: str, version: int, status: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "incident_id": incident_id,
        "version": version,
        "status": status,
        "category": "cambriolage",
        "categories": ["cambriolage"],
        "report_ids": [f"{incident_id}-r{i}" for i in range(version)],
        "report_count": version,
        "source_kinds": ["police_nationale", "citizen"],
        "first_occurred_at": 1_780_000_000,
        "last_occurred_at": 1_780_000_000 + 600 * version,
        "lat": 48.63,
        "lon": 2.44,
        "insee": "91228",
        "commune": "Évry-Courcouronnes",
        "jurisdiction": None,
        "h3": "891fb467003ffff",
        "h3_r7": "871fb4670ffffff",
        "h3_r8": "881fb46701fffff",
        "precision": "point",
        "confidence": 0.5 + version / 10,
        "updated_at": 1_780_000_000.9 + version,
    }
    row.update(extra)
    return row


def alert(alert_id: str, version: int, status: str) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "version": version,
        "status": status,
        "kind": "hotspot",
        "category": "rodeo",
        "center_lat": 48.7,
        "center_lon": 2.3,
        "radius_m": 800.0,
        "cells": ["881fb46701fffff", "881fb46703fffff"],
        "insee": ["91228", "91174"],
        "window_start": 1_780_000_000,
        "window_end": 1_780_003_600,
        "observed": 9.0,
        "expected": 1.5,
        "score": 12.5,
        "severity": 3,
        "emitted_at": 1_780_003_600 + version,
        "detector": "poisson_scan",
    }


def test_schema_is_idempotent(store: Store) -> None:
    store.ensure_schema()  # the fixture already ran it once
    store.ensure_schema()
    assert table_names(store) == TABLES | VIEWS
    assert len(STATEMENTS) == len(TABLES) + 1
    assert len(VIEW_STATEMENTS) == len(VIEWS)


def test_insert_then_count_and_round_trip(store: Store) -> None:
    rows = make_report_rows(500)
    store.insert("reports", rows)
    assert count_reports(store) == 500
    got = store.query(
        "SELECT * FROM reports WHERE report_id = %(id)s", {"id": rows[10]["report_id"]}
    )[0]
    # Times come back as UTC epoch seconds (truncated to the second), None stays None.
    assert got["occurred_at"] == int(rows[10]["occurred_at"])
    assert got["reported_at"] == int(rows[10]["reported_at"])
    assert got["source_channel"] == rows[10]["source_channel"]
    assert got["lat"] is None and rows[10]["lat"] is None  # every 5th row is commune-only
    point = store.query("SELECT lat, severity FROM reports WHERE report_id = 'bench-000000011'")
    assert point == [{"lat": rows[11]["lat"], "severity": rows[11]["severity"]}]


def test_replay_does_not_double_count(store: Store) -> None:
    rows = make_report_rows(300)
    store.insert("reports", rows)
    store.insert("reports", rows[100:])  # a Kafka replay of the last 200
    store.insert("reports", rows[:50])
    raw = store.query("SELECT count() AS n FROM reports")[0]["n"]
    assert raw == 550  # the duplicates are physically there...
    assert count_reports(store) == 300  # ...and never counted
    by_category = counts_by(store, "category")
    assert sum(by_category.values()) == 300
    expected: dict[str, int] = {}
    for row in rows:
        expected[row["category"]] = expected.get(row["category"], 0) + 1
    assert by_category == expected
    assert list(by_category.values()) == sorted(by_category.values(), reverse=True)


def test_counts_by_since_and_null_keys(store: Store) -> None:
    rows = make_report_rows(100)
    rows[0]["insee"] = None
    store.insert("reports", rows)
    assert sum(counts_by(store, "insee").values()) == 100
    assert counts_by(store, "insee")[""] == 1
    since = rows[60]["occurred_at"]
    recent = counts_by(store, "source_kind", since_epoch=since)
    assert sum(recent.values()) == sum(1 for r in rows if int(r["occurred_at"]) >= int(since))
    assert count_reports(store, since_epoch=since) == sum(recent.values())
    assert sum(counts_by(store, "jurisdiction").values()) == 100
    assert counts_by(store, "commune") == {"Évry-Courcouronnes": 100}
    with pytest.raises(StoreError):
        counts_by(store, "report_id; DROP TABLE reports")


def test_rejected_counts_by_reason_and_replay(store: Store) -> None:
    rows: list[dict[str, Any]] = [
        {
            "rejected_at": 1_780_000_000 + i,
            "origin_topic": "vigie.reports.citizen.v1",
            "origin_partition": i % 2,
            "origin_offset": i,
            "reason": "bad_json" if i % 3 == 0 else "unknown_category",
            "detail": "line 1",
            "report_id": "",
            "size_bytes": 120 + i,
        }
        for i in range(30)
    ]
    store.insert("rejected", rows)
    replay = [dict(r, rejected_at=r["rejected_at"] + 3600) for r in rows[:10]]
    store.insert("rejected", replay)  # re-processed later: same origin, new rejected_at
    assert count_rejected_by_reason(store) == {"unknown_category": 20, "bad_json": 10}


def test_incident_versions_current_state(store: Store) -> None:
    store.insert("incidents", [incident("a", 1, "open"), incident("b", 1, "open")])
    store.insert("incidents", [incident("a", 2, "open")])
    store.insert("incidents", [incident("a", 3, "closed"), incident("a", 2, "open")])  # replay
    store.insert("incidents", [incident("c", 1, "open", insee="91174", jurisdiction="csp-x")])
    everything = current_incidents(store, status=None)
    assert sorted((i["incident_id"], i["version"], i["status"]) for i in everything) == [
        ("a", 3, "closed"),
        ("b", 1, "open"),
        ("c", 1, "open"),
    ]
    a = next(i for i in everything if i["incident_id"] == "a")
    assert a["report_ids"] == ["a-r0", "a-r1", "a-r2"]
    assert a["updated_at"] == 1_780_000_003
    assert a["jurisdiction"] is None
    assert {i["incident_id"] for i in current_incidents(store)} == {"b", "c"}
    assert count_incidents(store) == 3
    assert count_incidents(store, status="open") == 2
    assert count_incidents(store, status="closed") == 1
    only_c = current_incidents(store, insee="91174")
    assert [(i["incident_id"], i["jurisdiction"]) for i in only_c] == [("c", "csp-x")]
    assert (
        current_incidents(store, since_epoch=1_780_000_000 + 1800, status=None)[0]["incident_id"]
        == "a"
    )


def test_alert_state_and_every_event(store: Store) -> None:
    lifecycle = [alert("h1", 1, "open"), alert("h1", 2, "update"), alert("h1", 3, "closed")]
    store.insert("alerts", lifecycle)
    store.insert("alert_events", lifecycle)
    store.insert("alert_events", lifecycle[:2])  # replay
    assert [(a["alert_id"], a["status"]) for a in current_alerts(store)] == [("h1", "closed")]
    assert current_alerts(store, status="open") == []
    events = store.query("SELECT version, status FROM alert_events FINAL ORDER BY version")
    assert events == [
        {"version": 1, "status": "open"},
        {"version": 2, "status": "update"},
        {"version": 3, "status": "closed"},
    ]
    cur = current_alerts(store)[0]
    assert cur["cells"] == ["881fb46701fffff", "881fb46703fffff"]
    assert cur["window_start"] == 1_780_000_000


def test_parameters_are_escaped(store: Store) -> None:
    tricky = "9'1\"2\\28 ') OR 1=1 --"
    rows = make_report_rows(3)
    rows[1]["commune"] = tricky
    store.insert("reports", rows)
    got = store.query("SELECT report_id, commune FROM reports WHERE commune = %(c)s", {"c": tricky})
    assert got == [{"report_id": rows[1]["report_id"], "commune": tricky}]
    injection = store.query(
        "SELECT count() AS n FROM reports WHERE report_id = %(id)s", {"id": "x' OR 1=1 --"}
    )
    assert injection == [{"n": 0}]
    ids = (rows[0]["report_id"], rows[2]["report_id"])
    found = store.query(
        "SELECT report_id FROM reports WHERE report_id IN %(ids)s ORDER BY report_id",
        {"ids": ids},
    )
    assert [r["report_id"] for r in found] == list(ids)
    one = store.query("SELECT report_id FROM reports WHERE report_id IN %(ids)s", {"ids": ids[:1]})
    assert [r["report_id"] for r in one] == [ids[0]]


def test_errors_are_store_errors(store: Store) -> None:
    with pytest.raises(StoreError) as bad_sql:
        store.query("SELEC nonsense")
    assert bad_sql.value.__cause__ is not None
    with pytest.raises(StoreError):
        store.query("SELECT * FROM no_such_table")
    with pytest.raises(StoreError):
        store.insert("no_such_table", [{"a": 1}])
    with pytest.raises(StoreError):
        store.insert("reports", [{"report_id": "x", "not_a_column": 1}])
    with pytest.raises(StoreError):
        store.insert("reports; DROP TABLE reports", [{"report_id": "x"}])
    rows = make_report_rows(2)
    del rows[1]["commune"]
    with pytest.raises(StoreError):
        store.insert("reports", rows)
    assert count_reports(store) == 0
    assert store.ping() is True


def test_unknown_url_scheme() -> None:
    with pytest.raises(StoreError):
        open_store("postgres://localhost/x")


def test_chdb_inserts_are_synchronous(chdb_path: Any) -> None:
    store = open_store(f"chdb://{chdb_path}?database=vigie_sync_check")
    try:
        assert store.query("SELECT toUInt8(getSetting('async_insert')) AS a") == [{"a": 0}]
    finally:
        store.close()


def test_chdb_state_persists_across_reopen(chdb_path: Any) -> None:
    url = f"chdb://{chdb_path}?database=vigie_reopen"
    first = open_store(url)
    first.ensure_schema()
    first.insert("reports", make_report_rows(42))
    first.close()
    with pytest.raises(StoreError):
        first.query("SELECT 1")  # closed
    again = open_store(url)
    try:
        again.ensure_schema()
        assert count_reports(again) == 42
    finally:
        again.close()


@pytest.mark.clickhouse
def test_server_down_raises_then_recovers(clickhouse_server: Any) -> None:
    store = open_store(clickhouse_server.url_for("vigie_outage"))
    store.ensure_schema()
    store.query("TRUNCATE TABLE reports")
    store.insert("reports", make_report_rows(10))
    clickhouse_server.stop()
    try:
        assert store.ping() is False
        with pytest.raises(StoreError) as down:
            store.insert("reports", make_report_rows(10, start=10))
        assert down.value.__cause__ is not None
        with pytest.raises(StoreError):
            count_reports(store)
    finally:
        clickhouse_server.start()
    assert store.ping() is True
    store.insert("reports", make_report_rows(10, start=10))
    assert count_reports(store) == 20
    store.close()


@pytest.mark.clickhouse
def test_server_store_creates_missing_database(clickhouse_server: Any) -> None:
    store = open_store(clickhouse_server.url_for("vigie_fresh_db_check"))
    try:
        store.query("DROP DATABASE IF EXISTS vigie_fresh_db_check")
        store.close()  # the next call reconnects and re-creates the database
        store = open_store(clickhouse_server.url_for("vigie_fresh_db_check"))
        store.ensure_schema()
        assert table_names(store) == TABLES | VIEWS
    finally:
        store.close()


def test_chdb_one_path_per_process(chdb_path: Any, tmp_path: Any) -> None:
    first = open_store(f"chdb://{chdb_path}?database=vigie_one_path")
    try:
        same_path = open_store(f"chdb://{chdb_path}?database=vigie_one_path_b")
        same_path.close()  # another database on the same path is fine
        with pytest.raises(StoreError, match="already initialized"):
            open_store(f"chdb://{tmp_path}/other")
        assert first.ping() is True
    finally:
        first.close()


def test_chdb_path_is_locked_against_other_processes(chdb_path: Any) -> None:
    url = f"chdb://{chdb_path}?database=vigie_lock"
    store = open_store(url)
    try:
        code = (
            "import sys\n"
            "from streams.storage import StoreError, open_store\n"
            "try:\n"
            f"    open_store({url!r})\n"
            "except StoreError:\n"
            "    sys.exit(3)\n"
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, timeout=120, check=False
        )
        assert done.returncode == 3, done.stderr
    finally:
        store.close()


def test_schema_adds_the_columns_an_older_table_lacks(store: Store) -> None:
    """A database from before `incidents.first_seen_at` and `incident_hours`: on start-up the
    column is added (old rows read it as their first occurrence, new rows keep the value
    they are given) and `incident_hours` is created, filled from the incidents already
    there, then kept by its materialized view."""
    db = store.database  # type: ignore[attr-defined]
    for name in ("incident_hours_mv2", "incident_hours", "incidents"):
        store._command(f"DROP TABLE IF EXISTS {db}.{name}")  # type: ignore[attr-defined]
    old_ddl = next(s for s in STATEMENTS if ".incidents (" in s)
    new_column = ",\n        first_seen_at DateTime('UTC') DEFAULT first_occurred_at"
    old_ddl = old_ddl.replace(new_column, "")
    assert "first_seen_at" not in old_ddl
    store._command(" ".join(old_ddl.split()).format(db=db))  # type: ignore[attr-defined]
    old = incident("old-1", 1, "open")
    store.insert("incidents", [old])
    store.ensure_schema()
    store.ensure_schema()  # idempotent: the column is added once, the backfill runs once
    store.insert("incidents", [incident("new-1", 1, "open", first_seen_at=1_780_000_777)])
    rows = {
        r["incident_id"]: int(r["seen"])
        for r in store.query("SELECT incident_id, toUInt32(first_seen_at) AS seen FROM incidents")
    }
    assert rows == {"old-1": 1_780_000_000, "new-1": 1_780_000_777}
    hours = store.query(
        "SELECT incident_id, toUInt32(hour) AS h, category, h3_r8, jurisdiction"
        " FROM incident_hours ORDER BY incident_id"
    )
    assert [(r["incident_id"], r["h"]) for r in hours] == [
        ("new-1", 1_780_000_777 // 3600 * 3600),
        ("old-1", 1_780_000_000 // 3600 * 3600),
    ]
    assert {(r["category"], r["h3_r8"], r["jurisdiction"]) for r in hours} == {
        ("cambriolage", "881fb46701fffff", "")
    }


def test_schema_replaces_the_view_without_precision(store: Store) -> None:
    """A database of the version whose `incident_hours` had no `precision` (view
    `incident_hours_mv`): on start-up the column is added (old rows read 'point', counted as
    before), the old view is dropped and the new one projects each version's precision, so
    the live counts leave out an incident known only by its commune."""
    from agents.detect import ClickHouseCountStore

    db = store.database  # type: ignore[attr-defined]
    for name in ("incident_hours_mv2", "incident_hours"):
        store._command(f"DROP TABLE IF EXISTS {db}.{name}")  # type: ignore[attr-defined]
    old_hours = next(s for s in STATEMENTS if ".incident_hours (" in s)
    assert "precision" not in old_hours
    old_select = INCIDENT_HOURS_SELECT.replace(", precision", "")
    assert "precision" not in old_select
    for stmt in (
        old_hours,
        "CREATE MATERIALIZED VIEW {db}.incident_hours_mv TO {db}.incident_hours AS" + old_select,
    ):
        store._command(" ".join(stmt.split()).format(db=db))  # type: ignore[attr-defined]
    store.insert("incidents", [incident("old-1", 1, "open")])
    store.ensure_schema()
    store.ensure_schema()  # idempotent
    assert table_names(store) == TABLES | VIEWS  # the old view is gone
    store.insert("incidents", [incident("new-1", 1, "open"), incident("new-2", 1, "open")])
    store.insert("incidents", [incident("new-2", 2, "open", precision="commune")])
    rows = store.query(
        "SELECT incident_id, argMax(precision, version) AS p FROM incident_hours"
        " GROUP BY incident_id ORDER BY incident_id"
    )
    assert [(r["incident_id"], r["p"]) for r in rows] == [
        ("new-1", "point"),
        ("new-2", "commune"),
        ("old-1", "point"),
    ]
    hour = 1_780_000_000 // 3600
    counts = ClickHouseCountStore(store).window_counts(hour, hour + 1)
    assert counts == [("881fb46701fffff", "cambriolage", hour, 2)]  # old-1 and new-1


def test_tables_read_by_id_every_batch_have_small_granules(store: Store) -> None:
    """`reports`, `report_feedback` and `incidents` are read by a batch's ids: with the
    default 8,192-row granules each lookup read about the whole table (LOOKUP_SETTINGS)."""

    def ddl(table: str) -> str:
        return " ".join(str(v) for row in store.query(f"SHOW CREATE TABLE {table}")
                        for v in row.values())

    for table in ("reports", "report_feedback", "incidents"):
        assert "index_granularity = 256" in ddl(table), (table, ddl(table))
    assert "index_granularity = 8192" in ddl("alerts")  # the others keep ClickHouse's default
