"""Console JSON API on a real store (chDB, and ClickHouse 18.16 with the `clickhouse` marker)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from console import TokenRegistry
from console.api import ROUTES
from console.auth import Principal, TokenConfigError
from console.security import ConsoleLimits
from streams.storage import Store
from tests.console import rows
from tests.console.support import (
    NOW,
    OP,
    OPERATOR,
    TOKENS,
    VIEW,
    get_json,
    next_event,
    run_blocking,
)


# ---- access control ------------------------------------------------------------------------
# 39 refused requests from one address: more than the default burst of failures allowed
@pytest.mark.parametrize("limits", [ConsoleLimits(auth_failure_burst=100)])
async def test_health_is_public_and_every_api_route_needs_a_token(client: Any) -> None:
    c, _ = client
    assert (await c.get("/healthz")).status == 200
    protected = [
        (m, p.replace("{incident_id}", "i1").replace("{alert_id}", "a1").replace("{org}", "o1"))
        for m, p, _, auth in ROUTES
        if auth != "public"
    ]
    assert len(protected) == len(ROUTES) - 1
    for method, path in protected:
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-0123456789"},
            {"Authorization": OPERATOR},
        ):
            response = await c.request(method, path, headers=headers)
            assert response.status == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # the page shell is public but holds no data
    page = await c.get("/")
    assert page.status == 200 and "Jeton d'accès" in await page.text()


async def test_viewer_reads_but_cannot_act(client: Any, seeded: Store) -> None:
    c, recorder = client
    assert (await get_json(c, "/api/me", VIEW))["role"] == "viewer"
    await get_json(c, "/api/alerts", VIEW)
    response = await c.post(
        "/api/alerts/a1/actions", headers=VIEW, json={"action": "ack", "comment": "vu"}
    )
    assert response.status == 403
    assert recorder.events == []
    assert seeded.query("SELECT count() AS n FROM alert_actions")[0]["n"] == 0


async def test_operator_acknowledges_and_closes(client: Any, seeded: Store) -> None:
    c, recorder = client
    response = await c.post(
        "/api/alerts/a1/actions",
        headers=OP,
        json={"action": "ack", "comment": "Patrouille envoyée"},
    )
    assert response.status == 201, await response.text()
    stored = await run_blocking(seeded.query, "SELECT * FROM alert_actions FINAL")
    assert [
        (r["alert_id"], r["action"], r["comment"], r["operator"], r["role"]) for r in stored
    ] == [("a1", "ack", "Patrouille envoyée", "alice", "operator")]
    assert len(recorder.events) == 1
    event = recorder.events[0]
    assert event["action_id"] == stored[0]["action_id"] and event["alert_id"] == "a1"
    assert event["at"].endswith("+00:00")
    alert = await get_json(c, "/api/alerts/a1")
    assert alert["operator_state"]["action"] == "ack" and len(alert["actions"]) == 1

    # retrying with the same action_id records it once
    body = {
        "action": "close",
        "comment": "Fin",
        "action_id": "9b2f6c1e-6f1a-4d3b-9a7e-1c2d3e4f5a6b",
    }
    for _ in range(2):
        assert (await c.post("/api/alerts/a1/actions", headers=OP, json=body)).status == 201
    closes = await run_blocking(
        seeded.query, "SELECT count() AS n FROM alert_actions FINAL WHERE action = 'close'"
    )
    assert closes[0]["n"] == 1
    listed = await get_json(c, "/api/alerts?status=open")
    states = {a["alert_id"]: a["operator_state"] for a in listed["items"]}
    assert states["a1"]["action"] == "close" and states["a2"] is None


async def test_action_errors(client: Any, seeded: Store) -> None:
    c, recorder = client
    for body in (
        {"action": "ack"},
        {"action": "ack", "comment": ""},
        {"action": "delete", "comment": "x"},
        {"action": "ack", "comment": "x" * 501},
        {"action": "ack", "comment": "x", "extra": 1},
    ):
        response = await c.post("/api/alerts/a1/actions", headers=OP, json=body)
        assert response.status == 400, body
    bad_json = await c.post("/api/alerts/a1/actions", headers=OP, data=b"{not json")
    assert bad_json.status == 400
    unknown = await c.post(
        "/api/alerts/nope/actions", headers=OP, json={"action": "ack", "comment": "x"}
    )
    assert unknown.status == 404
    recorder.fail = True
    failed = await c.post(
        "/api/alerts/a2/actions", headers=OP, json={"action": "ack", "comment": "x"}
    )
    assert failed.status == 502
    assert (await failed.json())["error"] == "publish_failed"
    # recorded in ClickHouse even though Kafka failed (retry with the same action_id)
    assert seeded.query("SELECT count() AS n FROM alert_actions")[0]["n"] == 1


# ---- reads ---------------------------------------------------------------------------------
async def test_summary_counts(client: Any) -> None:
    c, _ = client
    s = await get_json(c, "/api/summary")
    paris = ZoneInfo("Europe/Paris")
    today = datetime.fromtimestamp(NOW, paris).date()
    seeded_times = [NOW - 60 - i * 300 for i in range(6)] + [NOW - 7200 - i for i in range(3)]
    seeded_times.append(NOW - 3 * 86_400)
    expected_today = sum(datetime.fromtimestamp(t, paris).date() == today for t in seeded_times)
    assert s["last_hour"] == 6
    assert s["today"] == expected_today
    assert len(s["trend"]) == 7 and sum(d["n"] for d in s["trend"]) == 10
    assert s["in_window"] == 9
    assert {r["category"]: r["n"] for r in s["by_category"]} == {"vol": 6, "rodeo": 3}
    assert {r["insee"]: r["n"] for r in s["by_commune"]} == {"91228": 6, "91377": 3}
    assert {r["jurisdiction"]: r["name"] for r in s["by_jurisdiction"]}["csp-massy"] == "CSP Massy"
    assert s["open_incidents"] == 7  # i1..i6 + im (i0 closed in version 2)
    assert s["open_alerts"] == 2


async def test_filters(client: Any) -> None:
    c, _ = client
    s = await get_json(c, "/api/summary?category=rodeo")
    assert s["in_window"] == 3 and s["last_hour"] == 0 and s["open_alerts"] == 1
    s = await get_json(c, "/api/summary?insee=91228")
    assert s["in_window"] == 6 and s["open_incidents"] == 6
    s = await get_json(c, "/api/summary?jurisdiction=csp-massy")
    assert s["in_window"] == 3
    alerts = await get_json(c, "/api/alerts?jurisdiction=csp-massy")
    assert [a["alert_id"] for a in alerts["items"]] == ["a2"]
    # time range: a 4-day window includes the 3-day-old report
    since = int(NOW - 4 * 86_400)
    assert (await get_json(c, f"/api/summary?since={since}"))["in_window"] == 10
    until = datetime.fromtimestamp(NOW - 3600).astimezone().isoformat()
    s = await get_json(c, f"/api/summary?until={until.replace('+', '%2B')}")
    assert s["in_window"] == 3  # 24 h before `until` (1 h ago): only the Massy reports


async def test_incident_pages_and_versions(client: Any) -> None:
    c, _ = client
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = await get_json(c, f"/api/incidents?limit=3&offset={offset}")
        assert len(page["items"]) <= 3
        seen += [i["incident_id"] for i in page["items"]]
        offset = page["next_offset"]
    assert sorted(seen) == sorted([f"i{i}" for i in range(7)] + ["im"])
    assert len(seen) == len(set(seen))
    open_ids = [
        i["incident_id"] for i in (await get_json(c, "/api/incidents?status=open"))["items"]
    ]
    assert "i0" not in open_ids and len(open_ids) == 7
    closed = await get_json(c, "/api/incidents?status=closed")
    assert [(i["incident_id"], i["version"]) for i in closed["items"]] == [("i0", 2)]
    detail = await get_json(c, "/api/incidents/im")
    assert detail["report_count"] == 3
    assert sorted(r["report_id"] for r in detail["reports"]) == ["m0", "m1", "m2"]
    assert "contact_hash" not in detail["reports"][0]
    await get_json(c, "/api/incidents/unknown", status=404)


async def test_map_and_refdata(client: Any) -> None:
    c, _ = client
    data = await get_json(c, "/api/map")
    assert len(data["incidents"]) == 7 and not data["truncated"]
    zones = {a["alert_id"]: a for a in data["alerts"]}
    assert set(zones) == {"a1", "a2"} and len(zones["a1"]["cell_polygons"]) == 2
    lat, lon = zones["a1"]["cell_polygons"][0][0]
    assert 48 < lat < 49 and 2 < lon < 3
    geo = await get_json(c, "/api/refdata/communes.geojson")
    assert len(geo["features"]) == 194
    filters = await get_json(c, "/api/refdata/filters")
    assert {"value": "rodeo", "label": "Rodéo"} in filters["categories"]
    assert len(filters["communes"]) == 194


@pytest.mark.parametrize(
    "query",
    [
        "limit=201",
        "limit=0",
        "limit=abc",
        "offset=-1",
        "offset=20000",
        "category=pillage",
        "insee=9122",
        "insee=91228'%20OR%201=1",
        "jurisdiction=a%20b",
        "since=2024-01-01T00:00:00",
        "since=1700000000&until=1600000000",
        pytest.param(f"since={int(NOW - 40 * 86_400)}", id="since=40-days-ago"),
        "status=maybe",
        "unknown=1",
    ],
)
async def test_parameter_validation(client: Any, query: str) -> None:
    c, _ = client
    body = await get_json(c, f"/api/incidents?{query}", status=400)
    assert body["error"] == "bad_request" and body["message"].startswith("paramètres invalides")
    assert body["details"]


async def test_path_ids_are_validated(client: Any) -> None:
    c, _ = client
    await get_json(c, "/api/alerts/a1'%20OR%20'1'='1", status=400)


async def test_openapi_lists_the_real_endpoints(client: Any) -> None:
    c, _ = client
    doc = await get_json(c, "/api/openapi.json")
    assert doc["openapi"].startswith("3.")
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(m, p) for m, p, _, _ in ROUTES}
    params = {p["name"] for p in doc["paths"]["/api/incidents"]["get"]["parameters"]}
    assert {"limit", "offset", "since", "until", "category", "insee", "jurisdiction"} <= params
    limit = next(
        p for p in doc["paths"]["/api/incidents"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == 200


# ---- live stream ---------------------------------------------------------------------------
async def test_stream_is_authenticated_and_pushes_alerts(client: Any, seeded: Store) -> None:
    c, _ = client
    assert (await c.get("/api/stream")).status == 401
    assert (await c.get("/api/stream?st=forged.viewer.9999999999.xx")).status == 401
    me = await get_json(c, "/api/me", VIEW)
    response = await c.get(f"/api/stream?st={me['stream_token']}")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert (await next_event(response, "hello", 2))["store"] == "ok"
    await asyncio.sleep(0.5)  # the poller takes its baseline
    await run_blocking(seeded.insert, "alerts", [rows.alert("a-live", time.time())])
    pushed = await next_event(response, "alert", 3)  # pushed within the poller's reach
    assert pushed["alert_id"] == "a-live" and pushed["operator_state"] is None
    await run_blocking(seeded.insert, "reports", [rows.report("r-live", time.time())])
    while not (await next_event(response, "change", 3))["reports"]:
        pass  # the change of the alert insert may come first
    response.close()


def test_tokens() -> None:
    registry = TokenRegistry.parse(TOKENS, b"k" * 32)
    assert registry.check_bearer(f"Bearer {OPERATOR}") == Principal("alice", "operator")
    assert registry.check_bearer(OPERATOR) is None
    assert registry.check_token("nope") is None
    token, expiry = registry.stream_token(Principal("wall", "viewer"), now=1000)
    assert registry.check_stream_token(token, now=1000) == Principal("wall", "viewer")
    assert registry.check_stream_token(token, now=expiry + 1) is None
    assert registry.check_stream_token(token.replace("viewer", "operator"), now=1000) is None
    other = TokenRegistry.parse(TOKENS, b"x" * 32)
    assert other.check_stream_token(token, now=1000) is None
    for bad in ("short:viewer:x", f"{OPERATOR}:admin:x", f"{OPERATOR}:viewer", f"{OPERATOR}::x"):
        with pytest.raises(TokenConfigError) as info:
            TokenRegistry.parse(bad)
        assert OPERATOR not in str(info.value)
