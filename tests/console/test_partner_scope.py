"""Scoped access: a partner token reads and acts only inside its perimeter, on every route.

Partners (registered in the `partners` table of a real store: chDB, and ClickHouse 18.16
with the `clickhouse` marker):
- `pm-massy` (municipal police of Massy, 91377), token issued by the registry;
- `csp-evry` (Évry-Courcouronnes, 91228, category `vol` only), a configured token
  `token:partner:name:org`.
The seeded data (`conftest.seeded`) has incidents i0-i6 and alert a1 in Évry (vol), incident
`im` and alert a2 in Massy (rodeo).

`SCOPED_ROUTES` maps every route of `console.api.ROUTES` to its test: a route added without
one fails `test_every_route_has_a_scoped_access_case`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agents.core.refdata import load_refdata
from agents.ports import partner_registry
from console import TokenRegistry
from console.api import ROUTES
from console.auth import Principal, TokenConfigError
from console.context import CTX
from console.partners import PartnerDirectory
from streams.storage import Store
from tests.console import rows
from tests.console.support import (
    OP,
    TOKENS,
    VIEW,
    Recorder,
    get_json,
    next_event,
    run_blocking,
)

Client = TestClient[web.Request, web.Application]

MASSY_TOKEN = "vgp_massy-partner-token-0123456789"
EVRY_TOKEN = "evry-partner-token-0123456789"
GHOST_TOKEN = "ghost-partner-token-0123456789"  # a partner org the registry does not know
MASSY = {"Authorization": f"Bearer {MASSY_TOKEN}"}
EVRY = {"Authorization": f"Bearer {EVRY_TOKEN}"}
GHOST = {"Authorization": f"Bearer {GHOST_TOKEN}"}
PARTNER_TOKENS = (
    f"{TOKENS},{EVRY_TOKEN}:partner:csp-evry-desk:csp-evry,{GHOST_TOKEN}:partner:g:ghost"
)


def _register(store: Store) -> None:
    refdata = load_refdata()
    partner_registry.add(
        store,
        {
            "org": "pm-massy",
            "name": "Police municipale de Massy",
            "kind": "police_municipale",
            "perimeter": {"communes": ["91377"]},
        },
        refdata,
        None,
        "test",
    )
    partner_registry.set_token(store, "pm-massy", MASSY_TOKEN, "test")
    partner_registry.add(
        store,
        {
            "org": "csp-evry",
            "name": "Commissariat d'Évry-Courcouronnes",
            "kind": "police_nationale",
            "perimeter": {"communes": ["91228"], "categories": ["vol"]},
        },
        refdata,
        None,
        "test",
    )


@pytest.fixture
def seeded(seeded: Store) -> Store:
    """The console tests' rows plus the partners (registered before the console starts)."""
    _register(seeded)
    return seeded


@pytest.fixture
def registry() -> TokenRegistry:
    return TokenRegistry.parse(PARTNER_TOKENS, b"s" * 32)


async def _status(c: Client, method: str, path: str, headers: dict[str, str], **kw: Any) -> int:
    response = await c.request(method, path, headers=headers, **kw)
    await response.read()
    return response.status


# ---- one case per route ------------------------------------------------------------------
async def case_healthz(c: Client, store: Store, recorder: Recorder) -> None:
    assert await _status(c, "GET", "/healthz", {}) == 200  # public, no data


async def case_openapi(c: Client, store: Store, recorder: Recorder) -> None:
    doc = await get_json(c, "/api/openapi.json", MASSY)  # the API's description, no data
    assert doc == await get_json(c, "/api/openapi.json", OP)


async def case_me(c: Client, store: Store, recorder: Recorder) -> None:
    me = await get_json(c, "/api/me", MASSY)
    assert (me["role"], me["partner"]["org"]) == ("partner", "pm-massy")
    assert [x["insee"] for x in me["partner"]["communes"]] == ["91377"]
    assert "credentials" not in me["partner"] and "token" not in str(me["partner"])
    evry = await get_json(c, "/api/me", EVRY)
    assert evry["partner"]["categories"] == ["vol"]


