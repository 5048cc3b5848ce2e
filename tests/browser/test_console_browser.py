"""The console in headless Chromium (Debian's), driven by playwright-core (npm).

Needs `/usr/bin/chromium` and `npm ci --prefix tests/browser`. The browser side is
`console_flow.mjs`; this test serves the console over a chDB store, inserts rows when the
script asks (`STEP need-...`), then checks the store and the action publisher. After the
logout (`STEP need-logged-out`) it waits for the console to see the page's stream close.
Screenshots land in `test-artifacts/console-*.png`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from agents.core.refdata import load_refdata
from agents.ports.blocking import StoreThread
from console import bound_port, create_console_app, start_console
from console.context import CTX
from streams.storage import Store, open_store
from tests.console import rows

# One thread for every store call of a test and of the console under test, as in the worker.
run_blocking = StoreThread("test-store").run

pytestmark = pytest.mark.browser
HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OPERATOR = "browser-operator-token-0123"


def _today_count(times: list[float]) -> int:
    paris = ZoneInfo("Europe/Paris")
    today = datetime.now(paris).date()
    return sum(datetime.fromtimestamp(t, paris).date() == today for t in times)


@pytest.fixture
def chdb_store(chdb_path: Path) -> Iterator[Store]:
    """An embedded store on a database of its own (the process's one chDB path)."""
    store = open_store(f"chdb://{chdb_path}?database=console_browser_{os.getpid()}")
    store.ensure_schema()
    try:
        yield store
    finally:
        store.close()


async def _streams_gone(app: web.Application, timeout: float) -> dict[str, float]:
    """Waits (up to `timeout` s) until the console holds no live stream any more."""
    hub, t0 = app[CTX].hub, time.monotonic()
    while hub.subscribers and time.monotonic() - t0 < timeout:
        await asyncio.sleep(0.05)
    return {"open": hub.subscribers, "ms": (time.monotonic() - t0) * 1000}


async def test_console_in_chromium(chdb_store: Store) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing (make system-deps)")
    if not (HERE / "node_modules" / "playwright-core").exists() or not shutil.which("node"):
        pytest.skip("playwright-core missing (npm ci --prefix tests/browser)")
    store, started = chdb_store, time.monotonic()
    refdata = load_refdata()
    now = time.time()
    first = [now - 120 - i * 30 for i in range(5)]
    store.insert("reports", [rows.report(f"b{i}", t) for i, t in enumerate(first)])
    incidents = [
        rows.incident("inc-1", now - 120, reports=["b0", "b1", "b2"]),
        rows.incident(
            "inc-2", now - 300, place=rows.MASSY, category="rodeo", jurisdiction="csp-massy"
        ),
    ]
    # a realistic background: older reports and closed incidents spread over the area
    categories = ["cambriolage", "degradation", "nuisance", "vol", "rodeo", "violence"]
    places = [(c.insee, c.name, c.rep_lat, c.rep_lon) for c in refdata.communes.values()][::9]
    background = [
        rows.report(
            f"bg{i}", now - 86_400 * (1 + i % 6) - i * 97, categories[i % 6], places[i % 22]
        )
        for i in range(120)
    ]
    store.insert("reports", background)
    incidents += [
        rows.incident(
            f"old-{i}",
            now - 3600 * (2 + i),
            status="closed",
            category=categories[i % 6],
            place=places[i % 22],
            reports=[f"bg{j}" for j in range(i % 7 + 1)],
        )
        for i in range(18)
    ]
    store.insert("incidents", incidents)
    bg_times = [float(r["occurred_at"]) for r in background]
    later = [now - 10 - i for i in range(3)]
    published: list[dict[str, Any]] = []

    async def publisher(event: dict[str, Any]) -> None:
        published.append(event)

    app = create_console_app(
        store,
        refdata=refdata,
        tokens=f"{OPERATOR}:operator:alice",
        action_publisher=publisher,
        poll_seconds=1.0,  # the default, as shipped
        run_blocking=run_blocking,
    )
    runner = await start_console(app, "127.0.0.1", 0)
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CONSOLE_URL": f"http://127.0.0.1:{bound_port(runner)}",
        "CONSOLE_TOKEN": OPERATOR,
        "ARTIFACT_DIR": str(artifacts),
        "ALERT_ID": "alert-browser-1",
        "EXPECT_TODAY": str(_today_count(first + bg_times)),
        "EXPECT_TODAY_AFTER": str(_today_count(first + later + bg_times)),
        "CHROMIUM": CHROMIUM,
    }
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "console_flow.mjs"),
        cwd=HERE,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    steps: dict[str, Any] = {}
    inserted_ms = 0.0
    try:
        async with asyncio.timeout(60):
            while line := (await proc.stdout.readline()).decode():
                if not line.startswith("STEP "):
                    continue
                _, name, data = line.rstrip("\n").split(" ", 2)
                steps[name] = json.loads(data)
                if "at" in steps[name]:  # browser saw the change: latency since the insert
                    steps[name]["ms"] = steps[name]["at"] - inserted_ms
                if name == "need-reports":
                    await run_blocking(
                        store.insert,
                        "reports",
                        [rows.report(f"late{i}", t) for i, t in enumerate(later)],
                    )
                elif name == "need-alert":
                    await run_blocking(
                        store.insert, "alerts", [rows.alert("alert-browser-1", time.time())]
                    )
                elif name == "need-logged-out":
                    steps["stream-closed"] = await _streams_gone(app, 5.0)
                if name.startswith("need-"):
                    inserted_ms = time.time() * 1000  # rows are visible: the clock starts
                    proc.stdin.write(b"GO\n")
                    await proc.stdin.drain()
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await runner.cleanup()
    stderr = (await proc.stderr.read()).decode()
    assert code == 0, f"browser flow failed: {steps.get('error')} {stderr[-2000:]}"

    assert steps["loaded"]["communes"] == 194 and steps["loaded"]["incidents"] == 2
    # live, no reload: the page that was open before the insert shows the change (within
    # the flow's waits); the delay is printed, its target belongs to a benchmark
    assert steps["counters-updated"]["sameDocument"] is True
    assert steps["alert-received"]["sameDocument"] is True
    print(
        f"live delays: counters {steps['counters-updated']['ms']:.0f} ms,"
        f" alert {steps['alert-received']['ms']:.0f} ms"
    )
    assert steps["done"]["consoleErrors"] == []
    # the logout closed the stream: the server let it go, the page holds no data any more
    assert steps["stream-closed"]["open"] == 0, steps["stream-closed"]
    assert steps["logged-out"]["streams"] >= 1 and "logged-in-again" in steps
    actions = await run_blocking(store.query, "SELECT * FROM alert_actions FINAL")
    assert [(a["alert_id"], a["action"], a["operator"], a["comment"]) for a in actions] == [
        ("alert-browser-1", "ack", "alice", "Patrouille envoyée, situation suivie")
    ]
    assert [(e["alert_id"], e["action_id"]) for e in published] == [
        ("alert-browser-1", actions[0]["action_id"])
    ]
    for name in (
        "console-desk.png",
        "console-wall.png",
        "console-details.png",
        "console-logged-out.png",
    ):
        assert (artifacts / name).stat().st_size > 10_000
    assert time.monotonic() - started < 60
    print("browser steps:", json.dumps(steps))
