"""Detection quality and throughput: `python -m benchmarks.bench_detection` prints JSON lines.

Quality (`run_quality`, fixed seeds): 28 simulated days of Essonne reports, 21 days of
history (baselines), 7 evaluated days; the detector runs every 5 minutes of stream clock on
the true incidents (mode `truth`: the detector alone, perfect correlation) or on the full
backtest pipeline (mode `pipeline`). Two outbreak models (`streams.backtest.OutbreakModel`):
`burst` (the target's kind: 3-24 h, ~3 extra incidents an hour within 150-400 m) and the
simulator's `default` (12-72 h, 300-900 m, >= 4 extra a day: mostly too weak for hours).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from streams.backtest import (
    BURST,
    DEFAULT_OUTBREAKS,
    OutbreakModel,
    QualitySetup,
    run_backtest,
    run_quality,
)

SCENARIOS: dict[str, OutbreakModel] = {"burst": BURST, "default": DEFAULT_OUTBREAKS}


def quality(seed: int, scenario: str, mode: str) -> dict[str, object]:
    setup = QualitySetup(seed=seed, mode=mode, outbreaks=SCENARIOS[scenario])
    report, info = run_quality(setup)
    return {
        "bench": "detection_quality",
        "seed": seed,
        "scenario": scenario,
        "mode": mode,
        **report.as_dict(),
        "elapsed_s": info["elapsed_s"],
    }


def throughput(days: float, seed: int) -> dict[str, object]:
    """Backtest throughput on `days` of simulated reports (file written first, then timed)."""
    from streams.simulator.config import SimulationConfig
    from streams.simulator.engine import simulate

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reports.jsonl"
        with open(path, "wb") as fh:
            for m in simulate(SimulationConfig(days=days, seed=seed)):
                fh.write(m.value.replace(b"\n", b" ") + b"\n")
        lines = path.read_bytes().splitlines(keepends=True)
        started = time.perf_counter()
        result = run_backtest(lines)
        elapsed = time.perf_counter() - started
    return {
        "bench": "backtest_throughput",
        "days": days,
        "lines": len(lines),
        "elapsed_s": round(elapsed, 2),
        "reports_per_s": round(len(lines) / elapsed),
        "alerts_opened": result.summary["alerts_opened"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--mode", default="truth", choices=["truth", "pipeline"])
    ap.add_argument("--throughput-days", type=float, default=28.0)
    args = ap.parse_args()
    for scenario in SCENARIOS:
        for seed in (int(s) for s in args.seeds.split(",")):
            print(json.dumps(quality(seed, scenario, args.mode)), flush=True)
    try:
        print(json.dumps(throughput(args.throughput_days, 1)), flush=True)
    except ImportError as exc:  # correlation not installed in this build
        print(json.dumps({"bench": "backtest_throughput", "skipped": str(exc)}))


if __name__ == "__main__":
    main()
