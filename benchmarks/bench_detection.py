"""Detection quality and throughput: `python -m benchmarks.bench_detection` prints JSON lines.

Quality (`run_quality`, fixed seeds): 28 simulated days of Essonne reports, 21 days of
history (baselines), 7 evaluated days; the detector runs every 5 minutes of stream clock on
the true incidents (mode `truth`: the detector alone, perfect correlation) or on the full
backtest pipeline (mode `pipeline`). Two outbreak models
(`offline.detection_quality.OutbreakModel`): `burst` (the target's kind: 3-24 h, ~3 extra
incidents an hour within 150-400 m) and the simulator's `default` (12-72 h, 300-900 m,
>= 4 extra a day: mostly too weak for hours).

`--physics` prints, for the evaluated outbreaks, when their 1st, 2nd and 3rd incidents are
first *reported* (the earliest any detector counting incidents can know them), and how often
two background incidents of one category are first reported in one H3 r8 cell within an
hour (what an alert on 2 incidents would have to beat): the floor under the median delay.

`--sweep` prints the truth-mode quality of burst outbreaks of 3, 6 and 12 extra incidents an
hour (the same episodes otherwise): how strong a spree must be for the median delay to fall
under an hour.

`--anatomy` prints one line per evaluated outbreak: when its 1st and 3rd incidents are first
reported, when the detector alerts on the true incidents and on the full pipeline, and how
many incidents the pipeline's correlation made of its reports in its first 3 hours.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from offline.detection_quality import (
    BURST,
    DEFAULT_OUTBREAKS,
    OutbreakModel,
    QualitySetup,
    run_quality,
)
from offline.replay import run_backtest

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
        "delays_h": sorted(round(d / 3600, 2) for d in report.delays_s),
        "elapsed_s": info["elapsed_s"],
    }


def physics(seed: int, scenario: str = "burst") -> dict[str, Any]:
    """When the evaluated outbreaks' k-th incidents are first reported (hours after the
    outbreak start; median over outbreaks, inf when it has fewer than k incidents), and
    background same-cell same-category pairs first reported within an hour, per day."""
    import h3

    setup = QualitySetup(seed=seed, outbreaks=SCENARIOS[scenario])
    sim = setup.simulation()
    eval_start = sim.t0 + 86400.0 * setup.warmup_days
    starts = {
        str(o["outbreak_id"]): float(o["start"])  # type: ignore[arg-type]
        for o in sim.outbreaks
        if eval_start <= float(o["start"]) < sim.t1  # type: ignore[arg-type]
    }
    reported: dict[str, list[float]] = {k: [] for k in starts}
    last: dict[tuple[str, str], float] = {}
    pairs = 0
    for m in sim:
        t = m.incident_truth
        if t is None:
            continue
        clock = m.timestamp_ms / 1000.0
        ob = t.get("outbreak_id")
        if ob is not None:
            if ob in reported:
                reported[str(ob)].append(clock - starts[str(ob)])
            continue
        key = (h3.latlng_to_cell(float(t["lat"]), float(t["lon"]), 8), str(t["category"]))  # type: ignore[arg-type]
        if clock - last.get(key, -1e18) < 3600.0:
            pairs += 1
        last[key] = clock
    kth = {
        k: statistics.median(
            sorted(r)[k - 1] / 3600.0 if len(r) >= k else float("inf") for r in reported.values()
        )
        for k in (1, 2, 3)
    }
    return {
        "bench": "detection_physics",
        "seed": seed,
        "scenario": scenario,
        "outbreaks": len(starts),
        "median_first_report_h": {f"incident_{k}": round(v, 2) for k, v in kth.items()},
        "background_same_cell_pairs_within_1h_per_day": round(pairs / setup.days, 1),
    }


def anatomy(seed: int, scenario: str = "burst") -> list[dict[str, Any]]:
    """Where each evaluated outbreak's delay goes: when its 1st and 3rd incidents are first
    reported (hours after its start), when the detector alerts on the true incidents
    (`truth`) and on the full pipeline (`pipeline`), and how many incidents the correlation
    made of the outbreak's reports in its first 3 hours (several real incidents close in
    place and time can look like one incident reported several times)."""
    from agents.core.detection.quality import OutbreakTruth, evaluate
    from offline.replay import BacktestOptions

    setup = QualitySetup(seed=seed, outbreaks=SCENARIOS[scenario])
    sim = setup.simulation()
    eval_start, eval_end = sim.t0 + 86400.0 * setup.warmup_days, sim.t1
    outbreaks = {
        ob.outbreak_id: ob
        for ob in map(OutbreakTruth.from_truth, sim.outbreaks)
        if eval_start <= ob.start < eval_end
    }
    first_report: dict[str, dict[str, float]] = {k: {} for k in outbreaks}
    report_outbreak: dict[str, str] = {}
    lines: list[bytes] = []
    for m in sim:
        lines.append(m.value)
        ob = m.truth.get("outbreak_id") if m.truth else None
        if ob in outbreaks and not m.truth.get("expected_reject_reason"):
            first_report[str(ob)].setdefault(str(m.truth["incident_id"]), m.timestamp_ms / 1e3)
            report_outbreak[str(m.truth["report_id"])] = str(ob)
    truth_alerts = run_quality(setup)[1]["alerts"]
    opts = BacktestOptions(setup.detect_every_s, setup.warmup_days, setup.detection)
    pipeline = run_backtest(lines, options=opts)
    founded: dict[str, dict[str, float]] = {k: {} for k in outbreaks}
    for v in pipeline.incidents:
        report_ids: list[str] = v["report_ids"]  # type: ignore[assignment]
        for rid in report_ids:
            ob = report_outbreak.get(rid)
            if ob is not None:
                seen = float(v["first_seen_at"])  # type: ignore[arg-type]
                founded[ob].setdefault(str(v["incident_id"]), seen)

    def delay_h(alerts: list[dict[str, Any]], ob: OutbreakTruth) -> float | None:
        rep = evaluate(alerts, [ob], eval_start=eval_start, eval_end=eval_end)
        return round(rep.delays_s[0] / 3600.0, 2) if rep.delays_s else None

    rows = []
    for ob_id, ob in sorted(outbreaks.items()):
        reported = sorted((t - ob.start) / 3600.0 for t in first_report[ob_id].values())
        early_true = sum(1 for t in reported if t < 3.0)
        early_pred = sum(1 for t in founded[ob_id].values() if t - ob.start < 3 * 3600.0)
        rows.append(
            {
                "bench": "detection_anatomy",
                "seed": seed,
                "outbreak": ob_id,
                "category": ob.category,
                "radius_m": ob.radius_m,
                "incidents": len(reported),
                "incident_1_reported_h": round(reported[0], 2) if reported else None,
                "incident_3_reported_h": round(reported[2], 2) if len(reported) > 2 else None,
                "alert_truth_h": delay_h(truth_alerts, ob),
                "alert_pipeline_h": delay_h(pipeline.alerts, ob),
                "first_3h_true_incidents": early_true,
                "first_3h_pipeline_incidents": early_pred,
            }
        )
    return rows


SWEEP_EXTRA_PER_HOUR = (3.0, 6.0, 12.0)


def sweep(seed: int) -> list[dict[str, object]]:
    """Truth-mode quality of `BURST` outbreaks at several strengths (extra incidents/hour)."""
    rows: list[dict[str, object]] = []
    for per_hour in SWEEP_EXTRA_PER_HOUR:
        model = replace(BURST, min_extra_per_day=24.0 * per_hour)
        report, info = run_quality(QualitySetup(seed=seed, outbreaks=model))
        d = report.as_dict()
        rows.append(
            {
                "bench": "detection_sweep",
                "seed": seed,
                "extra_incidents_per_h": per_hour,
                **{
                    k: d[k]
                    for k in (
                        "outbreaks",
                        "detected_share",
                        "median_delay_h",
                        "false_alerts_per_day",
                    )
                },
                "elapsed_s": info["elapsed_s"],
            }
        )
    return rows


def throughput(days: float, seed: int) -> dict[str, object]:
    """Backtest throughput on `days` of simulated reports (file written first, then timed)."""
    from offline.simulator.config import SimulationConfig
    from offline.simulator.engine import simulate

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
        "seed": seed,
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
    ap.add_argument("--no-throughput", action="store_true", help="quality lines only")
    ap.add_argument("--physics", action="store_true", help="only the arrival floor (fast)")
    ap.add_argument(
        "--anatomy", action="store_true", help="per outbreak: arrivals, alerts, incidents made"
    )
    ap.add_argument("--sweep", action="store_true", help="delay against outbreak strength")
    ap.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"quality scenarios, comma-separated ({','.join(SCENARIOS)})",
    )
    args = ap.parse_args()
    if args.sweep:
        for seed in (int(s) for s in args.seeds.split(",")):
            for row in sweep(seed):
                print(json.dumps(row), flush=True)
        return
    if args.anatomy:
        for seed in (int(s) for s in args.seeds.split(",")):
            for row in anatomy(seed):
                print(json.dumps(row), flush=True)
        return
    if args.physics:
        for seed in (int(s) for s in args.seeds.split(",")):
            print(json.dumps(physics(seed)), flush=True)
        return
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    for scenario in scenarios:
        for seed in (int(s) for s in args.seeds.split(",")):
            print(json.dumps(quality(seed, scenario, args.mode)), flush=True)
    if args.no_throughput:
        return
    try:
        print(json.dumps(throughput(args.throughput_days, 1)), flush=True)
    except ImportError as exc:  # correlation not installed in this build
        print(json.dumps({"bench": "backtest_throughput", "skipped": str(exc)}))


if __name__ == "__main__":
    main()
