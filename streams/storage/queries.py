"""Read helpers over the tables of `streams.storage.schema`, shared by the CLI, console, tests.

All of them deduplicate (Kafka replays insert the same rows again): `FINAL` for tables whose
duplicates are identical, max-version selection for versioned tables (incidents, alerts).
Times in and out are UTC epoch seconds.
"""

from __future__ import annotations

from typing import Any

from streams.storage.base import Store, StoreError

# Report columns that `counts_by` may group by (identifiers are never parameters).
COUNTABLE_COLUMNS = (
    "category",
    "insee",
    "commune",
    "jurisdiction",
    "source_kind",
    "source_org",
    "precision",
)


def count_reports(store: Store, since_epoch: float | None = None) -> int:
    """Distinct accepted reports (optionally with occurred_at >= since_epoch)."""
    where, params = _since("occurred_at", since_epoch)
    rows = store.query(f"SELECT count() AS n FROM reports FINAL{where}", params)
    return int(rows[0]["n"])


def counts_by(store: Store, column: str, since_epoch: float | None = None) -> dict[str, int]:
    """Distinct reports per value of `column` (one of COUNTABLE_COLUMNS), most frequent first.

    A NULL value (e.g. a report without INSEE code) counts under "".
    """
    if column not in COUNTABLE_COLUMNS:
        raise StoreError(f"cannot count by {column!r} (one of {', '.join(COUNTABLE_COLUMNS)})")
    where, params = _since("occurred_at", since_epoch)
    rows = store.query(
        f"SELECT ifNull({column}, '') AS key, count() AS n FROM reports FINAL{where}"
        " GROUP BY key ORDER BY n DESC, key",
        params,
    )
    return {str(row["key"]): int(row["n"]) for row in rows}


def count_rejected_by_reason(store: Store, since_epoch: float | None = None) -> dict[str, int]:
    """Distinct rejected messages per reason code, most frequent first."""
    where, params = _since("rejected_at", since_epoch)
    rows = store.query(
        f"SELECT reason, count() AS n FROM rejected FINAL{where} GROUP BY reason"
        " ORDER BY n DESC, reason",
        params,
    )
    return {str(row["reason"]): int(row["n"]) for row in rows}


def count_incidents(store: Store, status: str | None = None) -> int:
    """Distinct incidents, optionally only those whose current status is `status`."""
    if status is None:
        rows = store.query("SELECT uniqExact(incident_id) AS n FROM incidents")
    else:
        rows = store.query(
            f"SELECT count() AS n FROM incidents FINAL WHERE {_LATEST_INCIDENT}"
            " AND status = %(status)s",
            {"status": status},
        )
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
    filters = {"status": status, "insee": insee, "category": category}
    return _current(
        store,
        table="incidents",
        key="incident_id",
        filters=filters,
        since=("last_occurred_at", since_epoch),
        order="last_occurred_at DESC, incident_id",
        limit=limit,
    )


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
    return _current(
        store,
        table="alerts",
        key="alert_id",
        filters={"status": status, "category": category},
        since=("emitted_at", since_epoch),
        order="emitted_at DESC, alert_id",
        limit=limit,
    )


def _current(
    store: Store,
    *,
    table: str,
    key: str,
    filters: dict[str, str | None],
    since: tuple[str, float | None],
    order: str,
    limit: int,
) -> list[dict[str, Any]]:
    conditions = [_latest(table, key)]
    params: dict[str, Any] = {"limit": int(limit)}
    for column, value in filters.items():
        if value is not None:
            conditions.append(f"{column} = %({column})s")
            params[column] = value
    since_column, since_epoch = since
    if since_epoch is not None:
        conditions.append(f"{since_column} >= toDateTime(%(since)s)")
        params["since"] = int(since_epoch)
    sql = (
        f"SELECT * FROM {table} FINAL WHERE {' AND '.join(conditions)}"
        f" ORDER BY {order} LIMIT %(limit)s"
    )
    return store.query(sql, params)


def _latest(table: str, key: str) -> str:
    """Condition keeping only the max-version rows of each id (FINAL then folds replays).

    Needed because ClickHouse 18.16 applies WHERE (moved to PREWHERE) BEFORE FINAL, and
    pushes it into a `(SELECT ... FINAL)` subquery too: `FROM incidents FINAL WHERE
    status = 'open'` returns the stale open version of a closed incident there. This form
    is correct whatever the order.
    """
    return f"({key}, version) IN (SELECT {key}, max(version) FROM {table} GROUP BY {key})"


_LATEST_INCIDENT = _latest("incidents", "incident_id")


def _since(column: str, since_epoch: float | None) -> tuple[str, dict[str, Any] | None]:
    if since_epoch is None:
        return "", None
    return f" WHERE {column} >= toDateTime(%(since)s)", {"since": int(since_epoch)}
