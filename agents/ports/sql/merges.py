"""The ClickHouse server's own record of its tables' parts (`system.part_log`, kept by the
server config of deploy/clickhouse/config.xml; chDB keeps none): the parts each insert
wrote and the background merges that rewrote them, per table and second.

A MergeTree table merges its parts in the background, and its merge policy treats parts of
a few MiB as nearly free to merge: a small table that takes several small inserts a second
has the same growing part rewritten with each of them, so its merges can cost the server
far more than the inserts themselves (rows merged per row inserted). `benchmarks.bench_latency`
reads this beside the latency (README, "Latency")."""

from __future__ import annotations

from agents.ports.sql.query import Query

TABLE = "system.part_log"

# Writes the server's buffered logs (`system.part_log` among them) to their tables now.
FLUSH_LOGS = Query("merges.FLUSH_LOGS", "SYSTEM FLUSH LOGS", (), TABLE)

# The parts written (`event` 'NEW_PART': one per insert and partition) and merged
# ('MERGE_PARTS': one per merge, `rows` the merged part's) in tables of `database` since
# `since` (epoch s), per table, event and second (`at`, epoch s); `duration_ms` is the
# server's wall time for them.
PARTS_SINCE = Query(
    "merges.PARTS_SINCE",
    "SELECT table, toString(event_type) AS event, toUInt32(event_time) AS at,"
    " count() AS parts, sum(rows) AS rows, sum(duration_ms) AS duration_ms"
    " FROM system.part_log"
    " WHERE database = %(database)s AND event_time >= toDateTime(%(since)s)"
    " AND event_type IN ('NEW_PART', 'MERGE_PARTS')"
    " GROUP BY table, event, at ORDER BY at, table, event",
    ("table", "event", "at", "parts", "rows", "duration_ms"),
    TABLE,
)
