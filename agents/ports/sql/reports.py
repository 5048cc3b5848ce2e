"""Queries on `reports` (one row per accepted report, keyed by its identity (source_kind,
source_org, report_id); duplicates identical: read with FINAL)."""

from __future__ import annotations

from typing import Any

from agents.ports.sql.query import Query, since_clause, where
from agents.ports.sql.scope import Scope

TABLE = "reports"

# Rows stored, duplicates of re-delivered reports included until merges fold them.
COUNT_ROWS = Query("reports.COUNT_ROWS", "SELECT count() AS n FROM reports", ("n",), TABLE)

# The identities stored with one of `ids` (a tuple of report ids, the leading column of the
# sorting key), with their content hashes: the ingest's re-delivery check keeps those it
# asked about (`agents.core.record.ReportKey`: another source's report may share an id).
# ClickHouse refuses a query text over `max_query_size` (256 KiB): callers send a bounded
# number of ids per query (`agents.ingest.lookup_chunks`).
STORED_KEYS = Query(
    "reports.STORED_KEYS",
    "SELECT source_kind, source_org, report_id, content_hash FROM reports"
    " WHERE report_id IN %(ids)s",
    ("source_kind", "source_org", "report_id", "content_hash"),
    TABLE,
)

# Where the stored copies of `ids` were read from (the ingest tells the same message read
# again after a crash or rebalance, stored from its own topic/partition/offset, from a
# producer's re-send, stored from another message).
STORED_ORIGINS = Query(
    "reports.STORED_ORIGINS",
    "SELECT report_id, origin_topic, origin_partition, origin_offset FROM reports"
    " WHERE report_id IN %(ids)s",
    ("report_id", "origin_topic", "origin_partition", "origin_offset"),
    TABLE,
)

# The reports merged into an incident, without personal data (neither hashes nor free text):
# `keys` (a tuple of (source_kind, source_org, report_id) tuples) and `ids` (their
# report_ids), occurred between `lo` and `hi` (epoch s), at most `limit`.
_OF_INCIDENT_COLUMNS = (
    "report_id", "source_kind", "source_org", "category", "occurred_at", "precision", "commune"
)
OF_INCIDENT = Query(
    "reports.OF_INCIDENT",
    f"SELECT {', '.join(_OF_INCIDENT_COLUMNS)} FROM reports FINAL"
    " WHERE report_id IN %(ids)s AND (source_kind, source_org, report_id) IN %(keys)s"
    " AND occurred_at >= toDateTime(%(lo)s) AND occurred_at <= toDateTime(%(hi)s)"
    " ORDER BY occurred_at, report_id, source_kind, source_org LIMIT %(limit)s",
    _OF_INCIDENT_COLUMNS,
    TABLE,
)

# The same by report id only (`ids`): for an incident version stored before versions listed
# their reports' sources (`incidents.report_source_kinds` empty); a report of another source
# with the same id would be listed too.
OF_INCIDENT_IDS = Query(
    "reports.OF_INCIDENT_IDS",
    f"SELECT {', '.join(_OF_INCIDENT_COLUMNS)} FROM reports FINAL WHERE report_id IN %(ids)s"
    " AND occurred_at >= toDateTime(%(lo)s) AND occurred_at <= toDateTime(%(hi)s)"
    " ORDER BY occurred_at, report_id, source_kind, source_org LIMIT %(limit)s",
    _OF_INCIDENT_COLUMNS,
    TABLE,
)

# Empties the table (insert benchmark).
TRUNCATE = Query("reports.TRUNCATE", "TRUNCATE TABLE reports", (), TABLE)

# Columns that `counts_by` may group by (identifiers are never parameters).
COUNTABLE_COLUMNS = (
    "category",
    "insee",
    "commune",
    "jurisdiction",
    "source_kind",
    "source_org",
    "precision",
)

