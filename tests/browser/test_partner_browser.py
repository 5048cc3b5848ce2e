"""The partner view in headless Chromium: a partner token opens the console on its perimeter
only (Massy here), with a banner saying so; nothing of Évry reaches the page. The
"Partenaires" page is refused to the partner and lists the registry for an operator.

Needs `/usr/bin/chromium` and `npm ci --prefix tests/browser` (as test_console_browser.py).
The browser side is `partner_flow.mjs`; screenshot: `test-artifacts/console-partner.png`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.core.refdata import load_refdata
from agents.ports import partner_registry
from agents.ports.blocking import StoreThread
from console import bound_port, create_console_app, start_console
from streams.storage import Store, open_store
from tests.console import rows

run_blocking = StoreThread("test-store").run

pytestmark = pytest.mark.browser
HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OPERATOR = "browser-operator-token-0123"
PARTNER = "browser-partner-token-0123456789"


@pytest.fixture
def chdb_store(chdb_path: Path) -> Iterator[Store]:
    store = open_store(f"chdb://{chdb_path}?database=partner_browser_{os.getpid()}")
    store.ensure_schema()
    try:
        yield store
    finally:
        store.close()


async def test_partner_view_in_chromium(chdb_store: Store) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing (make system-deps)")
    if not (HERE / "node_modules" / "playwright-core").exists() or not shutil.which("node"):
        pytest.skip("playwright-core missing (npm ci --prefix tests/browser)")
    store, refdata, now = chdb_store, load_refdata(), time.time()
    store.insert(
        "reports",
        [
            rows.report("e1", now - 120),
            rows.report("m1", now - 200, "rodeo", rows.MASSY, "csp-massy"),
        ],
    )
    store.insert(
        "incidents",
        [
            rows.incident("inc-evry", now - 120, reports=["e1"]),
            rows.incident(
                "inc-massy",
                now - 200,
                category="rodeo",
                place=rows.MASSY,
                jurisdiction="csp-massy",
                reports=["m1"],
            ),
        ],
    )
    store.insert(
        "alerts",
        [
            rows.alert("alert-evry", now - 30),
            rows.alert("alert-massy", now - 40, category="rodeo", insee=[rows.MASSY[0]]),
        ],
    )
    partner_registry.add(
        store,
        {
            "org": "pm-91377",
            "name": "Police municipale de Massy",
            "kind": "police_municipale",
            "perimeter": {"communes": ["91377"]},
        },
        refdata,
        None,
        "test",
    )
    app = create_console_app(
        store,
        refdata=refdata,
        tokens=f"{OPERATOR}:operator:alice,{PARTNER}:partner:pm-desk:pm-91377",
        poll_seconds=1.0,
        run_blocking=run_blocking,
    )
    runner = await start_console(app, "127.0.0.1", 0)
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CONSOLE_URL": f"http://127.0.0.1:{bound_port(runner)}",
        "CONSOLE_TOKEN": PARTNER,
        "OPERATOR_TOKEN": OPERATOR,
        "ARTIFACT_DIR": str(artifacts),
        "CHROMIUM": CHROMIUM,
    }
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "partner_flow.mjs"),
        cwd=HERE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout and proc.stderr
    steps: dict[str, Any] = {}
    try:
        async with asyncio.timeout(60):
            while line := (await proc.stdout.readline()).decode():
                if line.startswith("STEP "):
                    _, name, data = line.rstrip("\n").split(" ", 2)
                    steps[name] = json.loads(data)
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await runner.cleanup()
    stderr = (await proc.stderr.read()).decode()
    assert code == 0, f"browser flow failed: {steps.get('error')} {stderr[-2000:]}"
    view = steps["partner-view"]
    assert view["banner"].startswith("Périmètre de Police municipale de Massy : Massy")
    assert view["who"] == "pm-desk (partenaire)" and view["partnersLink"] is False
    assert len(view["rows"]) == 1 and "Massy" in view["rows"][0]
    assert view["alerts"] == ["alert-massy"]
    assert [o for o in view["communeOptions"] if o != "Toutes"] == ["Massy"]
    # a partner takes an alert into account; it does not close it
    assert [action for action, _ in view["buttons"] if action != "details"] == ["ack"]
    assert ["ack", "Prendre en compte"] in view["buttons"]
    # nothing of Évry reached the page through the API
    for outside in ("inc-evry", "alert-evry", "Évry"):
        assert outside not in view["answers"], outside
    assert view["consoleErrors"] == []
    assert (artifacts / "console-partner.png").stat().st_size > 10_000
    page = steps["partners-page"]
    assert "operator" in page["refused"]  # the server refused the partner
    assert len(page["registry"]) == 1 and page["registry"][0].startswith("pm-91377")
    assert "1 commune(s)" in page["registry"][0]
