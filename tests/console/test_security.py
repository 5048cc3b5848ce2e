"""Console hardening on a real store (chDB, and ClickHouse 18.16 with the `clickhouse` marker):
security headers on every response, append-only actions, comment characters, stream expiry
and caps, throttling of failed authentications, the audit trail."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from agents.core.refdata import RefData
from console import TokenRegistry, bound_port, create_console_app, start_console
from console.app import SECURITY_HEADERS
from console.context import CTX
from console.security import ConsoleLimits, FailureLimiter
from console.settings import ConsoleSettings
from streams.logging_setup import JsonFormatter
from streams.storage import Store
from tests.console.support import (
    OP,
    OPERATOR,
    TOKENS,
    VIEW,
    VIEWER,
    get_json,
    next_event,
    run_blocking,
)

Client = TestClient[web.Request, web.Application]
ACTION_ID = "5d0c6a52-3f7e-4c1b-8a44-0e6f1f7b9c21"
BOB = "bob-operator-token-0123456789"
WRONG = "wrong-token-0123456789abcdef"


def assert_secured(response: Any, what: object) -> None:
    missing = {
        name: response.headers.get(name)
        for name, value in SECURITY_HEADERS.items()
        if response.headers.get(name) != value
    }
    assert missing == {}, (what, response.status)


async def stored_actions(store: Store) -> list[dict[str, Any]]:
    """Every row of alert_actions, merged or not (no FINAL)."""
    return await run_blocking(store.query, "SELECT * FROM alert_actions ORDER BY at, comment")


async def audit_rows(c: Client, store: Store) -> list[dict[str, Any]]:
    await c.app[CTX].audit.flush()
    return await run_blocking(store.query, "SELECT * FROM audit_events FINAL ORDER BY at, kind")


# ---- 6. security headers on every response ---------------------------------------------------
async def test_every_response_carries_the_security_headers(
    seeded: Store, refdata: RefData, registry: TokenRegistry
) -> None:
    app = create_console_app(
        seeded, refdata=refdata, tokens=registry, poll_seconds=0.2, run_blocking=run_blocking
    )

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("unexpected")

    app.router.add_get("/boom", boom)
    me_token = registry.stream_token(registry.check_token(VIEWER))[0]  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as c:
        css = await c.get("/static/app.css")
        checks: list[tuple[str, str, dict[str, Any], int | set[int]]] = [
            ("GET", "/", {}, 200),
            ("GET", "/healthz", {}, 200),
            ("GET", "/static/app.js", {}, 200),
            (
                "GET",
                "/static/app.css",
                {"headers": {"If-Modified-Since": css.headers["Last-Modified"]}},
                304,
            ),
            ("GET", "/static/missing.js", {}, 404),
            ("GET", "/static/..%2Fauth.py", {}, {403, 404}),
            ("GET", "/nope", {}, 404),
            ("GET", "/api/nope", {"headers": OP}, 404),
            ("DELETE", "/api/me", {"headers": OP}, 405),
            ("POST", "/healthz", {}, 405),
            ("GET", "/api/me", {}, 401),
            ("GET", "/api/me", {"headers": OP}, 200),
            ("GET", "/api/incidents?limit=0", {"headers": OP}, 400),
            ("GET", "/api/alerts/unknown", {"headers": OP}, 404),
            ("POST", "/api/alerts/a1/actions", {"headers": VIEW, "json": {}}, 403),
            ("POST", "/api/alerts/a1/actions", {"headers": OP, "data": b"x" * 70_000}, 413),
            ("GET", "/boom", {}, 500),
        ]
        for method, path, kwargs, status in checks:
            response = await c.request(method, path, **kwargs)
            expected = status if isinstance(status, set) else {status}
            assert response.status in expected, (method, path, await response.text())
            assert_secured(response, (method, path))
            if response.status >= 400 and not path.startswith("/static"):
                body = await response.json()
                assert body["error"] and body["message"], (method, path, body)
        not_allowed = await c.request("DELETE", "/api/me", headers=OP)
        assert "GET" in not_allowed.headers["Allow"]
        assert (await not_allowed.json())["message"] == "méthode non autorisée sur cette ressource"
        # the live stream, prepared by its handler
        streams: list[dict[str, Any]] = [{"headers": VIEW}, {"params": {"st": me_token}}]
        for kwargs in streams:
            sse = await c.get("/api/stream", **kwargs)
            assert sse.status == 200 and sse.headers["Content-Type"] == "text/event-stream"
            assert_secured(sse, ("stream", kwargs))
            sse.close()


# ---- 2. append-only, idempotent actions --------------------------------------------------
@pytest.mark.parametrize(
    "registry", [TokenRegistry.parse(f"{TOKENS},{BOB}:operator:bob", b"s" * 32)]
)
async def test_an_action_id_never_rewrites_the_history(client: Any, seeded: Store) -> None:
    c, recorder = client
    body = {"action": "ack", "comment": "Patrouille envoyée", "action_id": ACTION_ID}
    first = await c.post("/api/alerts/a1/actions", headers=OP, json=body)
    assert first.status == 201, await first.text()
    original = await first.json()
    await asyncio.sleep(1.1)  # a replay a second later still answers the first `at`

    # the same action again (a retry): the same answer, nothing written
    again = await c.post(
        "/api/alerts/a1/actions", headers=OP, json={**body, "comment": " Patrouille envoyée "}
    )
    assert again.status == 201
    assert await again.json() == original
    assert len(recorder.events) == 2 and recorder.events[1] == recorder.events[0]

    # the same id with another content: refused, whatever differs
    bob = {"Authorization": f"Bearer {BOB}"}
    for url, headers, changed in (
        ("/api/alerts/a1/actions", OP, {**body, "comment": "Rien à signaler"}),
        ("/api/alerts/a1/actions", OP, {**body, "action": "close"}),
        ("/api/alerts/a2/actions", OP, body),
        ("/api/alerts/a1/actions", bob, body),
    ):
        refused = await c.post(url, headers=headers, json=changed)
        assert refused.status == 409, (url, changed)
        answer = await refused.json()
        assert answer["error"] == "conflict" and answer["action_id"] == ACTION_ID
        assert "déjà enregistré" in answer["message"] and "ne se réécrit pas" in answer["message"]
        assert_secured(refused, "409")

    rows = await stored_actions(seeded)
    assert [
        (r["action_id"], r["alert_id"], r["action"], r["comment"], r["operator"]) for r in rows
    ] == [(ACTION_ID, "a1", "ack", "Patrouille envoyée", "alice")]
    history = (await get_json(c, "/api/alerts/a1"))["actions"]
    assert [(h["action"], h["comment"], h["at"]) for h in history] == [
        ("ack", "Patrouille envoyée", rows[0]["at"])
    ]
    assert len(recorder.events) == 2  # refusals publish nothing


async def test_concurrent_posts_of_one_action_id_store_one_action(
    client: Any, seeded: Store
) -> None:
    c, _ = client
    bodies = [
        {"action": "close", "comment": f"Version {i}", "action_id": ACTION_ID} for i in range(4)
    ]
    answers = await asyncio.gather(
        *(c.post("/api/alerts/a1/actions", headers=OP, json=b) for b in bodies)
    )
    assert sorted(a.status for a in answers) == [201, 409, 409, 409]
    assert len(await stored_actions(seeded)) == 1


# ---- 7. characters refused in comments -----------------------------------------------------
@pytest.mark.parametrize(
    ("character", "kind"),
    [
        ("\u202e", "contrôle de direction du texte"),  # right-to-left override
        ("\u202a", "contrôle de direction du texte"),
        ("\u2066", "contrôle de direction du texte"),  # isolates
        ("\u2069", "contrôle de direction du texte"),
        ("\u200f", "contrôle de direction du texte"),  # right-to-left mark
        ("\u061c", "contrôle de direction du texte"),
        ("\x00", "caractère de contrôle"),
        ("\x1b", "caractère de contrôle"),  # terminal escape sequences
        ("\r", "caractère de contrôle"),
        ("\x7f", "caractère de contrôle"),
        ("\x85", "caractère de contrôle"),
    ],
    ids=lambda value: f"U+{ord(value):04X}" if len(value) == 1 else None,
)
async def test_comments_refuse_bidi_and_control_characters(
    client: Any, seeded: Store, character: str, kind: str
) -> None:
    c, recorder = client
    comment = f"facture{character}txt.exe"
    response = await c.post(
        "/api/alerts/a1/actions", headers=OP, json={"action": "ack", "comment": comment}
    )
    assert response.status == 400
    body = await response.json()
    code = f"U+{ord(character):04X}"
    assert body["error"] == "bad_request"
    assert f"caractère interdit {code} ({kind})" in body["message"], body
    assert body["details"][0]["field"] == "comment"
    assert await stored_actions(seeded) == [] and recorder.events == []


async def test_comments_keep_tabs_newlines_and_accents(client: Any, seeded: Store) -> None:
    c, _ = client
    comment = "Équipe\tBAC 3\nSituation calme, à suivre — « RAS » ✓"
    response = await c.post(
        "/api/alerts/a1/actions", headers=OP, json={"action": "ack", "comment": comment}
    )
    assert response.status == 201, await response.text()
    assert [r["comment"] for r in await stored_actions(seeded)] == [comment]


# ---- 3. streams end when their credentials expire ------------------------------------------
@pytest.mark.parametrize("registry", [TokenRegistry.parse(TOKENS, b"s" * 32, stream_seconds=2)])
async def test_a_stream_ends_when_its_token_expires(client: Any) -> None:
    c, _ = client
    hub = c.app[CTX].hub
    me = await get_json(c, "/api/me", VIEW)
    assert me["stream_token_expires"] - time.time() <= 2
    for kwargs in ({"params": {"st": me["stream_token"]}}, {"headers": VIEW}):
        t0 = time.monotonic()
        response = await c.get("/api/stream", **kwargs)
        assert response.status == 200
        hello = await next_event(response, "hello", 2)
        expired = await next_event(response, "expired", 4)
        assert expired["expired"] == hello["expires"]
        assert time.monotonic() - t0 < 3.5
        rest = await asyncio.wait_for(response.content.read(), 2)  # up to the end
        assert rest.strip() == b"" and response.content.at_eof()  # the server closed it
        assert hub.subscribers == 0
    # the expired stream token opens nothing any more
    assert (await c.get("/api/stream", params={"st": me["stream_token"]})).status == 401


# ---- 4. caps on open streams ---------------------------------------------------------------
async def test_open_streams_are_capped_per_principal_and_in_total(
    seeded: Store, refdata: RefData, registry: TokenRegistry
) -> None:
    # served as `vigie console` serves it: aiohttp does not cancel a handler whose client
    # left there (unlike the TestServer), which is what the slot release below is about
    app = create_console_app(
        seeded,
        refdata=refdata,
        tokens=registry,
        run_blocking=run_blocking,
        limits=ConsoleLimits(max_streams=3, max_streams_per_principal=2),
    )
    runner = await start_console(app, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(runner)}/api/stream"
    hub = app[CTX].hub
    try:
        async with ClientSession() as session:

            async def open_stream(headers: dict[str, str]) -> Any:
                response = await session.get(url, headers=headers)
                if response.status == 200:
                    await next_event(response, "hello", 2)
                return response

            wall = [await open_stream(VIEW) for _ in range(2)]
            assert [s.status for s in wall] == [200, 200]
            refused = await open_stream(VIEW)
            assert refused.status == 429
            body = await refused.json()
            assert body["error"] == "too_many_streams"
            assert "pour ce compte (2 au plus)" in body["message"]
            assert int(refused.headers["Retry-After"]) > 0
            assert_secured(refused, "429 stream")
            desk = await open_stream(OP)
            assert desk.status == 200
            full = await open_stream(OP)
            assert full.status == 429
            assert "sur la console (3 au plus)" in (await full.json())["message"]
            assert hub.subscribers == 3

            # a client that leaves frees its slot at once (not at the next ping, 15 s later)
            wall[0].close()
            t0 = time.monotonic()
            while hub.streams_of("wall") > 1:
                assert time.monotonic() - t0 < 3, "the closed stream still holds its slot"
                await asyncio.sleep(0.1)
            again = await open_stream(VIEW)
            assert again.status == 200
            for response in (wall[1], desk, again):
                response.close()
    finally:
        await runner.cleanup()


# ---- 5. throttled failed authentications, audit trail --------------------------------------
@pytest.mark.parametrize(
    "limits", [ConsoleLimits(auth_failure_burst=3, auth_failures_per_minute=6.0)]
)
async def test_failed_authentications_are_throttled_and_audited(
    client: Any, seeded: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vigie.audit")
    c, _ = client
    wrong = {"Authorization": f"Bearer {WRONG}"}
    assert [(await c.get("/api/me", headers=wrong)).status for _ in range(2)] == [401, 401]
    assert (await c.get("/api/stream", params={"st": "forged.viewer.9999999999.xx"})).status == 401
    # the bucket is spent: 429 for every credential, the right one too, then for a while
    for headers in (wrong, OP, VIEW):
        throttled = await c.get("/api/summary", headers=headers)
        assert throttled.status == 429
        assert 1 <= int(throttled.headers["Retry-After"]) <= 10
        body = await throttled.json()
        assert body["error"] == "too_many_failures"
        assert body["message"].startswith("trop d'échecs d'authentification")
        assert_secured(throttled, "429 auth")
    assert (await c.get("/healthz")).status == 200  # public routes are not throttled
    assert (await c.get("/")).status == 200

    rows = await audit_rows(c, seeded)
    assert sorted((r["kind"], r["outcome"], r["status"], r["route"]) for r in rows) == [
        ("auth", "refused", 401, "/api/me"),
        ("auth", "refused", 401, "/api/me"),
        ("auth", "refused", 401, "/api/stream"),
        ("auth", "throttled", 429, "/api/summary"),  # once per episode, not per request
    ]
    assert {r["detail"] for r in rows if r["status"] == 401} == {"invalid_credentials"}
    assert len({r["client"] for r in rows}) == 1
    assert re.fullmatch(r"[0-9a-f]{16}", rows[0]["client"])
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "vigie.audit"]
    assert len(lines) == 4
    for line in lines:
        entry = orjson.loads(line)
        assert entry["audit"] == "auth" and entry["client"] == rows[0]["client"]
    everything = orjson.dumps(rows).decode() + "\n".join(lines)
    for secret in (WRONG, OPERATOR, VIEWER, "127.0.0.1", "forged"):
        assert secret not in everything


async def test_missing_credentials_count_as_failures(client: Any, seeded: Store) -> None:
    c, _ = client
    statuses = [(await c.get("/api/alerts")).status for _ in range(11)]
    assert statuses == [401] * 10 + [429]  # the default burst: 10
    rows = await audit_rows(c, seeded)
    assert sorted((r["outcome"], r["detail"]) for r in rows) == [
        *[("refused", "no_credentials")] * 10,
        ("throttled", ""),
    ]


async def test_operator_actions_are_audited_without_their_comment(
    client: Any, seeded: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vigie.audit")
    c, _ = client
    body = {
        "action": "ack",
        "comment": "Témoin : M. Dupont, 06 12 34 56 78",
        "action_id": ACTION_ID,
    }
    for headers, payload in (
        (OP, body),
        (OP, body),
        (OP, {**body, "comment": "autre"}),
        (VIEW, body),
    ):
        await c.post("/api/alerts/a1/actions", headers=headers, json=payload)
    rows = await audit_rows(c, seeded)
    assert sorted((r["outcome"], r["status"], r["principal"], r["action_id"]) for r in rows) == [
        ("conflict", 409, "alice", ACTION_ID),
        ("forbidden", 403, "wall", ""),
        ("recorded", 201, "alice", ACTION_ID),
        ("replayed", 201, "alice", ACTION_ID),
    ]
    assert {(r["kind"], r["alert_id"], r["route"]) for r in rows} == {
        ("action", "a1", "/api/alerts/{alert_id}/actions")
    }
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "vigie.audit"]
    everything = orjson.dumps(rows).decode() + "\n".join(lines)
    for secret in ("Dupont", "06 12", "autre", OPERATOR, VIEWER, "127.0.0.1"):
        assert secret not in everything
    assert [orjson.loads(line)["outcome"] for line in lines] == [
        "recorded",
        "replayed",
        "conflict",
        "forbidden",
    ]


async def test_a_database_of_an_older_version_gets_the_audit_table(
    store: Store, refdata: RefData, registry: TokenRegistry
) -> None:
    store.query("DROP TABLE audit_events")  # as created before the table existed
    store.insert(
        "alert_actions",
        [
            {
                "action_id": "old",
                "alert_id": "a0",
                "action": "ack",
                "comment": "vu",
                "operator": "alice",
                "role": "operator",
                "at": int(time.time()),
            }
        ],
    )
    store.ensure_schema()
    app = create_console_app(store, refdata=refdata, tokens=registry, run_blocking=run_blocking)
    async with TestClient(TestServer(app)) as c:
        assert (await c.get("/api/me", headers={"Authorization": "Bearer nope"})).status == 401
        rows = await audit_rows(c, store)
    assert [(r["kind"], r["outcome"]) for r in rows] == [("auth", "refused")]
    assert len(await stored_actions(store)) == 1


async def test_the_audit_trail_waits_for_a_store_that_is_down(client: Any, seeded: Store) -> None:
    c, _ = client
    audit = c.app[CTX].audit
    await run_blocking(seeded.query, "RENAME TABLE audit_events TO audit_events_away")
    try:
        assert (await c.get("/api/me")).status == 401
        await audit.flush()
        assert audit.pending == 1  # kept for the next flush
    finally:
        await run_blocking(seeded.query, "RENAME TABLE audit_events_away TO audit_events")
    await audit.flush()
    assert audit.pending == 0
    rows = await run_blocking(seeded.query, "SELECT kind, outcome FROM audit_events")
    assert rows == [{"kind": "auth", "outcome": "refused"}]


# ---- units -------------------------------------------------------------------------------
def test_the_failure_limiter_refills_and_forgets() -> None:
    now = [0.0]
    limiter = FailureLimiter(2, 6.0, clock=lambda: now[0], max_clients=3)
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    assert limiter.retry_after("a") == 10  # 6 a minute: one every 10 s
    assert limiter.first_refusal("a") and not limiter.first_refusal("a")
    assert limiter.retry_after("b") == 0  # per address
    now[0] = 4.0
    assert limiter.retry_after("a") == 6
    now[0] = 10.0
    assert limiter.retry_after("a") == 0
    limiter.failed("a")  # one token back, spent at once
    assert limiter.retry_after("a") == 10 and limiter.first_refusal("a")
    for client in ("b", "c", "d"):
        limiter.failed(client)
    assert len(limiter) == 3 and limiter.retry_after("a") == 0  # "a" forgotten first


def test_the_limits_follow_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = ConsoleLimits()
    for name in ConsoleLimits.__dataclass_fields__:
        assert getattr(defaults, name) == ConsoleSettings.model_fields[name].default, name
    monkeypatch.setenv("VIGIE_CONSOLE_MAX_STREAMS", "7")
    monkeypatch.setenv("VIGIE_CONSOLE_AUTH_FAILURES_PER_MINUTE", "1.5")
    limits = ConsoleLimits.from_settings(ConsoleSettings())
    assert limits.max_streams == 7 and limits.auth_failures_per_minute == 1.5
    with pytest.raises(ValueError, match="at least 1"):
        ConsoleLimits(max_streams_per_principal=0)
