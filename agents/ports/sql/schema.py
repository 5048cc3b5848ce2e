"""Every table and view of Vigie, in ordered lists of idempotent DDL statements.

To add a table, append a `CREATE TABLE IF NOT EXISTS {db}.name (...)` string to `STATEMENTS`
(`{db}` is replaced by the store's database); materialized views go to `VIEW_STATEMENTS`.
Never edit a released statement in place: `IF NOT EXISTS` would silently keep the old
definition on existing installs; add the column to `ADDED_COLUMNS` instead (ClickHouse 18.16
has no `ADD COLUMN IF NOT EXISTS`, so `ensure_schema` checks `system.columns` first). A
sorting key cannot be altered: a table whose key changes is copied into a new table that
takes its name (`migrate_reports_key`, which `ensure_schema` runs first). Storage settings
(`query.LOOKUP_SETTINGS`) apply to tables created from then on: they change costs, never
results, and an existing table keeps its own (docs/sre.md, "Lookup tables").

The SQL must run on both ClickHouse 18.16 (Debian's server, used in tests) and chDB 26.x:
- times are `DateTime('UTC')` (second precision; no `DateTime64` in 18.16);
- no `LowCardinality` (experimental in 18.16), no `Nullable` column in ORDER BY/PARTITION BY,
  no `COMMENT`, no `toStartOfInterval` (use `toStartOfHour`, `toStartOfFifteenMinutes`...);
- every table is a ReplacingMergeTree keyed by ids so that Kafka replays never double
  count: read with `FINAL` (or `argMax`) - see the queries of this package.

The stores (`streams.storage`) run `ensure_schema` with their own execute/select.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.ports.sql import feedback
from agents.ports.sql.query import LOOKUP_SETTINGS, Query

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

# `reports`, keyed by the report's identity (`agents.core.record.ReportKey`): `report_id` is
# unique per source system only. Partitioned by the month of occurred_at, which a replay of
# the same report repeats. `{table}`: its name (`migrate_reports_key` fills a copy first).
REPORTS_TABLE = (
    """
    CREATE TABLE IF NOT EXISTS {db}.{table} (
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
        content_hash String DEFAULT '',
        commune String,
        jurisdiction String,
        precision String,
        h3_r7 String,
        h3_r8 String,
        h3_r9 String,
        ingested_at DateTime('UTC') DEFAULT now()
    ) ENGINE = ReplacingMergeTree()
    PARTITION BY toYYYYMM(occurred_at)
    ORDER BY (report_id, source_kind, source_org)
    """
    + LOOKUP_SETTINGS
)
# Its sorting key as `system.tables.sorting_key` shows it.
REPORTS_KEY = "report_id, source_kind, source_org"

STATEMENTS: list[str] = [
    "CREATE DATABASE IF NOT EXISTS {db}",
    # One row per accepted report: the fields of agents.core.record.ReportRecord.
    REPORTS_TABLE.replace("{table}", "reports"),
    # Rejected messages: why and where from. The original bytes (they may hold personal
    # data) are on the dead-letter topic, which keeps them for a bounded time; only when a
    # dead letter cannot carry them whole (over the Kafka message limit) are they here
    # (`original_b64`, `original_key_b64` in ADDED_COLUMNS). Not partitioned: rejected_at is
    # the wall clock, a replay could otherwise land in another partition and escape
    # deduplication.
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
    """
    + LOOKUP_SETTINGS,
    # One row per incident for counting (kept by the materialized view in `VIEW_STATEMENTS`
    # from every incident version; the highest version of an id wins, as in `incidents`):
    # the hour it was first reported (`first_seen_at`, fixed for good) with the category,
    # cells, commune and jurisdiction of its latest version. Counts per (cell, category,
    # hour), commune or jurisdiction are `count()` over it (`FINAL` or `argMax` by id), for
    # the detector (`incident_hours.LIVE_COUNTS`), the console and Grafana. Replays
    # re-insert the same (id, version) rows, so they never double count.
    """
    CREATE TABLE IF NOT EXISTS {db}.incident_hours (
        incident_id String,
        version UInt32,
        hour DateTime('UTC'),
        status String,
        category String,
        h3_r7 String,
        h3_r8 String,
        insee String,
        commune String,
        jurisdiction String,
        report_count UInt32,
        confidence Float64
    ) ENGINE = ReplacingMergeTree(version)
    PARTITION BY toYYYYMM(hour)
    ORDER BY (hour, incident_id)
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
    # The live detector's last run time (`agents.ports.sql.detector_runs`), one row per
    # detector once merged.
    """
    CREATE TABLE IF NOT EXISTS {db}.detector_runs (
        detector String,
        run_at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree(run_at)
    ORDER BY detector
    """,
    # The live detector's fit and calibration times and threshold
    # (`agents.ports.sql.detector_runs.SCHEDULE`), one row per detector once merged.
    """
    CREATE TABLE IF NOT EXISTS {db}.detector_schedules (
        detector String,
        fit_at DateTime('UTC'),
        calibrated_at DateTime('UTC'),
        threshold Float64,
        updated_at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree(updated_at)
    ORDER BY detector
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
    # The console's audit trail (`agents.ports.sql.audit`): refused authentications and
    # operator actions. Never a token, a comment's text or a client address in clear
    # (`client` is a keyed hash of it).
    """
    CREATE TABLE IF NOT EXISTS {db}.audit_events (
        event_id String,
        at DateTime('UTC'),
        kind String,
        outcome String,
        status UInt16,
        principal String,
        role String,
        client String,
        method String,
        route String,
        alert_id String,
        action_id String,
        action String,
        detail String
    ) ENGINE = ReplacingMergeTree()
    PARTITION BY toYYYYMM(at)
    ORDER BY (at, event_id)
    """,
    # The partner registry (`agents.ports.sql.partners`): one row per version of an entry,
    # every version kept (the history); `entry` is its JSON form, credentials included.
    """
    CREATE TABLE IF NOT EXISTS {db}.partners (
        org String,
        version UInt32,
        active UInt8,
        entry String,
        updated_at DateTime('UTC'),
        updated_by String
    ) ENGINE = ReplacingMergeTree()
    ORDER BY (org, version)
    """,
    # The webhook outbox (`agents.ports.sql.webhooks`, `agents.deliver`): every event of
    # every delivery to a partner (queued with its body, attempts, delivered, parked,
    # replayed). The body is the allow-listed projection (docs/webhooks.md): no personal data.
    """
    CREATE TABLE IF NOT EXISTS {db}.webhook_deliveries (
        delivery_id String,
        seq UInt32,
        event String,
        at DateTime('UTC'),
        next_at DateTime('UTC'),
        org String,
        kind String,
        object_id String,
        object_version UInt32,
        source_topic String,
        source_partition UInt32,
        payload String,
        status UInt16,
        latency_ms UInt32,
        error String
    ) ENGINE = ReplacingMergeTree()
    ORDER BY (delivery_id, seq, event)
    """,
]

STATEMENTS += feedback.STATEMENTS  # report_feedback, incident_actions

# The projection of an incident version into `incident_hours` (materialized view and the
# one-time backfill of a database created before the table existed). `precision` lets the
# detector leave out the incidents known only by their commune (`incident_hours.LIVE_COUNTS`).
INCIDENT_HOURS_SELECT = """
    SELECT incident_id, version, toStartOfHour(first_seen_at) AS hour, status, category,
        h3_r7, h3_r8, insee, commune, ifNull(jurisdiction, '') AS jurisdiction,
        report_count, confidence, precision
    FROM {db}.incidents
"""

# Views run after the tables and their added columns (a view reads the columns it names).
# A view's query cannot be altered in place: a changed view gets a new name, and the old
# name goes to `RETIRED_VIEWS`.
VIEW_STATEMENTS: list[str] = [
    "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.incident_hours_mv2 TO {db}.incident_hours AS"
    + INCIDENT_HOURS_SELECT,
]

# Views of older versions, dropped once their replacement exists (between the two, a
# version may be projected twice: the same (id, version) row, replaced on merge).
# incident_hours_mv: before `incident_hours.precision`.
RETIRED_VIEWS: list[str] = ["incident_hours_mv"]


def _ready(stmts: list[str], database: str) -> list[str]:
    """Statements for `database`, on one line each, ready to run."""
    return [" ".join(stmt.split()).format(db=database) for stmt in stmts]


# Columns added to a table after its first release: (table, column, type and default). A
# table created before gets them by ALTER (existing rows read the default expression).
ADDED_COLUMNS: list[tuple[str, str, str]] = [
    ("incidents", "first_seen_at", "DateTime('UTC') DEFAULT first_occurred_at"),
    # rows projected before it existed read 'point': counted per cell, as they were
    ("incident_hours", "precision", "String DEFAULT 'point'"),
    # the whole original (SHA-256 hex; base64 bytes only when its dead letter was truncated)
    ("rejected", "original_sha256", "String DEFAULT ''"),
    ("rejected", "original_b64", "String DEFAULT ''"),
    ("rejected", "original_key_b64", "String DEFAULT ''"),
    # in `REPORTS_TABLE`; for a replicated or distributed table that `migrate_reports_key`
    # leaves to the operator (rows stored before it read '': any content)
    ("reports", "content_hash", "String DEFAULT ''"),
    # the rejected report's source when readable (with report_id, its identity)
    ("rejected", "source_kind", "String DEFAULT ''"),
    ("rejected", "source_org", "String DEFAULT ''"),
    # the source of each report of `report_ids`, same order (versions stored before: empty)
    ("incidents", "report_source_kinds", "Array(String) DEFAULT []"),
    ("incidents", "report_source_orgs", "Array(String) DEFAULT []"),
]

# Tables filled from older tables when they are created on a database that has data:
# (table, INSERT ... SELECT).
BACKFILLS: list[tuple[str, str]] = [
    ("incident_hours", "INSERT INTO {db}.incident_hours" + INCIDENT_HOURS_SELECT),
]


def add_column(database: str, table: str, column: str, spec: str) -> str:
    """Adds one of the `ADDED_COLUMNS` to a table created before it."""
    return f"ALTER TABLE {database}.{table} ADD COLUMN {column} {spec}"


def drop_view(database: str, view: str) -> str:
    """Drops one of the `RETIRED_VIEWS`."""
    return f"DROP TABLE IF EXISTS {database}.{view}"


def table_exists(database: str, table: str) -> Query:
    """`n` = 1 when `database.table` exists, else 0 (names checked by the caller)."""
    return _exists(
        "schema.table_exists", f"system.tables WHERE database = '{database}' AND name = '{table}'"
    )


def column_exists(database: str, table: str, column: str) -> Query:
    """`n` = 1 when `database.table` has `column`, else 0 (names checked by the caller)."""
    return _exists(
        "schema.column_exists",
        f"system.columns WHERE database = '{database}' AND table = '{table}' AND name = '{column}'",
    )


def _exists(name: str, where: str) -> Query:
    return Query(name, f"SELECT count() AS n FROM {where}", ("n",), "system")


def sorting_key(database: str, table: str) -> Query:
    """`engine` and `key` (the sorting key as ClickHouse shows it) of `database.table` (no
    row: no such table; names checked by the caller)."""
    return Query(
        "schema.sorting_key",
        "SELECT engine, sorting_key AS key FROM system.tables"
        f" WHERE database = '{database}' AND name = '{table}'",
        ("engine", "key"),
        "system",
    )


# `migrate_reports_key`'s tables: the copy being filled, and the table it replaces (kept).
REPORTS_REKEYED = "reports_rekeyed"
REPORTS_BY_ID = "reports_by_id"


def migrate_reports_key(
    execute: Callable[[str], object],
    select: Callable[[str], list[dict[str, Any]]],
    database: str,
) -> bool:
    """Move a `reports` table keyed `ORDER BY report_id` (before a report's identity was
    its source and id) to `REPORTS_TABLE`'s key; returns whether it did. A sorting key
    cannot be altered (neither in 18.16 nor for a key's leading columns later), and the old
    key would fold two sources' reports with one id into one row. So: fill a new table
    (`reports_rekeyed`) with every row (`content_hash` ''), then swap the names in one
    RENAME: `reports` is the new table, the old one is kept as `reports_by_id` (drop it
    once checked, see docs/sre.md). Safe to interrupt: a partial copy is dropped and filled
    again at the next start, and a swap interrupted between its two renames (no `reports`
    left) is finished. Run with the ingest stopped: rows inserted into the old table
    during the copy would stay behind in `reports_by_id`. Replicated or distributed tables
    (`deploy/clickhouse/cluster.sql`) are left to the operator."""
    db = database
    found = select(sorting_key(db, "reports").sql)
    if not found:
        if select(sorting_key(db, REPORTS_BY_ID).sql) and select(
            sorting_key(db, REPORTS_REKEYED).sql
        ):  # interrupted between the two renames: the copy is complete
            execute(f"RENAME TABLE {db}.{REPORTS_REKEYED} TO {db}.reports")
        return False
    if found[0]["key"] != "report_id" or found[0]["engine"] != "ReplacingMergeTree":
        return False  # migrated, or a replicated/distributed table: migrated by hand
    old = {row["name"] for row in select(_columns_of(db, "reports"))}
    execute(f"DROP TABLE IF EXISTS {db}.{REPORTS_REKEYED}")
    execute(*_ready([REPORTS_TABLE.replace("{table}", REPORTS_REKEYED)], db))
    new = [row["name"] for row in select(_columns_of(db, REPORTS_REKEYED))]
    names = ", ".join(name for name in new if name in old)
    execute(
        f"INSERT INTO {db}.{REPORTS_REKEYED} ({names}) SELECT {names} FROM {db}.reports"
    )
    execute(
        f"RENAME TABLE {db}.reports TO {db}.{REPORTS_BY_ID},"
        f" {db}.{REPORTS_REKEYED} TO {db}.reports"
    )
    return True


def _columns_of(database: str, table: str) -> str:
    return (
        "SELECT name FROM system.columns"
        f" WHERE database = '{database}' AND table = '{table}'"
    )


def ensure_schema(
    execute: Callable[[str], object],
    database: str,
    select: Callable[[str], list[dict[str, Any]]] | None = None,
) -> None:
    """Create what is missing; idempotent (every statement is `IF NOT EXISTS`). With
    `select`, also migrate a database created by an older version: move `reports` to its
    identity key (`migrate_reports_key`), add the `ADDED_COLUMNS` a table lacks (before the
    views that read them), drop the `RETIRED_VIEWS` and fill the `BACKFILLS` tables that did
    not exist yet from the data already there."""
    missing: list[str] = []
    if select is not None:
        migrate_reports_key(execute, select, database)
        missing = [
            table for table, _ in BACKFILLS if not _found(select, table_exists(database, table))
        ]
    for stmt in _ready(STATEMENTS, database):
        execute(stmt)
    if select is not None:
        for table, column, spec in ADDED_COLUMNS:
            if not _found(select, column_exists(database, table, column)):
                execute(add_column(database, table, column, spec))
    for stmt in _ready(VIEW_STATEMENTS, database):
        execute(stmt)
    for view in RETIRED_VIEWS:
        execute(drop_view(database, view))
    for table, insert in BACKFILLS:
        if table in missing:  # rows inserted since the view exists may come twice: replaced
            execute(*_ready([insert], database))


def _found(select: Callable[[str], list[dict[str, Any]]], query: Query) -> bool:
    found = select(query.sql)
    return bool(found and int(found[0]["n"]))
