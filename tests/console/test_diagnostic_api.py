"""The diagnostic routes: JSON figures, the HTML document with the same numbers, refusals with
a reason (unknown territory, bad parameters, no credentials)."""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from streams.diagnostic_cli import ConsoleError, fetch_report, write_outputs
from tests.console.support import VIEW, VIEWER, Recorder, get_json

Client = TestClient[web.Request, web.Application]


async def test_the_diagnostic_of_a_commune(client: tuple[Client, Recorder]) -> None:
    c, _ = client
    d: dict[str, Any] = await get_json(c, "/api/diagnostic?commune=91228&weeks=2", VIEW)
    assert d["territory"] == {
        "kind": "commune",
        "key": "91228",
        "label": "Évry-Courcouronnes",
        "communes": ["91228"],
    }
    assert d["weeks"] == 2 and d["until"] - d["since"] == 2 * 7 * 86_400
    # the seeded incidents i0-i6 (vol, Évry, last minutes): in the period, none before
    assert d["total"]["current"] == 7 and d["total"]["previous"] == 0
    assert [p["category"] for p in d["categories"]] == ["vol"]
    assert d["population"] > 60_000 and "etalab" in d["population_source"]
    assert abs(d["total"]["rate"] - 1000 * 7 / d["population"]) < 1e-9
    assert len(d["hour_of_week"]["total"]) == 168 and sum(d["hour_of_week"]["total"]) == 7
    assert {s["kind"] for s in d["sources"]} == {"police_nationale"}
    assert [a["alert_id"] for a in d["alerts"]] == ["a1"]


async def test_the_report_shows_the_same_figures(client: tuple[Client, Recorder]) -> None:
    c, _ = client
    d = await get_json(c, "/api/diagnostic?jurisdiction=csp-massy&weeks=3", VIEW)
    response = await c.get("/api/diagnostic/report?jurisdiction=csp-massy&weeks=3", headers=VIEW)
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert html.count("<section class=page id=") == 4
    assert d["territory"]["kind"] == "jurisdiction" and "91377" in d["territory"]["communes"]
    total = d["total"]["current"]
    assert re.search(rf"Incidents<b>{total}</b>", html)
    assert "data:image/svg+xml;base64," in html  # the charts, server-side SVG
    assert "<script" not in html


async def test_bad_requests_say_why(client: tuple[Client, Recorder]) -> None:
    c, _ = client
    for query, reason in (
        ("commune=99999", "commune inconnue"),
        ("commune=abc", "commune inconnue"),
        ("jurisdiction=nowhere", "circonscription inconnue"),
        ("commune=91228&jurisdiction=csp-evry", "indiquez une commune"),
        ("", "indiquez une commune"),
        ("commune=91228&weeks=0", "weeks"),
        ("commune=91228&weeks=x", "entiers"),
        ("commune=91228&insee=91228", "paramètres inconnus"),
    ):
        response = await c.get(f"/api/diagnostic?{query}", headers=VIEW)
        body = await response.json()
        assert response.status == 400, query
        assert reason in body["message"], (query, body)
    response = await c.get("/api/diagnostic?commune=91228")
    assert response.status == 401


async def test_the_command_asks_a_running_console(
    client: tuple[Client, Recorder], tmp_path: Path
) -> None:
    """`vigie diagnostic --console URL` writes the console's document; refusals say why."""
    c, _ = client
    base = str(c.server.make_url("/"))
    args = argparse.Namespace(
        commune="91228", communes=None, jurisdiction=None, weeks=2, until=None
    )
    html = await asyncio.to_thread(fetch_report, base, VIEWER, args)
    assert html.startswith("<!doctype html>") and "Évry-Courcouronnes" in html
    assert await asyncio.to_thread(write_outputs, html, str(tmp_path / "evry.html"), True) == 0
    assert (tmp_path / "evry.html").read_text(encoding="utf-8") == html
    with pytest.raises(ConsoleError, match="answered 401"):
        await asyncio.to_thread(fetch_report, base, "wrong-token-0123456789", args)
    args.commune = "99999"
    with pytest.raises(ConsoleError, match="commune inconnue"):
        await asyncio.to_thread(fetch_report, base, VIEWER, args)
    with pytest.raises(ConsoleError, match="http"):
        await asyncio.to_thread(fetch_report, "file:///etc", VIEWER, args)
