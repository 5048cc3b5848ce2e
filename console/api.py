"""JSON API handlers; routes are declared in `ROUTES` (the OpenAPI document mirrors them)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import h3
import orjson
from aiohttp import web

from console import diagnostic, queries
from console.access import (
    access_of,
    filter_scope,
    minimise_alert,
    minimise_incident,
    stream_view,
    visible,
)
from console.audit import AuditEvent, stored_action
from console.auth import Principal
from console.context import CTX, EXPIRES, PRINCIPAL, ConsoleContext
from console.incident_actions import incident_action
from console.labels import CATEGORY_LABELS, SOURCE_KIND_LABELS
from console.live import StreamLimit
from console.map_api import jurisdictions_geojson, map_layers
from console.params import (
    MAX_MAP_POINTS,
    ActionBody,
    AlertQuery,
    BadRequest,
    Filters,
    IncidentQuery,
    MapQuery,
    SummaryQuery,
    parse,
)
from console.partners_api import PARTNER_ROUTES

log = logging.getLogger(__name__)
SSE_PING_SECONDS = 15.0
SSE_WATCH_SECONDS = 1.0  # how often a quiet stream checks its expiry and its client
SSE_LIMIT_RETRY_SECONDS = 30.0  # Retry-After of a stream refused by the caps
MAX_ZONES = 200


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _ctx(request: web.Request) -> ConsoleContext:
    return request.app[CTX]


def _scope(request: web.Request, f: Filters) -> queries.Scope:
    """The user's filters within the caller's perimeter (`console.access`)."""
    return filter_scope(request, f)


def _page(items: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """`items` was read with LIMIT limit+1: one more row means there is a next page."""
    return {
        "items": items[:limit],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(items) > limit else None,
    }


def _path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not (1 <= len(value) <= 128) or not all(c.isalnum() or c in "_.:-" for c in value):
        raise BadRequest(f"{name} : identifiant invalide")
    return value


def _not_found(message: str) -> web.Response:
    return json_response({"error": "not_found", "message": message}, 404)


# ---- handlers ----------------------------------------------------------------------------
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.Response:
    from console.openapi import openapi_document

    return json_response(openapi_document())


async def me(request: web.Request) -> web.Response:
    who: Principal = request[PRINCIPAL]
    ctx = _ctx(request)
    token, expiry = ctx.tokens.stream_token(who)
    data: dict[str, Any] = {
        "name": who.name,
        "role": who.role,
        "stream_token": token,
        "stream_token_expires": expiry,
    }
    if who.is_partner:  # the page's banner: whose perimeter this is
        access = access_of(request)
        partner = ctx.partners.partner(who.org) if ctx.partners is not None else None
        codes = sorted(access.communes or ())
        data["partner"] = {
            "org": who.org,
            "name": partner.name if partner is not None else who.org,
            "active": partner is not None and partner.active,
            "communes": [
                {"insee": c, "name": ctx.refdata.communes[c].name}
                for c in codes
                if c in ctx.refdata.communes
            ],
            "categories": sorted(access.categories),
        }
    return json_response(data)


async def summary(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    q: SummaryQuery = parse(SummaryQuery, dict(request.query))
    data = await ctx.run_blocking(queries.summary, ctx.store, _scope(request, q), q.window())
    for row in data["by_jurisdiction"]:
        row["name"] = ctx.jurisdiction_names.get(row["jurisdiction"], row["jurisdiction"])
    if not access_of(request).unrestricted and "feedback" in data:
        data["feedback"] = None  # an area-wide figure: not a perimeter's
    return json_response(data)


async def incidents(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    q: IncidentQuery = parse(IncidentQuery, dict(request.query))
    scope, window = _scope(request, q), q.window()
    rows = await ctx.run_blocking(
        queries.list_incidents, ctx.store, scope, window, q.status, q.limit + 1, q.offset
    )
    return json_response(_page(rows, q.limit, q.offset))


async def incident(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    incident_id = _path_id(request, "incident_id")
    row = await ctx.run_blocking(queries.get_incident, ctx.store, incident_id, time.time())
    if row is None or not visible(request, row["insee"], row["category"]):
        return _not_found(f"incident {incident_id} inconnu")
    ids = list(row.pop("report_ids"))
    kinds, orgs = list(row.pop("report_source_kinds")), list(row.pop("report_source_orgs"))
    row["report_ids"] = ids[:200]
    # a report's identity is its source and id (ids are unique per source system only)
    row["report_source_kinds"], row["report_source_orgs"] = kinds[:200], orgs[:200]
    first, last = int(row["first_occurred_at"]), int(row["last_occurred_at"])
    row["reports"] = await ctx.run_blocking(
        queries.incident_reports, ctx.store, ids, kinds, orgs, first, last
    )
    return json_response(minimise_incident(request, row))


async def alerts(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    q: AlertQuery = parse(AlertQuery, dict(request.query))
    scope, window = _scope(request, q), q.window()
    rows = await ctx.run_blocking(
        queries.list_alerts, ctx.store, scope, window, q.status, q.limit + 1, q.offset
    )
    rows = [minimise_alert(request, row) for row in rows]
    return json_response(_page(rows, q.limit, q.offset))


async def alert(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    alert_id = _path_id(request, "alert_id")
    row = await ctx.run_blocking(queries.get_alert, ctx.store, alert_id, time.time())
    if row is None or not visible(request, row["insee"], row["category"]):
        return _not_found(f"alerte {alert_id} inconnue")
    return json_response(minimise_alert(request, row))


async def alert_action(request: web.Request) -> web.Response:
    """Record an operator action in ClickHouse, then publish it (Kafka) - operator only.

    Append-only: a known `action_id` with the same content (alert, action, comment,
    operator) answers the stored action again (and publishes it again: the retry after a
    502), without writing; with another content it is refused (409).
    """
    ctx = _ctx(request)
    who: Principal = request[PRINCIPAL]
    audit = _action_audit(request, who)
    if not who.can_act:
        ctx.audit.record(audit("forbidden", 403))
        message = "rôle « operator » requis pour acquitter ou clôturer une alerte"
        return json_response({"error": "forbidden", "message": message}, 403)
    alert_id = _path_id(request, "alert_id")
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("corps JSON invalide") from None
    if not isinstance(payload, dict):
        raise BadRequest("le corps doit être un objet JSON")
    body: ActionBody = parse(ActionBody, payload)
    if who.is_partner and body.action != "ack":
        ctx.audit.record(audit("forbidden", 403, alert_id, detail="partner may only ack"))
        message = "un partenaire peut seulement prendre en compte une alerte (avec une note)"
        return json_response({"error": "forbidden", "message": message}, 403)
    now = int(time.time())
    found = await ctx.run_blocking(queries.get_alert, ctx.store, alert_id, now)
    if found is None or not visible(request, found["insee"], found["category"]):
        return _not_found(f"alerte {alert_id} inconnue")
    row: dict[str, Any] = {
        "action_id": str(body.action_id or uuid.uuid4()),
        "alert_id": alert_id,
        "action": body.action,
        "comment": body.comment,
        "operator": who.name,
        "role": who.role,
        "at": now,
    }
    async with ctx.action_lock:  # check then insert, one at a time
        stored = []
        if body.action_id is not None:
            stored = await ctx.run_blocking(stored_action, ctx.store, row["action_id"])
        if any(not _same_action(found, row) for found in stored):
            ctx.audit.record(audit("conflict", 409, alert_id, row, "action_id already used"))
            message = (
                f"action_id {row['action_id']} déjà enregistré pour une autre action :"
                " l'historique des actions ne se réécrit pas, envoyez un nouvel action_id"
            )
            return json_response(
                {"error": "conflict", "message": message, "action_id": row["action_id"]}, 409
            )
        if stored:
            row = {key: stored[0][key] for key in row}  # the action as first recorded
        else:
            await ctx.run_blocking(queries.insert_action, ctx.store, row)
    replayed = bool(stored)
    ctx.audit.record(audit("replayed" if replayed else "recorded", 201, alert_id, row))
    event = {**row, "at": datetime.fromtimestamp(int(row["at"]), UTC).isoformat()}
    if not replayed:
        ctx.hub.publish("change", {"actions": True, "at": now})
    if ctx.action_publisher is not None:
        try:
            await ctx.action_publisher(event)
        except Exception as exc:
            log.warning("alert action %s not published: %s", row["action_id"], exc)
            message = (
                "action enregistrée mais non publiée sur Kafka : réessayez avec le même action_id"
            )
            return json_response(
                {"error": "publish_failed", "message": message, "action_id": row["action_id"]},
                502,
            )
    return json_response({**event, "published": ctx.action_publisher is not None}, 201)


def _same_action(stored: dict[str, Any], row: dict[str, Any]) -> bool:
    return all(stored[key] == row[key] for key in ("alert_id", "action", "comment", "operator"))


def _action_audit(request: web.Request, who: Principal) -> Callable[..., AuditEvent]:
    """A maker of the audit events of one action request (never the comment's text)."""
    ctx = _ctx(request)
    client = ctx.audit.client(request.remote)
    route = request.match_info.route.resource
    template = route.canonical if route else ""

    def make(
        outcome: str,
        status: int,
        alert_id: str = "",
        row: dict[str, Any] | None = None,
        detail: str = "",
    ) -> AuditEvent:
        return AuditEvent(
            kind="action",
            outcome=outcome,
            status=status,
            client=client,
            method=request.method,
            route=template,
            principal=who.name,
            role=who.role,
            alert_id=alert_id or request.match_info.get("alert_id", "")[:128],
            action_id=str(row["action_id"]) if row else "",
            action=str(row["action"]) if row else "",
            detail=detail,
        )

    return make


async def map_data(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    q: MapQuery = parse(MapQuery, dict(request.query))
    scope, window = _scope(request, q), q.window()
    points = await ctx.run_blocking(
        queries.map_incidents, ctx.store, scope, window, q.status, MAX_MAP_POINTS + 1
    )
    zones = await ctx.run_blocking(
        queries.list_alerts, ctx.store, scope, window, "open", MAX_ZONES + 1, 0
    )
    for zone in zones:
        minimise_alert(request, zone)
        zone["cell_polygons"] = [
            [[round(lat, 5), round(lon, 5)] for lat, lon in h3.cell_to_boundary(cell)]
            for cell in zone["cells"][:200]
            if h3.is_valid_cell(cell)
        ]
    return json_response(
        {
            "incidents": points[:MAX_MAP_POINTS],
            "alerts": zones[:MAX_ZONES],
            "truncated": len(points) > MAX_MAP_POINTS or len(zones) > MAX_ZONES,
        }
    )


async def communes_geojson(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    if ctx.geojson is None:
        ctx.geojson = orjson.dumps(await asyncio.to_thread(ctx.refdata.to_geojson, 150.0))
    response = web.Response(body=ctx.geojson, content_type="application/geo+json")
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.enable_compression()
    return response


async def filters(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    access = access_of(request)  # a partner is offered its perimeter's communes only
    communes = [
        {"insee": c.insee, "name": c.name}
        for c in ctx.refdata.communes.values()
        if access.communes is None or c.insee in access.communes
    ]
    communes.sort(key=lambda c: c["name"])
    jurisdictions = [
        {"id": jid, "name": name, "communes": ctx.jurisdiction_codes.get(jid, [])}
        for jid, name in sorted(ctx.jurisdiction_names.items(), key=lambda kv: kv[1])
        if access.communes is None
        or any(code in access.communes for code in ctx.jurisdiction_codes.get(jid, []))
    ]
    return json_response(
        {
            "categories": [
                {"value": k, "label": v}
                for k, v in CATEGORY_LABELS.items()
                if not access.categories or k in access.categories
            ],
            "source_kinds": [{"value": k, "label": v} for k, v in SOURCE_KIND_LABELS.items()],
            "communes": communes,
            "jurisdictions": jurisdictions,
        }
    )


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: hello, change, alert, status (+ a comment ping every 15 s).

    Ends with an `expired` event when the caller's credentials expire (the page fetches a
    new stream token and reconnects), and as soon as the client has gone. 429 beyond the
    caps on open streams (per principal, in total).
    """
    ctx = _ctx(request)
    hub = ctx.hub
    who: Principal = request[PRINCIPAL]
    expires = request[EXPIRES]
    try:
        queue = hub.subscribe(who.name, stream_view(request))
    except StreamLimit as exc:
        ctx.audit.record(
            AuditEvent(
                kind="stream",
                outcome="limit",
                status=429,
                client=ctx.audit.client(request.remote),
                method=request.method,
                route="/api/stream",
                principal=who.name,
                role=who.role,
            )
        )
        refused = json_response({"error": "too_many_streams", "message": exc.message}, 429)
        refused.headers["Retry-After"] = str(int(SSE_LIMIT_RETRY_SECONDS))
        return refused
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    loop = asyncio.get_running_loop()
    try:
        try:
            await hub.ensure_baseline()
        except Exception as exc:  # the store is down: the stream still opens, saying so
            log.warning("console baseline failed: %s", exc)
            hub.store_ok = False
        await response.prepare(request)
        hello = {"at": int(time.time()), "store": "ok" if hub.store_ok else "down"}
        hello["expires"] = expires
        await response.write(b"retry: 2000\nevent: hello\ndata: " + orjson.dumps(hello) + b"\n\n")
        next_ping = loop.time() + SSE_PING_SECONDS
        while hub.subscribed(queue) and not _gone(request):
            left = expires - time.time()
            if left <= 0:
                expired = {"at": int(time.time()), "expired": expires}
                await response.write(b"event: expired\ndata: " + orjson.dumps(expired) + b"\n\n")
                break
            wait = min(SSE_WATCH_SECONDS, left, max(0.0, next_ping - loop.time()))
            try:
                frame = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                if loop.time() < next_ping:
                    continue  # look at the expiry and the connection again
                frame = b": ping\n\n"
                next_ping = loop.time() + SSE_PING_SECONDS
            if frame is None:
                break
            await response.write(frame)
    except ConnectionResetError:
        pass
    finally:
        hub.unsubscribe(queue)
    return response


def _gone(request: web.Request) -> bool:
    """The client closed the connection (aiohttp does not cancel the handler then)."""
    transport = request.transport
    return transport is None or transport.is_closing()


# (method, path, handler, auth): auth is "public", "bearer", or "stream" (bearer or ?st=)
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/healthz", healthz, "public"),
    ("GET", "/api/openapi.json", openapi, "bearer"),
    ("GET", "/api/me", me, "bearer"),
    ("GET", "/api/summary", summary, "bearer"),
    ("GET", "/api/incidents", incidents, "bearer"),
    ("GET", "/api/incidents/{incident_id}", incident, "bearer"),
    ("POST", "/api/incidents/{incident_id}/actions", incident_action, "bearer"),
    ("GET", "/api/alerts", alerts, "bearer"),
    ("GET", "/api/alerts/{alert_id}", alert, "bearer"),
    ("POST", "/api/alerts/{alert_id}/actions", alert_action, "bearer"),
    ("GET", "/api/map", map_data, "bearer"),
    ("GET", "/api/map/layers", map_layers, "bearer"),
    ("GET", "/api/refdata/communes.geojson", communes_geojson, "bearer"),
    ("GET", "/api/refdata/jurisdictions.geojson", jurisdictions_geojson, "bearer"),
    ("GET", "/api/refdata/filters", filters, "bearer"),
    ("GET", "/api/stream", stream, "stream"),
    ("GET", "/api/diagnostic", diagnostic.diagnostic_json, "bearer"),
    ("GET", "/api/diagnostic/report", diagnostic.diagnostic_report, "bearer"),
    *PARTNER_ROUTES,  # the partner registry (operators only)
]
