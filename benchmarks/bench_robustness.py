"""Robustness over random reporting worlds: `python -m benchmarks.bench_robustness`.

Each world is the simulator with a reporting model drawn from wide ranges by its seed
(`offline.simulator.world`: position errors, stated accuracy conventions, lags and late batch
uploads, confusion, commune-only positions, re-deliveries, source mix, incident rates,
chronic places or not). Outbreak worlds carry burst outbreaks (`offline.detection_quality.
BURST`, the detection targets' kind, at its density of 40 per 28 days); null worlds carry
none, so every alert on them is false. Seeds start at `--seed-base` (1000): none of them is a
seed anything was tuned on.

A world is `--history-days` (14) of history then `--days` (7) evaluated days, simulated as
one stream and split at the send time: the history feeds the baselines and the correlation
state, as `vigie backtest --history` does, with that command's default settings (no
per-world tuning). Scored on the evaluated days (metric code reused:
`agents.core.correlation.quality.score`, `agents.core.detection.quality.evaluate`):

- pair precision / recall / F1 and B-cubed F1 of the incidents over the evaluated valid
  reports (re-deliveries and rejected lines left out); also pair precision and F1 over the
  reports of background incidents only (not of an outbreak), for diagnosis;
- the same pair scores of an assignment oracle (`benchmarks.assignment_oracle`): each report
  sent to the true incident most likely to have produced it, by someone who knows every
  true incident (place or path, time span, category) and the world's reporting model. A
  reference, not a bound: it knows far more than any correlator can, and its model is an
  approximation of the simulator's;
- commune accuracy: share of the predicted incidents whose commune is a commune of the
  true incident most of their reports belong to: the commune its point lies in, or for a
  moving one (a rodeo's 300-1,500 m path) any commune its path crosses (the truth's
  `insee_path`: its reports come from all along it); `commune_accuracy_start` counts
  only the commune where a moving incident began; `commune_ceiling` is the share of the
  predicted incidents one of whose reports names a commune of that true incident (the
  commune its position lies in, or the commune a commune-only report states): no rule that
  picks among the communes of an incident's reports does better, so what separates it from
  1 is the reports' own position errors (the pipeline may, rarely, pass it: an incident of
  several positions takes the commune its centre lies in, which none of them may name);
- where the pair errors are (`pairs`, per world): by the class of the true incidents'
  category (point, mobile, persistent), the true pairs, those split apart and the false
  pairs between two true incidents of the class (`mixed`: of two classes);
- incidents found / true: predicted incidents holding an evaluated report / true incidents
  with one;
- bursts detected, median alert delay, false alerts a day (`evaluate`: alerts opened in the
  evaluated days; an alert matching no outbreak is false);
- where the delay comes from: the floor (the median outbreak's 3rd incident first reported,
  `delay_floor`), and the bursts detected and median delay of the same detector on the true
  incidents (`offline.detection_quality.detect_on`, each true incident counted once when
  first reported, at its true place and category): the difference with the pipeline's is
  what its incidents (positions, categories, merges and splits) cost the detection; and the
  same on the true incidents as their first reports tell them (`as_reported`: the category
  and position they state, commune-only ones not counted per cell): what the reports' own
  errors cost before any correlation, so that the rest is the correlation's;
- the thresholds each of the three ended on (`threshold`, `truth_threshold`,
  `reported_threshold`), each calibrated on its own history: the correlation's splits and
  merges reach the delay through the threshold (a history of split incidents scores higher,
  and the false-alert promise lifts the threshold over it) and through the counts (an
  outbreak's incidents merged count once).

Prints one JSON line per world, then a summary line (min / median of each figure and each
target with PASS/FAIL) and a readable table on stderr. The targets are measured, not tuned
for.

    python -m benchmarks.bench_robustness [--worlds 20] [--null-worlds 10] [--jobs 2]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from agents.core.correlation.quality import MISSED_CAUSES

OUTBREAKS, NULL = "outbreaks", "null"
NULL_SEED_OFFSET = 500  # null worlds draw seeds seed_base + 500 + i: never an outbreak world's


@dataclass(frozen=True, slots=True)
class WorldSpec:
    seed: int
    scenario: str  # OUTBREAKS | NULL
    history_days: float
    days: float  # evaluated days


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # e.g. pair_f1.median
    label: str
    op: str  # ">=" | "<="
    bound: float
    scenario: str | None  # worlds it is judged on (None: every world)
    stat: str  # "min" | "median" | "max"
    metric: str

    def judge(self, value: float | None) -> bool:
        if value is None:
            return False
        return value >= self.bound if self.op == ">=" else value <= self.bound


TARGETS = (
    Target("pair_f1.median", "pair F1, median", ">=", 0.92, None, "median", "pair_f1"),
    Target("pair_f1.min", "pair F1, min", ">=", 0.85, None, "min", "pair_f1"),
    Target("pair_precision.min", "pair precision, min", ">=", 0.92, None, "min", "pair_precision"),
    Target(
        "commune_accuracy.median",
        "commune accuracy, median",
        ">=",
        0.985,
        None,
        "median",
        "commune_accuracy",
    ),
    Target(
        "null_false_alerts_per_day.max",
        "false alerts/day, every null world",
        "<=",
        1.0,
        NULL,
        "max",
        "false_alerts_per_day",
    ),
    Target(
        "bursts_detected_share.median",
        "bursts detected, median",
        ">=",
        0.90,
        OUTBREAKS,
        "median",
        "bursts_detected_share",
    ),
    Target(
        "median_delay_h.median",
        "median delay, median",
        "<=",
        2.5,
        OUTBREAKS,
        "median",
        "median_delay_h",
    ),
)


def backtest_defaults() -> Any:
    """The options `vigie backtest --history` runs with when given no option."""
    from agents.core.detection import DetectionConfig
    from offline.backtest import register
    from offline.replay import BacktestOptions

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["backtest", "--input", "-", "--out", "-", "--history", "-"])
    detection = DetectionConfig(false_alerts_per_day=args.false_alerts_per_day)
    return BacktestOptions(args.detect_every, args.warmup_days, detection)


def world_flat(world: Any) -> dict[str, object]:
    """The drawn world as scalars (source weights as `source_<kind>`)."""
    out: dict[str, object] = {}
    for key, value in world.truth().items():
        if key in ("type", "seed"):
            continue
        if isinstance(value, dict):
            out.update({f"source_{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


@functools.cache
def _geocoder() -> Any:
    """The geocoder the pipeline enriches reports with (built once per process)."""
    from agents.core.geo import Geocoder
    from agents.core.jurisdictions import load_jurisdictions
    from agents.core.refdata import load_refdata

    refdata = load_refdata()
    return Geocoder(refdata, load_jurisdictions(None, refdata))


def named_commune(location: dict[str, Any]) -> str | None:
    """The commune a report's `location` names: that of its position, or the one it
    states."""
    if "lat" in location and "lon" in location:
        found: str | None = _geocoder().insee_at(float(location["lat"]), float(location["lon"]))
        return found
    insee = location.get("insee")
    return str(insee) if insee is not None else None


def run_world(spec: WorldSpec) -> dict[str, Any]:
    """Simulate one random world, replay it as `vigie backtest --history` does, score it."""
    from agents.core.correlation import CorrelationConfig
    from agents.core.correlation.quality import (
        IncidentLimits,
        ReportFacts,
        merges_undone,
        missed_pairs_by_cause,
        pair_errors_by,
        score,
        splits_healed,
        unlocated_placed,
    )
    from agents.core.detection.quality import OutbreakTruth, evaluate
    from benchmarks.assignment_oracle import (
        AssignmentOracle,
        ErrorModel,
        TrueIncident,
        oracle_incidents,
    )
    from offline.detection_quality import (
        BURST,
        TruthEvent,
        detection_loop_on,
        truth_incidents,
    )
    from offline.replay import run_backtest
    from offline.simulator import SimulationConfig, apply_world, draw_world, simulate
    from offline.simulator.world import burst_fields
    from schemas.report import parse_rfc3339

    began = time.perf_counter()
    world = draw_world(spec.seed)
    total = spec.history_days + spec.days
    cfg = apply_world(SimulationConfig(days=total, seed=spec.seed), world)
    fields = burst_fields(BURST.sim_fields(), total)
    if spec.scenario == NULL:
        fields["outbreaks"] = 0
    for name, value in fields.items():
        setattr(cfg, name, value)
    sim = simulate(cfg)
    split = sim.t0 + spec.history_days * 86400.0
    history: list[bytes] = []
    lines: list[bytes] = []
    truth: dict[str, str] = {}  # evaluated valid report -> true incident
    named: dict[str, str | None] = {}  # evaluated valid report -> the commune it names
    in_outbreak: set[str] = set()  # those of an outbreak's incidents
    true_insee: dict[str, str] = {}
    true_class: dict[str, str] = {}  # true incident -> its category's class
    classes = CorrelationConfig()
    true_path: dict[str, frozenset[str]] = {}  # the communes a moving incident crosses
    first_reports: dict[str, list[float]] = {}  # outbreak -> its incidents' first reports
    events: list[TruthEvent] = []  # each message's send time and the incident it founds
    true_incidents: list[TrueIncident] = []
    evaluated: dict[str, bytes] = {}  # evaluated valid report -> its line (the oracle's)
    facts: dict[str, ReportFacts] = {}  # evaluated valid report -> what it states
    limits: dict[str, IncidentLimits] = {}  # true incident -> its category's bounds
    for m in sim:
        events.append(TruthEvent(m.timestamp_ms, m.incident_truth, m.value))
        if m.incident_truth is not None:
            true_incidents.append(TrueIncident.from_truth(m.incident_truth))
            true_id = str(m.incident_truth["incident_id"])
            true_insee[true_id] = str(m.incident_truth["insee"])
            true_class[true_id] = classes.class_of(str(m.incident_truth["category"])).value
            bounds = classes.params(str(m.incident_truth["category"]))
            limits[true_id] = IncidentLimits(
                bounds.window_s, max(bounds.max_radius_m, bounds.link_m)
            )
            crossed = m.incident_truth["insee_path"]
            assert isinstance(crossed, list)
            true_path[true_id] = frozenset(map(str, crossed))  # holds `insee` (the truth's)
            if m.incident_truth.get("outbreak_id") is not None:
                ob_id = str(m.incident_truth["outbreak_id"])
                first_reports.setdefault(ob_id, []).append(m.timestamp_ms / 1000.0)
        if m.timestamp_ms / 1000.0 < split:
            history.append(m.value)
            continue
        lines.append(m.value)
        t = m.truth
        if t["incident_id"] is not None and not t["is_redelivery"]:
            truth[str(t["report_id"])] = str(t["incident_id"])
            report = json.loads(m.value)
            location = report.get("location") or {}
            named[str(t["report_id"])] = named_commune(location)
            facts[str(t["report_id"])] = ReportFacts(
                str(report["category"]),
                parse_rfc3339(report["occurred_at"]).timestamp(),
                location.get("lat"),
                location.get("lon"),
            )
            evaluated[str(t["report_id"])] = m.value
            if t["outbreak_id"] is not None:
                in_outbreak.add(str(t["report_id"]))
    simulated = time.perf_counter() - began
    unlocated = {rid for rid, f in facts.items() if f.lat is None}  # without a position
    options = backtest_defaults()
    result = run_backtest(lines, history=history, options=options)
    predicted: dict[str, str] = {}
    insee_of: dict[str, str] = {}
    for v in result.incidents:
        iid = str(v["incident_id"])
        insee_of[iid] = str(v["insee"])
        for rid in v["report_ids"]:  # type: ignore[attr-defined]
            predicted[str(rid)] = iid
    scores = score(predicted, truth)
    oracle = score(
        oracle_incidents(AssignmentOracle(true_incidents, ErrorModel.of_world(world)), evaluated),
        truth,
    )
    background = score(predicted, {k: v for k, v in truth.items() if k not in in_outbreak})
    # what each kind of error costs: the pair F1 were it mended, every other left as is
    what_if = {
        "pair_f1_splits_healed": score(splits_healed(predicted, truth), truth).pairwise_f1,
        "pair_f1_unlocated_placed": score(
            unlocated_placed(predicted, truth, unlocated), truth
        ).pairwise_f1,
        "pair_f1_merges_undone": score(merges_undone(predicted, truth), truth).pairwise_f1,
    }
    missed = missed_pairs_by_cause(predicted, truth, facts, limits)
    missed_total = sum(missed.values())
    members: dict[str, Counter[str]] = {}
    reports_of: dict[str, list[str]] = {}
    for rid, true_id in truth.items():
        if rid in predicted:
            members.setdefault(predicted[rid], Counter())[true_id] += 1
            reports_of.setdefault(predicted[rid], []).append(rid)
    majority = {iid: c.most_common(1)[0][0] for iid, c in members.items()}
    right = sum(1 for iid, t in majority.items() if insee_of[iid] in true_path[t])
    right_start = sum(1 for iid, t in majority.items() if insee_of[iid] == true_insee[t])
    reachable = sum(
        1
        for iid, t in majority.items()
        if any(named[rid] in true_path[t] for rid in reports_of[iid])
    )
    outbreaks = [OutbreakTruth.from_truth(o) for o in sim.outbreaks]
    quality = evaluate(
        result.alerts,
        outbreaks,
        eval_start=split,
        eval_end=sim.t1,
    )
    q = quality.as_dict()
    floor = delay_floor(result.alerts, sim.outbreaks, first_reports, split, sim.t1)
    # the same detector on the true incidents (each counted once, when first reported, at its
    # true place and category): what the pipeline's incidents add to the delay; and on the
    # true incidents as their first reports tell them (category, position, commune only):
    # what of that the reports' own errors cost before any correlation
    on_truth_loop = detection_loop_on(truth_incidents(events), split, options)
    on_truth = evaluate(
        on_truth_loop.alerts, outbreaks, eval_start=split, eval_end=sim.t1
    ).as_dict()
    as_reported_loop = detection_loop_on(truth_incidents(events, as_reported=True), split, options)
    as_reported = evaluate(
        as_reported_loop.alerts, outbreaks, eval_start=split, eval_end=sim.t1
    ).as_dict()
    return {
        "bench": "robustness",
        "scenario": spec.scenario,
        "seed": spec.seed,
        "days": spec.days,
        "history_days": spec.history_days,
        "pair_precision": round(scores.pairwise_precision, 4),
        "pair_recall": round(scores.pairwise_recall, 4),
        "pair_f1": round(scores.pairwise_f1, 4),
        "bcubed_f1": round(scores.bcubed_f1, 4),
        # the same over the reports of background incidents only (outbreak incidents, close
        # in place and time, are the hardest to keep apart)
        "background_pair_precision": round(background.pairwise_precision, 4),
        "background_pair_f1": round(background.pairwise_f1, 4),
        # the same pair scores of the assignment oracle (`benchmarks.assignment_oracle`:
        # each report sent to its likeliest true incident, knowing them all)
        "oracle_pair_precision": round(oracle.pairwise_precision, 4),
        "oracle_pair_recall": round(oracle.pairwise_recall, 4),
        "oracle_pair_f1": round(oracle.pairwise_f1, 4),
        # the pair F1 with each kind of error mended alone (`agents.core.correlation.quality`):
        # pure fragments of one true incident merged (a merge step that is never wrong),
        # reports without a position placed with most of their located true mates, every
        # incident cut by true incident
        **{k: round(v, 4) for k, v in what_if.items()},
        # where the pair errors are, by the class of the true incidents' category: their
        # true pairs, those split apart, and the pairs of two of them merged ("mixed":
        # two classes)
        "pairs": {
            label: {"true": e.true_pairs, "missed": e.missed, "false": e.false}
            for label, e in pair_errors_by(predicted, truth, true_class).items()
        },
        # the true pairs split apart by what kept them apart (`quality.
        # missed_pairs_by_cause`): one report without a position, further apart in time or
        # in space than a direct match of the category reaches, two stated categories, or
        # none of these (close enough, the decisions kept them apart); and each one's
        # share of them
        "missed_pairs": missed,
        **{
            f"missed_share_{cause}": (
                round(n / missed_total, 4) if missed_total else None
            )
            for cause, n in missed.items()
        },
        "commune_accuracy": round(right / len(members), 4) if members else None,
        "commune_accuracy_start": round(right_start / len(members), 4) if members else None,
        "commune_ceiling": round(reachable / len(members), 4) if members else None,
        "incidents_found": scores.predicted_incidents,
        "incidents_true": scores.true_incidents,
        "bursts": q["outbreaks"],
        "bursts_detected": q["detected"],
        "bursts_detected_share": q["detected_share"] if quality.outbreaks else None,
        "median_delay_h": q["median_delay_h"],
        **floor,
        "truth_bursts_detected_share": (on_truth["detected_share"] if quality.outbreaks else None),
        "truth_median_delay_h": on_truth["median_delay_h"],
        "reported_bursts_detected_share": (
            as_reported["detected_share"] if quality.outbreaks else None
        ),
        "reported_median_delay_h": as_reported["median_delay_h"],
        # the alert thresholds the three detectors ended on (each calibrated on its own
        # history: the pipeline's incidents, the true ones, the true ones as reported)
        "threshold": _rounded(result.summary["threshold"]),
        "truth_threshold": _rounded(on_truth_loop.detector.threshold),
        "reported_threshold": _rounded(as_reported_loop.detector.threshold),
        "alerts_opened": q["alerts_opened"],
        "false_alerts": q["false_alerts"],
        "false_alerts_per_day": q["false_alerts_per_day"],
        "lines": len(lines),
        "history_lines": len(history),
        "simulate_s": round(simulated, 1),
        "elapsed_s": round(time.perf_counter() - began, 1),
        "world": world_flat(world),
    }


def delay_floor(
    alerts: Sequence[dict[str, Any]],
    outbreaks: Sequence[dict[str, Any]],
    first_reports: dict[str, list[float]],
    eval_start: float,
    eval_end: float,
) -> dict[str, float | None]:
    """The physical floor under the delay (as `bench_detection --physics`): the median over
    the evaluated outbreaks of when their 3rd incident is first reported (hours after the
    start; an alert needs about 3 incidents, and a detector counting incidents cannot know
    one before its first report), and the median over the detected ones of their delay
    minus their own floor (what detection and correlation add to it)."""
    from agents.core.detection.quality import OutbreakTruth, evaluate

    floors: list[float] = []
    over: list[float] = []
    for truth in outbreaks:
        ob = OutbreakTruth.from_truth(truth)
        if not eval_start <= ob.start < eval_end:
            continue
        reported = sorted(first_reports.get(ob.outbreak_id, []))
        third = (reported[2] - ob.start) / 3600.0 if len(reported) >= 3 else float("inf")
        floors.append(third)
        rep = evaluate(alerts, [ob], eval_start=eval_start, eval_end=eval_end)
        if rep.delays_s and math.isfinite(third):
            over.append(rep.delays_s[0] / 3600.0 - third)
    med = statistics.median(floors) if floors else None
    return {
        "delay_floor_h": round(med, 3) if med is not None and math.isfinite(med) else None,
        "delay_over_floor_h": round(statistics.median(over), 3) if over else None,
    }


def _stat(values: Sequence[float], stat: str) -> float | None:
    if not values:
        return None
    if stat == "min":
        return round(min(values), 4)
    if stat == "max":
        return round(max(values), 4)
    return round(float(statistics.median(values)), 4)


def values_of(rows: Sequence[dict[str, Any]], metric: str, scenario: str | None) -> list[float]:
    return [
        float(r[metric])
        for r in rows
        if (scenario is None or r["scenario"] == scenario) and r.get(metric) is not None
    ]


SUMMARY_METRICS = (
    ("pair_precision", None),
    ("pair_recall", None),
    ("pair_f1", None),
    ("bcubed_f1", None),
    ("background_pair_precision", None),
    ("background_pair_f1", None),
    ("oracle_pair_precision", None),
    ("oracle_pair_recall", None),
    ("oracle_pair_f1", None),
    ("pair_f1_splits_healed", None),
    ("pair_f1_unlocated_placed", None),
    ("pair_f1_merges_undone", None),
    *((f"missed_share_{cause}", None) for cause in MISSED_CAUSES),
    ("commune_accuracy", None),
    ("commune_accuracy_start", None),
    ("commune_ceiling", None),
    ("bursts_detected_share", OUTBREAKS),
    ("median_delay_h", OUTBREAKS),
    ("delay_floor_h", OUTBREAKS),
    ("delay_over_floor_h", OUTBREAKS),
    ("truth_bursts_detected_share", OUTBREAKS),
    ("truth_median_delay_h", OUTBREAKS),
    ("reported_bursts_detected_share", OUTBREAKS),
    ("reported_median_delay_h", OUTBREAKS),
    ("threshold", None),
    ("truth_threshold", None),
    ("reported_threshold", None),
    ("false_alerts_per_day", OUTBREAKS),
    ("false_alerts_per_day", NULL),
)


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """min / median of every figure over the worlds, each target's value and verdict."""
    out: dict[str, Any] = {
        "bench": "robustness",
        "scenario": "summary",
        "worlds": sum(1 for r in rows if r["scenario"] == OUTBREAKS),
        "null_worlds": sum(1 for r in rows if r["scenario"] == NULL),
    }
    for metric, scenario in SUMMARY_METRICS:
        vals = values_of(rows, metric, scenario)
        key = (
            metric
            if scenario is None or metric != "false_alerts_per_day"
            else (f"{scenario}_{metric}")
        )
        out[key] = {
            "min": _stat(vals, "min"),
            "median": _stat(vals, "median"),
            "max": _stat(vals, "max"),
        }
    verdicts: dict[str, bool] = {}
    for t in TARGETS:
        value = _stat(values_of(rows, t.metric, t.scenario), t.stat)
        verdicts[t.name] = t.judge(value)
    out["meets_target"] = verdicts
    out["all_targets_met"] = all(verdicts.values())
    return out


