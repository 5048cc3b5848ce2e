"""Every table of Vigie, in one ordered list of idempotent DDL statements.

To add a table, append a `CREATE TABLE IF NOT EXISTS {db}.name (...)` string to `STATEMENTS`
(`{db}` is replaced by the store's database). Never edit a released statement in place:
`IF NOT EXISTS` would silently keep the old definition on existing installs; add an
`ALTER TABLE ... ADD COLUMN` statement instead (ClickHouse 18.16 has no `ADD COLUMN IF NOT
EXISTS`, so guard such a migration in code).

The SQL must run on both ClickHouse 18.16 (Debian's server, used in tests) and chDB 26.x:
- times are `DateTime('UTC')` (second precision; no `DateTime64` in 18.16);
- no `LowCardinality` (experimental in 18.16), no `Nullable` column in ORDER BY/PARTITION BY,
  no `COMMENT`, no `toStartOfInterval` (use `toStartOfHour`, `toStartOfFifteenMinutes`...);
- every table is a ReplacingMergeTree keyed by ids so that Kafka replays never double
  count: read with `FINAL` (or `argMax`) - see `streams.storage.queries`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Columns of an alert message (contract v1, `center` flattened), shared by `alerts` (current
# state) and `alert_events` (every version).
_ALERT_COLUMNS = """
        alert_id String,
        version UInt32,
        status String,
        kind String,
        category String,
        center_lat Float64,
        center_lon Float64,
        radius_m Float64,
        cells Array(String),
        insee Array(String),
        window_start DateTime('UTC'),
        window_end DateTime('UTC'),
        observed Float64,
        expected Float64,
        score Float64,
        severity UInt8,
        emitted_at DateTime('UTC'),
        detector String"""

STATEMENTS: list[str] = [
    "CREATE DATABASE IF NOT EXISTS {db}",
    # One row per accepted report: the fields of agents.core.record.ReportRecord.
    # Partitioned by the month of occurred_at, which a replay of the same report repeats.
    """
    CREATE TABLE IF NOT EXISTS {db}.reports (
        report_id String,
        source_kind String,
        source_org String,
        source_channel Nullable(String),
        category String,
        occurred_at DateTime('UTC'),
        reported_at DateTime('UTC'),
        lat Nullable(Float64),
        lon Nullable(Float64),
        accuracy_m Nullable(Float64),
        insee Nullable(String),
        severity Nullable(UInt8),
        contact_hash Nullable(String),
        description_hash Nullable(String),
        description_len UInt32,
        origin_topic String,
        origin_partition Int32,
        origin_offset Int64,
        commune String,
        jurisdiction String,
        precision String,
        h3_r7 String,
        h3_r8 String,
        h3_r9 String,
        ingested_at DateTime('UTC') DEFAULT now()
    ) ENGINE = ReplacingMergeTree()
    PARTITION BY toYYYYMM(occurred_at)
    ORDER BY report_id
    """,
    # Rejected messages: why and where from. NOT the original bytes (they may hold personal
    # data); the dead-letter topic carries them. Not partitioned: rejected_at is the wall
    # clock, a replay could otherwise land in another partition and escape deduplication.
    """
    CREATE TABLE IF NOT EXISTS {db}.rejected (
        rejected_at DateTime('UTC'),
        origin_topic String,
        origin_partition Int32,
        origin_offset Int64,
        reason String,
        detail String,
        report_id String,
        size_bytes UInt32
    ) ENGINE = ReplacingMergeTree()
    ORDER BY (origin_topic, origin_partition, origin_offset)
    """,
    # Incident versions (contract v1); the highest version of an id is its current state.
    """
    CREATE TABLE IF NOT EXISTS {db}.incidents (
        incident_id String,
        version UInt32,
        status String,
        category String,
        categories Array(String),
        report_ids Array(String),
        report_count UInt32,
        source_kinds Array(String),
        first_occurred_at DateTime('UTC'),
        last_occurred_at DateTime('UTC'),
        lat Float64,
        lon Float64,
        insee String,
        commune String,
        jurisdiction Nullable(String),
        h3 String,
        h3_r7 String,
        h3_r8 String,
        precision String,
        confidence Float64,
        updated_at Nullable(DateTime('UTC')),
        first_seen_at DateTime('UTC') DEFAULT first_occurred_at
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY incident_id
    """,
    # Alerts, current state (highest version of each alert_id).
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.alerts ({_ALERT_COLUMNS}
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY alert_id
    """,
    # Every alert lifecycle message (one row per version), same columns as `alerts`.
    f"""
    CREATE TABLE IF NOT EXISTS {{db}}.alert_events ({_ALERT_COLUMNS}
    ) ENGINE = ReplacingMergeTree()
    ORDER BY (alert_id, version)
    """,
    # Operator acknowledgements and closures of alerts (action: 'ack' | 'close').
    """
    CREATE TABLE IF NOT EXISTS {db}.alert_actions (
        action_id String,
        alert_id String,
        action String,
        comment String,
        operator String,
        role String,
        at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree()
    ORDER BY action_id
    """,
]


def statements(database: str) -> list[str]:
    """The DDL for `database`, in order, ready to run."""
    return [" ".join(stmt.split()).format(db=database) for stmt in STATEMENTS]


# Columns added to a table after its first release: (table, column, type and default). A
# table created before gets them by ALTER (existing rows read the default expression).
ADDED_COLUMNS: list[tuple[str, str, str]] = [
    ("incidents", "first_seen_at", "DateTime('UTC') DEFAULT first_occurred_at"),
]


def ensure_schema(
    execute: Callable[[str], object],
    database: str,
    select: Callable[[str], list[dict[str, Any]]] | None = None,
) -> None:
    """Run every statement through `execute`; idempotent (all are `IF NOT EXISTS`). With
    `select`, also add the `ADDED_COLUMNS` a table created by an older version lacks."""
    for stmt in statements(database):
        execute(stmt)
    if select is None:
        return
    for table, column, spec in ADDED_COLUMNS:
        found = select(
            "SELECT count() AS n FROM system.columns "
            f"WHERE database = '{database}' AND table = '{table}' AND name = '{column}'"
        )
        if not found or not int(found[0]["n"]):
            execute(f"ALTER TABLE {database}.{table} ADD COLUMN {column} {spec}")
