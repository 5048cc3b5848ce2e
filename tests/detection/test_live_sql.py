"""`LIVE_COUNTS_SQL` on embedded ClickHouse (chDB): latest version only, no double counting."""

from __future__ import annotations

import pytest

from agents.core.detection import LIVE_COUNTS_SQL

chdb_session = pytest.importorskip("chdb.session")

H = 475_000  # hour bucket
T = H * 3600


def test_live_counts_sql_counts_each_incident_once_with_its_latest_version(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = chdb_session.Session(str(tmp_path / "db"))
    try:
        s.query("CREATE DATABASE IF NOT EXISTS t")
        s.query(
            "CREATE TABLE t.incidents (incident_id String, version UInt32, category String,"
            " first_occurred_at DateTime, h3_r8 String, insee String)"
            " ENGINE = ReplacingMergeTree(version) ORDER BY incident_id"
        )
        rows = [
            # i1: three versions of one rodeo, last one moved an hour earlier (still in window)
            ("i1", 1, "rodeo", T + 1800, "cellA"),
            ("i1", 2, "rodeo", T + 1800, "cellA"),
            ("i1", 3, "rodeo", T + 600 - 3600, "cellA"),
            # i2: re-delivered identical version
            ("i2", 1, "vol", T + 60, "cellB"),
            ("i2", 1, "vol", T + 60, "cellB"),
            # i3: latest version moved out of the window (before start): not counted
            ("i3", 1, "vol", T + 100, "cellB"),
            ("i3", 2, "vol", T - 3 * 3600, "cellB"),
            # i4: latest version re-categorised
            ("i4", 1, "vol", T + 200, "cellB"),
            ("i4", 2, "cambriolage", T + 200, "cellB"),
        ]
        for iid, v, cat, ts, cell in rows:  # separate inserts: separate parts, unmerged
            s.query(
                f"INSERT INTO t.incidents VALUES ('{iid}', {v}, '{cat}', {ts}, '{cell}', '91228')"
            )
        sql = LIVE_COUNTS_SQL.replace("FROM incidents", "FROM t.incidents") % {
            "start": (H - 1) * 3600,
            "end": (H + 1) * 3600,
        }
        out = s.query(sql, "CSV").bytes().decode().strip().splitlines()
        got = sorted(tuple(x.strip('"') for x in line.split(",")) for line in out)
        assert got == [
            ("cellA", "rodeo", str(H - 1), "1"),
            ("cellB", "cambriolage", str(H), "1"),
            ("cellB", "vol", str(H), "1"),
        ]
    finally:
        s.close()
