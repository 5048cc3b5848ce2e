"""`make bench`: run every benchmark, print their JSON lines, append a dated section with the
machine's description to BENCHMARKS.md.

    python -m benchmarks.run_all [--append BENCHMARKS.md] [--only pipeline geo ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHES: dict[str, list[str]] = {
    "pipeline": ["benchmarks.bench_pipeline", "-n", "150000", "--store", "server"],
    "pipeline-chdb": ["benchmarks.bench_pipeline", "-n", "150000", "--store", "chdb"],
    "geo": ["benchmarks.bench_geo", "--repeat", "3"],
    "correlation": ["benchmarks.bench_correlation", "--seeds", "1", "2", "--days", "14"],
    "detection": ["benchmarks.bench_detection"],
    "detection-pipeline": ["benchmarks.bench_detection", "--mode", "pipeline", "--no-throughput"],
    "detection-anatomy": ["benchmarks.bench_detection", "--anatomy"],
    "detection-sweep": ["benchmarks.bench_detection", "--sweep"],
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, load average before "
            f"the run {load}")


def git_rev() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True, check=False)
    return out.stdout.strip() or "unknown"


def run(name: str, argv: list[str]) -> list[dict[str, object]]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    results = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                results.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    if proc.returncode != 0:
        results.append({"bench": name, "error": f"exit {proc.returncode}",
                        "stderr_tail": proc.stderr[-400:]})
    for r in results:
        r.setdefault("bench_wall_s", round(time.perf_counter() - started, 1))
        print(json.dumps(r), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--append", help="markdown file to append the results to")
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=None)
    args = ap.parse_args(argv)
    names = args.only or list(BENCHES)
    header = (f"\n## Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
              f"(commit {git_rev()})\n\nMachine: {machine()}.\nCommand: `make bench` "
              f"(`python -m benchmarks.run_all`).\n\n")
    blocks = []
    for name in names:
        results = run(name, BENCHES[name])
        lines = "\n".join(json.dumps(r) for r in results)
        blocks.append(f"### {name}\n\n`python -m {' '.join(BENCHES[name])}`\n\n"
                      f"```json\n{lines}\n```\n")
    if args.append:
        with open(ROOT / args.append, "a", encoding="utf-8") as out:
            out.write(header + "\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
