"""The map's layers: incident points, H3 hexagon counts, alert zones, jurisdiction outlines.

`GET /api/map/layers` answers everything the page's map draws for the current filters in
one read: the incidents (compact rows, at most `MAX_LAYER_POINTS`, most recent first), the
number of those incidents per H3 cell at resolutions 7 and 8 (with each cell's boundary, so
the page needs no H3 library; it shows r7 zoomed out, r8 zoomed in, without asking again)
and the cells of the open alerts (one multipolygon per alert).
`GET /api/refdata/jurisdictions.geojson` gives each jurisdiction's outline: the union of its
communes' (simplified) polygons, computed once per application.

Coordinates are GeoJSON order (longitude, latitude), rounded to 1e-5 degree (about 1 m).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import h3
import orjson
import shapely
from aiohttp import web

from agents.core.refdata import RefData, simplify_coverage
from console import queries
from console.access import access_of, filter_scope
from console.context import CTX, ConsoleContext
from console.params import MapQuery, parse

MAX_LAYER_POINTS = 20_000
MAX_LAYER_ZONES = 200
MAX_ZONE_CELLS = 200
OUTLINE_SIMPLIFY_M = 150.0  # as the commune outlines of /api/refdata/communes.geojson
# the columns of one incident row of `incidents.rows`, in order
INCIDENT_FIELDS = (
    "incident_id",
    "lon",
    "lat",
    "category",
    "status",
    "report_count",
    "commune",
    "last_occurred_at",
)
HEX_RESOLUTIONS = (7, 8)


class MapLayersQuery(MapQuery):
    """The filters of the map layers: those of `/api/map` (status default "open")."""


def _json(data: Any) -> web.Response:
    response = web.Response(body=orjson.dumps(data), content_type="application/json")
    response.enable_compression()
    return response


def _ctx(request: web.Request) -> ConsoleContext:
    return request.app[CTX]


def _ring(boundary: tuple[tuple[float, float], ...]) -> list[list[float]]:
    """An H3 boundary ((lat, lng), ...) as a closed GeoJSON ring of [lng, lat]."""
    ring = [[round(lng, 5), round(lat, 5)] for lat, lng in boundary]
    return [*ring, ring[0]]


def hexagon_counts(points: list[tuple[float, float]], res: int) -> dict[str, Any]:
    """The number of `points` (lat, lon) per H3 cell of resolution `res`, as a GeoJSON
    FeatureCollection of cell polygons (property `n`), most populated first."""
    counts = Counter(h3.latlng_to_cell(lat, lon, res) for lat, lon in points)
    features = [
        {
            "type": "Feature",
            "id": index,
            "properties": {"cell": cell, "n": n},
            "geometry": {"type": "Polygon", "coordinates": [_ring(h3.cell_to_boundary(cell))]},
        }
        for index, (cell, n) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    ]
    return {"type": "FeatureCollection", "features": features}


def alert_zones(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """One feature per alert: its valid cells (at most `MAX_ZONE_CELLS`) as a multipolygon."""
    features: list[dict[str, Any]] = []
    for alert in alerts:
        cells = [c for c in alert["cells"][:MAX_ZONE_CELLS] if h3.is_valid_cell(c)]
        if not cells:
            continue
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "alert_id": alert["alert_id"],
                    "category": alert["category"],
                    "severity": int(alert["severity"]),
                    "observed": int(alert["observed"]),
                    "insee": list(alert.get("insee") or []),
                },
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [[_ring(h3.cell_to_boundary(c))] for c in cells],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


async def map_layers(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    q: MapLayersQuery = parse(MapLayersQuery, dict(request.query))
    scope, window = filter_scope(request, q), q.window()  # within the caller's perimeter
    found = await ctx.run_blocking(
        queries.map_incidents, ctx.store, scope, window, q.status, MAX_LAYER_POINTS + 1
    )
    zones = await ctx.run_blocking(
        queries.list_alerts, ctx.store, scope, window, "open", MAX_LAYER_ZONES + 1, 0
    )
    points = found[:MAX_LAYER_POINTS]
    rows = [
        [
            str(p["incident_id"]),
            round(float(p["lon"]), 5),
            round(float(p["lat"]), 5),
            str(p["category"]),
            str(p["status"]),
            int(p["report_count"]),
            str(p["commune"]),
            int(p["last_occurred_at"]),
        ]
        for p in points
    ]
    located = [(float(p["lat"]), float(p["lon"])) for p in points]
    hexagons = {
        str(res): await asyncio.to_thread(hexagon_counts, located, res) for res in HEX_RESOLUTIONS
    }
    return _json(
        {
            "incidents": {"fields": list(INCIDENT_FIELDS), "rows": rows},
            "hexagons": hexagons,
            "zones": alert_zones(zones[:MAX_LAYER_ZONES]),
            "truncated": len(found) > MAX_LAYER_POINTS or len(zones) > MAX_LAYER_ZONES,
            "limit": MAX_LAYER_POINTS,
        }
    )


def jurisdiction_outlines(
    refdata: RefData, names: dict[str, str], codes: dict[str, list[str]]
) -> dict[str, Any]:
    """Each jurisdiction's outline (union of its communes, coverage-simplified), GeoJSON."""
    insee = refdata.codes
    simplified = dict(
        zip(
            insee,
            simplify_coverage([refdata.communes[c].polygon for c in insee], OUTLINE_SIMPLIFY_M),
            strict=True,
        )
    )
    features: list[dict[str, Any]] = []
    for jid in sorted(codes):
        members = [simplified[c] for c in codes[jid] if c in simplified]
        if not members:
            continue
        outline = shapely.set_precision(shapely.union_all(members), 1e-5)
        features.append(
            {
                "type": "Feature",
                "id": len(features),
                "properties": {"id": jid, "name": names.get(jid, jid), "communes": len(members)},
                "geometry": shapely.geometry.mapping(outline),
            }
        )
    return {"type": "FeatureCollection", "features": features}


async def jurisdictions_geojson(request: web.Request) -> web.Response:
    """Reference data (no incident data); a partner gets the jurisdictions that meet its
    perimeter, as `/api/refdata/filters` lists them."""
    ctx = _ctx(request)
    if ctx.jurisdiction_geojson is None:
        outlines = await asyncio.to_thread(
            jurisdiction_outlines, ctx.refdata, ctx.jurisdiction_names, ctx.jurisdiction_codes
        )
        ctx.jurisdiction_geojson = orjson.dumps(outlines)
    body = ctx.jurisdiction_geojson
    allowed = access_of(request).communes
    if allowed is not None:
        outlines = orjson.loads(body)
        outlines["features"] = [
            f
            for f in outlines["features"]
            if any(c in allowed for c in ctx.jurisdiction_codes.get(f["properties"]["id"], []))
        ]
        body = orjson.dumps(outlines)
    response = web.Response(body=body, content_type="application/geo+json")
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.enable_compression()
    return response
