"""Queries on `rejected` (one row per rejected message; duplicates identical: read with FINAL)."""

from __future__ import annotations

from agents.ports.sql.query import Query, since_clause

TABLE = "rejected"


def by_reason(since: bool) -> Query:
    """Distinct rejected messages per reason code, most frequent first; with `since`, only
    those with rejected_at >= parameter `since`."""
    return Query(
        "rejected.by_reason",
        f"SELECT reason, count() AS n FROM rejected FINAL{since_clause('rejected_at', since)}"
        " GROUP BY reason ORDER BY n DESC, reason",
        ("reason", "n"),
        TABLE,
    )
