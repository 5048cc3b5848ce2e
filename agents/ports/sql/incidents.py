"""Queries on `incidents` (every version of every incident; the highest version of an id is its
current state)."""

from __future__ import annotations

from typing import Any

from agents.ports.sql.query import Query, current_versions, latest, select_final, where
from agents.ports.sql.scope import Scope

TABLE = "incidents"

# The incident columns the console shows (neither report ids nor cells).
COLUMNS = (
    "incident_id",
    "version",
    "status",
    "category",
    "categories",
    "report_count",
    "source_kinds",
    "first_occurred_at",
    "last_occurred_at",
    "lat",
    "lon",
    "insee",
    "commune",
    "jurisdiction",
    "h3",
    "precision",
    "confidence",
    "updated_at",
)
_COLUMNS = ", ".join(COLUMNS)

# Columns that `current` may filter on (each equal to its parameter of the same name).
FILTERS = ("status", "insee", "category")

_LATEST = latest(TABLE, "incident_id")

# Distinct incidents, whatever their status.
COUNT_DISTINCT = Query(
    "incidents.COUNT_DISTINCT", "SELECT uniqExact(incident_id) AS n FROM incidents", ("n",), TABLE
)

# Distinct incidents whose current status is `status`.
COUNT_WITH_STATUS = Query(
    "incidents.COUNT_WITH_STATUS",
    f"SELECT count() AS n FROM incidents FINAL WHERE {_LATEST} AND status = %(status)s",
    ("n",),
    TABLE,
)

# Reports merged into incidents (sum over the current versions).
SUM_REPORT_COUNT = Query(
    "incidents.SUM_REPORT_COUNT",
    "SELECT sum(report_count) AS n FROM incidents FINAL",
    ("n",),
    TABLE,
)

# (n, lo, hi): number of incident versions and the first/last first-seen times (epoch s):
# the span of the live detector's counts.
LIVE_SPAN = Query(
    "incidents.LIVE_SPAN",
    """
SELECT count() AS n, toUInt32(min(first_seen_at)) AS lo, toUInt32(max(first_seen_at)) AS hi
FROM incidents
""",
    ("n", "lo", "hi"),
    TABLE,
)

# The latest version of incident `id` with its reports' identities (ids, source kinds and
# orgs, same order; no sources in versions stored before they were), if it occurred after
# `floor`.
GET = Query(
    "incidents.GET",
    f"SELECT {_COLUMNS}, report_ids, report_source_kinds, report_source_orgs FROM incidents"
    " WHERE incident_id = %(id)s AND last_occurred_at >= toDateTime(%(floor)s)"
    " ORDER BY version DESC LIMIT 1",
    (*COLUMNS, "report_ids", "report_source_kinds", "report_source_orgs"),
    TABLE,
)


def current(filters: tuple[str, ...], since: bool) -> Query:
    """The current version of each incident, most recent first: `filters` (of FILTERS, each
    equal to its parameter), last_occurred_at >= `since` when `since`; parameter `limit`."""
    unknown = [f for f in filters if f not in FILTERS]
    if unknown:
        raise ValueError(f"cannot filter incidents by {unknown} (only by {', '.join(FILTERS)})")
    return current_versions(
        "incidents.current",
        table=TABLE,
        key="incident_id",
        filters=filters,
        since_column="last_occurred_at" if since else None,
        order="last_occurred_at DESC, incident_id",
    )


def _in_window(scope: Scope, status: str, bound: dict[str, Any]) -> list[str]:
    """Current versions of the incidents active in [`since`, `until`) within `scope`, of
    `status` ("all": any)."""
    # last_occurred_at never decreases with version: the max version of an incident active
    # in the window is the max version among its rows in the window.
    conditions = [
        "(incident_id, version) IN (SELECT incident_id, max(version) FROM incidents"
        " WHERE last_occurred_at >= toDateTime(%(since)s)"
        " AND last_occurred_at < toDateTime(%(until)s) GROUP BY incident_id)",
        *scope.conditions(TABLE, bound),
    ]
    if status != "all":
        conditions.append("status = %(status)s")
        bound["status"] = status
    return conditions


def count_in_window(scope: Scope, status: str) -> Query:
    """Incidents active in [`since`, `until`) within `scope`, of `status` ("all": any)."""
    bound: dict[str, Any] = {}
    conditions = _in_window(scope, status, bound)
    return select_final("incidents.count_in_window", TABLE, ("n",), conditions, bound,
                        " LIMIT 1", select="count() AS n")


def list_in_window(scope: Scope, status: str) -> Query:
    """A page (`offset`, `limit`) of the incidents of `count_in_window`, last occurred first."""
    bound: dict[str, Any] = {}
    conditions = _in_window(scope, status, bound)
    return select_final("incidents.list_in_window", TABLE, COLUMNS, conditions, bound,
                        " ORDER BY last_occurred_at DESC, incident_id LIMIT %(offset)s, %(limit)s")


def map_in_window(scope: Scope, status: str) -> Query:
    """The map points (at most `limit`) of the incidents of `count_in_window`."""
    bound: dict[str, Any] = {}
    conditions = _in_window(scope, status, bound)
    return Query(
        "incidents.map_in_window",
        "SELECT incident_id, status, category, report_count, lat, lon, commune, confidence,"
        f" last_occurred_at FROM incidents FINAL{where(conditions)}"
        " ORDER BY last_occurred_at DESC, incident_id LIMIT %(limit)s",
        (
            "incident_id",
            "status",
            "category",
            "report_count",
            "lat",
            "lon",
            "commune",
            "confidence",
            "last_occurred_at",
        ),
        TABLE,
        bound,
    )