async def case_summary(c: Client, store: Store, recorder: Recorder) -> None:
    s = await get_json(c, "/api/summary", MASSY)
    assert s["in_window"] == 3 and s["open_incidents"] == 1 and s["open_alerts"] == 1
    assert [r["insee"] for r in s["by_commune"]] == ["91377"]
    assert [r["category"] for r in s["by_category"]] == ["rodeo"]
    assert s.get("feedback") is None  # the feedback share is area-wide: withheld
    # asking for another commune gives nothing (filters only narrow the perimeter)
    outside = await get_json(c, "/api/summary?insee=91228", MASSY)
    assert (outside["in_window"], outside["open_incidents"], outside["open_alerts"]) == (0, 0, 0)
    assert outside["by_commune"] == [] and outside["last_hour"] == 0
    assert all(day["n"] == 0 for day in outside["trend"])
    # the operator sees both communes
    assert (await get_json(c, "/api/summary"))["in_window"] == 9


async def case_incidents(c: Client, store: Store, recorder: Recorder) -> None:
    listed = await get_json(c, "/api/incidents", MASSY)
    assert [i["incident_id"] for i in listed["items"]] == ["im"]
    assert (await get_json(c, "/api/incidents?insee=91228", MASSY))["items"] == []
    assert (await get_json(c, "/api/incidents?jurisdiction=csp-evry", MASSY))["items"] == []
    evry = await get_json(c, "/api/incidents?status=all", EVRY)
    assert {i["insee"] for i in evry["items"]} == {"91228"}
    assert (await get_json(c, "/api/incidents?category=rodeo", EVRY))["items"] == []
    assert (await get_json(c, "/api/incidents", GHOST))["items"] == []


async def case_incident(c: Client, store: Store, recorder: Recorder) -> None:
    body = await get_json(c, "/api/incidents/i1", MASSY, 404)
    assert body["error"] == "not_found"
    assert await get_json(c, "/api/incidents/i1", GHOST, 404)
    assert await get_json(c, "/api/incidents/im", EVRY, 404)  # Massy, and not a vol
    own = await get_json(c, "/api/incidents/im", MASSY)
    # other sources' report ids and orgs are not shown to a partner (these incident rows
    # predate the report sources: no id can be attributed, none is shown)
    assert own["report_ids"] == [] and own["report_source_orgs"] == []
    assert {r["report_id"] for r in own["reports"]} == {""}
    assert {r["commune"] for r in own["reports"]} == {"Massy"}
    full = await get_json(c, "/api/incidents/im")
    assert full["report_ids"] == ["m0", "m1", "m2"]


async def case_alerts(c: Client, store: Store, recorder: Recorder) -> None:
    assert [a["alert_id"] for a in (await get_json(c, "/api/alerts", MASSY))["items"]] == ["a2"]
    assert [a["alert_id"] for a in (await get_json(c, "/api/alerts", EVRY))["items"]] == ["a1"]
    assert (await get_json(c, "/api/alerts?insee=91228", MASSY))["items"] == []
    assert (await get_json(c, "/api/alerts", GHOST))["items"] == []


async def case_alert(c: Client, store: Store, recorder: Recorder) -> None:
    await get_json(c, "/api/alerts/a1", MASSY, 404)
    await get_json(c, "/api/alerts/a2", EVRY, 404)
    assert (await get_json(c, "/api/alerts/a2", MASSY))["alert_id"] == "a2"
    # an operator's note stays in the ops room; the partner sees that it was acknowledged
    ops = await c.post(
        "/api/alerts/a2/actions", headers=OP, json={"action": "ack", "comment": "note interne"}
    )
    assert ops.status == 201
    seen = await get_json(c, "/api/alerts/a2", MASSY)
    assert seen["operator_state"]["action"] == "ack"
    assert seen["operator_state"]["comment"] == "" and seen["operator_state"]["operator"] == ""
    assert [(a["action"], a["comment"]) for a in seen["actions"]] == [("ack", "")]
    listed = (await get_json(c, "/api/alerts", MASSY))["items"]
    assert listed[0]["operator_state"]["comment"] == ""
    assert "note interne" not in str(await get_json(c, "/api/map", MASSY))