def _rounded(threshold: float) -> float | None:
    """A threshold as recorded: None while not calibrated (infinite)."""
    return round(threshold, 2) if math.isfinite(threshold) else None


def _fmt(v: object, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def print_table(rows: Sequence[dict[str, Any]], out: Any = sys.stderr) -> None:
    head = (
        "world",
        "seed",
        "P",
        "R",
        "F1",
        "B3",
        "bg P",
        "bg F1",
        "oracle F1",
        "commune",
        "inc found/true",
        "bursts",
        "delay h",
        "truth delay h",
        "as reported delay h",
        "threshold (truth)",
        "FA/day",
        "cit err m",
        "stated",
        "lag x",
        "late batch",
        "confusion",
        "commune-only",
        "redeliv",
        "rate x",
        "chronic",
        "s",
    )
    print(" | ".join(head), file=out)
    for r in rows:
        w = r["world"]
        stated = w["stated_accuracy"] + (
            "" if w["stated_accuracy"] == "absent" else f"/{w['accuracy_radius']}"
        )
        bursts = f"{r['bursts_detected']}/{r['bursts']}" if r["scenario"] == OUTBREAKS else "-"
        print(
            " | ".join(
                (
                    r["scenario"],
                    str(r["seed"]),
                    _fmt(r["pair_precision"]),
                    _fmt(r["pair_recall"]),
                    _fmt(r["pair_f1"]),
                    _fmt(r["bcubed_f1"]),
                    _fmt(r["background_pair_precision"]),
                    _fmt(r["background_pair_f1"]),
                    _fmt(r.get("oracle_pair_f1")),
                    _fmt(r["commune_accuracy"], 4),
                    f"{r['incidents_found']}/{r['incidents_true']}",
                    bursts,
                    _fmt(r["median_delay_h"], 2),
                    _fmt(r["truth_median_delay_h"], 2),
                    _fmt(r.get("reported_median_delay_h"), 2),
                    f"{_fmt(r.get('threshold'), 1)} ({_fmt(r.get('truth_threshold'), 1)})",
                    _fmt(r["false_alerts_per_day"], 2),
                    _fmt(w["citizen_error_m"], 0),
                    stated,
                    _fmt(w["lag_factor"], 2),
                    _fmt(w["late_batch_share"], 2),
                    _fmt(w["confusion"], 2),
                    _fmt(w["commune_only"], 2),
                    _fmt(w["redelivery_rate"], 3),
                    _fmt(w["incident_rate"], 2),
                    "yes" if w["chronic_places"] else "no",
                    _fmt(r["elapsed_s"], 0),
                )
            ),
            file=out,
        )


def print_summary(s: dict[str, Any], rows: Sequence[dict[str, Any]], out: Any = sys.stderr) -> None:
    print(f"\n{s['worlds']} outbreak worlds, {s['null_worlds']} null worlds", file=out)
    print("figure | worlds | min | median | max", file=out)
    for metric, scenario in SUMMARY_METRICS:
        key = (
            metric
            if scenario is None or metric != "false_alerts_per_day"
            else (f"{scenario}_{metric}")
        )
        v = s[key]
        print(
            f"{key} | {scenario or 'all'} | {_fmt(v['min'], 4)} | {_fmt(v['median'], 4)} | "
            f"{_fmt(v['max'], 4)}",
            file=out,
        )
    print("\ntarget | value | bound | verdict", file=out)
    for t in TARGETS:
        value = _stat(values_of(rows, t.metric, t.scenario), t.stat)
        verdict = "PASS" if s["meets_target"][t.name] else "FAIL"
        print(f"{t.label} | {_fmt(value, 4)} | {t.op} {t.bound:g} | {verdict}", file=out)


def specs(args: argparse.Namespace) -> list[WorldSpec]:
    out = [
        WorldSpec(args.seed_base + i, OUTBREAKS, args.history_days, args.days)
        for i in range(args.worlds)
    ]
    out += [
        WorldSpec(args.seed_base + NULL_SEED_OFFSET + i, NULL, args.history_days, args.days)
        for i in range(args.null_worlds)
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_robustness",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--worlds", type=int, default=20, help="worlds with outbreaks (20)")
    ap.add_argument("--null-worlds", type=int, default=10, help="worlds without (10)")
    ap.add_argument("--days", type=float, default=7.0, help="evaluated days per world (7)")
    ap.add_argument(
        "--history-days", type=float, default=14.0, help="history days before them (14)"
    )
    ap.add_argument(
        "--seed-base",
        type=int,
        default=1000,
        help="first seed (1000; null worlds from seed base + 500)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="worlds run in parallel (2)")
    args = ap.parse_args(argv)
    if args.worlds < 0 or args.null_worlds < 0 or args.worlds + args.null_worlds == 0:
        ap.error("at least one world")
    if args.days <= 0 or args.history_days < 0 or args.jobs < 1:
        ap.error("--days must be > 0, --history-days >= 0, --jobs >= 1")
    todo = specs(args)
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=min(args.jobs, len(todo))) as pool:
        for row in pool.map(run_world, todo):
            rows.append(row)
            print(json.dumps(row), flush=True)
    s = summary(rows)
    print(json.dumps(s), flush=True)
    print_table(rows)
    print_summary(s, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
