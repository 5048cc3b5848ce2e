"""`vigie worker`: build the Faust app with every agent and run it until stopped.

Start-up does not need ClickHouse: the web pages answer at once and a start-up task creates
or checks the schema, waiting with backoff while the server is down (`/readyz`: 503,
`clickhouse_unreachable`); until it succeeded every store call checks it first
(`SchemaFirstStore`). On the way out (SIGTERM) the store thread is drained and the store
closed once the event loop has stopped, before the interpreter exits: an embedded chDB left
open is torn down by the process's exit handlers while its background threads still run,
which crashed the process (SIGSEGV, exit 139) after a clean stop.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust

from agents.core import native
from agents.correlate import CorrelateProcessor
from agents.detect import ClickHouseCountStore, DetectProcessor
from agents.faust_agents import AgentConfig, install_correlate, install_detector, install_ingest
from agents.feedback import FeedbackSink
from agents.ingest import IngestProcessor
from agents.ingest_loop import IngestLoopConfig
from agents.ports import metrics
from agents.ports.blocking import BlockingRunner, StoreThread
from agents.ports.health import CLICKHOUSE, DEPENDENCIES, Health
from agents.ports.process import EXIT_WRITE_FAILED, crash
from agents.ports.retry import RetriesExhausted, RetryPolicy, retry_async
from agents.ports.store import Store, StoreError
from agents.sink import unavailable
from streams import gc_policy
from streams.app import create_app
from streams.calibration_process import ProcessCalibrator
from streams.detector_store import DetectorStore, open_detector_store
from streams.lag import LaggedConsumer, LagMonitor
from streams.local_api import write_token
from streams.logging_setup import flush_repeated_logs, logging_config, setup_logging
from streams.partition_groups import partition_group_key
from streams.settings import (
    Settings,
    correlation_config,
    get_settings,
    input_pattern,
    partner_topics,
    pseudonymiser,
    time_bounds,
    topic_kinds,
)
from streams.storage import is_embedded, open_store
from streams.storage.gate import SchemaFirstStore
from streams.table_guard import guard_app_tables
from streams.topics import create_missing_topics
from streams.web import install_worker_pages, stored_counts

log = logging.getLogger(__name__)


def ingest_loop_config(settings: Settings) -> IngestLoopConfig:
    return IngestLoopConfig(
        kafka_bootstrap=settings.kafka_bootstrap,
        app_id=settings.app_id,
        input_topics=(settings.topic_partner, settings.topic_citizen),
        sink_batch_rows=settings.sink_batch_rows,
        sink_batch_seconds=settings.sink_batch_seconds,
        input_pattern=input_pattern(settings),
        max_skew_s=settings.ingest_max_skew_seconds,
        align_on=settings.ingest_align_on,
        store_seconds=settings.ingest_store_seconds,
    )


def agent_config(settings: Settings) -> AgentConfig:
    return AgentConfig(
        table_partitions=settings.topic_partitions,
        correlate_batch_bundles=settings.correlate_batch_bundles,
        batch_seconds=settings.correlate_batch_seconds,
        detect_interval_seconds=settings.detect_interval_seconds,
        max_message_bytes=settings.kafka_max_message_bytes,
        store_seconds=settings.correlate_store_seconds,
        store_rows=settings.sink_batch_rows,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(settings.sink_max_retries, settings.sink_backoff_seconds,
                       outage_seconds=settings.dependency_outage_seconds)


async def prepare_store(store: Store, run_blocking: BlockingRunner, health: Health,
                        retry: RetryPolicy) -> None:
    """Create or check the schema, waiting for ClickHouse as long as an outage may last
    (one log line per attempt); a failure that is not an outage, or an outage past its
    ceiling, ends the worker (exit 70)."""

    def failed(_attempt: int, exc: BaseException) -> None:
        health.clickhouse_failed(exc)

    try:
        await retry_async(partial(run_blocking, store.ensure_schema), retry,
                          what="clickhouse schema at start", on_retry=failed,
                          transient=unavailable)
    except RetriesExhausted as exc:
        crash("clickhouse schema could not be created", exc)
    health.clickhouse_ok()
    log.info("clickhouse schema ready")
    # compiled or not, the same decisions; compiled, faster where the state is dense
    log.info("correlation engine",
             extra={"mode": native.STATUS.mode._value_, "reason": native.STATUS.reason})


@dataclass(slots=True)
class BuiltWorker:
    """The app and what must be released after its event loop stopped."""

    app: faust.App
    store: Store
    store_thread: StoreThread
    detector_store: DetectorStore | None = None

    def close(self) -> None:
        """Stop the store thread and close the store (chDB: its engine and background
        threads stop here, not in the interpreter's exit handlers)."""
        if self.detector_store is not None:
            self.detector_store.close()
        self.store_thread.close()
        try:
            self.store.close()
        except StoreError as exc:
            log.warning("store not closed cleanly", extra={"error": type(exc).__name__})
        log.info("store closed")


def build_worker(settings: Settings) -> BuiltWorker:
    from agents.core.correlation import partition_key
    from agents.core.detection import DetectionConfig, PoissonScanDetector
    from agents.core.detection.cells import cell_index_from_refdata
    from agents.core.geo import Geocoder
    from agents.core.jurisdictions import load_jurisdictions
    from agents.core.refdata import load_refdata

    hasher = pseudonymiser(settings)  # first: no key, no start (one line, exit 78)
    app, topics = create_app(settings)
    create_missing_topics(settings, topics)  # before any consumer reads the cluster metadata
    store = SchemaFirstStore(open_store(settings.clickhouse))  # no call to ClickHouse yet
    store_thread = StoreThread()  # every call to `store` runs on this one thread
    run_blocking = store_thread.run
    refdata = load_refdata(settings.refdata or None)
    jurisdictions = load_jurisdictions(settings.jurisdictions or None, refdata)
    geocoder = Geocoder(refdata, jurisdictions)
    retry = retry_policy(settings)
    health = Health(clickhouse_unready_seconds=settings.clickhouse_unready_seconds,
                    recovery_probe=lambda: bool(app.rebalancing),
                    confirm_at_start=(CLICKHOUSE,))

    @app.task  # type: ignore[untyped-decorator]  # faust leaves its decorators untyped
    async def clickhouse_schema() -> None:
        await prepare_store(store, run_blocking, health, retry)
    stages = agent_config(settings)

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        return await app.producer.send(topic, key, value, None, None, None)

    def feedback_sink() -> FeedbackSink:
        # one per stage: a stage's transitions in flight count towards its own row bound
        # and are written with its own tick, not with the other stage's
        return FeedbackSink(store=store, send=send, topic=settings.topic_feedback,
                            retry=retry, run_blocking=run_blocking, health=health)

    ingest = IngestProcessor(
        feedback_sink=feedback_sink(),
        store=store,
        enricher=geocoder,
        pseudonymiser=hasher,
        send=send,
        rejected_topic=settings.topic_rejected,
        enriched_topic=settings.topic_enriched,
        # one bundle key per internal partition: an engine reads in ingest order
        partition_key=partition_group_key(settings.topic_partitions, partition_key),
        retry=retry,
        run_blocking=run_blocking,
        health=health,
        topic_kinds=topic_kinds(settings),
        partner_topics=partner_topics(settings),
        time_bounds=time_bounds(settings),
        max_message_bytes=settings.kafka_max_message_bytes,
    )
    ingest_loop = install_ingest(app, topics, ingest, ingest_loop_config(settings))
    correlate = CorrelateProcessor(
        feedback_sink=feedback_sink(),
        store=store,
        send=send,
        incidents_topic=settings.topic_incidents,
        retry=retry,
        run_blocking=run_blocking,
        config=correlation_config(settings),
        health=health,
        commune_at=geocoder.commune_at,
    )
    install_correlate(app, topics, correlate, stages)
    guard_app_tables(app, settings)  # a store from another changelog is set aside
    # its own connection and thread: a run does not hold up ingest/correlate store calls
    detector_store = open_detector_store(store)
    counts = ClickHouseCountStore(detector_store.store)
    detector = PoissonScanDetector(
        counts,
        cell_index_from_refdata(refdata),
        DetectionConfig(false_alerts_per_day=settings.false_alerts_per_day),
        # a calibration's CPU burst and memory stay out of the process serving reports,
        # and so do the history's rows where the child can read them (not chDB's: one
        # process only)
        calibrator=ProcessCalibrator(
            history_url=None if is_embedded(settings.clickhouse) else settings.clickhouse),
    )

    def data_clock() -> float:
        return counts.latest() or time.time()

    detect = DetectProcessor(
        detector=detector, store=detector_store.store, send=send,
        alerts_topic=settings.topic_alerts, retry=retry, run_blocking=detector_store.thread.run,
        clock=data_clock if settings.detector_clock == "data" else time.time,
        health=health, snapshot=counts.snapshot)
    install_detector(app, detect, stages)
    if settings.webhooks_enabled:  # partner webhooks (docs/webhooks.md)
        from streams.webhooks import install_webhooks

        install_webhooks(app, settings, store, run_blocking, retry, health, jurisdictions)

    # the leader (which runs the detector) only changes in a rebalance: restore the alerts
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # receivers take (sender, *args)
    async def detector_rebalanced(app_: Any, assigned: Any, **_: Any) -> None:
        detect.rebalanced()
    install_worker_pages(app, health, store, stored_counts, run_blocking,
                         write_token(settings.worker_data_dir))
    embedded = settings.console_embedded
    if embedded if embedded is not None else is_embedded(settings.clickhouse):
        install_console(app, store, run_blocking, refdata, jurisdictions, settings)
    install_lag_monitor(app, settings, health, ingest_loop.held_partitions,
                        topics.enriched.get_topic_name())

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def repeated_logs() -> None:
        flush_repeated_logs()

    metrics.set_build_info()
    metrics.track_readiness(health.is_ready)
    for dependency in DEPENDENCIES:
        metrics.track_dependency(dependency, partial(health.dependency_up, dependency))
    return BuiltWorker(app, store, store_thread, detector_store)


def install_lag_monitor(app: faust.App, settings: Settings, health: Health,
                        ingest_partitions: Callable[[], list[tuple[str, int]]],
                        enriched_topic: str) -> LagMonitor:
    """Lag of the ingest consumer and of the correlate agent (Faust's group), and the Kafka
    probe, in one task (`streams.lag`)."""

    def correlate_partitions() -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in app.consumer.assignment()
                if tp.topic == enriched_topic]

    monitor = LagMonitor(
        settings.kafka_bootstrap,
        f"{settings.app_id}-lag",
        [LaggedConsumer("ingest", f"{settings.app_id}-ingest", ingest_partitions),
         LaggedConsumer("correlate", settings.app_id, correlate_partitions)],
        health,
    )

    @app.task  # type: ignore[untyped-decorator]
    async def consumer_lag() -> None:
        await monitor.run()

    return monitor


