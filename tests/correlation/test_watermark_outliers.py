"""The correlation watermark against a bogus far-future `reported_at` (issue #21, item 2): one
report stamped 2100 closed every open incident and stamped `updated_at` 2100 on them and on
every later version. A lone record far ahead must not move the clock; records that agree
still do."""

from __future__ import annotations

from dataclasses import replace

from agents.core.correlation import Correlator
from tests.agents.fakes import T0, report

Y2100 = 4_102_444_800.0  # 2100-01-01T00:00:00Z


def test_a_lone_far_future_report_closes_nothing_and_stamps_nothing() -> None:
    engine = Correlator()
    # 30 incidents 2 km apart, one a minute: all open
    for i in range(30):
        engine.process(report(east_m=2000.0 * i, t=60.0 * i, category="rodeo"))
    assert engine.open_count == 30
    clock = engine.watermark

    bogus = replace(report(east_m=-5000.0, t=0.0, category="vol"),
                    occurred_at=Y2100 - 60.0, reported_at=Y2100)
    versions = engine.process(bogus)
    assert [v["status"] for v in versions] == ["open"]  # its own incident, no closure
    assert engine.watermark == clock
    assert engine.open_count == 31

    # the next ordinary report: a version stamped with the real clock, nothing closed
    later = engine.process(report(east_m=1.0e5, t=1900.0, category="rodeo"))
    assert [v["status"] for v in later] == ["open"]
    assert later[0]["updated_at"] < Y2100 and engine.watermark < Y2100


def test_records_that_agree_still_move_the_clock_past_a_quiet_spell() -> None:
    engine = Correlator()
    [opened] = engine.process(report(t=0.0, category="cambriolage"))
    # three reports a week later, elsewhere: the clock moves, the first incident closes
    out = [v for i in range(3)
           for v in engine.process(report(east_m=3000.0 + 2000.0 * i, t=7 * 86400.0 + i))]
    closed = [v for v in out if v["status"] == "closed"]
    assert [v["incident_id"] for v in closed] == [opened["incident_id"]]
    assert engine.watermark == T0 + 7 * 86400.0 + 60.0  # the earliest of the three agreeing
