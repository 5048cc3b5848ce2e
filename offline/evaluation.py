"""`vigie eval`: correlation quality on a fixed-seed simulated stream with ground truth.

The simulator's messages (send order, the Kafka timestamp standing in for a missing
`reported_at`) go through the live core: the intake (`agents.core.intake`: validation,
enrichment; re-deliveries kept) -> `Correlator.process`. Every valid report carries the true
incident id of the simulator; the predicted incident of a report is the incident whose
versions list it. Scores (`agents.core.correlation.quality`): pairwise precision / recall /
F1, B-cubed F1, over-merge rate, per true category, over the whole stream (the engine starts
empty) and in steady state (`steady_state`: only the true incidents that start after
`warmup_days`, by when the engine has learned its chronic places, as a deployed engine has);
correlation throughput (reports/s through `process` alone, state in use: closing, eviction, a
realistic backlog); and the partition border trade-off: the share of true same-incident pairs
whose reports fall under different `partition_key`s, at H3 resolutions 4 to 7.

    vigie eval --seeds 1 2 --days 14
    python -m offline.evaluation --seeds 1 --days 14 --steady --min-f1 0.9 --min-precision 0.95
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from agents.core.correlation import CommuneAt, CorrelationConfig, Correlator, partition_key
from agents.core.correlation.quality import score, split_pair_share
from agents.core.record import ReportRecord

BORDER_RESOLUTIONS = (4, 5, 6, 7)


@dataclass(frozen=True, slots=True)
class EvalSetup:
    seed: int = 1
    days: float = 14.0
    start: str = "2024-03-18"
    scale: float = 1.0
    warmup_days: float = 7.0  # `steady_state` scores incidents starting after this
    config: CorrelationConfig = field(default_factory=CorrelationConfig)


@dataclass(slots=True)
class LabelledStream:
    """Enriched valid reports in arrival order, with the true incident and category."""

    records: list[ReportRecord]
    truth: dict[str, str]  # report_id -> true incident id
    true_category: dict[str, str]
    incidents: dict[str, dict[str, object]]  # true incident id -> simulator truth
    messages: int
    seconds: dict[str, float]
    commune_at: CommuneAt | None = None  # the intake's geocoder's, for `correlate`


def labelled_stream(setup: EvalSetup) -> LabelledStream:
    """Simulate, then run the intake (`agents.core.intake`: validate, enrich) on the reports of
    a true incident, in send order. Re-deliveries are kept: the engine must ignore them."""
    from agents.core.geo import Geocoder
    from agents.core.intake import Intake
    from agents.core.jurisdictions import load_jurisdictions
    from agents.core.pseudonym import Pseudonymiser
    from agents.core.refdata import load_refdata
    from offline.simulator import SimulationConfig, simulate

    t0 = time.perf_counter()
    refdata = load_refdata()
    geocoder = Geocoder(refdata, load_jurisdictions(None, refdata))
    intake: Intake[tuple[str, str]] = Intake(  # tag: (true incident id, true category)
        pseudonymiser=Pseudonymiser.ephemeral(),  # tokens never leave the process
        enricher=geocoder,
        drop_redeliveries=False,
    )
    sim = simulate(
        SimulationConfig(start=setup.start, days=setup.days, seed=setup.seed, scale=setup.scale)
    )
    incidents: dict[str, dict[str, object]] = {}
    n = 0
    t_sim = t_val = 0.0
    t1 = time.perf_counter()
    for m in sim:
        t2 = time.perf_counter()
        t_sim += t2 - t1
        n += 1
        if m.incident_truth is not None:
            incidents[str(m.incident_truth["incident_id"])] = m.incident_truth
        incident = m.truth.get("incident_id")
        if incident is not None:
            tag = (str(incident), str(m.truth["true_category"]))
            intake.add(tag, m.value, m.timestamp_ms / 1000.0)
        t1 = time.perf_counter()
        t_val += t1 - t2
    t3 = time.perf_counter()
    records: list[ReportRecord] = []
    truth: dict[str, str] = {}
    true_category: dict[str, str] = {}
    for (incident_id, category), rec in intake.flush().accepted:
        records.append(rec)
        truth[rec.report_id] = incident_id
        true_category[rec.report_id] = category
    seconds = {
        "setup": round(t1 - t0 - t_sim - t_val, 2),
        "simulate": round(t_sim, 2),
        "validate": round(t_val, 2),
        "enrich": round(time.perf_counter() - t3, 2),
    }
    return LabelledStream(records, truth, true_category, incidents, n, seconds, geocoder.commune_at)


def correlate(
    records: list[ReportRecord],
    config: CorrelationConfig,
    commune_at: CommuneAt | None = None,
) -> tuple[dict[str, str], float, int, int]:
    """(report_id -> predicted incident id, seconds in `process`, versions, peak state);
    `commune_at`: `Correlator`'s."""
    engine = Correlator(config, commune_at=commune_at)
    predicted: dict[str, str] = {}
    versions = peak = 0
    t0 = time.perf_counter()
    for rec in records:
        for v in engine.process(rec):
            versions += 1
            iid = v["incident_id"]
            for rid in v["report_ids"]:
                predicted[rid] = iid
        if len(engine) > peak:
            peak = len(engine)
    return predicted, time.perf_counter() - t0, versions, peak


