"""The console application: factory, auth/error middleware, static page, start helper.

Every response - pages, API, SSE stream, static files, 404/405, errors - carries
`SECURITY_HEADERS` (set as the response is prepared, whoever built it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from agents.core.jurisdictions import Jurisdictions, load_jurisdictions
from agents.core.refdata import RefData
from agents.ports.blocking import BlockingRunner, StoreThread
from agents.ports.store import Store, StoreError
from console.access import ACCESS, access_for
from console.api import ROUTES, json_response
from console.audit import AuditEvent, AuditTrail
from console.auth import Principal, TokenRegistry
from console.context import CTX, EXPIRES, PRINCIPAL, ConsoleContext
from console.live import LiveHub
from console.params import BadRequest
from console.partners import PartnerDirectory
from console.publisher import ActionPublisher
from console.security import ConsoleLimits, FailureLimiter

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


# French messages of the HTTP errors aiohttp raises itself (unknown path, method, body size).
_HTTP_ERRORS = {
    404: ("not_found", "ressource introuvable"),
    405: ("method_not_allowed", "méthode non autorisée sur cette ressource"),
    413: ("payload_too_large", "corps de requête trop volumineux"),
}


def _authenticate(
    request: web.Request, ctx: ConsoleContext, mode: str, route: str
) -> web.Response | None:
    """Sets the caller (PRINCIPAL, EXPIRES); or the refusal: 429 while the client address
    is throttled for failed authentications, 401 (counted) when no credential is valid."""
    client = request.remote or ""
    wait = ctx.failures.retry_after(client)
    if wait:
        if ctx.failures.first_refusal(client):
            ctx.audit.record(_auth_event(ctx, request, route, "throttled", 429))
        message = f"trop d'échecs d'authentification depuis cette adresse : réessayez dans {wait} s"
        throttled = json_response({"error": "too_many_failures", "message": message}, 429)
        throttled.headers["Retry-After"] = str(wait)
        return throttled
    header = request.headers.get("Authorization")
    who: Principal | None = ctx.tokens.check_bearer(header)
    expires = int(time.time()) + ctx.tokens.stream_seconds
    if who is None and mode == "stream":
        found = ctx.tokens.stream_principal(request.query.get("st", ""))
        if found is not None:
            who, expires = found
    if who is None:
        ctx.failures.failed(client)
        presented = header is not None or "st" in request.query
        detail = "invalid_credentials" if presented else "no_credentials"
        ctx.audit.record(_auth_event(ctx, request, route, "refused", 401, detail))
        return _unauthorized()
    request[PRINCIPAL] = who
    request[EXPIRES] = expires
    request[ACCESS] = access_for(request, who)
    return None


def _auth_event(
    ctx: ConsoleContext,
    request: web.Request,
    route: str,
    outcome: str,
    status: int,
    detail: str = "",
) -> AuditEvent:
    return AuditEvent(
        kind="auth",
        outcome=outcome,
        status=status,
        client=ctx.audit.client(request.remote),
        method=request.method,
        route=route,
        detail=detail,
    )


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CTX]
    resource = request.match_info.route.resource
    route = resource.canonical if resource else ""
    mode = _AUTH.get((request.method, route), "public")
    try:
        if mode != "public":
            refused = _authenticate(request, ctx, mode, route)
            if refused is not None:
                return refused
        return await handler(request)
    except BadRequest as exc:
        return json_response(
            {"error": "bad_request", "message": exc.message, "details": exc.details}, 400
        )
    except StoreError as exc:
        log.warning("console store error: %s", exc)
        return json_response(
            {"error": "store_unavailable", "message": "base de données indisponible"}, 503
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error, message = _HTTP_ERRORS.get(exc.status, ("http_error", exc.reason))
        response = json_response({"error": error, "message": message}, exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("console: unexpected error on %s %s", request.method, route or "?")
        return json_response({"error": "internal", "message": "erreur interne du serveur"}, 500)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, whoever built it (handler, router, aiohttp)."""
    response.headers.update(SECURITY_HEADERS)


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
    run_blocking: BlockingRunner | None = None,
    limits: ConsoleLimits | None = None,
) -> web.Application:
    """The console (page + JSON API + SSE) over `store`. Reads ClickHouse only.

    `tokens`: a TokenRegistry or a `token:role:name,...` string. `jurisdictions`: default
    the packaged mapping for `refdata`. `action_publisher`: async callable publishing
    operator actions (e.g. KafkaActionPublisher); None records them in ClickHouse only.
    `run_blocking`: the thread that owns `store` (the worker passes its own); None gives the
    console a store thread of its own, shut down with the application. `limits`: caps on
    live streams and failed authentications (default: those of `ConsoleSettings`).
    """
    limits = limits or ConsoleLimits()
    registry = tokens if isinstance(tokens, TokenRegistry) else TokenRegistry.parse(tokens)
    if len(registry) == 0:
        log.warning("console: no access token configured, every API call will be refused")
    juris = jurisdictions or load_jurisdictions(None, refdata)
    names: dict[str, str] = {}
    codes: dict[str, list[str]] = {}
    for insee, j in sorted(juris.by_insee.items()):
        names[j.id] = j.name
        codes.setdefault(j.id, []).append(insee)
    own_thread = StoreThread("vigie-console-store") if run_blocking is None else None
    runner = own_thread.run if own_thread is not None else run_blocking
    assert runner is not None
    ctx = ConsoleContext(
        store=store,
        run_blocking=runner,
        refdata=refdata,
        tokens=registry,
        hub=LiveHub(
            store,
            runner,
            poll_seconds,
            max_streams=limits.max_streams,
            max_per_owner=limits.max_streams_per_principal,
        ),
        action_publisher=action_publisher,
        limits=limits,
        failures=FailureLimiter(limits.auth_failure_burst, limits.auth_failures_per_minute),
        audit=AuditTrail(store, runner, registry.derive_key("audit-client")),
        jurisdiction_names=names,
        jurisdiction_codes=codes,
        partners=PartnerDirectory(store, runner, juris),
    )
    directory = ctx.partners
    assert directory is not None
    registry.lookup = directory.principal_for_digest
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[CTX] = ctx
    for method, path, handler, _auth in ROUTES:
        app.router.add_route(method, path, handler)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.on_response_prepare.append(_security_headers)

    async def _start(app: web.Application) -> None:
        try:
            await directory.refresh(force=True)  # partner tokens and scopes from the start
        except Exception as exc:  # partners see nothing until the registry is read
            log.warning("partner registry not read at start: %s", exc)
        directory.start()
        ctx.hub.start()
        ctx.audit.start()

    async def _stop(app: web.Application) -> None:
        await directory.stop()
        await ctx.hub.stop()
        await ctx.audit.stop()
        if own_thread is not None:
            own_thread.close()

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
