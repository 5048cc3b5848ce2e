"""agents.sink: every failed ClickHouse call is counted, the last one (which crashes the
worker) too, as `vigie_clickhouse_insert_failures_total` promises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from agents.ports.retry import RetriesExhausted, RetryPolicy
from agents.sink import insert_confirmed, query_confirmed
from tests.agents.fakes import FakeStore, run_inline
from tests.conftest import MetricsSince

NO_WAIT = RetryPolicy(max_retries=2, base_seconds=0.0)


class FailingStore(FakeStore):
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        raise ConnectionError("refused (test)")


async def test_an_exhausted_insert_counts_every_failure(metrics: MetricsSince) -> None:
    store = FakeStore()
    store.fail_inserts = True
    with pytest.raises(RetriesExhausted):
        await insert_confirmed(store, "reports", [{"a": 1}], retry=NO_WAIT,
                               run_blocking=run_inline)
    assert store.insert_attempts == 3
    assert metrics.sample("vigie_clickhouse_insert_failures_total", table="reports") == 3
    assert metrics.sample("vigie_clickhouse_insert_retries_total", table="reports") == 2
    assert metrics.sample("vigie_clickhouse_insert_batches_total", table="reports") == 0


async def test_an_exhausted_query_counts_every_failure(metrics: MetricsSince) -> None:
    with pytest.raises(RetriesExhausted):
        await query_confirmed(FailingStore(), "SELECT 1", {}, table="reports", retry=NO_WAIT,
                              run_blocking=run_inline)
    assert metrics.sample("vigie_clickhouse_insert_failures_total", table="reports") == 3
    assert metrics.sample("vigie_clickhouse_insert_retries_total", table="reports") == 2


async def test_a_retried_success_counts_the_failure_only(metrics: MetricsSince) -> None:
    store = FakeStore()
    store.fail_inserts = True
    real_insert = store.insert

    def fail_once(table: str, rows: Any) -> None:
        store.fail_inserts = store.insert_attempts == 0
        real_insert(table, rows)

    store.insert = fail_once  # type: ignore[method-assign]
    await insert_confirmed(store, "reports", [{"a": 1}], retry=NO_WAIT, run_blocking=run_inline)
    assert metrics.sample("vigie_clickhouse_insert_failures_total", table="reports") == 1
    assert metrics.sample("vigie_clickhouse_insert_rows_total", table="reports") == 1
