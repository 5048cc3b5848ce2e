"""`make bench`: run every benchmark and print their JSON lines; with `--record`, append them
as measurements to `benchmarks/results/<benchmark>.jsonl` (`benchmarks.history`) and rewrite
the reference tables of BENCHMARKS.md from those files (`benchmarks.reference`).

    python -m benchmarks.run_all [--record] [--only pipeline geo ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.core import native
from benchmarks import history, reference

ROOT = Path(__file__).resolve().parents[1]

BENCHES: dict[str, list[str]] = {
    "pipeline": ["benchmarks.bench_pipeline", "-n", "150000", "--store", "server"],
    "pipeline-chdb": ["benchmarks.bench_pipeline", "-n", "150000", "--store", "chdb"],
    "latency": ["benchmarks.bench_latency", "--rate", "100", "--seconds", "60", "--store", "chdb"],
    "latency-server": ["benchmarks.bench_latency", "--rate", "100", "--seconds", "60",
                       "--store", "server"],
    "latency-1000": ["benchmarks.bench_latency", "--rate", "1000", "--seconds", "60",
                     "--store", "chdb"],
    "latency-server-1000": ["benchmarks.bench_latency", "--rate", "1000", "--seconds", "60",
                            "--store", "server"],
    # 30 minutes at 200/s: does latency stay flat as the state grows? (~33 min)
    "latency-soak": ["benchmarks.bench_latency", "--rate", "200", "--minutes", "30",
                     "--store", "server"],
    # the same with each report's simulated time (about 30,000 reports a day: 12 days pass
    # in the 30 minutes, so correlation state is evicted as in a long live run)
    "latency-soak-stream": ["benchmarks.bench_latency", "--rate", "200", "--minutes", "30",
                            "--store", "server", "--event-time", "stream"],
    # the same, started from the state of the stream's 8 days before it (sent first, at
    # full speed): correlation state and detector history at their steady size from the
    # first minute, so the run's first and last minutes compare like with like
    "latency-soak-stream-warm": ["benchmarks.bench_latency", "--rate", "200", "--minutes",
                                 "30", "--store", "server", "--event-time", "stream",
                                 "--warm-days", "8"],
    # the same at the département's own density (about 1,500 messages a day): 8 months of
    # stream in the 30 minutes, correlation and detector windows at their steady size
    "latency-soak-departement": ["benchmarks.bench_latency", "--rate", "200", "--minutes", "30",
                                 "--store", "server", "--event-time", "stream",
                                 "--stream-per-day", "1500"],
    # over a month of correlation state and stored reports (a simulated 30 days replayed first)
    "latency-state": ["benchmarks.bench_latency", "--rate", "100", "--seconds", "60",
                      "--store", "server", "--state-days", "30"],
    "geo": ["benchmarks.bench_geo", "--repeat", "3"],
    "correlation": ["benchmarks.bench_correlation", "--seeds", "1", "2", "--days", "14"],
    "detection": ["benchmarks.bench_detection"],
    "detection-pipeline": ["benchmarks.bench_detection", "--mode", "pipeline", "--no-throughput"],
    "detection-anatomy": ["benchmarks.bench_detection", "--anatomy"],
    "detection-sweep": ["benchmarks.bench_detection", "--sweep"],
    "diagnostic": ["benchmarks.bench_diagnostic", "-n", "520000", "--store", "server"],
    "robustness": ["benchmarks.bench_robustness"],
    # worker restart time against 2, 7 and 28 days of history, table state in memory and in
    # RocksDB (SIGTERM, SIGKILL, store deleted), ~15 min
    "restart": ["benchmarks.bench_restart", "--store", "server"],
    # faults on a real broker, ClickHouse server and worker (docs/chaos.md), ~8 min
    "chaos": ["benchmarks.chaos"],
}
# The results file of each command's failure record (a failed command prints no benchmark).
BENCHMARK_OF: dict[str, str] = {
    "pipeline": "pipeline",
    "pipeline-chdb": "pipeline",
    "latency": "latency",
    "latency-server": "latency",
    "latency-state": "latency",
    "latency-1000": "latency",
    "latency-soak": "latency",
    "latency-soak-stream": "latency",
    "latency-soak-stream-warm": "latency",
    "latency-soak-departement": "latency",
    "latency-server-1000": "latency",
    "geo": "geo",
    "correlation": "correlation",
    "detection": "detection_quality",
    "detection-pipeline": "detection_quality",
    "detection-anatomy": "detection_anatomy",
    "detection-sweep": "detection_sweep",
    "robustness": "robustness",
    "restart": "restart",
    "diagnostic": "diagnostic",
    "chaos": "chaos",
}


def command_of(name: str) -> str:
    return "python -m " + " ".join(BENCHES[name])


def os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


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
    # whether the benchmarks' correlation runs compiled (`agents.core.native`): each
    # benchmark process makes the same check when it imports the engine
    compiled = native.check(native.package_dir(ROOT)).mode is native.Mode.NATIVE
    return (f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {os_name()}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"correlation {'compiled (mypyc)' if compiled else 'in Python'}")


# What recording itself writes: a tree whose only changes are these is measured as clean
# (else every record after the first of a session would say `-dirty`).
RECORD_PATHS = (":!benchmarks/results", ":!BENCHMARKS.md")


def git_rev() -> str | None:
    """Short commit of the working tree, `-dirty` when it has uncommitted changes to tracked
    files other than the benchmark records."""
    head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True, check=False).stdout.strip()
    if not head:
        return None
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                              ".", *RECORD_PATHS], cwd=ROOT, capture_output=True, text=True,
                             check=False).stdout.strip()
    return head + ("-dirty" if changed else "")


# every command's whole output, one file per run (git-ignored with var/)
LOG_DIR = ROOT / "var" / "bench-logs"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())


def parse_output(stdout: str) -> list[dict[str, Any]]:
    """The JSON object lines a benchmark printed (other lines are progress or logs)."""
    results = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                results.append(obj)
    return results


def run(name: str, argv: list[str]) -> list[dict[str, Any]]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    results = parse_output(proc.stdout)
    # the full output (a benchmark's tables and progress) is kept, not only its JSON lines
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.log"
    log.write_text(f"$ python -m {' '.join(argv)}\n--- stdout\n{proc.stdout}\n"
                   f"--- stderr\n{proc.stderr}", encoding="utf-8")
    print(f"run_all: {name}: output in {log.relative_to(ROOT)}", file=sys.stderr)
    if proc.returncode != 0:
        results.append({"bench": name, "error": f"exit {proc.returncode}",
                        "stderr_tail": proc.stderr[-400:]})
    for r in results:
        r.setdefault("bench_wall_s", round(time.perf_counter() - started, 1))
        print(json.dumps(r), flush=True)
    return results


def record(name: str, results: list[dict[str, Any]], *, date: str, commit: str | None,
           machine_desc: str, via: str, load_avg: list[float],
           results_dir: Path) -> list[history.Measurement]:
    """Append one command's results to the history files; the records written."""
    ms = history.measurements_from_run(
        results, benchmark=BENCHMARK_OF[name], date=date, commit=commit,
        machine=machine_desc, command=command_of(name), via=via, load_avg=load_avg)
    history.append(results_dir, ms)
    return ms


