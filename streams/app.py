"""The Faust application: one process runs the ingest and correlate agents and, on the
leader, the detector; in embedded mode it also serves the console (chDB is in-process)."""

from __future__ import annotations

import re

import faust

from streams.settings import Settings
from streams.topics import Topics, declare_topics
from streams.web import worker_pages_only


def broker_urls(bootstrap: str) -> str:
    return ";".join(f"kafka://{hp.strip()}" for hp in bootstrap.split(",") if hp.strip())


def table_store_url(settings: Settings) -> str:
    """RocksDB via `rocksdict` (prebuilt wheels; `python-rocksdb` needs a compiler): Faust
    keeps one database per table partition, `<data dir>/v1/tables-<app id>/<table>-<p>.db`, with the
    changelog offset it holds, so a restart reads only the tail of the changelog. The
    databases live under `tables-<app id>` (`table_dir`): another app id (a replay group, a
    second deployment) on the same data directory has its own changelog topics and must not
    read this one's offsets; a store from another changelog is set aside at start
    (`streams.table_guard`)."""
    return "rocksdb://" if settings.table_store == "rocksdb" else "memory://"


def table_dir(settings: Settings) -> str:
    """The table databases' directory, relative to the data directory: one per app id (one
    level: Faust creates it without its parents)."""
    return "tables-" + re.sub(r"[^A-Za-z0-9._-]", "_", settings.app_id)


def create_app(settings: Settings) -> tuple[faust.App, Topics]:
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap),
        store=table_store_url(settings),
        datadir=settings.worker_data_dir,
        tabledir=table_dir(settings),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replicas,
        web_host=settings.web_host,
        web_bind=settings.web_host,  # Faust binds 0.0.0.0 unless told otherwise
        web_port=settings.web_port,
        # Only streams.web's pages: Faust's table browser would serve incident state (report
        # ids, contact hashes, positions) and its router the cluster layout, without auth.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        web_application_options={"middlewares": [worker_pages_only]},
        web_in_thread=False,
        consumer_auto_offset_reset="earliest",
        # A SIGKILLed worker's partitions move to the others within ~10 s, not a minute.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_rebalance_timeout=30.0,
        broker_commit_interval=1.0,
        producer_acks=-1,
        producer_linger_ms=5,
        producer_max_batch_size=1_048_576,
        producer_max_request_size=settings.kafka_max_message_bytes,
        stream_buffer_maxsize=20_000,
        table_standby_replicas=0,
        autodiscover=False,
    )
    return app, declare_topics(app, settings)
