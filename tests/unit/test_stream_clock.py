"""agents.core.clock.StreamClock: follows a stream in time order exactly, ignores lone
outliers, leaps only when enough records agree."""

from __future__ import annotations

import math

import pytest

from agents.core.clock import StreamClock

T0 = 1_710_000_000.0
Y2100 = 4_102_444_800.0  # 2100-01-01T00:00:00Z
HOUR = 3600.0


def test_follows_a_stream_in_time_order_as_the_greatest_time() -> None:
    clock = StreamClock()
    times = [T0 + 60.0 * i for i in range(100)] + [T0 + 99 * 60.0 + 5 * HOUR]  # a quiet 5 h
    for t in times:
        assert clock.observe(t) == t
    assert clock.observe(T0) == times[-1]  # a late record never moves it back


def test_a_lone_far_future_time_does_not_move_it() -> None:
    clock = StreamClock()
    for i in range(10):
        clock.observe(T0 + 60.0 * i)
    assert clock.observe(Y2100) == T0 + 540.0
    for i in range(10, 200):  # the outlier is forgotten: later records step as usual
        assert clock.observe(T0 + 60.0 * i) == T0 + 60.0 * i


def test_two_outliers_among_fifty_records_are_not_a_quorum() -> None:
    clock = StreamClock()
    clock.observe(T0)
    for i in range(1, 200):
        t = Y2100 + i if i % 25 == 0 else T0 + 60.0 * i  # one every 25 records
        clock.observe(t)
    assert clock.now == T0 + 60.0 * 199


def test_a_long_quiet_spell_leaps_once_three_records_agree() -> None:
    clock = StreamClock()
    clock.observe(T0)
    after = [T0 + 2 * 86400.0 + 60.0 * i for i in range(4)]
    assert clock.observe(after[0]) == T0
    assert clock.observe(after[1]) == T0
    # the third agreeing record: the clock goes to the time all three have reached
    assert clock.observe(after[2]) == after[0]
    assert clock.observe(after[3]) == after[3]


def test_start_quorum_ignores_an_outlier_at_the_very_start() -> None:
    clock = StreamClock(start_quorum=True)
    assert clock.observe(Y2100) == -math.inf
    assert clock.observe(T0) == -math.inf
    assert clock.observe(T0 + 60.0) == T0  # the smallest of the first three
    assert clock.observe(T0 + 120.0) == T0 + 120.0
    without = StreamClock()  # the engine's: starts on its first record
    assert without.observe(T0) == T0


def test_follow_is_trusted_and_never_goes_back() -> None:
    clock = StreamClock()
    clock.observe(T0)
    clock.follow(T0 + 30 * 86400.0)
    assert clock.now == T0 + 30 * 86400.0
    clock.follow(T0)
    assert clock.now == T0 + 30 * 86400.0


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        StreamClock(quorum=0)
    with pytest.raises(ValueError):
        StreamClock(quorum=5, window=4)
