"""What the console tests share: tokens, the store thread, an action publisher that records,
and small HTTP/SSE helpers (the fixtures are in `conftest.py`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient

from agents.ports.blocking import StoreThread

# One thread for every store call of a test and of the console under test, as in the worker.
run_blocking = StoreThread("test-store").run

OPERATOR = "operator-token-0123456789"
VIEWER = "viewer-token-0123456789ab"
TOKENS = f"{OPERATOR}:operator:alice,{VIEWER}:viewer:wall"
OP = {"Authorization": f"Bearer {OPERATOR}"}
VIEW = {"Authorization": f"Bearer {VIEWER}"}
NOW = time.time()


class Recorder:
    """An action publisher that records events (or fails on demand)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = False

    async def __call__(self, event: dict[str, Any]) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.events.append(event)


async def get_json(
    c: TestClient[web.Request, web.Application],
    url: str,
    headers: dict[str, str] = OP,
    status: int = 200,
) -> Any:
    response = await c.get(url, headers=headers)
    body = await response.json()
    assert response.status == status, body
    return body


async def next_event(response: Any, name: str, timeout: float) -> dict[str, Any]:
    """The data of the next SSE event `name` (TimeoutError after `timeout` s)."""
    deadline = asyncio.get_running_loop().time() + timeout
    event = None
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        line = await asyncio.wait_for(response.content.readline(), max(remaining, 0.01))
        if not line:
            raise EOFError(f"stream ended before event {name!r}")
        text = line.decode().rstrip("\n")
        if text.startswith("event: "):
            event = text[7:]
        elif text.startswith("data: ") and event == name:
            return dict(orjson.loads(text[6:]))
