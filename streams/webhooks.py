"""Webhooks in the runtime: the delivery stage as a task of the worker
(`VIGIE_WEBHOOKS_ENABLED`), and `vigie webhooks` for the operator (parked deliveries, their
attempt log, replay). See docs/webhooks.md."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import faust

from agents.core.delivery import Backoff, ObjectKind
from agents.core.jurisdictions import Jurisdictions
from agents.deliver import (
    DeliveryConfig,
    DeliveryStage,
    RegistrySubscriptions,
    aiohttp_poster,
    events_of,
    parked,
    replay,
)
from agents.ports.blocking import BlockingRunner
from agents.ports.health import Health
from agents.ports.retry import RetryPolicy
from agents.ports.store import Store, StoreError
from streams.local_api import LocalTokenError, auth_header, bearer_matches, read_token
from streams.settings import Settings, get_settings
from streams.storage import is_embedded, open_store


def delivery_config(settings: Settings) -> DeliveryConfig:
    return DeliveryConfig(
        kafka_bootstrap=settings.kafka_bootstrap,
        app_id=settings.app_id,
        topics={
            settings.topic_incidents: ObjectKind.INCIDENT,
            settings.topic_alerts: ObjectKind.ALERT,
        },
        backoff=Backoff(
            settings.webhook_max_attempts,
            settings.webhook_backoff_seconds,
            settings.webhook_backoff_max_seconds,
        ),
        timeout_seconds=settings.webhook_timeout_seconds,
        poll_seconds=settings.webhook_poll_seconds,
        allow_loopback_http=settings.webhook_allow_http_loopback,
        batch_seconds=settings.sink_batch_seconds,
    )


def install_webhooks(
    app: faust.App,
    settings: Settings,
    store: Store,
    run_blocking: BlockingRunner,
    retry: RetryPolicy,
    health: Health,
    jurisdictions: Jurisdictions | None,
) -> DeliveryStage:
    post, close = aiohttp_poster()
    stage = DeliveryStage(
        config=delivery_config(settings),
        store=store,
        subscriptions=RegistrySubscriptions(store, run_blocking, jurisdictions, retry),
        run_blocking=run_blocking,
        retry=retry,
        post=post,
        health=health,
    )

    install_webhook_pages(app, store, run_blocking, settings.worker_data_dir)

    @app.task  # type: ignore[untyped-decorator]  # faust leaves its decorators untyped
    async def webhooks() -> None:
        try:
            await stage.run()
        finally:
            await close()

    return stage


# --- the worker's local API for `vigie webhooks` (embedded store) -------------------------
def install_webhook_pages(
    app: faust.App, store: Store, run_blocking: BlockingRunner, data_dir: str
) -> None:
    """`/webhooks/parked`, `/webhooks/log` (GET) and `/webhooks/replay` (POST) for loopback
    clients bearing the worker's local API token (`streams.web` lets only those through)."""

    def authorized(request: Any) -> bool:
        try:
            token = read_token(data_dir)
        except LocalTokenError:
            return False
        return bearer_matches(request.headers.get("Authorization"), token)

    def refused(view: Any) -> Any:
        return view.json(
            {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.page("/webhooks/parked")
    async def parked_page(web: Any, request: Any) -> Any:
        if not authorized(request):
            return refused(web)
        org = request.query.get("partner", "")
        return web.json({"parked": await run_blocking(parked, store, org)})

    @app.page("/webhooks/log")
    async def log_page(web: Any, request: Any) -> Any:
        if not authorized(request):
            return refused(web)
        return web.json(
            {"events": await run_blocking(events_of, store, request.query.get("id", ""))}
        )

    @app.page("/webhooks/replay")
    class ReplayPage(faust.web.View):  # POST: it changes state
        async def post(self, request: Any, **_: Any) -> Any:
            if not authorized(request):
                return refused(self)
            try:
                asked = await request.json()
            except ValueError:
                asked = None
            if not isinstance(asked, dict):
                return self.json({"error": "expected a JSON object"}, status=400)
            ids = await run_blocking(
                replay_ids, store, str(asked.get("id") or ""), str(asked.get("partner") or "")
            )
            return self.json({"replayed": await run_blocking(replay, store, ids)})


def replay_ids(store: Store, did: str, org: str) -> list[str]:
    """The delivery `did`, or every parked delivery of partner `org`."""
    return [did] if did else [str(r["delivery_id"]) for r in parked(store, org)]


# --- `vigie webhooks` ---------------------------------------------------------------------
class Operator(Protocol):
    def parked(self, org: str) -> list[dict[str, Any]]: ...

    def log(self, did: str) -> list[dict[str, Any]]: ...

    def replay(self, did: str, org: str) -> list[str]: ...


@dataclass
class StoreOperator:
    """On the store itself (a ClickHouse server, or chDB while no worker holds it)."""

    store: Store

    def parked(self, org: str) -> list[dict[str, Any]]:
        return parked(self.store, org)

    def log(self, did: str) -> list[dict[str, Any]]:
        return events_of(self.store, did)

    def replay(self, did: str, org: str) -> list[str]:
        return replay(self.store, replay_ids(self.store, did, org))


@dataclass
class WorkerOperator:
    """Through the running worker's local API (it holds the embedded chDB store)."""

    base: str
    data_dir: str

    def _call(self, path: str, body: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={**auth_header(self.data_dir), "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as resp:
            return json.loads(resp.read())

    def parked(self, org: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call(
            "/webhooks/parked?" + urllib.parse.urlencode({"partner": org})
        )["parked"]
        return rows

    def log(self, did: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call(
            "/webhooks/log?" + urllib.parse.urlencode({"id": did})
        )["events"]
        return rows

    def replay(self, did: str, org: str) -> list[str]:
        done: list[str] = self._call("/webhooks/replay", {"id": did, "partner": org})["replayed"]
        return done


def _when(epoch: Any) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def operate(args: argparse.Namespace, op: Operator) -> int:
    if args.action == "list-parked":
        rows = op.parked(args.partner or "")
        if args.json:
            print(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
            return 0
        for r in rows:
            print(
                f"{r['delivery_id']}  {r['partner']}  {r['object_kind']} "
                f"{r['object']} v{r['object_v']}  parked {_when(r['parked_s'])}  "
                f"last: {r['last_status'] or '-'} {r['last_error']}"
            )
        print(f"{len(rows)} parked deliveries")
        return 0
    if args.action == "log":
        events = op.log(args.id)
        if not events:
            print(f"vigie webhooks: no delivery {args.id}", file=sys.stderr)
            return 1
        for e in events:
            print(
                f"{e['seq']:>3}  {_when(e['at_s'])}  {e['event']:<9} "
                f"status={e['status'] or '-'}  {e['latency_ms']} ms  {e['error']}"
            )
        return 0
    if bool(args.id) == bool(args.partner):
        print("vigie webhooks replay: give one delivery id or --partner ORG", file=sys.stderr)
        return 2
    done = op.replay(args.id or "", args.partner or "")
    for did in done:
        print(f"replayed {did}")
    if args.id and not done:
        print(f"vigie webhooks: {args.id} is not parked (nothing replayed)", file=sys.stderr)
        return 1
    print(f"{len(done)} deliveries replayed (the worker sends them at its next round)")
    return 0


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        store = open_store(settings.clickhouse)
    except StoreError:
        if not is_embedded(settings.clickhouse):
            raise
        # chDB admits one process per directory: the running worker holds it
        worker = WorkerOperator(
            f"http://{settings.web_host}:{settings.web_port}", settings.worker_data_dir
        )
        try:
            return operate(args, worker)
        except (LocalTokenError, OSError) as exc:
            print(
                f"vigie webhooks: the store is held and the worker did not answer: {exc}",
                file=sys.stderr,
            )
            return 1
    try:
        return operate(args, StoreOperator(store))
    finally:
        store.close()


def register(sub: Any) -> None:
    parser = sub.add_parser("webhooks", help="partner webhook deliveries: parked, log, replay")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list-parked", help="deliveries parked after their last attempt")
    listing.add_argument("--partner", help="only this partner (org)")
    listing.add_argument("--json", action="store_true")
    log = actions.add_parser("log", help="every logged event of one delivery")
    log.add_argument("id", help="delivery id (Vigie-Delivery-Id)")
    again = actions.add_parser("replay", help="send parked deliveries again (fresh attempts)")
    again.add_argument("id", nargs="?", help="one parked delivery id")
    again.add_argument("--partner", help="every parked delivery of this partner (org)")
    parser.set_defaults(func=run)
