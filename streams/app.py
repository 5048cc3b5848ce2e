"""The Faust application: one process runs the ingest and correlate agents and, on the
leader, the detector; in embedded mode it also serves the console (chDB is in-process)."""

from __future__ import annotations

import faust

from streams.settings import Settings
from streams.topics import Topics, declare_topics
from streams.web import worker_pages_only


def broker_urls(bootstrap: str) -> str:
    return ";".join(f"kafka://{hp.strip()}" for hp in bootstrap.split(",") if hp.strip())


def create_app(settings: Settings) -> tuple[faust.App, Topics]:
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap),
        store="memory://",
        datadir=settings.worker_data_dir,
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
