"""Confirmed ClickHouse calls for the agents: bounded jittered retries, metrics, health.

Every write of a stage goes through `insert_confirmed`: it returns only once ClickHouse has
acknowledged the rows, retries failures (`RetryPolicy`) and raises `RetriesExhausted` after
the last one (the caller then crashes the worker so that the batch is replayed). Failures and
successes feed the readiness check (`streams.health.Health`) when one is attached.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from streams import metrics
from streams.health import Health
from streams.retry import RetryPolicy, retry_async
from streams.storage.base import Store

BlockingRunner = Callable[..., Awaitable[Any]]
_health: Health | None = None


def attach_health(health: Health | None) -> None:
    """Report ClickHouse reachability to this process's readiness check."""
    global _health
    _health = health


def _failed(table: str, _attempt: int, error: BaseException) -> None:
    metrics.observe_insert_retry(table)
    if _health is not None:
        _health.clickhouse_failed(error)


def _ok() -> None:
    if _health is not None:
        _health.clickhouse_ok()


async def insert_confirmed(
    store: Store,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    retry: RetryPolicy,
    run_blocking: BlockingRunner,
) -> None:
    if not rows:
        return
    started = time.perf_counter()
    await retry_async(
        partial(run_blocking, store.insert, table, rows),
        retry,
        what=f"insert into {table}",
        on_retry=partial(_failed, table),
    )
    _ok()
    metrics.observe_insert(table, len(rows), time.perf_counter() - started)


async def query_confirmed(
    store: Store,
    sql: str,
    params: Mapping[str, Any],
    *,
    table: str,
    retry: RetryPolicy,
    run_blocking: BlockingRunner,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await retry_async(
        partial(run_blocking, store.query, sql, params),
        retry,
        what=f"query on {table}",
        on_retry=partial(_failed, table),
    )
    _ok()
    return rows
