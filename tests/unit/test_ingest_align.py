"""agents.ingest_align: records of several input partitions go on in event-time order, a
partition ahead waits (paused) while one behind still has data pending, and a caught-up,
idle or stalled partition never holds the others back."""

from __future__ import annotations

import orjson
import pytest

from agents.ingest_align import EventTimeAligner, event_time

A, B, C = ("in", 0), ("in", 1), ("in", 2)
HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fill(
    aligner: EventTimeAligner[str], partition: tuple[str, int], times: list[float], name: str
) -> None:
    for i, t in enumerate(times):
        aligner.add(partition, t, f"{name}{i}")


def test_a_backlog_read_partition_by_partition_goes_on_in_event_time_order() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(0.0)
    aligner.assign([A, B])
    # A's whole backlog came in one fetch; B was fetched once and has more pending
    fill(aligner, A, [0.0, HOUR, 2 * HOUR, 3 * HOUR], "a")
    fill(aligner, B, [0.5 * HOUR], "b")
    aligner.set_lag(A, 0)
    aligner.set_lag(B, 10)
    assert aligner.release(100) == ["a0", "b0"]  # a1 is past B's clock: it waits
    assert aligner.wanted() == {B}  # B is fetched, A paused
    fill(aligner, B, [1.5 * HOUR, 2.5 * HOUR], "B")
    aligner.set_lag(B, 0)  # B caught up: it holds nothing back any more
    assert aligner.release(100) == ["a1", "B0", "a2", "B1", "a3"]
    assert aligner.held == 0 and aligner.wanted() == {A, B}


def test_the_skew_bounds_how_far_ahead_a_partition_goes() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(HOUR)
    fill(aligner, A, [0.0, 0.5 * HOUR, HOUR, 1.5 * HOUR, 2 * HOUR], "a")
    aligner.set_lag(A, 0)
    aligner.set_lag(B, 5)  # B pending, nothing read yet: its clock is unknown
    assert aligner.release(100) == []  # -inf: B is fetched first
    assert aligner.wanted() == {B}
    fill(aligner, B, [0.0], "b")
    assert aligner.release(100) == ["a0", "b0", "a1", "a2"]  # within 1 h of B's 0
    assert aligner.wanted() == {B}


def test_a_caught_up_partition_never_holds_the_others_back() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(0.0)
    aligner.assign([A, B, C])
    fill(aligner, A, [0.0, 10 * HOUR], "a")
    aligner.set_lag(A, 0)
    aligner.set_lag(B, 0)  # an empty partition
    aligner.set_lag(C, 0)
    assert aligner.release(100) == ["a0", "a1"]


def test_a_stalled_partition_stops_holding_the_others_back() -> None:
    clock = Clock()
    aligner: EventTimeAligner[str] = EventTimeAligner(0.0, stall_s=10.0, clock=clock)
    fill(aligner, A, [0.0, HOUR], "a")
    aligner.set_lag(A, 0)
    aligner.set_lag(B, None)  # assigned, never fetched
    assert aligner.release(100) == [] and aligner.wanted() == {B}
    clock.now = 5.0
    assert aligner.release(100) == []
    clock.now = 11.0  # wanted for 11 s and brought nothing
    assert aligner.release(100) == ["a0", "a1"]
    aligner.add(B, 0.0, "b0")  # it answers again: it counts again
    assert aligner.release(100) == ["b0"]


def test_waiting_restarts_after_the_caller_paused_everything() -> None:
    clock = Clock()
    aligner: EventTimeAligner[str] = EventTimeAligner(0.0, stall_s=10.0, clock=clock)
    fill(aligner, A, [HOUR], "a")
    aligner.set_lag(A, 0)
    aligner.set_lag(B, 3)
    aligner.add(B, 0.0, "b0")
    assert aligner.release(100) == ["b0"] and aligner.wanted() == {B}
    clock.now = 60.0  # a held batch: nothing was fetched meanwhile
    aligner.restart_waits()
    assert aligner.release(100) == [] and aligner.wanted() == {B}


def test_a_late_upload_goes_on_with_its_neighbours_and_a_bogus_time_moves_nothing() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(0.0)
    # A: in time, then a report two days late, then one stamped far in the future
    fill(aligner, A, [10 * HOUR, -38 * HOUR, 4_000_000_000.0, 11 * HOUR], "a")
    fill(aligner, B, [9 * HOUR, 10.5 * HOUR, 12 * HOUR], "b")
    aligner.set_lag(A, 0)
    aligner.set_lag(B, 0)
    assert aligner.release(100) == ["b0", "a0", "a1", "a2", "b1", "a3", "b2"]


def test_the_limit_and_a_revoked_partition() -> None:
    aligner: EventTimeAligner[str] = EventTimeAligner(0.0)
    fill(aligner, A, [0.0, 1.0, 2.0], "a")
    fill(aligner, B, [0.5, 1.5], "b")
    aligner.set_lag(A, 0)
    aligner.set_lag(B, 0)
    assert aligner.release(2) == ["a0", "b0"]
    aligner.revoke([B])  # its next owner reads it again
    assert aligner.release(10) == ["a1", "a2"]


def test_event_time_is_reported_at_else_the_message_time() -> None:
    value = orjson.dumps({"reported_at": "2024-03-18T00:11:56+01:00"})
    assert event_time(value, 5.0) == 1_710_717_116.0
    assert event_time(orjson.dumps({"reported_at": "yesterday"}), 5.0) == 5.0
    assert event_time(b"\xff not json", 5.0) == 5.0
    assert event_time(orjson.dumps([1, 2]), 5.0) == 5.0


def test_a_negative_skew_is_refused() -> None:
    with pytest.raises(ValueError):
        EventTimeAligner(-1.0)
