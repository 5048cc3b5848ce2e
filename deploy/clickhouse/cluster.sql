-- ClickHouse cluster DDL options for Vigie (documentation; not run by the code).
--
-- The single-server schema is streams/storage/schema.py: every table is a
-- ReplacingMergeTree keyed by ids, so Kafka replays never double count (read with FINAL).
-- On a cluster, keep that property:
--   * replication: Replicated*MergeTree, coordinated by ClickHouse Keeper;
--   * sharding: rows of one id must always land on the SAME shard, otherwise replays are
--     merged on different shards and FINAL can no longer collapse them. So the Distributed
--     sharding key is a hash of the ORDER BY id (never rand()).
-- Macros expected in each server's config: {cluster}=vigie, {shard}, {replica}.
-- Column lists are those of streams/storage/schema.py (abridged here to the keys: copy the
-- full column lists from there when applying).

-- =========================================================================================
-- Option A: one shard, N replicas (recommended first step: Vigie's volume — a département,
-- thousands of reports a day — fits one shard; replicas give availability and read scale).
-- Vigie needs no code change: point VIGIE_CLICKHOUSE at any replica (or a load balancer).
-- =========================================================================================
CREATE DATABASE IF NOT EXISTS vigie ON CLUSTER '{cluster}';

CREATE TABLE IF NOT EXISTS vigie.reports ON CLUSTER '{cluster}' (
    report_id String,
    source_kind String,
    category String,
    occurred_at DateTime('UTC'),
    reported_at DateTime('UTC'),
    -- ... every other column of streams/storage/schema.py `reports` ...
    ingested_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/vigie/reports', '{replica}')
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (report_id, source_kind, source_org)  -- a report's identity (ids are per source)
SETTINGS index_granularity = 256;  -- read by id every batch (agents/ports/sql/query.py)

CREATE TABLE IF NOT EXISTS vigie.incidents ON CLUSTER '{cluster}' (
    incident_id String,
    version UInt32,
    status String,
    category String
    -- ... every other column of `incidents` ...
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/vigie/incidents', '{replica}', version)
ORDER BY incident_id
SETTINGS index_granularity = 256;

CREATE TABLE IF NOT EXISTS vigie.alerts ON CLUSTER '{cluster}' (
    alert_id String,
    version UInt32,
    status String
    -- ... every other column of `alerts` ...
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/vigie/alerts', '{replica}', version)
ORDER BY alert_id;

-- rejected, incident_hours, alert_events, alert_actions: same pattern (report_feedback
-- with SETTINGS index_granularity = 256 as reports),
-- ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/vigie/<table>', '{replica}'[, version])
-- with the ORDER BY (and PARTITION BY) of schema.py. The materialized view
-- incident_hours_mv2 (schema.py VIEW_STATEMENTS; incident_hours has the ADDED_COLUMNS too)
-- is created ON CLUSTER after both tables.

-- =========================================================================================
-- Option B: S shards x N replicas, local tables + Distributed tables under the names the
-- code uses (reports, incidents, ...), so Vigie keeps inserting and querying the same names.
-- Inserts into a Distributed table are asynchronous by default: set
-- insert_distributed_sync=1 for Vigie's user so an insert is confirmed only once written on
-- the shard (Vigie acks Kafka offsets after the insert returns).
-- =========================================================================================
CREATE TABLE IF NOT EXISTS vigie.reports_local ON CLUSTER '{cluster}' (
    report_id String,
    source_kind String,
    category String,
    occurred_at DateTime('UTC'),
    reported_at DateTime('UTC'),
    -- ... every other column of `reports` ...
    ingested_at DateTime('UTC') DEFAULT now()
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/vigie/reports_local', '{replica}')
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (report_id, source_kind, source_org)  -- a report's identity (ids are per source)
SETTINGS index_granularity = 256;  -- read by id every batch (agents/ports/sql/query.py)

CREATE TABLE IF NOT EXISTS vigie.reports ON CLUSTER '{cluster}'
AS vigie.reports_local
ENGINE = Distributed('{cluster}', vigie, reports_local, cityHash64(report_id));

CREATE TABLE IF NOT EXISTS vigie.incidents_local ON CLUSTER '{cluster}' (
    incident_id String,
    version UInt32,
    status String,
    category String
    -- ... every other column of `incidents` ...
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/vigie/incidents_local', '{replica}', version)
ORDER BY incident_id
SETTINGS index_granularity = 256;

CREATE TABLE IF NOT EXISTS vigie.incidents ON CLUSTER '{cluster}'
AS vigie.incidents_local
ENGINE = Distributed('{cluster}', vigie, incidents_local, cityHash64(incident_id));

CREATE TABLE IF NOT EXISTS vigie.alerts_local ON CLUSTER '{cluster}' (
    alert_id String,
    version UInt32,
    status String
    -- ... every other column of `alerts` ...
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/vigie/alerts_local', '{replica}', version)
ORDER BY alert_id;

CREATE TABLE IF NOT EXISTS vigie.alerts ON CLUSTER '{cluster}'
AS vigie.alerts_local
ENGINE = Distributed('{cluster}', vigie, alerts_local, cityHash64(alert_id));

-- Reading through Distributed: `SELECT ... FROM vigie.incidents FINAL` runs FINAL on each
-- shard, which is correct because all versions of an id live on one shard (sharding key).
-- Settings for Vigie's user (users.xml or SQL RBAC):
--   ALTER USER vigie SETTINGS insert_distributed_sync = 1;   -- option B only
--   ALTER USER vigie SETTINGS insert_quorum = 2;             -- optional: confirm on 2 replicas
