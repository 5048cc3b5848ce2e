"""Confirmed ClickHouse calls for the agents: jittered retries, metrics, health.

Every write of a stage goes through `insert_confirmed`: it returns only once ClickHouse has
acknowledged the rows. While ClickHouse is unreachable (`StoreUnavailable`) the call is
retried with capped backoff for up to `RetryPolicy.outage_seconds`: the stage holds its batch
(its offsets stay uncommitted and it takes no more input) and the worker turns not-ready
after `VIGIE_CLICKHOUSE_UNREADY_SECONDS`. Any other failure (bad SQL, schema mismatch) is
retried `max_retries` times. Either way `RetriesExhausted` is raised at the end, the caller
crashes the worker and the next run replays the batch from the last commit. Failures and
successes feed the readiness check (`agents.ports.health.Health`) that the caller passes in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from agents.ports import metrics
from agents.ports.blocking import BlockingRunner
from agents.ports.health import Health
from agents.ports.retry import RetriesExhausted, RetryPolicy, retry_async
from agents.ports.store import Store, StoreUnavailable

T = TypeVar("T")


def unavailable(exc: BaseException) -> bool:
    """ClickHouse unreachable for now (an outage to wait out, not a bad statement)."""
    return isinstance(exc, StoreUnavailable)


def _failed(table: str, health: Health | None, _attempt: int, error: BaseException) -> None:
    metrics.observe_insert_retry(table)
    if health is not None:
        health.clickhouse_failed(error)


def _ok(health: Health | None) -> None:
    if health is not None:
        health.clickhouse_ok()


async def _confirmed(
    call: Callable[[], Awaitable[T]],
    table: str,
    what: str,
    retry: RetryPolicy,
    health: Health | None,
) -> T:
    """`call` with bounded retries (outages waited out, see `retry_async`); the last failure
    is counted before it propagates (the caller then crashes the worker)."""
    try:
        result = await retry_async(
            call, retry, what=what, on_retry=partial(_failed, table, health),
            transient=unavailable,
        )
    except RetriesExhausted:
        metrics.observe_insert_failure(table)  # the last failure: the worker crashes
        raise
    _ok(health)
    return result


async def insert_confirmed(
    store: Store,
    table: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    retry: RetryPolicy,
    run_blocking: BlockingRunner,
    health: Health | None = None,
) -> None:
    if not rows:
        return
    started = time.perf_counter()
    await _confirmed(partial(run_blocking, store.insert, table, rows), table,
                     f"insert into {table}", retry, health)
    metrics.observe_insert(table, len(rows), time.perf_counter() - started)


async def query_confirmed(
    store: Store,
    sql: str,
    params: Mapping[str, Any],
    *,
    table: str,
    retry: RetryPolicy,
    run_blocking: BlockingRunner,
    health: Health | None = None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await _confirmed(
        partial(run_blocking, store.query, sql, params), table, f"query on {table}", retry,
        health)
    return rows


@dataclass(slots=True)
class TickClock:
    """A stage's store clock: when what it holds (rows taken or published, not yet
    written) is due to be written as one tick: `seconds` after the first of it was held,
    or once `rows` rows are held; `seconds` 0: at once. Both stages' clocks
    (`agents.ingest_loop`, `agents.faust_agents.StoreClock`)."""

    seconds: float
    rows: int
    since: float | None = None  # time.monotonic() when the first was held; None: nothing

    def hold(self) -> None:
        """Something was held (the clock starts at the first)."""
        if self.since is None:
            self.since = time.monotonic()

    def due(self, held_rows: int) -> bool:
        return self.since is not None and (
            time.monotonic() - self.since >= self.seconds or held_rows >= self.rows)

    def deadline(self) -> float | None:
        """time.monotonic() at which the held tick is due by the clock (None: nothing)."""
        return None if self.since is None else self.since + self.seconds

    def cut(self) -> None:
        """What was held is handed to the writer: the clock stops."""
        self.since = None
