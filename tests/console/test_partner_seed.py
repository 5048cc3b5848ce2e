"""`VIGIE_CONSOLE_PARTNERS_SEED`: the demo's partners registered at console start, never
overwriting a change; a bad file is logged and the console still starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agents.core.refdata import load_refdata
from agents.ports import partner_registry
from console import create_console_app
from console.partner_seed import install_partner_seed
from streams.storage import Store
from tests.console.support import OP, TOKENS, get_json, run_blocking

DEMO = Path(__file__).resolve().parents[2] / "offline" / "simulator" / "demo_partners.json"


async def _orgs(store: Store, seed: str) -> list[tuple[str, int]]:
    app = create_console_app(
        store, refdata=load_refdata(), tokens=TOKENS, run_blocking=run_blocking
    )
    install_partner_seed(app, seed)
    async with TestClient(TestServer(app)) as c:
        listed = await get_json(c, "/api/partners", OP)
    return [(p["org"], p["version"]) for p in listed["items"]]


async def test_the_seed_registers_missing_partners_only(store: Store) -> None:
    first = await _orgs(store, str(DEMO))
    demo = sorted(e["org"] for e in json.loads(DEMO.read_text(encoding="utf-8")))
    assert first == [(org, 1) for org in demo]
    await run_blocking(
        partner_registry.update, store, "pm-91228", {"name": "PM"}, load_refdata(), None, "op"
    )
    again = await _orgs(store, str(DEMO))  # a restart: the operator's change stays
    assert dict(again)["pm-91228"] == 2
    current = await run_blocking(partner_registry.get, store, "pm-91228")
    assert current is not None and current.name == "PM"


async def test_a_bad_seed_is_logged_and_the_console_starts(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"org": "x", "name": "X", "kind": "transport", "perimeter": {}}]))
    assert await _orgs(store, str(bad)) == []
    assert "empty perimeter" in caplog.text
    assert await _orgs(store, str(tmp_path / "missing.json")) == []
    assert "not registered" in caplog.text
