"""`vigie diagnostic`: the territorial diagnostic of a commune, a group of communes or a
jurisdiction, written as a self-contained HTML file and a PDF (headless Chromium prints the
same HTML), from the store (`VIGIE_CLICKHOUSE`).

    vigie diagnostic --commune 91228 --weeks 12 --out var/diagnostic-evry
    → var/diagnostic-evry.html, var/diagnostic-evry.pdf

While a worker holds the embedded chDB store (`make run`: one process per path), ask its
console instead (the same document, `GET /api/diagnostic/report`), with a console token in
VIGIE_CONSOLE_TOKEN:

    VIGIE_CONSOLE_TOKEN=$(cut -d: -f1 var/console-dev-tokens) \
        vigie diagnostic --console http://127.0.0.1:8080 --commune 91228 --out var/evry
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from agents.core.diagnostic import DEFAULT_WEEKS, MAX_WEEKS
from agents.core.jurisdictions import load_jurisdictions
from agents.core.refdata import load_refdata
from console.diagnostic import UnknownTerritory, compute, territory_of
from console.diagnostic_report import render_html
from streams.settings import get_settings
from streams.storage import StoreError, is_embedded, open_store

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
PDF_TIMEOUT_S = 120.0


class PdfError(RuntimeError):
    """Chromium is missing or could not print the document."""


def chromium() -> str:
    """The Chromium binary (`CHROMIUM` environment variable, else the first on the PATH)."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise PdfError("no Chromium found (install it: scripts/system-deps.sh, or set CHROMIUM)")


def print_pdf(html_path: Path, pdf_path: Path) -> None:
    """Print `html_path` to `pdf_path` with headless Chromium (A4, no header/footer)."""
    with tempfile.TemporaryDirectory(prefix="vigie-pdf-") as profile:
        command = [
            chromium(),
            "--headless",
            "--no-sandbox",  # root in containers; the document is our own, without script
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_path}",
            html_path.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PDF_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PdfError(f"Chromium failed: {exc}") from exc
    if done.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise PdfError(f"Chromium could not print the PDF: {done.stderr.strip()[-500:]}")


def outputs(out: str) -> tuple[Path, Path]:
    """(HTML path, PDF path) of `--out`: FILE.html / FILE.pdf (an extension given is dropped)."""
    base = Path(out)
    if base.suffix.lower() in (".html", ".pdf"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".html"), base.with_name(base.name + ".pdf")


class ConsoleError(RuntimeError):
    """The console refused or could not answer (the message says why)."""


def fetch_report(console: str, token: str, args: argparse.Namespace) -> str:
    """The diagnostic document from a running console (`GET /api/diagnostic/report`)."""
    params: dict[str, str] = {"weeks": str(args.weeks)}
    for name in ("commune", "communes", "jurisdiction", "until"):
        value = getattr(args, name)
        if value:
            params[name] = str(value)
    url = console.rstrip("/") + "/api/diagnostic/report?" + urllib.parse.urlencode(params)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConsoleError(f"--console must be an http(s) URL, not {console!r}")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            body: bytes = response.read()
            return body.decode("utf-8")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise ConsoleError(f"the console answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ConsoleError(f"cannot reach the console at {console}: {exc}") from exc


def write_outputs(html: str, out: str, no_pdf: bool) -> int:
    html_path, pdf_path = outputs(out)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(html, encoding="utf-8")
    print(f"HTML: {html_path}")
    if no_pdf:
        return 0
    try:
        print_pdf(html_path, pdf_path)
    except PdfError as exc:
        print(f"vigie diagnostic: PDF not written: {exc}", file=sys.stderr)
        return 1
    print(f"PDF: {pdf_path}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.console:
        token = os.environ.get("VIGIE_CONSOLE_TOKEN", "")
        if not token:
            print(
                "vigie diagnostic: --console needs a console token in VIGIE_CONSOLE_TOKEN",
                file=sys.stderr,
            )
            return 2
        try:
            return write_outputs(fetch_report(args.console, token, args), args.out, args.no_pdf)
        except ConsoleError as exc:
            print(f"vigie diagnostic: {exc}", file=sys.stderr)
            return 1
    settings = get_settings()
    refdata = load_refdata(settings.refdata or None)
    juris = load_jurisdictions(settings.jurisdictions or None, refdata)
    by_id: dict[str, tuple[str, list[str]]] = {}
    for insee, j in sorted(juris.by_insee.items()):
        by_id.setdefault(j.id, (j.name, []))[1].append(insee)
    communes = [c.strip() for c in (args.communes or "").split(",") if c.strip()]
    try:
        territory = territory_of(
            refdata,
            by_id,
            commune=args.commune,
            communes=communes or None,
            jurisdiction=args.jurisdiction,
        )
    except UnknownTerritory as exc:
        print(f"vigie diagnostic: {exc}", file=sys.stderr)
        return 2
    try:
        store = open_store(settings.clickhouse)
        try:
            diagnostic = compute(store, refdata, territory, args.weeks, args.until)
        finally:
            store.close()
    except StoreError as exc:
        hint = ""
        if is_embedded(settings.clickhouse):
            hint = " (a running worker holds the chDB store: use --console, see --help)"
        print(f"vigie diagnostic: store: {exc}{hint}", file=sys.stderr)
        return 1
    return write_outputs(render_html(diagnostic, refdata), args.out, args.no_pdf)


def _weeks(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_WEEKS:
        raise argparse.ArgumentTypeError(f"between 1 and {MAX_WEEKS}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "diagnostic",
        help="territorial diagnostic of a commune or jurisdiction (HTML + PDF)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--commune", help="INSEE code, e.g. 91228")
    which.add_argument("--communes", help="comma-separated INSEE codes (a group of communes)")
    which.add_argument("--jurisdiction", help="jurisdiction id, e.g. csp-evry")
    parser.add_argument("--weeks", type=_weeks, default=DEFAULT_WEEKS, help="period (weeks)")
    parser.add_argument(
        "--until",
        type=int,
        default=None,
        help="period end, UTC epoch s (default: the end of this hour)",
    )
    parser.add_argument("--out", required=True, help="output path: writes OUT.html and OUT.pdf")
    parser.add_argument("--no-pdf", action="store_true", help="write the HTML only")
    parser.add_argument(
        "--console",
        help="ask a running console at this URL (token in VIGIE_CONSOLE_TOKEN) instead of the"
        " store",
    )
    parser.set_defaults(func=run)
