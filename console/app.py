"""The console application: factory, auth/error middleware, static page, start helper."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from agents.core.jurisdictions import Jurisdictions, load_jurisdictions
from agents.core.refdata import RefData
from console.api import ROUTES, json_response
from console.auth import TokenRegistry
from console.context import CTX, PRINCIPAL, ConsoleContext
from console.live import LiveHub
from console.params import BadRequest
from console.publisher import ActionPublisher
from streams.storage.base import Store, StoreError

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self';"
    " script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _unauthorized() -> web.Response:
    response = json_response(
        {"error": "unauthorized", "message": "jeton d'accès manquant, invalide ou expiré"}, 401
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="vigie"'
    return response


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CTX]
    resource = request.match_info.route.resource
    mode = _AUTH.get((request.method, resource.canonical if resource else ""), "public")
    if mode != "public":
        who = ctx.tokens.check_bearer(request.headers.get("Authorization"))
        if who is None and mode == "stream":
            who = ctx.tokens.check_stream_token(request.query.get("st", ""))
        if who is None:
            denied = _unauthorized()
            denied.headers.update(SECURITY_HEADERS)
            return denied
        request[PRINCIPAL] = who
    try:
        response = await handler(request)
    except BadRequest as exc:
        response = json_response(
            {"error": "bad_request", "message": exc.message, "details": exc.details}, 400
        )
    except StoreError as exc:
        log.warning("console store error: %s", exc)
        response = json_response(
            {"error": "store_unavailable", "message": "base de données indisponible"}, 503
        )
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


_AUTH: dict[tuple[str, str], str] = {(m, p): auth for m, p, _, auth in ROUTES}


async def _index(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(STATIC_DIR / "index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


def create_console_app(
    store: Store,
    *,
    refdata: RefData,
    tokens: TokenRegistry | str,
    jurisdictions: Jurisdictions | None = None,
    action_publisher: ActionPublisher | None = None,
    poll_seconds: float = 1.0,
) -> web.Application:
    """The console (page + JSON API + SSE) over `store`. Reads ClickHouse only.

    `tokens`: a TokenRegistry or a `token:role:name,...` string. `jurisdictions`: default
    the packaged mapping for `refdata`. `action_publisher`: async callable publishing
    operator actions (e.g. KafkaActionPublisher); None records them in ClickHouse only.
    """
    registry = tokens if isinstance(tokens, TokenRegistry) else TokenRegistry.parse(tokens)
    if len(registry) == 0:
        log.warning("console: no access token configured, every API call will be refused")
    juris = jurisdictions or load_jurisdictions(None, refdata)
    names: dict[str, str] = {}
    codes: dict[str, list[str]] = {}
    for insee, j in sorted(juris.by_insee.items()):
        names[j.id] = j.name
        codes.setdefault(j.id, []).append(insee)
    ctx = ConsoleContext(
        store=store,
        refdata=refdata,
        tokens=registry,
        hub=LiveHub(store, poll_seconds),
        action_publisher=action_publisher,
        jurisdiction_names=names,
        jurisdiction_codes=codes,
    )
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[CTX] = ctx
    for method, path, handler, _auth in ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)

    async def _start(app: web.Application) -> None:
        ctx.hub.start()

    async def _stop(app: web.Application) -> None:
        await ctx.hub.stop()

    app.on_startup.append(_start)
    app.on_shutdown.append(_stop)
    return app


async def start_console(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `app` on host:port inside the running event loop; `await runner.cleanup()` stops.

    With port 0 a free port is picked: read it with `bound_port(runner)`.
    """
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("console runner is not listening")
