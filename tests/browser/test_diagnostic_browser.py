"""The territorial diagnostic in real Chromium (Debian's, driven by playwright-core): the
console page of a commune over a generated history, screenshots kept in test-artifacts/;
then `vigie diagnostic` writes the same document as HTML and PDF, and the PDF has its four
pages (pdftotext)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.core.diagnostic import WEEK_S
from agents.core.refdata import load_refdata
from agents.ports.blocking import StoreThread
from console import bound_port, create_console_app, start_console
from console.diagnostic import compute, period_end, territory_of
from offline.diagnostic_data import synthetic_rows
from streams.storage import Store, open_store

pytestmark = pytest.mark.browser
HERE = Path(__file__).parent
ROOT = HERE.parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "diagnostic-viewer-token-0123"
EVRY = "91228"
run_blocking = StoreThread("test-diagnostic-store").run


def _needs_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing (make system-deps)")


@pytest.fixture
def history(chdb_path: Path) -> Iterator[tuple[Store, str]]:
    """An embedded store with 24 weeks of generated incidents and reports."""
    url = f"chdb://{chdb_path}?database=diagnostic_browser_{os.getpid()}"
    store = open_store(url)
    store.ensure_schema()
    end = period_end(time.time())
    incidents, reports = synthetic_rows(load_refdata(), 30_000, end - 24 * WEEK_S, end, seed=9)
    store.insert("incidents", incidents)
    store.insert("reports", reports)
    try:
        yield store, url
    finally:
        store.close()


async def test_the_diagnostic_page_in_chromium(history: tuple[Store, str]) -> None:
    _needs_chromium()
    if not (HERE / "node_modules" / "playwright-core").exists() or not shutil.which("node"):
        pytest.skip("playwright-core missing (npm ci --prefix tests/browser)")
    store, _ = history
    refdata = load_refdata()
    ARTIFACTS.mkdir(exist_ok=True)
    app = create_console_app(
        store, refdata=refdata, tokens=f"{TOKEN}:viewer:wall", run_blocking=run_blocking
    )
    runner = await start_console(app, "127.0.0.1", 0)
    env = {
        **os.environ,
        "CONSOLE_URL": f"http://127.0.0.1:{bound_port(runner)}",
        "CONSOLE_TOKEN": TOKEN,
        "ARTIFACT_DIR": str(ARTIFACTS),
        "COMMUNE": EVRY,
        "CHROMIUM": CHROMIUM,
    }
    try:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(HERE / "diagnostic_flow.mjs"),
            cwd=HERE,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        await runner.cleanup()
    assert proc.returncode == 0, err.decode()[-2000:]
    line = next(x for x in out.decode().splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    expected = await run_blocking(
        compute, store, refdata, territory_of(refdata, {}, commune=EVRY), 12
    )
    assert result["sections"] == ["profil", "tendances", "quand-ou", "qui-presence"]
    assert len(result["charts"]) == 4 and all(c["width"] > 200 for c in result["charts"])
    assert result["title"] == "Diagnostic territorial — Évry-Courcouronnes"
    assert int(result["keyIncidents"].replace("\u202f", "")) == expected.total.current > 100
    assert result["selected"] == EVRY and result["download"]
    assert "commune inconnue" in result["refused"]
    assert result["consoleErrors"] == [] or all("400" in e for e in result["consoleErrors"])
    assert result["external"] == []  # nothing fetched from outside the console
    assert (ARTIFACTS / "diagnostic-page.png").stat().st_size > 20_000
    assert (ARTIFACTS / "diagnostic-page-full.png").stat().st_size > 50_000


def test_vigie_diagnostic_writes_html_and_a_four_page_pdf(
    history: tuple[Store, str], tmp_path: Path
) -> None:
    _needs_chromium()
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext missing (apt-get install poppler-utils)")
    store, url = history
    refdata = load_refdata()
    until = period_end(time.time())
    expected = compute(store, refdata, territory_of(refdata, {}, commune=EVRY), 12, until)
    store.close()  # chDB: one process per path, the command opens it itself
    out = tmp_path / "evry"
    done = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "vigie"),
            "diagnostic",
            "--commune",
            EVRY,
            "--weeks",
            "12",
            "--until",
            str(until),
            "--out",
            str(out),
        ],
        env={**os.environ, "VIGIE_CLICKHOUSE": url, "CHROMIUM": CHROMIUM},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    html = (tmp_path / "evry.html").read_text(encoding="utf-8")
    pdf = tmp_path / "evry.pdf"
    assert f"Incidents<b>{expected.total.current:,}</b>".replace(",", "\u202f") in html
    shutil.copy(pdf, ARTIFACTS / "diagnostic-evry.pdf") if ARTIFACTS.exists() else None
    pages = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout.split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) == 4, [p[:80] for p in pages]
    assert "Diagnostic territorial — Évry-Courcouronnes" in pages[0]
    assert "Profil des problèmes" in pages[0]
    assert "Comparaison et tendances" in pages[1] and "Comment lire ce test" in pages[1]
    assert "Quand" in pages[2] and "Lieux récurrents" in pages[2]
    assert "Qui signale" in pages[3] and "Présence dynamique" in pages[3]
    assert "reflètent ce qui est signalé" in pages[3]
    assert re.search(r"Incidents\s+Pour 1 000 habitants", pages[0])
