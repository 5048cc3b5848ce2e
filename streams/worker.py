"""`vigie worker`: build the Faust app with every agent and run it until stopped."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

import faust

from agents.core.pseudonym import Pseudonymiser
from agents.correlate import CorrelateProcessor
from agents.detect import ClickHouseCountStore, DetectProcessor
from agents.faust_agents import install_correlate, install_detector, install_ingest
from agents.ingest import IngestProcessor
from agents.sink import attach_health
from streams import metrics
from streams.app import create_app
from streams.health import Health
from streams.logging_setup import logging_config, setup_logging
from streams.retry import RetryPolicy
from streams.runtime import run_blocking
from streams.settings import Settings, correlation_config, get_settings
from streams.storage import open_store
from streams.topics import create_missing_topics
from streams.web import install_worker_pages, stored_counts

log = logging.getLogger(__name__)


def build_worker(settings: Settings) -> faust.App:
    from agents.core.correlation import partition_key
    from agents.core.detection import DetectionConfig, PoissonScanDetector
    from agents.core.detection.cells import cell_index_from_refdata
    from agents.core.geo import Geocoder
    from agents.core.jurisdictions import load_jurisdictions
    from agents.core.refdata import load_refdata

    app, topics = create_app(settings)
    create_missing_topics(settings, topics)  # before any consumer reads the cluster metadata
    store = open_store(settings.clickhouse)
    store.ensure_schema()
    refdata = load_refdata(settings.refdata or None)
    jurisdictions = load_jurisdictions(settings.jurisdictions or None, refdata)
    geocoder = Geocoder(refdata, jurisdictions)
    retry = RetryPolicy(settings.sink_max_retries, settings.sink_backoff_seconds)

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        return await app.producer.send(topic, key, value, None, None, None)

    ingest = IngestProcessor(
        store=store,
        enricher=geocoder,
        pseudonymiser=Pseudonymiser(settings.pseudonym_secret.get_secret_value().encode()),
        send=send,
        rejected_topic=settings.topic_rejected,
        enriched_topic=settings.topic_enriched,
        partition_key=partition_key,
        retry=retry,
        run_blocking=run_blocking,
    )
    install_ingest(app, topics, ingest, settings)
    correlate = CorrelateProcessor(
        store=store,
        send=send,
        incidents_topic=settings.topic_incidents,
        retry=retry,
        run_blocking=run_blocking,
        config=correlation_config(settings),
    )
    install_correlate(app, topics, correlate, settings)
    counts = ClickHouseCountStore(store)
    detector = PoissonScanDetector(
        counts,
        cell_index_from_refdata(refdata),
        DetectionConfig(false_alerts_per_day=settings.false_alerts_per_day),
    )

    def data_clock() -> float:
        return counts.latest() or time.time()

    install_detector(app, DetectProcessor(
        detector=detector, store=store, send=send, alerts_topic=settings.topic_alerts,
        retry=retry, run_blocking=run_blocking,
        clock=data_clock if settings.detector_clock == "data" else time.time), settings)
    health = Health(clickhouse_unready_seconds=settings.clickhouse_unready_seconds,
                    recovery_probe=lambda: bool(app.rebalancing))
    install_worker_pages(app, health, store, stored_counts)
    attach_health(health)
    embedded = settings.console_embedded
    if embedded if embedded is not None else settings.clickhouse.startswith("chdb:"):
        install_console(app, store, refdata, jurisdictions, settings)
    metrics.set_build_info()
    metrics.track_readiness(health.is_ready)
    return app


def install_console(app: faust.App, store: Any, refdata: Any, jurisdictions: Any,
                    settings: Settings) -> None:
    """The ops-room console in the worker's own event loop (embedded mode)."""

    @app.task
    async def console() -> None:
        from console import KafkaActionPublisher, create_console_app, start_console
        from console.settings import get_console_settings

        cs = get_console_settings()
        web = create_console_app(
            store,
            refdata=refdata,
            jurisdictions=jurisdictions,
            tokens=cs.tokens.get_secret_value(),
            action_publisher=KafkaActionPublisher(
                settings.kafka_bootstrap, settings.topic_alert_actions
            ),
            poll_seconds=cs.poll_seconds,
        )
        await start_console(web, cs.host, cs.port)
        log.info("console listening", extra={"host": cs.host, "port": cs.port})


def run_worker(args: argparse.Namespace) -> int:
    settings = get_settings()
    setup_logging(settings.log_level)
    app = build_worker(settings)
    # Faust configures logging as it starts: given ours, every line is JSON from the first
    # one, on the process's real stderr (Faust then redirects sys.stderr into logging)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        logging_config=logging_config(settings.log_level, stream=sys.__stderr__),
    )
    worker.execute_from_commandline()
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("worker", help="run the stream worker (agents, metrics, console)")
    parser.set_defaults(func=run_worker)
