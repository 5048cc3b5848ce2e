"""Geocoding throughput on one core: `python -m benchmarks.bench_geo` prints one JSON line.

Points are realistic: population-weighted over Essonne's communes, uniform inside each one.
Measured (best of `--repeat` runs, one thread):
- `locate`: commune index of each point (grid pre-index + exact test in border cells);
- `h3`: r9 cells (h3 C binding) + r8/r7 parents and hex strings (vectorised numpy);
- `pure`: both together, the vectorised path;
- `enrich_batch`: the real agent path on `ReportRecord`s (fills every enrichment field).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.core.geo import Geocoder, h3_cells, h3_parents, h3_to_str, random_points_in
from agents.core.jurisdictions import load_jurisdictions
from agents.core.record import ReportRecord
from agents.core.refdata import RefData, load_refdata

TARGET_PER_S = 200_000


def population_weighted_points(
    refdata: RefData, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    communes = list(refdata.communes.values())
    pop = np.array([c.population for c in communes], dtype=float)
    counts = rng.multinomial(n, pop / pop.sum())
    lats, lons = [], []
    for commune, k in zip(communes, counts, strict=True):
        if k:
            la, lo = random_points_in(commune, rng, int(k))
            lats.append(la)
            lons.append(lo)
    order = rng.permutation(n)  # mixed like a live stream, not grouped by commune
    return np.concatenate(lats)[order], np.concatenate(lons)[order]


def _records(lats: np.ndarray, lons: np.ndarray) -> list[ReportRecord]:
    return [
        ReportRecord(
            report_id=f"r{i}",
            source_kind="citizen",
            source_org="citoyen",
            source_channel="app",
            category="nuisance",
            occurred_at=1.7e9,
            reported_at=1.7e9,
            lat=la,
            lon=lo,
            accuracy_m=10.0,
            insee=None,
            severity=None,
            contact_hash=None,
            description_hash=None,
            description_len=0,
        )
        for i, (la, lo) in enumerate(zip(lats.tolist(), lons.tolist(), strict=True))
    ]


class _Best:
    """Best (shortest) wall and CPU time over repeated runs.

    The CPU time of this single-threaded process is the per-core cost even when other
    processes compete for the cores; the wall time is what a loaded machine delivers.
    """

    def __init__(self) -> None:
        self.wall = float("inf")
        self.cpu = float("inf")

    def time(self, fn: Callable[[], Any]) -> Any:
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        self.wall = min(self.wall, time.perf_counter() - w0)
        self.cpu = min(self.cpu, time.process_time() - c0)
        return result


def _rates(n: int, repeat: int, fn: Callable[[], Any]) -> tuple[int, int]:
    best = _Best()
    for _ in range(repeat):
        best.time(fn)
    return round(n / best.cpu), round(n / best.wall)


def run(n: int = 200_000, batch: int = 10_000, repeat: int = 3) -> dict[str, Any]:
    refdata = load_refdata()
    t0 = time.perf_counter()
    geocoder = Geocoder(refdata, load_jurisdictions(None, refdata))
    build_s = time.perf_counter() - t0
    lats, lons = population_weighted_points(refdata, n)
    slices = [slice(i, i + batch) for i in range(0, n, batch)]

    def locate() -> None:
        for s in slices:
            geocoder.locate(lats[s], lons[s])

    def cells() -> None:
        for s in slices:
            r9 = h3_cells(lats[s], lons[s], 9)
            h3_to_str(r9)
            h3_to_str(h3_parents(r9, 9, 8))
            h3_to_str(h3_parents(r9, 9, 7))

    def pure() -> None:
        for s in slices:
            geocoder.locate(lats[s], lons[s])
            r9 = h3_cells(lats[s], lons[s], 9)
            h3_to_str(r9)
            h3_to_str(h3_parents(r9, 9, 8))
            h3_to_str(h3_parents(r9, 9, 7))

    locate_rate = _rates(n, repeat, locate)
    h3_rate = _rates(n, repeat, cells)
    pure_rate = _rates(n, repeat, pure)
    best = _Best()
    out: list[Any] = []

    def enrich(records: list[ReportRecord]) -> list[Any]:
        return [geocoder.enrich_batch(records[s]) for s in slices]

    for _ in range(repeat):
        records = _records(lats, lons)  # fresh records (enrichment fills them in place)
        out = best.time(lambda: enrich(records))  # noqa: B023 (called at once)
    accepted = sum(1 for batch_out in out for r in batch_out if isinstance(r, ReportRecord))
    return {
        "bench": "geo",
        "points": n,
        "batch": batch,
        "rates": "per second of CPU time (one core) / of wall time",
        "grid_build_s": round(build_s, 3),
        "border_cell_fraction": round(geocoder.border_fraction, 4),
        "locate_per_s": locate_rate,
        "h3_r9_r8_r7_per_s": h3_rate,
        "commune_h3_per_s": pure_rate,
        "enrich_batch_records_per_s": (round(n / best.cpu), round(n / best.wall)),
        "accepted": accepted,
        "target_per_s": TARGET_PER_S,
        "meets_target": pure_rate[0] >= TARGET_PER_S,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_geo", description=__doc__)
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.points, args.batch, args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