def main(argv: list[str] | None = None,
         runner: Callable[[str, list[str]], list[dict[str, Any]]] = run) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=None)
    ap.add_argument("--record", action="store_true",
                    help="append the results to the history and rewrite the reference")
    ap.add_argument("--results", type=Path, default=history.RESULTS_DIR,
                    help="history directory (default benchmarks/results)")
    ap.add_argument("--reference", type=Path, default=ROOT / "BENCHMARKS.md",
                    help="file whose generated tables are rewritten (default BENCHMARKS.md)")
    args = ap.parse_args(argv)
    names = args.only or list(BENCHES)
    via = "make bench" if argv is None and os.environ.get("MAKELEVEL") else (
        "python -m benchmarks.run_all " + " ".join(sys.argv[1:] if argv is None else argv))
    commit, machine_desc = git_rev(), machine()
    for name in names:
        load_avg = [round(x, 1) for x in os.getloadavg()]
        date = utc_now()
        results = runner(name, BENCHES[name])
        if args.record:
            record(name, results, date=date, commit=commit, machine_desc=machine_desc,
                   via=via.strip(), load_avg=load_avg, results_dir=args.results)
    if args.record:
        reference.rewrite(args.reference, history.load(args.results))
        print(f"run_all: appended to {args.results}, rewrote the tables of {args.reference}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