async def case_alert_action(c: Client, store: Store, recorder: Recorder) -> None:
    ack = {"action": "ack", "comment": "pris en compte"}
    outside = await c.post("/api/alerts/a1/actions", headers=MASSY, json=ack)
    assert outside.status == 404  # as an unknown alert: its existence is not disclosed
    assert (await c.post("/api/alerts/a1/actions", headers=GHOST, json=ack)).status == 404
    close = await c.post(
        "/api/alerts/a2/actions", headers=MASSY, json={"action": "close", "comment": "fin"}
    )
    assert close.status == 403  # a partner acknowledges only
    stored = await run_blocking(store.query, "SELECT count() AS n FROM alert_actions")
    assert stored[0]["n"] == 0 and recorder.events == []
    inside = await c.post("/api/alerts/a2/actions", headers=MASSY, json=ack)
    assert inside.status == 201, await inside.text()
    rows_ = await run_blocking(
        store.query, "SELECT alert_id, action, comment, operator, role FROM alert_actions FINAL"
    )
    assert rows_ == [
        {
            "alert_id": "a2",
            "action": "ack",
            "comment": "pris en compte",
            "operator": "partenaire:pm-massy",
            "role": "partner",
        }
    ]
    own = await get_json(c, "/api/alerts/a2", MASSY)  # its own note it sees
    assert own["operator_state"]["comment"] == "pris en compte"


async def case_incident_action(c: Client, store: Store, recorder: Recorder) -> None:
    note = {"action": "pris_en_compte", "comment": "patrouille prévue"}
    for headers, incident_id in ((MASSY, "i1"), (GHOST, "im"), (EVRY, "im")):
        response = await c.post(f"/api/incidents/{incident_id}/actions", headers=headers, json=note)
        assert response.status == 404, (headers, incident_id)  # as an unknown incident
    stored = await run_blocking(store.query, "SELECT count() AS n FROM incident_actions")
    assert stored[0]["n"] == 0
    inside = await c.post("/api/incidents/im/actions", headers=MASSY, json=note)
    assert inside.status == 201, await inside.text()
    who = await run_blocking(store.query, "SELECT incident_id, role FROM incident_actions")
    assert who == [{"incident_id": "im", "role": "partner"}]


async def _diagnostic(c: Client, route: str) -> None:
    for headers, query in (
        (MASSY, "commune=91228"),  # another commune
        (MASSY, "communes=91377,91228"),  # partly outside
        (MASSY, "jurisdiction=csp-massy"),  # a jurisdiction larger than the perimeter
        (EVRY, "commune=91228"),  # a perimeter limited to some categories
        (GHOST, "commune=91377"),  # an org the registry does not know
    ):
        assert await _status(c, "GET", f"{route}?{query}", headers) == 403, (headers, query)
    assert await _status(c, "GET", f"{route}?commune=91377", MASSY) == 200


async def case_diagnostic(c: Client, store: Store, recorder: Recorder) -> None:
    await _diagnostic(c, "/api/diagnostic")


async def case_diagnostic_report(c: Client, store: Store, recorder: Recorder) -> None:
    await _diagnostic(c, "/api/diagnostic/report")


async def _operator_only(c: Client, method: str, path: str, body: Any = None) -> None:
    """Viewers and partners get 403 and change nothing (the registry's versions counted)."""
    for headers in (MASSY, EVRY, GHOST, VIEW):
        assert await _status(c, method, path, headers, json=body) == 403, (headers, path)


async def _versions(store: Store) -> int:
    rows_ = await run_blocking(store.query, "SELECT count() AS n FROM partners")
    return int(rows_[0]["n"])


async def case_list_partners(c: Client, store: Store, recorder: Recorder) -> None:
    await _operator_only(c, "GET", "/api/partners")
    listed = await get_json(c, "/api/partners")
    assert sorted(p["org"] for p in listed["items"]) == ["csp-evry", "pm-massy"]
    assert "credentials" not in str(listed) and "token_sha256" not in str(listed)


