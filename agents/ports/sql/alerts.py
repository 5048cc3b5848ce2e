"""Queries on `alerts` (current state: every version of every alert; the highest version of an
id is its current state)."""

from __future__ import annotations

from typing import Any

from agents.ports.sql.query import Query, current_versions, latest, select_final
from agents.ports.sql.scope import Scope

TABLE = "alerts"

# The alert columns the console shows (not the detector's name).
COLUMNS = (
    "alert_id",
    "version",
    "status",
    "kind",
    "category",
    "center_lat",
    "center_lon",
    "radius_m",
    "cells",
    "insee",
    "window_start",
    "window_end",
    "observed",
    "expected",
    "score",
    "severity",
    "emitted_at",
)
_COLUMNS = ", ".join(COLUMNS)

# Columns that `current` may filter on (each equal to its parameter of the same name).
FILTERS = ("status", "category")

# The latest version of alert `id`, if emitted after `floor`.
GET = Query(
    "alerts.GET",
    f"SELECT {_COLUMNS} FROM alerts WHERE alert_id = %(id)s"
    " AND emitted_at >= toDateTime(%(floor)s) ORDER BY version DESC LIMIT 1",
    COLUMNS,
    TABLE,
)

# The highest version (`v`) of each alert emitted since `since`, at most `limit`.
RECENT_VERSIONS = Query(
    "alerts.RECENT_VERSIONS",
    "SELECT alert_id, max(version) AS v FROM alerts WHERE emitted_at >= toDateTime(%(since)s)"
    " GROUP BY alert_id ORDER BY alert_id LIMIT %(limit)s",
    ("alert_id", "v"),
    TABLE,
)

# The current version of the alerts `ids` (a tuple) emitted since `since`, at most `limit`.
BY_IDS = Query(
    "alerts.BY_IDS",
    f"SELECT {_COLUMNS} FROM alerts FINAL WHERE"
    " (alert_id, version) IN (SELECT alert_id, max(version) FROM alerts"
    "  WHERE alert_id IN %(ids)s AND emitted_at >= toDateTime(%(since)s) GROUP BY alert_id)"
    " ORDER BY emitted_at DESC, alert_id LIMIT %(limit)s",
    COLUMNS,
    TABLE,
)


def current(filters: tuple[str, ...], since: bool) -> Query:
    """The current version of each alert, most recently emitted first: `filters` (of FILTERS,
    each equal to its parameter), emitted_at >= `since` when `since`; parameter `limit`."""
    unknown = [f for f in filters if f not in FILTERS]
    if unknown:
        raise ValueError(f"cannot filter alerts by {unknown} (only by {', '.join(FILTERS)})")
    return current_versions(
        "alerts.current",
        table=TABLE,
        key="alert_id",
        filters=filters,
        since_column="emitted_at" if since else None,
        order="emitted_at DESC, alert_id",
    )


def _in_window(scope: Scope, status: str, bound: dict[str, Any]) -> list[str]:
    """Current versions of the alerts emitted in [`since`, `until`) within `scope`; `status`
    "open" (not closed), "closed", else any."""
    conditions = [
        "(alert_id, version) IN (SELECT alert_id, max(version) FROM alerts"
        " WHERE emitted_at >= toDateTime(%(since)s) AND emitted_at < toDateTime(%(until)s)"
        " GROUP BY alert_id)",
        *scope.conditions(TABLE, bound),
    ]
    if status == "open":
        conditions.append("status != 'closed'")
    elif status == "closed":
        conditions.append("status = 'closed'")
    return conditions


def count_in_window(scope: Scope, status: str) -> Query:
    """Alerts emitted in [`since`, `until`) within `scope`, of `status` (see `_in_window`)."""
    bound: dict[str, Any] = {}
    conditions = _in_window(scope, status, bound)
    return select_final("alerts.count_in_window", TABLE, ("n",), conditions, bound,
                        " LIMIT 1", select="count() AS n")


def list_in_window(scope: Scope, status: str) -> Query:
    """A page (`offset`, `limit`) of the alerts of `count_in_window`, last emitted first."""
    bound: dict[str, Any] = {}
    conditions = _in_window(scope, status, bound)
    return select_final("alerts.list_in_window", TABLE, COLUMNS, conditions, bound,
                        " ORDER BY emitted_at DESC, alert_id LIMIT %(offset)s, %(limit)s")

# The detector's alert state after a (re)start: the current version of every alert still open
# and of every alert closed since `since` (its cooldown), by id. `latest` first: ClickHouse
# 18.16 filters before FINAL (see `query.latest`).
DETECTOR_STATE = Query(
    "alerts.DETECTOR_STATE",
    f"SELECT {_COLUMNS}, detector FROM alerts FINAL WHERE {latest(TABLE, 'alert_id')}"
    " AND (status != 'closed' OR emitted_at >= toDateTime(%(since)s)) ORDER BY alert_id",
    (*COLUMNS, "detector"),
    TABLE,
)
