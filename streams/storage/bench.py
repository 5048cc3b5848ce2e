"""Measure insert throughput of the `reports` table on a store.

    python -m streams.storage.bench chdb:///tmp/vigie-bench --rows 200000 --batch 5000
    python -m streams.storage.bench clickhouse://default:@127.0.0.1:9000/vigie_bench

Rows look like real enriched reports (ReportRecord fields). Prints rows/s for the whole run
(row → column conversion included) and checks the deduplicated count.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from agents.ports.sql import reports
from streams.storage import open_store
from streams.storage.queries import count_reports

CATEGORIES = ("cambriolage", "vol", "degradation", "nuisance", "rodeo", "violence")
KINDS = ("police_nationale", "gendarmerie", "police_municipale", "transport", "citizen")


def make_report_rows(n: int, *, start: int = 0, seed: int = 7) -> list[dict[str, Any]]:
    """`n` report rows shaped like `report_row(ReportRecord)` of the ingest agent."""
    rng = random.Random(seed + start)
    base = 1_780_000_000.0
    rows: list[dict[str, Any]] = []
    for i in range(start, start + n):
        occurred = base + i * 0.7
        point = i % 5 != 0
        rows.append(
            {
                "report_id": f"bench-{i:09d}",
                "source_kind": KINDS[i % len(KINDS)],
                "source_org": "csp-evry",
                "source_channel": "api" if i % 3 else None,
                "category": CATEGORIES[i % len(CATEGORIES)],
                "occurred_at": occurred,
                "reported_at": occurred + 120.5,
                "lat": 48.6 + rng.random() * 0.2 if point else None,
                "lon": 2.3 + rng.random() * 0.2 if point else None,
                "accuracy_m": 25.0 if point else None,
                "insee": f"91{rng.randrange(1, 700):03d}",
                "severity": (i % 5) + 1 if i % 2 else None,
                "contact_hash": f"{rng.getrandbits(128):032x}" if i % 4 == 0 else None,
                "description_hash": f"{rng.getrandbits(128):032x}",
                "description_len": rng.randrange(0, 400),
                "origin_topic": "vigie.reports.partner.v1",
                "origin_partition": i % 6,
                "origin_offset": i,
                "commune": "Évry-Courcouronnes",
                "jurisdiction": "csp-evry",
                "precision": "point" if point else "commune",
                "h3_r7": "871fb4670ffffff",
                "h3_r8": "881fb46701fffff",
                "h3_r9": "891fb467003ffff",
                "ingested_at": occurred + 121.0,
            }
        )
    return rows


def run(url: str, rows: int, batch: int) -> float:
    """Insert `rows` rows in batches of `batch`; returns rows/s."""
    store = open_store(url)
    try:
        store.ensure_schema()
        store.query(reports.TRUNCATE.sql)
        batches = [make_report_rows(batch, start=s) for s in range(0, rows, batch)]
        started = time.perf_counter()
        for chunk in batches:
            store.insert("reports", chunk)
        elapsed = time.perf_counter() - started
        stored = count_reports(store)
        if stored != len(batches) * batch:
            raise SystemExit(f"count mismatch: {stored} stored")
        return len(batches) * batch / elapsed
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    rate = run(args.url, args.rows, args.batch)
    print(f"{args.url}: {rate:,.0f} rows/s ({args.rows} rows, batches of {args.batch})")


if __name__ == "__main__":
    main()