def install_console(app: faust.App, store: Any, run_blocking: BlockingRunner, refdata: Any,
                    jurisdictions: Any, settings: Settings) -> None:
    """The ops-room console in the worker's own event loop (embedded mode)."""
    from console.settings import get_console_settings

    cs = get_console_settings()  # here, not in the task: a bad VIGIE_CONSOLE_* stops the start

    @app.task  # type: ignore[untyped-decorator]  # faust leaves its decorators untyped
    async def console() -> None:
        from console import KafkaActionPublisher, create_console_app, start_console
        from console.incident_actions import KafkaFeedbackPublisher, install_feedback_publisher
        from console.partner_seed import install_partner_seed
        from console.security import ConsoleLimits

        web = create_console_app(
            store,
            refdata=refdata,
            jurisdictions=jurisdictions,
            tokens=cs.tokens.get_secret_value(),
            action_publisher=KafkaActionPublisher(
                settings.kafka_bootstrap, settings.topic_alert_actions
            ),
            poll_seconds=cs.poll_seconds,
            run_blocking=run_blocking,
            limits=ConsoleLimits.from_settings(cs),
        )
        feedback = KafkaFeedbackPublisher(settings.kafka_bootstrap, settings.topic_feedback)
        install_feedback_publisher(web, feedback)
        install_partner_seed(web, cs.partners_seed)
        await start_console(web, cs.host, cs.port)
        log.info("console listening", extra={"host": cs.host, "port": cs.port})


