"""agents.ports.health with an injected clock: liveness, readiness and their JSON bodies."""

from __future__ import annotations

import json

import pytest

from agents.ports.health import Health


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: FakeClock, **kw: object) -> Health:
    return Health(clickhouse_unready_seconds=30.0, liveness_timeout_seconds=10.0, clock=clock, **kw)  # type: ignore[arg-type]


def test_not_ready_until_started_then_ready() -> None:
    clock = FakeClock()
    health = make(clock)
    code, body = health.readiness()
    assert (code, body["status"], body["reasons"]) == (503, "unavailable", ["starting"])
    health.mark_started()
    code, body = health.readiness()
    assert (code, body["status"], body["reasons"]) == (200, "ok", [])
    json.dumps(body)  # serialisable as is


def test_liveness_follows_the_heartbeat() -> None:
    clock = FakeClock()
    health = make(clock)
    health.mark_started()
    clock.now += 10.0
    assert health.liveness()[0] == 200
    clock.now += 0.5
    code, body = health.liveness()
    assert code == 503 and body["status"] == "fail"
    assert body["last_tick_seconds_ago"] == 10.5
    assert health.readiness()[1]["reasons"] == ["event_loop_stalled"]
    health.tick()
    assert health.liveness() == (200, {"status": "ok", "last_tick_seconds_ago": 0.0})
    assert health.is_ready()


def test_table_recovery_makes_unready_but_stays_alive() -> None:
    clock = FakeClock()
    health = make(clock)
    health.mark_started()
    health.set_recovering(True)
    code, body = health.readiness()
    assert code == 503 and body["reasons"] == ["recovering_tables"]
    assert body["checks"]["recovering_tables"] is True
    assert health.liveness()[0] == 200
    health.set_recovering(False)
    assert health.readiness()[0] == 200


def test_recovery_probe_is_asked_at_each_check() -> None:
    clock = FakeClock()
    state = {"recovering": True}
    health = make(clock, recovery_probe=lambda: state["recovering"])
    health.mark_started()
    assert not health.is_ready()
    state["recovering"] = False
    assert health.is_ready()


def test_clickhouse_outage_unready_only_after_threshold() -> None:
    clock = FakeClock()
    health = make(clock)
    health.mark_started()
    health.clickhouse_failed(ConnectionRefusedError("secret detail host:9000"))
    clock.now += 20.0
    health.tick()
    health.clickhouse_failed("timeout")  # later failures keep the outage start
    clock.now += 10.0
    health.tick()
    code, body = health.readiness()
    assert code == 200 and body["checks"]["clickhouse_down_seconds"] == 30.0
    clock.now += 0.1
    health.tick()
    code, body = health.readiness()
    assert code == 503 and body["reasons"] == ["clickhouse_unreachable"]
    assert body["checks"]["clickhouse_error"] == "timeout"
    health.clickhouse_ok()
    code, body = health.readiness()
    assert code == 200 and body["checks"]["clickhouse_down_seconds"] == 0.0
    assert body["checks"]["clickhouse_error"] is None


def test_exception_messages_are_not_exposed() -> None:
    clock = FakeClock()
    health = make(clock)
    health.clickhouse_failed(ValueError("contact=jean@example.org"))
    body = health.readiness()[1]
    assert body["checks"]["clickhouse_error"] == "ValueError"
    assert "jean" not in json.dumps(body)


def test_stopping_and_several_reasons() -> None:
    clock = FakeClock()
    health = make(clock)
    health.mark_started()
    health.set_recovering(True)
    health.mark_stopping()
    code, body = health.readiness()
    assert code == 503 and body["reasons"] == ["stopping", "recovering_tables"]


def test_a_dependency_needed_at_start_makes_unready_at_once() -> None:
    clock = FakeClock()
    health = make(clock, confirm_at_start=("clickhouse",))
    health.mark_started()
    assert health.is_ready()  # not tried yet: nothing known against it
    health.clickhouse_failed(ConnectionRefusedError("refused"))  # down when the worker starts
    code, body = health.readiness()
    assert code == 503 and body["reasons"] == ["clickhouse_unreachable"]
    assert not health.dependency_up("clickhouse") and health.dependency_up("kafka")
    health.clickhouse_ok()
    assert health.is_ready() and health.dependency_up("clickhouse")
    health.clickhouse_failed("StoreUnavailable")  # later outages get the grace period
    clock.now += 30.0
    health.tick()
    assert health.is_ready()
    clock.now += 0.5
    health.tick()
    assert health.readiness()[1]["reasons"] == ["clickhouse_unreachable"]


def test_kafka_outage_is_named_and_stays_alive() -> None:
    clock = FakeClock()
    health = make(clock)
    health.mark_started()
    health.dependency_failed("kafka", TimeoutError("no broker"))
    clock.now += 31.0
    health.tick()
    code, body = health.readiness()
    assert code == 503 and body["reasons"] == ["kafka_unreachable"]
    assert body["checks"]["kafka_down_seconds"] == 31.0
    assert body["checks"]["kafka_error"] == "TimeoutError"
    assert health.liveness()[0] == 200
    health.dependency_ok("kafka")
    assert health.is_ready() and health.dependency_up("kafka")


def test_unknown_dependency_is_refused() -> None:
    health = make(FakeClock())
    with pytest.raises(ValueError, match="unknown dependency"):
        health.dependency_failed("redis")
