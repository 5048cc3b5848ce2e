"""`vigie counts`: what is stored, from the store or, when a running worker holds the
embedded chDB (one process per path), from that worker's `/counts` page."""

from __future__ import annotations

import argparse
import json
import urllib.request
from typing import Any

from streams.settings import get_settings
from streams.storage import StoreError, open_store


def fetch_from_worker(host: str, port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{host}:{port}/counts", timeout=120) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def read_counts(args: argparse.Namespace) -> dict[str, Any]:
    from streams.web import stored_counts

    settings = get_settings()
    if not args.via_worker:
        try:
            store = open_store(settings.clickhouse)
            try:
                return stored_counts(store)
            finally:
                store.close()
        except StoreError:
            # chDB admits one process per directory: the running worker holds it.
            if not settings.clickhouse.startswith("chdb:"):
                raise
    return fetch_from_worker(settings.web_host, settings.web_port)


def run(args: argparse.Namespace) -> int:
    counts = read_counts(args)
    if args.json:
        print(json.dumps(counts, indent=2, ensure_ascii=False))
        return 0
    print(f"reports stored: {counts['reports']} (last 24 h: {counts['reports_last_24h']})")
    if counts.get("incidents") is not None:
        print(f"incidents: {counts['incidents']}")
    for title, key in (
        ("by category", "by_category"),
        ("by source kind", "by_source_kind"),
        ("by jurisdiction", "by_jurisdiction"),
        ("top communes", "top_communes"),
        ("rejected by reason", "rejected_by_reason"),
    ):
        items = counts.get(key) or {}
        print(f"{title}: " + ", ".join(f"{k or '-'}={v}" for k, v in items.items()))
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("counts", help="show stored report, incident and rejection counts")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--via-worker", action="store_true", help="ask the running worker (embedded mode)"
    )
    parser.set_defaults(func=run)