def faust_worker(app: faust.App, settings: Settings) -> faust.Worker:
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        logging_config=logging_config(settings.log_level, stream=sys.__stderr__),
    )
    # No terminal spinner: for it, at a level of WARNING or above, Faust sets the root
    # logger to DEBUG, and every debug call of Faust and aiokafka (several per message sent)
    # then builds a log record that no handler keeps: ~8 % of the worker's CPU at 100/s.
    worker.spinner = None
    return worker


def run_worker(args: argparse.Namespace) -> int:
    settings = get_settings()
    setup_logging(settings.log_level)
    try:
        built = build_worker(settings)
    except StoreError as exc:  # e.g. a chDB directory another process holds
        log.critical("worker could not start: store not opened", extra={"error": str(exc)})
        return EXIT_WRITE_FAILED
    # Faust configures logging as it starts: given ours, every line is JSON from the first
    # one, on the process's real stderr (Faust then redirects sys.stderr into logging)
    worker = faust_worker(built.app, settings)
    metrics.watch_gc_pauses()
    gc_policy.apply()  # built: the reference data and geometry are frozen out of collections
    code: Any = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:  # how Faust's worker ends, stopped or crashed
        code = exc.code
    finally:
        built.close()
        flush_repeated_logs(force=True)
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def register(sub: Any) -> None:
    parser = sub.add_parser("worker", help="run the stream worker (agents, metrics, console)")
    parser.set_defaults(func=run_worker)
