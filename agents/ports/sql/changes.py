"""Cross-table query: cheap fingerprints of the recent rows of every table the console shows."""

from __future__ import annotations

from agents.ports.sql.query import Query

# Row counts and version sums of the rows since `floor` (no FINAL): any change of a table
# changes its fingerprint (r_*: reports, i_*: incidents, a_*: alerts, x_n: actions).
SIGNATURE = Query(
    "changes.SIGNATURE",
    "SELECT"
    " (SELECT count() FROM reports WHERE occurred_at >= toDateTime(%(floor)s)) AS r_n,"
    " (SELECT toUInt32(max(ingested_at)) FROM reports"
    "  WHERE occurred_at >= toDateTime(%(floor)s)) AS r_at,"
    " (SELECT count() FROM incidents WHERE last_occurred_at >= toDateTime(%(floor)s)) AS i_n,"
    " (SELECT sum(version) FROM incidents"
    "  WHERE last_occurred_at >= toDateTime(%(floor)s)) AS i_v,"
    " (SELECT count() FROM alerts WHERE emitted_at >= toDateTime(%(floor)s)) AS a_n,"
    " (SELECT sum(version) FROM alerts WHERE emitted_at >= toDateTime(%(floor)s)) AS a_v,"
    " (SELECT count() FROM alert_actions WHERE at >= toDateTime(%(floor)s)) AS x_n",
    ("r_n", "r_at", "i_n", "i_v", "a_n", "a_v", "x_n"),
    "reports",
)
