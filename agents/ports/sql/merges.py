"""The ClickHouse server's own record of its tables' parts (`system.part_log`, kept by the
server config of deploy/clickhouse/config.xml; chDB keeps none): the parts each insert
wrote and the background merges that rewrote them, per table and second.

A MergeTree table merges its parts in the background, and its merge policy treats parts of
a few MiB as nearly free to merge: a small table that takes several small inserts a second
has the same growing part rewritten with each of them, so its merges can cost the server
far more than the inserts themselves (rows merged per row inserted). `benchmarks.bench_latency`
reads this beside the latency (README, "Latency"), and the server's record of its queries
(`system.query_log`, with users.xml's `log_queries`): which kinds of query its time goes to."""

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

QUERY_LOG = "system.query_log"

# The queries that finished (`type` 2, QueryFinish) since `since` (epoch s), but those
# reading the server's own tables (`system.`: these logs), per kind and second (`at`, epoch
# s): `kind` is the text's first 300 characters with its string literals and numbers
# replaced by `?` (the ids a lookup names; a literal cut at the 300th character too), cut
# to 100, so the lookups of one statement share a kind whatever their ids; `duration_ms`
# is the server's wall time for them, `read_rows` the rows they read. The log names no
# database (18.16's): on a server shared with other databases, tell the kinds apart by
# their text.
QUERIES_SINCE = Query(
    "merges.QUERIES_SINCE",
    "SELECT substring(replaceRegexpAll(substring(query, 1, 300), '\\'[^\\']*\\'?|[0-9]+', '?'),"
    " 1, 100) AS kind, toUInt32(event_time) AS at, count() AS queries,"
    " sum(query_duration_ms) AS duration_ms, sum(read_rows) AS read_rows"
    " FROM system.query_log"
    " WHERE type = 2 AND event_time >= toDateTime(%(since)s)"
    " AND positionCaseInsensitive(query, 'system.') = 0"
    " GROUP BY kind, at ORDER BY at, kind",
    ("kind", "at", "queries", "duration_ms", "read_rows"),
    QUERY_LOG,
)