def evaluate(setup: EvalSetup | None = None) -> dict[str, Any]:
    """Run the whole harness for one seed; a JSON-serialisable result."""
    s = setup or EvalSetup()
    stream = labelled_stream(s)
    predicted, elapsed, versions, peak = correlate(stream.records, s.config, stream.commune_at)
    scores = score(predicted, stream.truth)
    unique = {r.report_id: r for r in stream.records}
    by_category: dict[str, dict[str, float | int]] = {}
    for cat in sorted(set(stream.true_category.values())):
        sub = {k: v for k, v in stream.truth.items() if stream.true_category[k] == cat}
        c = score(predicted, sub)
        by_category[cat] = {
            "reports": c.reports,
            "pairwise_precision": round(c.pairwise_precision, 4),
            "pairwise_recall": round(c.pairwise_recall, 4),
            "pairwise_f1": round(c.pairwise_f1, 4),
        }
    border = {
        f"r{res}": round(
            split_pair_share(
                stream.truth, {rid: partition_key(rec, res) for rid, rec in unique.items()}
            ),
            4,
        )
        for res in BORDER_RESOLUTIONS
    }
    keys = {res: len({partition_key(r, res) for r in unique.values()}) for res in (4, 5, 6, 7)}
    sizes = Counter(Counter(predicted.values()).values())
    origin = min((float(str(i["start"])) for i in stream.incidents.values()), default=0.0)
    warm_from = origin + s.warmup_days * 86400.0
    warm = {
        rid: iid for rid, iid in stream.truth.items()
        if float(str(stream.incidents[iid]["start"])) >= warm_from
    }
    return {
        "seed": s.seed,
        "days": s.days,
        "messages": stream.messages,
        "valid_reports": len(stream.records),
        **scores.as_dict(),
        # None when the stream is no longer than the warm-up
        "steady_state": (
            {"warmup_days": s.warmup_days, **score(predicted, warm).as_dict()} if warm else None
        ),
        "correlation_reports_per_s": round(len(stream.records) / elapsed, 1),
        "correlation_seconds": round(elapsed, 3),
        "incident_versions": versions,
        "peak_incidents_in_state": peak,
        "pipeline_seconds": stream.seconds,
        "border_split_pair_share": border,
        "partition_keys_used": {f"r{k}": v for k, v in keys.items()},
        "predicted_size_histogram": {str(k): sizes[k] for k in sorted(sizes)[:12]},
        "by_true_category": by_category,
    }


def handle(args: argparse.Namespace) -> int:
    ok = True
    for seed in args.seeds:
        result = evaluate(EvalSetup(seed=seed, days=args.days, start=args.start, scale=args.scale))
        if not args.verbose:
            result.pop("by_true_category")
            result.pop("predicted_size_histogram")
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2 if args.verbose else 0).decode())
        judged = result["steady_state"] if args.steady else result
        if judged is None:
            print(f"--steady: no incident starts after the {args.days}-day stream's warm-up",
                  file=sys.stderr)
            ok = False
        elif (judged["pairwise_f1"] < args.min_f1
              or judged["pairwise_precision"] < args.min_precision):
            ok = False
    return 0 if ok else 1


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="simulator seeds")
    p.add_argument("--days", type=float, default=14.0, help="simulated days (default 14)")
    p.add_argument("--start", default="2024-03-18", help="first simulated day (local date)")
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every simulated rate")
    p.add_argument("--min-f1", type=float, default=0.0, help="exit 1 if pairwise F1 is lower")
    p.add_argument(
        "--min-precision", type=float, default=0.0, help="exit 1 if pairwise precision is lower"
    )
    p.add_argument(
        "--steady", action="store_true",
        help="--min-* judge the steady-state scores (incidents after the warm-up)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="per-category scores, indented")
    p.set_defaults(func=handle)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="correlation quality on a simulated stream")
    _add_arguments(p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vigie eval", description=__doc__)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
