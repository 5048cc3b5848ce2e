"""The map's layers (`/api/map/layers`) and jurisdiction outlines, over the seeded store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h3
import pytest
import shapely
from shapely.geometry import shape

from agents.core.refdata import RefData
from console import TokenRegistry
from console.map_api import INCIDENT_FIELDS, alert_zones, hexagon_counts
from tests.console import rows
from tests.console.support import NOW, TOKENS, get_json


async def test_layers_points_hexagons_zones(client: Any) -> None:
    c, _ = client
    data = await get_json(c, "/api/map/layers")
    assert data["incidents"]["fields"] == list(INCIDENT_FIELDS)
    points = [dict(zip(INCIDENT_FIELDS, r, strict=True)) for r in data["incidents"]["rows"]]
    # the open incidents of the last 24 h (i0 was closed by its version 2), newest first
    assert sorted(p["incident_id"] for p in points) == ["i1", "i2", "i3", "i4", "i5", "i6", "im"]
    assert [p["last_occurred_at"] for p in points] == sorted(
        (p["last_occurred_at"] for p in points), reverse=True
    )
    evry = next(p for p in points if p["incident_id"] == "i1")
    assert (evry["lat"], evry["lon"]) == (round(rows.EVRY[2], 5), round(rows.EVRY[3], 5))
    # counts per r7 and r8 cell: six incidents at Évry's point, one at Massy's
    assert set(data["hexagons"]) == {"7", "8"}
    for res in (7, 8):
        hexes = data["hexagons"][str(res)]
        counts = {f["properties"]["cell"]: f["properties"]["n"] for f in hexes["features"]}
        assert counts == {
            h3.latlng_to_cell(rows.EVRY[2], rows.EVRY[3], res): 6,
            h3.latlng_to_cell(rows.MASSY[2], rows.MASSY[3], res): 1,
        }
    for feature in data["hexagons"]["8"]["features"]:
        ring = feature["geometry"]["coordinates"][0]
        assert len(ring) == 7 and ring[0] == ring[-1]  # a closed hexagon, [lon, lat]
        assert 1.9 < ring[0][0] < 2.6 and 48.2 < ring[0][1] < 48.9
        cell = shape(feature["geometry"]).representative_point()
        assert h3.latlng_to_cell(cell.y, cell.x, 8) == feature["properties"]["cell"]
    zones = {f["properties"]["alert_id"]: f for f in data["zones"]["features"]}
    assert set(zones) == {"a1", "a2"}
    assert len(zones["a1"]["geometry"]["coordinates"]) == 2  # one polygon per alert cell
    assert data["truncated"] is False and data["limit"] == 20_000


async def test_layers_follow_the_filters(client: Any) -> None:
    c, _ = client
    data = await get_json(c, "/api/map/layers?category=rodeo")
    assert [r[0] for r in data["incidents"]["rows"]] == ["im"]
    [feature] = data["hexagons"]["7"]["features"]
    assert feature["properties"] == {
        "cell": h3.latlng_to_cell(rows.MASSY[2], rows.MASSY[3], 7),
        "n": 1,
    }
    assert [f["properties"]["alert_id"] for f in data["zones"]["features"]] == ["a2"]
    closed = await get_json(c, "/api/map/layers?status=closed")
    assert [r[0] for r in closed["incidents"]["rows"]] == ["i0"]


@pytest.mark.parametrize(
    "query",
    ["status=maybe", "zoom=3", "category=pillage",
     pytest.param(f"since={int(NOW - 40 * 86_400)}", id="since=40-days-ago")],
)
async def test_layers_refuse_bad_parameters(client: Any, query: str) -> None:
    c, _ = client
    body = await get_json(c, f"/api/map/layers?{query}", status=400)
    assert body["error"] == "bad_request" and body["message"]


async def test_layers_need_a_token(client: Any) -> None:
    c, _ = client
    for path in ("/api/map/layers", "/api/refdata/jurisdictions.geojson"):
        response = await c.get(path)
        assert response.status == 401


def test_hexagon_counts_empty_and_zones_skip_invalid_cells() -> None:
    assert hexagon_counts([], 8) == {"type": "FeatureCollection", "features": []}
    good = h3.latlng_to_cell(48.63, 2.44, 8)
    alert = {"alert_id": "z", "category": "vol", "severity": 2, "observed": 5, "insee": []}
    zones = alert_zones([{**alert, "cells": ["not-a-cell", good]}, {**alert, "cells": ["x"]}])
    [feature] = zones["features"]  # the alert without one valid cell draws nothing
    assert len(feature["geometry"]["coordinates"]) == 1


async def test_jurisdiction_outlines_cover_their_communes(client: Any, refdata: RefData) -> None:
    c, _ = client
    geo = await get_json(c, "/api/refdata/jurisdictions.geojson")
    filters = await get_json(c, "/api/refdata/filters")
    members = {j["id"]: j["communes"] for j in filters["jurisdictions"]}
    assert {f["properties"]["id"] for f in geo["features"]} == set(members)
    for feature in geo["features"]:
        jid = feature["properties"]["id"]
        outline = shape(feature["geometry"])
        assert outline.is_valid and feature["properties"]["communes"] == len(members[jid])
        for insee in members[jid]:  # each member commune's inside point lies inside the outline
            point = refdata.communes[insee].polygon.representative_point()
            assert outline.buffer(0.003).contains(point), (jid, insee)
    total = shapely.union_all([shape(f["geometry"]) for f in geo["features"]])
    assert abs(total.area - refdata.outline.area) / refdata.outline.area < 0.02


GHOST = "ghost-partner-token-0123456789"  # a partner org no registry knows: sees nothing


@pytest.fixture
def registry() -> TokenRegistry:
    return TokenRegistry.parse(f"{TOKENS},{GHOST}:partner:ghost-desk:ghost", b"s" * 32)


async def test_a_partner_outside_any_perimeter_gets_no_map_data(client: Any) -> None:
    c, _ = client
    headers = {"Authorization": f"Bearer {GHOST}"}
    geo = await get_json(c, "/api/refdata/jurisdictions.geojson", headers)
    assert geo["type"] == "FeatureCollection" and geo["features"] == []
    layers = await get_json(c, "/api/map/layers", headers)
    assert layers["incidents"]["rows"] == [] and layers["zones"]["features"] == []
    assert layers["hexagons"]["7"]["features"] == []
    # the ops room still gets every outline (the cache is shared, the filter per request)
    assert len((await get_json(c, "/api/refdata/jurisdictions.geojson"))["features"]) > 10


async def test_the_map_library_is_served_as_javascript(client: Any) -> None:
    """Module scripts and module workers need a JavaScript MIME type (nosniff is on)."""
    vendor = Path(__file__).parents[2] / "console" / "static" / "vendor" / "maplibre-gl"
    if not (vendor / "maplibre-gl.mjs").exists():
        pytest.skip("maplibre-gl not copied (bash scripts/console-assets.sh)")
    c, _ = client
    for path in (
        "vendor/maplibre-gl/maplibre-gl.mjs",
        "vendor/maplibre-gl/maplibre-gl-worker.mjs",
        "map.js",
    ):
        response = await c.get(f"/static/{path}")
        assert response.status == 200, path
        assert response.content_type in ("text/javascript", "application/javascript"), path
    css = await c.get("/static/vendor/maplibre-gl/maplibre-gl.css")
    assert css.status == 200 and css.content_type == "text/css"
    assert "'self'" in css.headers["Content-Security-Policy"]
