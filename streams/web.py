"""HTTP pages of a worker (Faust's web server): /metrics, /healthz, /readyz, /counts.

Health and metrics are served without authentication; `/counts` (aggregates per commune,
category, jurisdiction) only to loopback clients bearing the worker's local API token
(`streams.local_api`: a 0600 file in the worker's data directory).

Nothing else is served on VIGIE_WEB_PORT: Faust's own views (table browser, router,
statistics, graph) are switched off in `streams.app.create_app`, and `worker_pages_only`
answers 404 to any other path, so a Faust default view cannot reappear unnoticed. The table
browser would expose incident state (member report ids, contact hashes, exact positions).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiohttp import web as aioweb

from agents.ports import metrics
from agents.ports.blocking import BlockingRunner
from agents.ports.health import Health
from agents.ports.store import Store
from streams.local_api import TOKEN_FILE, bearer_matches

#: `vigie webhooks` against a worker holding the embedded store (`streams.webhooks`).
WEBHOOK_PATHS = ("/webhooks/parked", "/webhooks/log", "/webhooks/replay")
#: Every path a worker answers on VIGIE_WEB_PORT (unauthenticated: health and metrics; the
#: aggregate counts for local tooling ask for the local API token).
WORKER_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/counts", *WEBHOOK_PATHS})
#: Answered to loopback clients only (`vigie counts`, scripts/run.sh, benchmarks), on top of
#: the token (defence in depth): the port listens on every interface in containers, and
#: counts per commune are not public.
LOOPBACK_ONLY_PATHS = frozenset({"/counts", *WEBHOOK_PATHS})

Handler = Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:  # a Unix socket peer or an unparsable address
        return False


@aioweb.middleware
async def worker_pages_only(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
    """aiohttp middleware of the worker's web server: only `WORKER_PATHS` are served."""
    if request.path not in WORKER_PATHS:
        raise aioweb.HTTPNotFound()
    if request.path in LOOPBACK_ONLY_PATHS and not _is_loopback(request.remote):
        raise aioweb.HTTPForbidden(text="served to loopback clients only")
    return await handler(request)


def stored_counts(store: Store) -> dict[str, Any]:
    """Aggregate counts for `vigie counts` (no personal data, no per-report rows)."""
    from streams.storage import queries

    day_ago = time.time() - 86_400
    return {
        "reports": queries.count_reports(store),
        "reports_last_24h": queries.count_reports(store, since_epoch=day_ago),
        "by_category": queries.counts_by(store, "category"),
        "by_source_kind": queries.counts_by(store, "source_kind"),
        "by_jurisdiction": queries.counts_by(store, "jurisdiction"),
        "top_communes": dict(list(queries.counts_by(store, "commune").items())[:10]),
        "rejected_by_reason": queries.count_rejected_by_reason(store),
        "incidents": queries.count_incidents(store),
    }


def install_worker_pages(
    app: faust.App, health: Health, store: Store, counts: Callable[[Store], dict[str, Any]],
    run_blocking: BlockingRunner, local_token: str,
) -> None:
    """The worker's pages; `/counts` answers requests bearing `local_token` only (the token
    `streams.local_api.write_token` wrote to the worker's data directory)."""
    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.render(), content_type=metrics.CONTENT_TYPE.split(";")[0])

    @app.page("/healthz")
    async def liveness(web: Any, request: Any) -> Any:
        status, body = health.liveness()
        return web.json(body, status=status)

    @app.page("/readyz")
    async def readiness(web: Any, request: Any) -> Any:
        status, body = health.readiness()
        return web.json(body, status=status)

    @app.page("/counts")
    async def counts_page(web: Any, request: Any) -> Any:
        if not bearer_matches(request.headers.get("Authorization"), local_token):
            return web.json(
                {"error": "unauthorized",
                 "message": "send the worker's local API token (VIGIE_WORKER_DATA_DIR/"
                            f"{TOKEN_FILE}) as 'Authorization: Bearer <token>'"},
                status=401, headers={"WWW-Authenticate": "Bearer"})
        if request.query.get("only") == "reports":  # cheap probe (benchmarks, scripts)
            from streams.storage import queries

            return web.json({"reports": await run_blocking(queries.count_reports, store)})
        return web.json(await run_blocking(counts, store))

    @app.timer(1.0)  # type: ignore[untyped-decorator]  # faust leaves its decorators untyped
    async def heartbeat() -> None:
        health.tick()

    @app.task  # type: ignore[untyped-decorator]
    async def started() -> None:
        health.mark_started()