async def case_add_partner(c: Client, store: Store, recorder: Recorder) -> None:
    before = await _versions(store)
    entry = {
        "org": "mairie-91228",
        "name": "Mairie d'Évry",
        "kind": "collectivite",
        "perimeter": {"communes": ["91228"]},
    }
    await _operator_only(c, "POST", "/api/partners", entry)
    assert await _versions(store) == before
    bad = await c.post("/api/partners", headers=OP, json={**entry, "perimeter": {}})
    assert bad.status == 400 and "empty perimeter" in (await bad.json())["message"]
    made = await c.post("/api/partners", headers=OP, json=entry)
    assert made.status == 201
    body = await made.json()
    # the new partner's token works at once, inside its perimeter only
    token = {"Authorization": f"Bearer {body['console_token']}"}
    seen = await get_json(c, "/api/incidents?status=all", token)
    assert {i["insee"] for i in seen["items"]} == {"91228"}
    assert "credentials" not in body["partner"]


async def case_get_partner(c: Client, store: Store, recorder: Recorder) -> None:
    await _operator_only(c, "GET", "/api/partners/pm-massy")
    found = await get_json(c, "/api/partners/pm-massy")
    assert [v["version"] for v in found["history"]] == [2, 1]  # added, then its token bound
    assert "credentials" not in str(found)
    await get_json(c, "/api/partners/nobody", OP, 404)


async def case_update_partner(c: Client, store: Store, recorder: Recorder) -> None:
    before = await _versions(store)
    change = {"perimeter": {"communes": ["91228"]}}
    await _operator_only(c, "PATCH", "/api/partners/pm-massy", change)
    assert await _versions(store) == before
    # a partner cannot widen its own perimeter: it still sees Massy only
    assert [i["insee"] for i in (await get_json(c, "/api/incidents", MASSY))["items"]] == ["91377"]
    stale = await c.patch("/api/partners/pm-massy", headers=OP, json={**change, "version": 1})
    assert stale.status == 409
    bad = await c.patch(
        "/api/partners/pm-massy", headers=OP, json={"perimeter": {"communes": ["1"]}}
    )
    assert bad.status == 400
    done = await c.patch("/api/partners/pm-massy", headers=OP, json={**change, "version": 2})
    assert done.status == 200
    assert {i["insee"] for i in (await get_json(c, "/api/incidents", MASSY))["items"]} == {"91228"}


async def case_rotate_secrets(c: Client, store: Store, recorder: Recorder) -> None:
    before = await _versions(store)
    await _operator_only(c, "POST", "/api/partners/pm-massy/secrets", {"token": True})
    assert await _versions(store) == before
    assert await _status(c, "GET", "/api/me", MASSY) == 200
    rotated = await c.post("/api/partners/pm-massy/secrets", headers=OP, json={"token": True})
    assert rotated.status == 200
    new = (await rotated.json())["console_token"]
    assert await _status(c, "GET", "/api/me", MASSY) == 401  # the old token stopped working
    assert await _status(c, "GET", "/api/me", {"Authorization": f"Bearer {new}"}) == 200


async def case_map(c: Client, store: Store, recorder: Recorder) -> None:
    data = await get_json(c, "/api/map", MASSY)
    assert [p["incident_id"] for p in data["incidents"]] == ["im"]
    assert [a["alert_id"] for a in data["alerts"]] == ["a2"]
    assert (await get_json(c, "/api/map?insee=91228", MASSY))["incidents"] == []
    ghost = await get_json(c, "/api/map", GHOST)
    assert ghost["incidents"] == [] and ghost["alerts"] == []


async def case_map_layers(c: Client, store: Store, recorder: Recorder) -> None:
    data = await get_json(c, "/api/map/layers", MASSY)
    assert [r[0] for r in data["incidents"]["rows"]] == ["im"]
    assert [f["properties"]["alert_id"] for f in data["zones"]["features"]] == ["a2"]
    ghost = await get_json(c, "/api/map/layers", GHOST)
    assert ghost["incidents"]["rows"] == [] and ghost["zones"]["features"] == []


async def case_communes_geojson(c: Client, store: Store, recorder: Recorder) -> None:
    # reference data of the whole area (the map's background), no incident data
    response = await c.get("/api/refdata/communes.geojson", headers=MASSY)
    data = await response.json(content_type=None)
    assert response.status == 200 and data["type"] == "FeatureCollection"
    assert set(data["features"][0]["properties"]) <= {"insee", "name", "population", "area_km2"}


