"""The production webhook transport (`agents.deliver.aiohttp_poster`) against real loopback
servers: a 2xx delivers, an error status, a redirect (never followed), a hang (timeout), a
refused connection and a certificate that does not verify are failed attempts, never an
exception; and `attempt` logs the outcome, parks after the last allowed attempt."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from agents.core.delivery import Backoff, DeliveryEvent, DeliveryState, Fold, WebhookSubscription
from agents.deliver import Delivery, DeliveryConfig, PostResult, aiohttp_poster, attempt
from tests.infra.kafka import free_port

HEADERS = {"Content-Type": "application/json"}


async def serve(
    app: web.Application, port: int, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    return runner


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(status=204)

    async def fail(_: web.Request) -> web.Response:
        return web.Response(status=503)

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/fail", fail)
    app.router.add_post("/moved", moved)
    app.router.add_post("/hang", hang)
    port = free_port()
    runner = await serve(app, port)
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_outcomes_of_real_http_exchanges(server: str) -> None:
    post, close = aiohttp_poster()
    try:
        ok = await post(server + "/ok", b"{}", HEADERS, 2.0)
        assert (ok.ok, ok.status, ok.error) == (True, 204, "")
        failed = await post(server + "/fail", b"{}", HEADERS, 2.0)
        assert (failed.ok, failed.status, failed.error) == (False, 503, "http 503")
        moved = await post(server + "/moved", b"{}", HEADERS, 2.0)
        assert (moved.ok, moved.status) == (False, 302)  # not followed
        hung = await post(server + "/hang", b"{}", HEADERS, 0.5)
        assert (hung.status, hung.error) == (0, "timeout") and 0.4 < hung.seconds < 5
        refused = await post(f"http://127.0.0.1:{free_port()}/x", b"{}", HEADERS, 2.0)
        assert refused.status == 0 and refused.error.startswith("connection_error")
    finally:
        await close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
async def test_a_certificate_that_does_not_verify_is_refused(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    hits: list[int] = []

    async def ok(_: web.Request) -> web.Response:
        hits.append(1)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/ok", ok)
    port = free_port()
    runner = await serve(app, port, context)
    post, close = aiohttp_poster()
    try:
        result = await post(f"https://127.0.0.1:{port}/ok", b"{}", HEADERS, 5.0)
    finally:
        await close()
        await runner.cleanup()
    assert result.status == 0 and result.error.startswith("connection_error"), result
    assert hits == []  # the body never reached a server it could not authenticate


def delivery(failures: int) -> Delivery:
    state = Fold("whd_1", DeliveryState.PENDING, failures, failures + 1, 0.0, '{"a":1}')
    return Delivery(state, "csp-evry", "alert", "al-1", 1, "vigie.alerts.v1", 0)


async def test_attempt_logs_failures_then_parks() -> None:
    config = DeliveryConfig("unused:9092", "vigie", {}, backoff=Backoff(3, 1.0, 4.0))
    sub = WebhookSubscription("csp-evry", "https://hooks.example/v", b"k" * 32)
    sent: list[tuple[str, bytes, dict[str, str]]] = []

    async def post(url: str, body: bytes, headers: object, _timeout: float) -> PostResult:
        sent.append((url, body, dict(headers)))  # type: ignore[call-overload]
        return PostResult(500, "http 500", 0.01)

    rows = await attempt(delivery(1), sub, post, config, lambda: 1000.0)
    assert [(r["seq"], r["event"]) for r in rows] == [(2, DeliveryEvent.FAILED.value)]
    assert 1000 <= rows[0]["next_at"] <= 1002  # second failure: within [0, 2 s]
    rows = await attempt(delivery(2), sub, post, config, lambda: 1000.0)
    assert [(r["seq"], r["event"]) for r in rows] == [(3, "failed"), (4, "parked")]
    assert rows[1]["status"] == 500 and rows[1]["error"] == "http 500"
    url, body, headers = sent[0]
    assert url == "https://hooks.example/v"
    assert body == b'{"a":1}' and headers["Vigie-Delivery-Id"] == "whd_1"
    assert headers["Vigie-Signature"].startswith("t=1000,v1=")
    # gone from the registry, or a URL the policy refuses: failed without any request
    gone = await attempt(delivery(0), None, post, config, lambda: 1000.0)
    assert gone[0]["error"].startswith("unsubscribed")
    plain = WebhookSubscription("csp-evry", "http://hooks.example/v", b"k" * 32)
    refused = await attempt(delivery(0), plain, post, config, lambda: 1000.0)
    assert refused[0]["error"] == "refused_url: plain http refused (https only)"
    assert len(sent) == 2
