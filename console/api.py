"""JSON API handlers; routes are declared in `ROUTES` (the OpenAPI document mirrors them)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import h3
import orjson
from aiohttp import web

from console import queries
from console.auth import Principal
from console.context import CTX, PRINCIPAL, ConsoleContext
from console.labels import CATEGORY_LABELS, SOURCE_KIND_LABELS
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
from streams.runtime import run_blocking

log = logging.getLogger(__name__)
SSE_PING_SECONDS = 15.0
MAX_ZONES = 200


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _ctx(request: web.Request) -> ConsoleContext:
    return request.app[CTX]


def _scope(ctx: ConsoleContext, f: Filters) -> queries.Scope:
    codes = ctx.jurisdiction_codes.get(f.jurisdiction, []) if f.jurisdiction else None
    return queries.Scope(f.category.value if f.category else None, f.insee, f.jurisdiction, codes)


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
    token, expiry = _ctx(request).tokens.stream_token(who)
    return json_response(
        {"name": who.name, "role": who.role, "stream_token": token, "stream_token_expires": expiry}
    )


async def summary(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    q: SummaryQuery = parse(SummaryQuery, dict(request.query))
    data = await run_blocking(queries.summary, ctx.store, _scope(ctx, q), q.window())
    for row in data["by_jurisdiction"]:
        row["name"] = ctx.jurisdiction_names.get(row["jurisdiction"], row["jurisdiction"])
    return json_response(data)


async def incidents(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    q: IncidentQuery = parse(IncidentQuery, dict(request.query))
    scope, window = _scope(ctx, q), q.window()
    rows = await run_blocking(
        queries.list_incidents, ctx.store, scope, window, q.status, q.limit + 1, q.offset
    )
    return json_response(_page(rows, q.limit, q.offset))


async def incident(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    incident_id = _path_id(request, "incident_id")
    row = await run_blocking(queries.get_incident, ctx.store, incident_id, time.time())
    if row is None:
        return _not_found(f"incident {incident_id} inconnu")
    ids = list(row.pop("report_ids"))
    row["report_ids"] = ids[:200]
    first, last = int(row["first_occurred_at"]), int(row["last_occurred_at"])
    row["reports"] = await run_blocking(queries.incident_reports, ctx.store, ids, first, last)
    return json_response(row)


async def alerts(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    q: AlertQuery = parse(AlertQuery, dict(request.query))
    scope, window = _scope(ctx, q), q.window()
    rows = await run_blocking(
        queries.list_alerts, ctx.store, scope, window, q.status, q.limit + 1, q.offset
    )
    return json_response(_page(rows, q.limit, q.offset))


async def alert(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    alert_id = _path_id(request, "alert_id")
    row = await run_blocking(queries.get_alert, ctx.store, alert_id, time.time())
    if row is None:
        return _not_found(f"alerte {alert_id} inconnue")
    return json_response(row)


async def alert_action(request: web.Request) -> web.Response:
    """Record an operator action in ClickHouse, then publish it (Kafka) - operator only."""
    ctx = _ctx(request)
    who: Principal = request[PRINCIPAL]
    if not who.can_act:
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
    now = int(time.time())
    if await run_blocking(queries.get_alert, ctx.store, alert_id, now) is None:
        return _not_found(f"alerte {alert_id} inconnue")
    row = {
        "action_id": str(body.action_id or uuid.uuid4()),
        "alert_id": alert_id,
        "action": body.action,
        "comment": body.comment,
        "operator": who.name,
        "role": who.role,
        "at": now,
    }
    await run_blocking(queries.insert_action, ctx.store, row)
    event = {**row, "at": datetime.fromtimestamp(now, UTC).isoformat()}
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


async def map_data(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    q: MapQuery = parse(MapQuery, dict(request.query))
    scope, window = _scope(ctx, q), q.window()
    points = await run_blocking(
        queries.map_incidents, ctx.store, scope, window, q.status, MAX_MAP_POINTS + 1
    )
    zones = await run_blocking(
        queries.list_alerts, ctx.store, scope, window, "open", MAX_ZONES + 1, 0
    )
    for zone in zones:
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
    communes = [{"insee": c.insee, "name": c.name} for c in ctx.refdata.communes.values()]
    communes.sort(key=lambda c: c["name"])
    jurisdictions = [
        {"id": jid, "name": name, "communes": ctx.jurisdiction_codes.get(jid, [])}
        for jid, name in sorted(ctx.jurisdiction_names.items(), key=lambda kv: kv[1])
    ]
    return json_response(
        {
            "categories": [{"value": k, "label": v} for k, v in CATEGORY_LABELS.items()],
            "source_kinds": [{"value": k, "label": v} for k, v in SOURCE_KIND_LABELS.items()],
            "communes": communes,
            "jurisdictions": jurisdictions,
        }
    )


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: hello, change, alert, status (+ a comment ping every 15 s)."""
    hub = _ctx(request).hub
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    queue = hub.subscribe()
    try:
        try:
            await hub.ensure_baseline()
        except Exception as exc:  # the store is down: the stream still opens, saying so
            log.warning("console baseline failed: %s", exc)
            hub.store_ok = False
        await response.prepare(request)
        hello = {"at": int(time.time()), "store": "ok" if hub.store_ok else "down"}
        await response.write(b"retry: 2000\nevent: hello\ndata: " + orjson.dumps(hello) + b"\n\n")
        while True:
            try:
                frame = await asyncio.wait_for(queue.get(), SSE_PING_SECONDS)
            except TimeoutError:
                frame = b": ping\n\n"
            if frame is None:
                break
            await response.write(frame)
    except ConnectionResetError:
        pass
    finally:
        hub.unsubscribe(queue)
    return response


# (method, path, handler, auth): auth is "public", "bearer", or "stream" (bearer or ?st=)
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/healthz", healthz, "public"),
    ("GET", "/api/openapi.json", openapi, "bearer"),
    ("GET", "/api/me", me, "bearer"),
    ("GET", "/api/summary", summary, "bearer"),
    ("GET", "/api/incidents", incidents, "bearer"),
    ("GET", "/api/incidents/{incident_id}", incident, "bearer"),
    ("GET", "/api/alerts", alerts, "bearer"),
    ("GET", "/api/alerts/{alert_id}", alert, "bearer"),
    ("POST", "/api/alerts/{alert_id}/actions", alert_action, "bearer"),
    ("GET", "/api/map", map_data, "bearer"),
    ("GET", "/api/refdata/communes.geojson", communes_geojson, "bearer"),
    ("GET", "/api/refdata/filters", filters, "bearer"),
    ("GET", "/api/stream", stream, "stream"),
]