async def case_jurisdictions_geojson(c: Client, store: Store, recorder: Recorder) -> None:
    response = await c.get("/api/refdata/jurisdictions.geojson", headers=MASSY)
    data = await response.json(content_type=None)
    assert response.status == 200 and data["type"] == "FeatureCollection"
    assert "incident_id" not in str(data)[:100_000]


async def case_filters(c: Client, store: Store, recorder: Recorder) -> None:
    massy = await get_json(c, "/api/refdata/filters", MASSY)
    assert [x["insee"] for x in massy["communes"]] == ["91377"]
    assert all("91377" in j["communes"] for j in massy["jurisdictions"])
    evry = await get_json(c, "/api/refdata/filters", EVRY)
    assert [x["value"] for x in evry["categories"]] == ["vol"]
    assert len((await get_json(c, "/api/refdata/filters"))["communes"]) > 100


async def case_stream(c: Client, store: Store, recorder: Recorder) -> None:
    me = await get_json(c, "/api/me", MASSY)
    response = await c.get(f"/api/stream?st={me['stream_token']}")
    assert response.status == 200
    await next_event(response, "hello", 2)
    await asyncio.sleep(0.5)  # the poller takes its baseline
    outside = rows.alert("a-evry", time.time())
    inside = rows.alert("a-massy", time.time() + 1, category="rodeo", insee=["91377"])
    await run_blocking(store.insert, "alerts", [outside])
    await run_blocking(store.insert, "alerts", [inside])
    seen = [(await next_event(response, "alert", 3))["alert_id"]]
    with contextlib.suppress(TimeoutError):
        seen.append((await next_event(response, "alert", 1.5))["alert_id"])
    assert seen == ["a-massy"]
    response.close()


SCOPED_ROUTES: dict[str, Callable[[Client, Store, Recorder], Awaitable[None]]] = {
    "GET /healthz": case_healthz,
    "GET /api/openapi.json": case_openapi,
    "GET /api/me": case_me,
    "GET /api/summary": case_summary,
    "GET /api/incidents": case_incidents,
    "GET /api/incidents/{incident_id}": case_incident,
    "GET /api/alerts": case_alerts,
    "GET /api/alerts/{alert_id}": case_alert,
    "POST /api/alerts/{alert_id}/actions": case_alert_action,
    "POST /api/incidents/{incident_id}/actions": case_incident_action,
    "GET /api/map": case_map,
    "GET /api/map/layers": case_map_layers,
    "GET /api/refdata/communes.geojson": case_communes_geojson,
    "GET /api/refdata/jurisdictions.geojson": case_jurisdictions_geojson,
    "GET /api/refdata/filters": case_filters,
    "GET /api/stream": case_stream,
    "GET /api/diagnostic": case_diagnostic,
    "GET /api/diagnostic/report": case_diagnostic_report,
    "GET /api/partners": case_list_partners,
    "POST /api/partners": case_add_partner,
    "GET /api/partners/{org}": case_get_partner,
    "PATCH /api/partners/{org}": case_update_partner,
    "POST /api/partners/{org}/secrets": case_rotate_secrets,
}
ROUTE_KEYS = [f"{method} {path}" for method, path, _, _ in ROUTES]


def test_every_route_has_a_scoped_access_case() -> None:
    """A route added to the console must say how a partner token is kept in its perimeter."""
    missing = sorted(set(ROUTE_KEYS) - set(SCOPED_ROUTES))
    assert not missing, f"routes without a scoped-access case in {__file__}: {missing}"


@pytest.mark.parametrize("route", ROUTE_KEYS)
async def test_a_partner_stays_in_its_perimeter(
    route: str, client: tuple[Client, Recorder], seeded: Store
) -> None:
    case = SCOPED_ROUTES.get(route)
    if case is None:
        pytest.fail(f"no scoped-access case for {route}")
    c, recorder = client
    await case(c, seeded, recorder)


# ---- the registry's changes apply without a restart ------------------------------------------
def _directory(c: Client) -> PartnerDirectory:
    app = c.app
    assert app is not None
    directory = app[CTX].partners
    assert directory is not None
    return directory