# What the console's breakdowns group by: key → expression (a NULL INSEE code counts as "").
BREAKDOWN_KEYS = {
    "category": "category",
    "insee": "ifNull(insee, '')",
    "jurisdiction": "jurisdiction",
}
# Columns a breakdown may label its keys with (any value of the group).
BREAKDOWN_LABELS = ("commune",)


def count(since: bool) -> Query:
    """Distinct reports; with `since`, only those with occurred_at >= parameter `since`."""
    return Query(
        "reports.count",
        f"SELECT count() AS n FROM reports FINAL{since_clause('occurred_at', since)}",
        ("n",),
        TABLE,
    )


def counts_by(column: str, since: bool) -> Query:
    """Distinct reports per value of `column` (one of COUNTABLE_COLUMNS; NULL counts under
    ""), most frequent first; with `since`, occurred_at >= parameter `since`."""
    if column not in COUNTABLE_COLUMNS:
        raise ValueError(f"cannot count by {column!r} (one of {', '.join(COUNTABLE_COLUMNS)})")
    return Query(
        "reports.counts_by",
        f"SELECT ifNull({column}, '') AS key, count() AS n FROM reports FINAL"
        f"{since_clause('occurred_at', since)} GROUP BY key ORDER BY n DESC, key",
        ("key", "n"),
        TABLE,
    )


def summary(scope: Scope) -> Query:
    """Reports per Paris day (`day`: epoch s of its midnight) with occurred_at in
    [`week`, `upper`), and how many of them since `hour` (`last_hour`), within `scope`."""
    bound: dict[str, Any] = {}
    conditions = [
        "occurred_at >= toDateTime(%(week)s)",
        "occurred_at < toDateTime(%(upper)s)",
        *scope.conditions(TABLE, bound),
    ]
    return Query(
        "reports.summary",
        "SELECT toUInt32(toStartOfDay(occurred_at, 'Europe/Paris')) AS day, count() AS n,"
        " countIf(occurred_at >= toDateTime(%(hour)s)) AS last_hour"
        f" FROM reports FINAL{where(conditions)} GROUP BY day ORDER BY day LIMIT 10",
        ("day", "n", "last_hour"),
        TABLE,
        bound,
    )


def _in_window(scope: Scope, bound: dict[str, Any]) -> list[str]:
    """occurred_at in [`since`, `until`) within `scope`."""
    return [
        "occurred_at >= toDateTime(%(since)s)",
        "occurred_at < toDateTime(%(until)s)",
        *scope.conditions(TABLE, bound),
    ]


def count_in_window(scope: Scope) -> Query:
    """Distinct reports occurred in [`since`, `until`) within `scope`."""
    bound: dict[str, Any] = {}
    conditions = _in_window(scope, bound)
    return Query(
        "reports.count_in_window",
        f"SELECT count() AS n FROM reports FINAL{where(conditions)} LIMIT 1",
        ("n",),
        TABLE,
        bound,
    )


def breakdown(scope: Scope, key: str, label: str | None, limit: int) -> Query:
    """Distinct reports occurred in [`since`, `until`) within `scope` per `key` (one of
    BREAKDOWN_KEYS), with a `label` column (one of BREAKDOWN_LABELS) when given, the `limit`
    most frequent first."""
    if key not in BREAKDOWN_KEYS:
        raise ValueError(f"cannot break down by {key!r} (one of {', '.join(BREAKDOWN_KEYS)})")
    if label is not None and label not in BREAKDOWN_LABELS:
        raise ValueError(f"cannot label by {label!r} (one of {', '.join(BREAKDOWN_LABELS)})")
    bound: dict[str, Any] = {}
    conditions = _in_window(scope, bound)
    extra = f", any({label}) AS label" if label else ""
    return Query(
        "reports.breakdown",
        f"SELECT {BREAKDOWN_KEYS[key]} AS key{extra}, count() AS n FROM reports FINAL"
        f"{where(conditions)} GROUP BY key ORDER BY n DESC, key LIMIT {int(limit)}",
        ("key", "label", "n") if label else ("key", "n"),
        TABLE,
        bound,
    )
