"""`vigie backtest` against bogus timestamps (issue #21, item 2): one valid line stamped 2100
moved the stream clock to 2099, closed every open incident and stamped them with it. A file
has no Kafka time: lines are checked against the file's own robust clock instead, and the
result is the same as without the bogus lines."""

from __future__ import annotations

import orjson
import pytest

from offline.replay import BacktestOptions, event_time, run_backtest
from offline.simulator.config import SimulationConfig
from offline.simulator.engine import simulate

Y2099 = 4_070_908_800.0  # 2099-01-01T00:00:00Z


@pytest.fixture(scope="module")
def stream() -> tuple[list[bytes], list[int]]:
    """The lines of a simulated file, and the indexes of valid located ones with a
    reported_at (to copy into bogus lines)."""
    lines, valid = [], []
    for i, m in enumerate(simulate(SimulationConfig(days=3, seed=5))):
        lines.append(m.value.replace(b"\n", b" "))
        if not m.truth["expected_reject_reason"]:
            obj = orjson.loads(m.value)
            if "reported_at" in obj and "lat" in obj["location"]:
                valid.append(i)
    return lines, valid


def bogus_copy(line: bytes, rid: str, **times: str) -> bytes:
    obj = orjson.loads(line)
    obj["report_id"] = rid
    obj.update(times)
    return orjson.dumps(obj)


def test_far_future_and_far_past_lines_are_rejected_and_change_nothing(
    stream: tuple[list[bytes], list[int]],
) -> None:
    lines, some = stream
    opts = BacktestOptions(warmup_days=1.0)
    clean = run_backtest(lines, options=opts)
    future = bogus_copy(lines[some[len(some) // 3]], "bogus-2100",
                        occurred_at="2100-01-01T00:00:00+00:00",
                        reported_at="2100-01-01T00:05:00+00:00")
    past = bogus_copy(lines[some[len(some) // 2]], "bogus-1999",
                      occurred_at="1999-01-01T00:00:00+00:00",
                      reported_at="1999-01-01T00:05:00+00:00")
    at_future, at_past = len(lines) // 3, len(lines) // 2
    hostile = [*lines[:at_future], future, *lines[at_future:at_past], past, *lines[at_past:]]
    got = run_backtest(hostile, options=opts)

    by_line = {r["line"]: r["reason"] for r in got.rejected}
    assert by_line[at_future + 1] == "timestamp_in_future"
    assert by_line[at_past + 2] == "timestamp_too_old"
    assert got.summary["stream_clock_end"] == clean.summary["stream_clock_end"] < Y2099
    assert got.incidents == clean.incidents  # nothing closed early, nothing stamped 2100
    assert got.alerts == clean.alerts
    assert len(got.rejected) == len(clean.rejected) + 2


def test_a_bogus_first_line_does_not_set_the_clock(
    stream: tuple[list[bytes], list[int]],
) -> None:
    lines, some = stream
    first = bogus_copy(lines[some[0]], "bogus-first", occurred_at="2100-01-01T00:00:00Z",
                       reported_at="2100-01-01T00:00:00Z")
    got = run_backtest([first, *lines[:300]], options=BacktestOptions(warmup_days=1.0))
    assert got.rejected[0] == {"line": 1, "reason": "timestamp_in_future",
                               "detail": got.rejected[0]["detail"]}
    assert got.summary["accepted"] > 250  # the rest is not taken for 76 years too old


def test_event_time_reads_what_the_backtest_reads() -> None:
    assert event_time(b'{"occurred_at": "2024-03-18T21:00:00+01:00"}') == 1_710_792_000.0
    assert event_time(b'{"occurred_at": "2024-03-18T20:00:00Z",'
                      b' "reported_at": "2024-03-18T21:00:00+00:00"}') == 1_710_795_600.0
    for unreadable in (b"not json", b"[]", b'{"occurred_at": "2024-03-18T21:00:00"}',
                       b'{"occurred_at": 12}', b"{}"):
        assert event_time(unreadable) is None
