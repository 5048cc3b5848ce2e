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


async def test_a_restarted_detector_catches_up_from_the_stored_run_time() -> None:
    """A SIGKILL, then the data of two days read at once by the new process: it runs the
    hours since the killed process's last stored run, not only its first clock reading."""
    counts, index, zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    killed = processor(counts, index, store, kafka)
    await killed.run((SPREE_HOUR - 1) * 3600.0)
    assert [r["run_at"] for r in store.rows["detector_runs"]] == [(SPREE_HOUR - 1) * 3600]
    await killed.run((SPREE_HOUR - 1) * 3600.0 + 600)  # the same hour: not written again
    assert len(store.rows["detector_runs"]) == 1
    restarted = processor(counts, index, store, kafka)
    await restarted.run((SPREE_HOUR + 48) * 3600.0)
    versions = of_spree(store.rows.get("alert_events", []), zone)
    assert versions, "the spree during the restart was never alerted"
    assert SPREE_HOUR * 3600.0 <= float(versions[0]["emitted_at"]) < (SPREE_HOUR + 6) * 3600.0
    assert versions[-1]["status"] == "closed"
    assert max(r["run_at"] for r in store.rows["detector_runs"]) == (SPREE_HOUR + 48) * 3600


async def test_catch_up_never_runs_before_the_restored_alerts() -> None:
    """A run time that was not stored (its write failed): the restarted detector scans
    again hours its restored alert state has seen, and the spree's alert goes on under its
    id (the lifecycle matches it to the open alert) instead of opening a second one."""
    counts, index, zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    first = processor(counts, index, store, kafka)
    await first.run((SPREE_HOUR - 1) * 3600.0)
    now = (SPREE_HOUR - 1) * 3600.0
    while not of_spree(store.rows.get("alerts", []), zone):
        now += 300.0
        await first.run(now)
    store.rows["detector_runs"].clear()  # as if every later run time had failed to store
    store.rows["detector_runs"].append({"detector": "poisson_scan",
                                        "run_at": (SPREE_HOUR - 1) * 3600})
    restarted = processor(counts, index, store, kafka)
    await restarted.run(now + 4 * 3600.0)
    versions = of_spree(store.rows["alert_events"], zone)
    assert len({r["alert_id"] for r in versions}) == 1  # no second id for the spree
    assert [r["version"] for r in versions] == list(range(1, len(versions) + 1))
