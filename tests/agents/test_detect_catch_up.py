"""A detector whose clock jumps (a backlog read at once on the data clock, runs failed
through an outage) also runs at the end of each hour it skipped: a hotspot that began and
ended inside the jump is alerted and closed as it would have been had the data come at its
pace (found by `make chaos`: the live detector raised 0-2 alerts where `vigie backtest` of the
same stream raised 8)."""

from __future__ import annotations

from agents.detect import CATCH_UP_STEP_S, MAX_CATCH_UP_STEPS, run_times
from tests.agents.fakes import FakeKafka
from tests.agents.test_detect_restore import (
    SPREE_HOUR,
    TOPIC,
    AlertStore,
    of_spree,
    processor,
    spree,
)


def test_run_times_are_the_skipped_hour_ends_then_now() -> None:
    assert run_times(float("-inf"), 7200.5) == [7200.5]  # a first run: nothing to catch up
    assert run_times(36_000.0, 36_000.0 + 600) == [36_600.0]  # the ordinary period
    last, now = 10 * 3600.0 + 100, 15 * 3600.0 + 20
    assert run_times(last, now) == [h * 3600.0 - 1 for h in range(11, 16)] + [now]
    far = run_times(0.0, 1000 * 3600.0)
    assert len(far) == MAX_CATCH_UP_STEPS + 1
    assert far[-2] == 1000 * 3600.0 - 1 and far[0] == far[-2] - CATCH_UP_STEP_S * 167


async def test_a_spree_inside_a_clock_jump_is_alerted_and_closed() -> None:
    counts, index, zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    proc = processor(counts, index, store, kafka)
    await proc.run((SPREE_HOUR - 1) * 3600.0)  # before the spree: quiet
    assert of_spree(store.rows.get("alerts", []), zone) == []
    # the next run comes two days later (the data of those days read at once)
    await proc.run((SPREE_HOUR + 48) * 3600.0)
    published = of_spree([m for _, m in kafka.on(TOPIC)], zone)
    assert published, "the spree inside the jump was never alerted"
    assert len({m["alert_id"] for m in published}) == 1
    assert published[0]["status"] == "open"
    assert published[-1]["status"] == "closed"
    versions = of_spree(store.rows["alert_events"], zone)  # stored as published, in order
    assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
    # opened in the hours of the spree, not two days later
    assert SPREE_HOUR * 3600.0 <= float(versions[0]["emitted_at"]) < (SPREE_HOUR + 6) * 3600.0
