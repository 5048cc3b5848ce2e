"""`bench_latency`'s per-slice worker figures (RSS at the end of each slice, CPU time in it)
and its warm days (`--warm-days`: the stream's days before the run, stamped alike)."""

from __future__ import annotations

import json
import os
from datetime import datetime

from benchmarks.bench_latency import (
    Outgoing,
    Sample,
    cpu_s,
    merge_figures,
    per_slice,
    query_figures,
    split_warm,
    stream_shift,
    warm_messages,
)

DAY = 86400.0


def test_per_slice_assigns_each_sample_to_the_slice_it_ends() -> None:
    began = 1000.0
    samples: list[Sample] = [
        (began - 0.2, 100.0, 5.0),  # taken as sending starts
        (began + 59.8, 110.0, 17.0),
        (began + 119.9, 121.0, 31.5),
        (began + 180.1, None, None),  # the process could not be read
        (began + 240.0, 140.0, 60.0),
    ]
    rss, cpu = per_slice(samples, began, 60.0, 5)
    assert rss == [110.0, 121.0, None, 140.0, None]
    # CPU in a slice: from the sample before; unknown next to a sample that failed
    assert cpu == [12.0, 14.5, None, None, None]


def test_merge_figures_sum_the_server_parts_per_slice_and_table() -> None:
    began = 1000.0

    def row(table: str, event: str, at: float, parts: int, rows: int, ms: int) -> dict[str, object]:
        return {"table": table, "event": event, "at": int(at), "parts": parts, "rows": rows,
                "duration_ms": ms}

    rows = [
        row("reports", "NEW_PART", began + 1, 3, 300, 4),
        row("reports", "MERGE_PARTS", began + 59, 1, 300, 200),
        row("incident_hours", "NEW_PART", began + 60, 2, 20, 1),
        row("incident_hours", "MERGE_PARTS", began + 61, 2, 4000, 900),
        row("incident_hours", "MERGE_PARTS", began + 200, 1, 5000, 1000),  # the drain's
    ]
    got = merge_figures(rows, began, 60.0, 2)
    assert got["slice_merged_rows"] == [300, 4000]
    assert got["slice_merge_s"] == [0.2, 0.9]
    assert got["slice_new_parts"] == [3, 2]
    # per table over every row, the drain's too; the costliest merges first
    assert list(got["merges_by_table"]) == ["incident_hours", "reports"]
    hours = got["merges_by_table"]["incident_hours"]
    assert (hours["new_parts"], hours["rows_inserted"], hours["merges"], hours["rows_merged"],
            hours["merge_s"], hours["rows_merged_per_row_inserted"]) == (2, 20, 3, 9000, 1.9,
                                                                       450.0)
    assert got["merges_by_table"]["reports"]["rows_merged_per_row_inserted"] == 1.0


def test_cpu_time_of_this_process_is_read() -> None:
    before = cpu_s(os.getpid())
    sum(i * i for i in range(300_000))  # some work
    after = cpu_s(os.getpid())
    assert before is not None and after is not None and after >= before
    assert cpu_s(2**22 + 17) is None  # no such process


def _report(i: int, reported_s: float) -> Outgoing:
    return Outgoing("vigie.reports.v1", f"k{i}".encode(), {"report_id": f"r{i}"}, 600.0,
                    reported_s)


def test_warm_days_are_those_before_the_run_and_stamped_before_it() -> None:
    t0 = 1_700_000_000.0
    # 10 days of stream at one report an hour, the run's last 48; one of the run's reports
    # was reported a day before its first (a late upload): it must not reach further back
    stream = [_report(i, t0 + i * 3600.0) for i in range(240)]
    stream[-10] = _report(230, t0 + 191 * 3600.0 - DAY)
    warm, run = split_warm(stream, 48, 3.0)
    assert run == stream[-48:]
    first = run[0].reported_s
    assert warm == [r for r in stream[:-48] if r.reported_s >= first - 3 * DAY]
    assert len(warm) == 72  # three days of hours (from its earliest, 97)
    shift = stream_shift(run, 2_000_000_000.0, 200.0)
    # the run's latest report is stamped at the end of its sending
    assert max(r.reported_s for r in run) + shift == 2_000_000_000.0 + 48 / 200.0
    messages = warm_messages(warm, shift)
    assert [m.timestamp_ms for m in messages] == [int((r.reported_s + shift) * 1000)
                                                  for r in warm]
    assert all(m.timestamp_ms < (first + shift) * 1000 for m in messages)
    payload = json.loads(messages[0].value)
    reported = datetime.fromisoformat(payload["reported_at"])
    occurred = datetime.fromisoformat(payload["occurred_at"])
    assert reported.timestamp() == warm[0].reported_s + shift
    # its reporting delay kept (occurred_at is written to the second)
    assert 600.0 <= (reported - occurred).total_seconds() < 601.0


def test_query_figures_rank_the_kinds_and_follow_the_costliest_per_slice() -> None:
    began = 1000.0

    def row(kind: str, at: float, queries: int, ms: int, read: int) -> dict[str, object]:
        return {"kind": kind, "at": int(at), "queries": queries, "duration_ms": ms,
                "read_rows": read}

    lookup = "SELECT report_id FROM reports WHERE report_id IN ({})"
    rows = [
        row(lookup.format("?, ?"), began + 1, 2, 30, 500),
        row(lookup.format("?, ?, ?,\n ?"), began + 61, 1, 90, 2000),  # the same statement
        row("INSERT INTO incidents (incident_id) VALUES", began + 62, 1, 20, 0),
        row("INSERT INTO incidents (incident_id) VALUES", began + 200, 1, 50, 0),  # the drain's
    ]
    got = query_figures(rows, began, 60.0, 2)
    kinds = got["queries_by_kind"]
    # one kind per statement whatever the length of its id list; the costliest first,
    # over every row (the drain's too)
    assert list(kinds) == [lookup.format("?..."), "INSERT INTO incidents (incident_id) VALUES"]
    assert kinds[lookup.format("?...")] == {"queries": 3, "seconds": 0.1, "read_rows": 2500}
    assert kinds["INSERT INTO incidents (incident_id) VALUES"]["queries"] == 2
    # per slice: only the rows sent in a slice count
    assert got["slice_query_s"][lookup.format("?...")] == [0.0, 0.1]
    assert got["slice_query_s"]["INSERT INTO incidents (incident_id) VALUES"] == [0.0, 0.0]
    assert got["slice_queries_s"] == [0.0, 0.1]
