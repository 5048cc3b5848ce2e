"""`vigie console`: the console as its own process (server-mode ClickHouse; scalable).

    vigie console --dev-tokens          # print a fresh VIGIE_CONSOLE_TOKENS value and exit
    VIGIE_CONSOLE_TOKENS=... vigie console [--host 127.0.0.1] [--port 8080] [--no-kafka]

With an embedded chDB store, run the console inside the worker instead (only one process
may open a chDB directory): see `console.create_console_app` / `console.start_console`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from console.app import create_console_app, start_console
from console.auth import TokenConfigError, TokenRegistry, generate_dev_tokens
from console.incident_actions import KafkaFeedbackPublisher, install_feedback_publisher
from console.partner_seed import install_partner_seed
from console.publisher import KafkaActionPublisher
from console.security import ConsoleLimits
from console.settings import get_console_settings
from streams.logging_setup import setup_logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("console", help="ops-room web console and JSON API")
    parser.add_argument("--host", default=None, help="bind address (VIGIE_CONSOLE_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (VIGIE_CONSOLE_PORT)")
    parser.add_argument(
        "--dev-tokens", action="store_true", help="print a fresh development token setting"
    )
    parser.add_argument("--no-kafka", action="store_true", help="record actions in ClickHouse only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.dev_tokens:
        print(f"VIGIE_CONSOLE_TOKENS={generate_dev_tokens()}")
        return 0
    setup_logging("INFO")  # JSON lines, as the worker's (the console's audit trail among them)
    try:
        return asyncio.run(_serve(args))
    except TokenConfigError as exc:
        log.error("VIGIE_CONSOLE_TOKENS: %s", exc)
        return 78  # EX_CONFIG, as for any bad VIGIE_* setting (vigie.cli)


async def _serve(args: argparse.Namespace) -> int:
    from agents.core.jurisdictions import load_jurisdictions
    from agents.core.refdata import load_refdata
    from streams.settings import get_settings
    from streams.storage import open_store

    settings, console = get_settings(), get_console_settings()
    secret = console.stream_secret.get_secret_value().encode() or None
    tokens = TokenRegistry.parse(console.tokens.get_secret_value(), secret)
    refdata = load_refdata(settings.refdata or None)
    jurisdictions = load_jurisdictions(settings.jurisdictions or None, refdata)
    store = open_store(settings.clickhouse)
    publisher = (
        None
        if args.no_kafka
        else KafkaActionPublisher(settings.kafka_bootstrap, settings.topic_alert_actions)
    )
    app = create_console_app(
        store,
        refdata=refdata,
        tokens=tokens,
        jurisdictions=jurisdictions,
        action_publisher=publisher,
        poll_seconds=console.poll_seconds,
        limits=ConsoleLimits.from_settings(console),
    )
    if not args.no_kafka:
        feedback = KafkaFeedbackPublisher(settings.kafka_bootstrap, settings.topic_feedback)
        install_feedback_publisher(app, feedback)
    install_partner_seed(app, console.partners_seed)
    host, port = args.host or console.host, args.port or console.port
    runner = await start_console(app, host, port)
    log.info("console on http://%s:%d/ (%d tokens)", host, port, len(tokens))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if publisher is not None:
            await publisher.close()
        with contextlib.suppress(Exception):
            store.close()
    return 0
