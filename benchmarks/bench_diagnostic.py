"""Territorial diagnostic speed: the diagnostic of communes and a jurisdiction over 12 weeks
of a département-sized history (a year, ≥ 500k incidents and as many reports) on a ClickHouse
server (Debian's 18.16, started on loopback by scripts/clickhouse.sh) or chDB. Target: ≤ 1 s
a diagnostic (all its queries and the assembly, not the charts).

Wall times depend on what else runs on the machine; the CPU time a diagnostic costs (this
process's plus the ClickHouse server's, from /proc) does not, and bounds the wall time of
an otherwise idle machine (the work is sequential; loopback round trips are negligible).

    python -m benchmarks.bench_diagnostic [-n 520000] [--store server|chdb] [--repeat 3]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agents.core.diagnostic import WEEK_S
from agents.core.jurisdictions import load_jurisdictions
from agents.core.refdata import load_refdata
from benchmarks.bench_latency import cpu_s
from benchmarks.bench_pipeline import start_clickhouse, stop_clickhouse
from console.diagnostic import compute, period_end, territory_of
from offline.diagnostic_data import synthetic_rows
from streams.storage import open_store

TARGET_S = 1.0
# Évry-Courcouronnes, Massy, Corbeil-Essonnes, Étampes, a village (Abbéville-la-Rivière)
COMMUNES = ("91228", "91377", "91174", "91223", "91001")
JURISDICTION = "csp-evry"
CHUNK = 100_000


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) of process `pid` so far, this process's when None."""
    if pid is None:
        return time.process_time()
    used = cpu_s(pid)
    if used is None:
        raise RuntimeError(f"cannot read the CPU time of process {pid}")
    return used


def run(n: int, store_kind: str, repeat: int) -> dict[str, Any]:
    refdata = load_refdata()
    juris = load_jurisdictions(None, refdata)
    by_id: dict[str, tuple[str, list[str]]] = {}
    for insee, j in sorted(juris.by_insee.items()):
        by_id.setdefault(j.id, (j.name, []))[1].append(insee)
    jurisdiction_of = {insee: j.id for insee, j in juris.by_insee.items()}
    with tempfile.TemporaryDirectory(prefix="vigie-bench-diag-") as tmp:
        server_dir = Path(tmp) / "clickhouse"
        if store_kind == "server":
            url = start_clickhouse(server_dir).rsplit("/", 1)[0] + "/bench_diagnostic"
        else:
            url = f"chdb://{tmp}/chdb?database=bench_diagnostic"
        try:
            store = open_store(url)
            store.ensure_schema()
            until = period_end(time.time())
            t0 = time.monotonic()
            incidents_n = reports_n = 0
            for chunk, start in enumerate(range(0, n, CHUNK)):
                size = min(CHUNK, n - start)
                incidents, reports = synthetic_rows(
                    refdata,
                    size,
                    until - 52 * WEEK_S,
                    until,
                    seed=100 + chunk,
                    jurisdiction_of=jurisdiction_of,
                )
                store.insert("incidents", incidents)
                store.insert("reports", reports)
                incidents_n += size
                reports_n += len(reports)
            load_s = time.monotonic() - t0
            territories = [territory_of(refdata, by_id, commune=c) for c in COMMUNES]
            territories.append(territory_of(refdata, by_id, jurisdiction=JURISDICTION))
            server_pid = None
            if store_kind == "server":
                server_pid = int((server_dir / "clickhouse.pid").read_text().strip())
            times: dict[str, list[float]] = {}
            cpu: list[float] = []
            # The first diagnostic after the bulk load reads parts the server is still merging
            # (a cold start, not the steady state of a long-lived store): timed apart.
            t1 = time.monotonic()
            compute(store, refdata, territories[0], 12, until)
            first_s = time.monotonic() - t1
            for _ in range(repeat):
                for territory in territories:
                    c1, s1 = cpu_seconds(None), cpu_seconds(server_pid) if server_pid else 0.0
                    t1 = time.monotonic()
                    compute(store, refdata, territory, 12, until)
                    times.setdefault(territory.key, []).append(time.monotonic() - t1)
                    c2, s2 = cpu_seconds(None), cpu_seconds(server_pid) if server_pid else 0.0
                    cpu.append((c2 - c1) + (s2 - s1))
            store.close()
        finally:
            if store_kind == "server":
                stop_clickhouse(server_dir)
    every = [t for ts in times.values() for t in ts]
    return {
        "bench": "diagnostic",
        "store": store_kind,
        "incidents": incidents_n,
        "reports": reports_n,
        "load_s": round(load_s, 1),
        "diagnostic_median_s": round(statistics.median(every), 3),
        "diagnostic_max_s": round(max(every), 3),
        "diagnostic_cpu_median_s": round(statistics.median(cpu), 3),
        "diagnostic_cpu_max_s": round(max(cpu), 3),
        "meets_target": max(every) <= TARGET_S,
        "first_after_load_s": round(first_s, 3),
        "runs_s": {key: [round(t, 3) for t in ts] for key, ts in times.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=520_000, help="incidents (one report each)")
    parser.add_argument("--store", choices=("server", "chdb"), default="server")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    result = run(args.n, args.store, args.repeat)
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
