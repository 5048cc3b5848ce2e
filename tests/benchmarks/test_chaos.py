"""The pure parts of `make chaos` (`benchmarks.chaos`): the fault plan, the chunks, the alert
checks, the metrics parser, the exit codes. The scenario itself runs in
tests/integration/test_chaos_short.py."""

from __future__ import annotations

from typing import Any

from benchmarks.chaos import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ChaosResult,
    CheckRow,
    FaultRow,
    Message,
    alert_checks,
    chunk_groups,
    fault_plan,
    main,
    metric,
    metric_values,
)


def test_the_plan_has_every_fault_and_the_kills_asked() -> None:
    for kills in range(7):
        plan = fault_plan(kills)
        names = [n for n, _ in plan]
        assert names.count("clickhouse") == 1 and names.count("broker") == 1
        assert names[-1] == "backlog"
        kill_faults = names.count("kill") + int(plan[-1][1])
        assert kill_faults == kills
    # `--outage-seconds 0`: no ClickHouse step (its readiness check is then not measured)
    no_outage = [n for n, _ in fault_plan(4, outage=False)]
    assert "clickhouse" not in no_outage and no_outage.count("broker") == 1
    plan = fault_plan(5)
    # every other kill also kills the restart: 5 kill faults, 7 SIGKILLs
    assert sum(1 + int(flag) for n, flag in plan if n == "kill") + int(plan[-1][1]) == 7


def stream(n: int) -> list[Message]:
    return [Message("citizen", b"k", b"{}", i, f"r{i}", None, None) for i in range(n)]


def test_the_chunks_cover_the_stream_in_order_one_group_per_step() -> None:
    s = stream(1000)
    for steps, chunks in ((5, 5), (7, 12), (7, 3)):
        parts, groups = chunk_groups(s, steps, chunks, 0.3)
        assert [m for p in parts for m in p] == s
        assert len(parts) == max(chunks, steps + 1)
        assert len(groups) == steps and all(groups)
        assert [m for g in groups for p in g for m in p] == s[len(parts[0]) :]
        assert groups[-1] == [parts[-1]] and len(parts[-1]) == 300


def alert(aid: str, version: int, status: str, t: str, cells: list[str]) -> dict[str, Any]:
    return {
        "alert_id": aid,
        "version": version,
        "status": status,
        "category": "vol",
        "cells": cells,
        "emitted_at": t,
    }


def test_alert_checks_find_doubles_gaps_and_orphans() -> None:
    ref = [
        alert("b1", 1, "open", "2024-03-27T10:00:00Z", ["c1", "c2"]),
        alert("b1", 2, "closed", "2024-03-27T12:00:00Z", ["c1", "c2"]),
    ]
    clean = [
        alert("a1", 1, "open", "2024-03-27T10:05:00Z", ["c1"]),
        alert("a1", 2, "update", "2024-03-27T11:00:00Z", ["c1", "c2"]),
        alert("a1", 3, "closed", "2024-03-27T12:05:00Z", ["c1", "c2"]),
    ]
    got = alert_checks(clean, ref)
    assert (got["doubles"], got["gaps"], got["orphans"], got["open_at_end"]) == ([], [], [], 0)
    assert got["reference_alerted_live"] == 1
    # the same zone alerted two days later, or another zone: not the backtest's hotspot
    late = [alert("a1", 1, "open", "2024-03-29T10:05:00Z", ["c1"])]
    assert alert_checks(late, ref)["reference_alerted_live"] == 0
    assert alert_checks([alert("a1", 1, "open", "2024-03-27T10:05:00Z", ["c9"])],
                        ref)["reference_alerted_live"] == 0
    # a restart that lost the state: a second id opened on the same hotspot, left open
    lost = [*clean[:2], alert("a2", 1, "open", "2024-03-27T11:30:00Z", ["c2"])]
    got = alert_checks(lost, ref)
    assert got["doubles"] == [("a1", "a2")]
    assert sorted(got["orphans"]) == ["a1", "a2"]  # the backtest closed that zone
    got = alert_checks([clean[0], clean[2]], ref)
    assert got["gaps"] == ["a1"]


def test_metrics_are_read_by_name_and_labels() -> None:
    text = (
        "# HELP vigie_ready x\nvigie_ready 0.0\n"
        'vigie_consumer_lag_messages{consumer="ingest",topic="t",partition="0"} 3.0\n'
        'vigie_consumer_lag_messages{consumer="ingest",topic="t",partition="1"} 4.0\n'
        'vigie_consumer_lag_messages{consumer="correlate",topic="e",partition="0"} 9.0\n'
    )
    values = metric_values(text)
    assert metric(values, "vigie_ready") == 0.0
    assert metric(values, "vigie_consumer_lag_messages", consumer="ingest") == 7.0
    assert metric(values, "vigie_dependency_up", dependency="kafka") is None


def test_exit_codes() -> None:
    ok = [CheckRow("a", "", "", True)]
    missed = [CheckRow("f1", "", "", False, hard=False)]
    assert ChaosResult([FaultRow("x")], ok + missed, {}, 1.0).exit_code(strict=False) == EXIT_OK
    assert ChaosResult([FaultRow("x")], ok + missed, {}, 1.0).exit_code(strict=True) == EXIT_FAILED
    assert (
        ChaosResult([FaultRow("x", ok=False)], ok, {}, 1.0).exit_code(strict=False) == EXIT_FAILED
    )
    assert main(["--kills", "-1"]) == EXIT_USAGE