async def test_a_disabled_partner_loses_access_within_the_refresh(
    client: tuple[Client, Recorder], seeded: Store
) -> None:
    c, _ = client
    assert (await get_json(c, "/api/incidents", EVRY))["items"]
    refdata = load_refdata()
    await run_blocking(
        partner_registry.update, seeded, "csp-evry", {"active": False}, refdata, None, "test"
    )
    await run_blocking(
        partner_registry.update, seeded, "pm-massy", {"active": False}, refdata, None, "test"
    )
    await _directory(c).refresh()  # what the refresh task does every few seconds
    assert (await get_json(c, "/api/incidents", EVRY))["items"] == []
    await get_json(c, "/api/alerts/a1", EVRY, 404)
    assert (await c.get("/api/incidents", headers=MASSY)).status == 401  # its token is off


async def test_a_changed_perimeter_applies_within_the_refresh(
    client: tuple[Client, Recorder], seeded: Store
) -> None:
    c, _ = client
    assert [i["incident_id"] for i in (await get_json(c, "/api/incidents", MASSY))["items"]] == [
        "im"
    ]
    await run_blocking(
        partner_registry.update,
        seeded,
        "pm-massy",
        {"perimeter": {"communes": ["91228"]}},
        load_refdata(),
        None,
        "test",
    )
    await _directory(c).refresh()
    found = {i["insee"] for i in (await get_json(c, "/api/incidents", MASSY))["items"]}
    assert found == {"91228"}


# ---- tokens ----------------------------------------------------------------------------------
def test_partner_tokens_name_their_org() -> None:
    registry = TokenRegistry.parse(PARTNER_TOKENS, b"k" * 32)
    who = registry.check_token(EVRY_TOKEN)
    assert who == Principal("csp-evry-desk", "partner", "csp-evry")
    token, _ = registry.stream_token(who, now=1000)
    assert registry.check_stream_token(token, now=1000) == who
    # the org cannot be changed nor dropped in a stream token
    forged = token.replace("partner~csp-evry", "partner~pm-massy")
    assert registry.check_stream_token(forged, now=1000) is None
    for spec, reason in (
        (f"{EVRY_TOKEN}:partner:desk", "names its org"),
        (f"{EVRY_TOKEN}:operator:desk:csp-evry", "names its org"),
        (f"{EVRY_TOKEN}:partner:desk:CSP Evry", "slug"),
    ):
        with pytest.raises(TokenConfigError, match=reason):
            TokenRegistry.parse(spec)


# ---- the subscribed live feed ----------------------------------------------------------------
async def test_the_subscribed_feed_carries_only_the_subscribed_alerts(
    client: tuple[Client, Recorder], seeded: Store
) -> None:
    """`/api/stream?feed=subscriptions`: of the alerts inside its perimeter, a partner gets
    only those of the categories it subscribed to (what its webhook receives); the plain
    stream keeps every alert of the perimeter."""
    c, _ = client
    await run_blocking(
        partner_registry.update,
        seeded,
        "pm-massy",
        {
            "contact": {"webhook_url": "https://massy.example/vigie"},
            "subscriptions": [{"kinds": ["alert"], "categories": ["rodeo"]}],
        },
        load_refdata(),
        None,
        "test",
    )
    await _directory(c).refresh()
    me = await get_json(c, "/api/me", MASSY)
    subscribed = await c.get(f"/api/stream?st={me['stream_token']}&feed=subscriptions")
    everything = await c.get(f"/api/stream?st={me['stream_token']}")
    for response in (subscribed, everything):
        assert response.status == 200
        await next_event(response, "hello", 2)
    await asyncio.sleep(0.5)  # the poller takes its baseline
    not_subscribed = rows.alert("a-massy-vol", time.time(), category="vol", insee=["91377"])
    wanted = rows.alert("a-massy-rodeo", time.time() + 1, category="rodeo", insee=["91377"])
    await run_blocking(seeded.insert, "alerts", [not_subscribed])
    await run_blocking(seeded.insert, "alerts", [wanted])

    async def seen(response: Any) -> set[str]:
        ids = {(await next_event(response, "alert", 3))["alert_id"]}
        with contextlib.suppress(TimeoutError):
            ids.add((await next_event(response, "alert", 1.5))["alert_id"])
        return ids

    assert await seen(subscribed) == {"a-massy-rodeo"}
    assert await seen(everything) == {"a-massy-vol", "a-massy-rodeo"}
    subscribed.close()
    everything.close()
