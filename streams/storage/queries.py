"""Read helpers over the tables of `agents.ports.sql.schema`, shared by the CLI, console, tests.

All of them deduplicate (Kafka replays insert the same rows again): `FINAL` for tables whose
duplicates are identical, max-version selection for versioned tables (incidents, alerts).
Times in and out are UTC epoch seconds. The SQL is in `agents.ports.sql`.
"""

from __future__ import annotations

from typing import Any

from agents.ports.sql import alerts, incidents, rejected, reports
from agents.ports.sql.query import Query
from agents.ports.store import Store, StoreError

# Report columns that `counts_by` may group by (identifiers are never parameters).
COUNTABLE_COLUMNS = reports.COUNTABLE_COLUMNS


def count_reports(store: Store, since_epoch: float | None = None) -> int:
    """Distinct accepted reports (optionally with occurred_at >= since_epoch)."""
    query = reports.count(since=since_epoch is not None)
    rows = store.query(query.sql, _since(query, since_epoch))
    return int(rows[0]["n"])


def counts_by(store: Store, column: str, since_epoch: float | None = None) -> dict[str, int]:
    """Distinct reports per value of `column` (one of COUNTABLE_COLUMNS), most frequent first.

    A NULL value (e.g. a report without INSEE code) counts under "".
    """
    if column not in COUNTABLE_COLUMNS:
        raise StoreError(f"cannot count by {column!r} (one of {', '.join(COUNTABLE_COLUMNS)})")
    query = reports.counts_by(column, since=since_epoch is not None)
    rows = store.query(query.sql, _since(query, since_epoch))
    return {str(row["key"]): int(row["n"]) for row in rows}


def count_rejected_by_reason(store: Store, since_epoch: float | None = None) -> dict[str, int]:
    """Distinct rejected messages per reason code, most frequent first."""
    query = rejected.by_reason(since=since_epoch is not None)
    rows = store.query(query.sql, _since(query, since_epoch))
    return {str(row["reason"]): int(row["n"]) for row in rows}


def count_incidents(store: Store, status: str | None = None) -> int:
    """Distinct incidents, optionally only those whose current status is `status`."""
    if status is None:
        rows = store.query(incidents.COUNT_DISTINCT.sql)
    else:
        query = incidents.COUNT_WITH_STATUS
        rows = store.query(query.sql, query.bind(status=status))
    return int(rows[0]["n"])


def current_incidents(
    store: Store,
    *,
    status: str | None = "open",
    since_epoch: float | None = None,
    insee: str | None = None,
    category: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The current (highest) version of each incident, filtered, most recent first.

    `since_epoch` keeps incidents whose last_occurred_at >= it; `status=None` keeps all.
    """
    filters = _given({"status": status, "insee": insee, "category": category})
    query = incidents.current(tuple(filters), since=since_epoch is not None)
    return _current(store, query, filters, since_epoch, limit)


def current_alerts(
    store: Store,
    *,
    status: str | None = None,
    since_epoch: float | None = None,
    category: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The current (highest) version of each alert, most recently emitted first.

    `status` is `open`, `update` or `closed` (None: all); `since_epoch` filters emitted_at.
    """
    filters = _given({"status": status, "category": category})
    query = alerts.current(tuple(filters), since=since_epoch is not None)
    return _current(store, query, filters, since_epoch, limit)


def _given(filters: dict[str, str | None]) -> dict[str, str]:
    return {column: value for column, value in filters.items() if value is not None}


def _current(
    store: Store,
    query: Query,
    filters: dict[str, str],
    since_epoch: float | None,
    limit: int,
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": int(limit), **filters}
    if since_epoch is not None:
        params["since"] = int(since_epoch)
    return store.query(query.sql, query.bind(**params))


def _since(query: Query, since_epoch: float | None) -> dict[str, Any] | None:
    return None if since_epoch is None else query.bind(since=int(since_epoch))
