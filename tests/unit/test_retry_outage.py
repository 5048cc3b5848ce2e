"""agents.ports.retry and agents.sink during a dependency outage: a call that fails because
ClickHouse is unreachable (`StoreUnavailable`) is retried past `max_retries`, for as long as
`outage_seconds` allows, with the readiness and `vigie_dependency_up` inputs following it; a
call that fails for another reason (bad statement) still gives up after `max_retries`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from agents.ports.health import Health
from agents.ports.retry import RetriesExhausted, RetryPolicy, retry_async
from agents.ports.store import StoreError, StoreUnavailable
from agents.sink import insert_confirmed
from tests.agents.fakes import FakeStore, run_inline
from tests.conftest import MetricsSince


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class DownStore(FakeStore):
    """Unreachable for its first `down_for` insert attempts, then fine; each attempt moves
    `clock` on by `step` seconds."""

    def __init__(self, down_for: int, clock: Clock, step: float,
                 error: type[StoreError] = StoreUnavailable) -> None:
        super().__init__()
        self.down_for = down_for
        self.clock = clock
        self.step = step
        self.error = error

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.insert_attempts += 1
        self.clock.now += self.step
        if self.insert_attempts <= self.down_for:
            raise self.error(f"insert into {table} failed: Connection refused (test)")
        self.rows.setdefault(table, []).extend(dict(r) for r in rows)


async def test_an_outage_is_waited_out_past_max_retries(metrics: MetricsSince) -> None:
    clock = Clock()
    store = DownStore(down_for=12, clock=clock, step=5.0)
    health = Health(clickhouse_unready_seconds=30.0, clock=clock)
    health.mark_started()
    seen: list[tuple[bool, bool]] = []  # (ready, clickhouse up) after each failure

    policy = RetryPolicy(max_retries=2, base_seconds=0.0, outage_seconds=3600.0)
    original = store.insert

    def insert(table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        health.tick()  # the event loop is fine: only ClickHouse is down
        if store.insert_attempts:
            seen.append((health.is_ready(), health.dependency_up("clickhouse")))
        original(table, rows)

    store.insert = insert  # type: ignore[method-assign]
    await insert_confirmed(store, "reports", [{"a": 1}], retry=policy, run_blocking=run_inline,
                           health=health)
    assert store.insert_attempts == 13 and store.rows["reports"] == [{"a": 1}]
    # ClickHouse down from the first failure (t = 105 s); not ready once that is > 30 s old
    assert all(not up for _ready, up in seen)
    assert [ready for ready, _up in seen] == [True] * 7 + [False] * 5  # at t = 110 ... 165 s
    assert health.is_ready() and health.dependency_up("clickhouse")
    assert metrics.sample("vigie_clickhouse_insert_retries_total", table="reports") == 12
    assert metrics.sample("vigie_clickhouse_insert_rows_total", table="reports") == 1


async def test_an_outage_past_its_ceiling_gives_up() -> None:
    clock = Clock()
    store = DownStore(down_for=1000, clock=clock, step=10.0)
    policy = RetryPolicy(max_retries=2, base_seconds=0.0, outage_seconds=60.0)
    with pytest.raises(RetriesExhausted, match="unreachable after"):
        await retry_async(lambda: run_inline(store.insert, "reports", [{"a": 1}]), policy,
                          what="insert", transient=lambda e: isinstance(e, StoreUnavailable),
                          clock=clock)
    assert store.insert_attempts == 7  # failures at 110 ... 170 s: the last one is 60 s in


async def test_a_failure_that_is_no_outage_gives_up_after_max_retries() -> None:
    clock = Clock()
    store = DownStore(down_for=1000, clock=clock, step=1.0, error=StoreError)
    with pytest.raises(RetriesExhausted, match="failed after 3 attempts"):
        await insert_confirmed(
            store, "reports", [{"a": 1}], run_blocking=run_inline,
            retry=RetryPolicy(max_retries=2, base_seconds=0.0, outage_seconds=3600.0))
    assert store.insert_attempts == 3


async def test_without_an_outage_allowance_an_outage_is_like_any_failure() -> None:
    store = DownStore(down_for=1000, clock=Clock(), step=1.0)
    with pytest.raises(RetriesExhausted):
        await insert_confirmed(store, "reports", [{"a": 1}], run_blocking=run_inline,
                               retry=RetryPolicy(max_retries=2, base_seconds=0.0))
    assert store.insert_attempts == 3


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(base_seconds=0.5, max_seconds=15.0)
    assert max(policy.delay(attempt) for attempt in range(2000)) <= 15.0
