"""`vigie counts`: what is stored, from the store or, when a running worker holds the
embedded chDB (one process per path), from that worker's `/counts` page (with the local API
token the worker wrote to VIGIE_WORKER_DATA_DIR: run it as the worker's user)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from streams.local_api import LocalTokenError, get_json
from streams.settings import get_settings
from streams.storage import StoreError, is_embedded, open_store


def fetch_from_worker(host: str, port: int, data_dir: str) -> dict[str, Any]:
    result: dict[str, Any] = get_json(f"http://{host}:{port}/counts", data_dir, timeout=120)
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
            if not is_embedded(settings.clickhouse):
                raise
    return fetch_from_worker(settings.web_host, settings.web_port, settings.worker_data_dir)


def run(args: argparse.Namespace) -> int:
    try:
        counts = read_counts(args)
    except LocalTokenError as exc:  # no worker on that data dir, or another user's
        print(f"vigie counts: {exc}", file=sys.stderr)
        return 1
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
