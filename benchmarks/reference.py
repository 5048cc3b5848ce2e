"""The reference tables of BENCHMARKS.md, generated from the history (`benchmarks.history`).

    python -m benchmarks.reference [--check] [--file BENCHMARKS.md] [--results DIR]

BENCHMARKS.md holds blocks `<!-- generated:NAME -->` ... `<!-- end generated:NAME -->`;
each is rewritten with the latest run of one benchmark command: the command, its date,
commit, how it was launched and the machine, then a table of its headline figures with
their targets. `benchmarks.run_all --record` (`make bench`) calls `rewrite` after appending
its results; `--check` exits 1 when the file is not what the history gives.

The latest run of a command is the last group of its records (same date, commit, launcher)
in the history, leaving out aggregates (`stat`) and variants (trials, states before a
change); a failed attempt after it is named above the table.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.history import (
    NO_VALUE,
    RESULTS_DIR,
    HistoryError,
    Measurement,
    Value,
    load,
)

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"<!-- generated:([a-z0-9-]+) -->\n(.*?)<!-- end generated:\1 -->",
                    re.DOTALL)
_OPEN = re.compile(r"<!-- generated:([a-z0-9-]+) -->")


class ReferenceError(ValueError):
    """The reference file's generated blocks do not match the specification."""


def _num(v: Value) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def thousands(v: Value) -> str:
    x = _num(v)
    return NO_VALUE if x is None else f"{round(x):,}"


def percent(digits: int = 0) -> Callable[[Value], str]:
    def fmt(v: Value) -> str:
        x = _num(v)
        return NO_VALUE if x is None else f"{100 * x:.{digits}f} %"
    return fmt


def decimals(digits: int, suffix: str = "") -> Callable[[Value], str]:
    def fmt(v: Value) -> str:
        x = _num(v)
        return NO_VALUE if x is None else f"{x:.{digits}f}{suffix}"
    return fmt


hours = decimals(2, " h")


def mebibytes(v: Value) -> str:
    x = _num(v)
    return NO_VALUE if x is None else f"{x / 2**20:.1f} MiB"


def yes_no(v: Value) -> str:
    return NO_VALUE if not isinstance(v, bool) else ("yes" if v else "no")


@dataclass(frozen=True)
class Column:
    metric: str
    label: str
    fmt: Callable[[Value], str] = thousands
    target: str = ""


@dataclass(frozen=True)
class Block:
    """One generated table: the latest run of each of `commands` for `benchmark`."""

    benchmark: str
    commands: tuple[str, ...]
    columns: tuple[Column, ...] = ()
    row_params: tuple[str, ...] = ()  # params naming each row (seed, scenario...)
    kind: str = "table"  # or "anatomy" (a per-category summary of the outbreak lines)
    transpose: bool = False  # one column per row of params (many seeds, few metrics)
    # a row label per command, for commands whose records carry the same params (the
    # latency runs at 100/s and 1,000/s both say store and mode only): else a later
    # command's row would replace an earlier one's
    command_labels: tuple[str, ...] = ()


PY = "python -m benchmarks."
QUALITY = (
    Column("outbreaks", "outbreaks evaluated"),
    Column("detected_share", "detected", percent(), "≥ 90 %"),
    Column("median_delay_h", "median delay", hours, "≤ 1 h"),
    Column("false_alerts_per_day", "false alerts / day", decimals(2), "≤ 1"),
)
BLOCKS: dict[str, Block] = {
    "pipeline": Block("pipeline", (PY + "bench_pipeline -n 150000 --store server",
                                   PY + "bench_pipeline -n 150000 --store chdb"), (
        Column("pipeline_reports_per_s", "reports stored / s", thousands, "≥ 5,000"),
        Column("correlated_reports_per_s", "reports correlated / s"),
        Column("bare_consumer_msgs_per_s", "bare consumer msgs / s"),
        Column("ratio", "pipeline / bare consumer", percent(1), "≥ 30 %"),
        Column("reports_stored", "stored"),
        Column("expected_stored", "expected"),
    ), ("store",)),
    "latency": Block("latency", (
            PY + "bench_latency --rate 100 --seconds 60 --store chdb",
            PY + "bench_latency --rate 100 --seconds 60 --store server",
            PY + "bench_latency --rate 1000 --seconds 60 --store chdb",
            PY + "bench_latency --rate 1000 --seconds 60 --store server",
            PY + "bench_latency --rate 200 --minutes 30 --store server",
            PY + "bench_latency --rate 200 --minutes 30 --store server --event-time stream",
            PY + "bench_latency --rate 100 --seconds 60 --store server --state-days 30",
            PY + "bench_latency --rate 200 --minutes 30 --store server --event-time stream "
                 "--stream-per-day 1500",
            PY + "bench_latency --rate 200 --minutes 30 --store server --event-time stream "
                 "--warm-days 8"), (
        Column("latency_p50_s", "p50, report sent → incident", decimals(2, " s")),
        Column("latency_p95_s", "p95", decimals(2, " s")),
        Column("latency_p99_s", "p99", decimals(2, " s")),
        Column("latency_max_s", "max", decimals(2, " s")),
        Column("reports_seen", "reports in an incident"),
        Column("worker_rss_end_mib", "worker RSS at the end", decimals(0, " MiB")),
        Column("last_over_first_p99", "p99 last 5 min / first 5 min (soak)", decimals(2),
               "≤ 1.2"),
    ), ("store", "mode"), command_labels=(
        "chdb, 100/s", "server, 100/s", "chdb, 1,000/s", "server, 1,000/s",
        "server, 200/s, 30-min soak", "server, 200/s, 30-min soak, stream time",
        "server, 100/s, after 30 days of state",
        "server, 200/s, 30-min soak, stream time, département density",
        "server, 200/s, 30-min soak, stream time, after 8 days of the stream")),
    "geo": Block("geo", (PY + "bench_geo --repeat 3",), (
        Column("commune_h3_per_s.cpu", "commune + H3 r9/r8/r7, points / CPU s", thousands,
               "≥ 200,000"),
        Column("commune_h3_per_s.wall", "same, / wall s"),
        Column("locate_per_s.cpu", "commune only / CPU s"),
        Column("h3_r9_r8_r7_per_s.cpu", "H3 only / CPU s"),
        Column("enrich_batch_records_per_s.cpu", "`enrich_batch` records / CPU s"),
        Column("grid_build_s", "index build", decimals(2, " s")),
    ), ("points",)),
    "correlation": Block("correlation", (PY + "bench_correlation --seeds 1 2 --days 14",), (
        Column("steady_state.pairwise_precision", "precision, steady state", decimals(3),
               "≥ 0.95"),
        Column("steady_state.pairwise_f1", "F1, steady state", decimals(3), "≥ 0.90"),
        Column("steady_state.pairwise_recall", "recall, steady state", decimals(3)),
        Column("pairwise_precision", "precision, whole stream", decimals(3)),
        Column("pairwise_f1", "F1, whole stream", decimals(3)),
        Column("bcubed_f1", "B-cubed F1", decimals(3)),
        Column("over_merge_rate", "over-merge", percent(1)),
        Column("correlation_reports_per_s", "reports / s"),
        Column("border_split_pair_share.r5", "pairs split at r5", percent(1)),
    ), ("seed",)),
    "detection": Block("detection_quality", (
        PY + "bench_detection", PY + "bench_detection --mode pipeline --no-throughput",
    ), QUALITY, ("mode", "scenario", "seed")),
    "backtest": Block("backtest_throughput", (PY + "bench_detection",), (
        Column("reports_per_s", "reports / s", thousands, "≥ 20,000"),
        Column("elapsed_s", "elapsed", decimals(1, " s")),
        Column("alerts_opened", "alerts opened"),
    ), ("lines",)),
    "detection-pipeline-seeds": Block(
        "detection_quality",
        (PY + "bench_detection --mode pipeline --seeds 1,2,3,4,5,6,7,8 --no-throughput",),
        QUALITY, ("seed",), transpose=True),
    "detection-sweep": Block("detection_sweep", (PY + "bench_detection --sweep",), QUALITY[1:],
                             ("seed", "extra_incidents_per_h"), transpose=True),
    "detection-physics": Block(
        "detection_physics", (PY + "bench_detection --physics --seeds 1,2,3,4,5,6,7,8",), (
            Column("median_first_report_h.incident_1", "1st incident first reported", hours),
            Column("median_first_report_h.incident_2", "2nd incident first reported", hours),
            Column("median_first_report_h.incident_3", "3rd incident first reported", hours),
            Column("background_same_cell_pairs_within_1h_per_day",
                   "background pairs within 1 h / day", decimals(1)),
        ), ("seed",), transpose=True),
    "detection-anatomy": Block("detection_anatomy", (PY + "bench_detection --anatomy",),
                               kind="anatomy"),
    "robustness": Block("robustness", (PY + "bench_robustness",), (
        Column("worlds", "outbreak worlds"),
        Column("null_worlds", "null worlds"),
        Column("pair_f1.median", "pair F1, median", decimals(3), "≥ 0.92"),
        Column("pair_f1.min", "pair F1, min", decimals(3), "≥ 0.85"),
        Column("pair_precision.min", "pair precision, min", decimals(3), "≥ 0.92"),
        Column("pair_recall.median", "pair recall, median", decimals(3)),
        Column("oracle_pair_f1.median",
               "pair F1 of the assignment oracle (knows every true incident), median",
               decimals(3)),
        Column("oracle_pair_f1.min", "same, min", decimals(3)),
        Column("oracle_pair_precision.min", "its pair precision, min", decimals(3)),
        Column("oracle_pair_recall.median", "its pair recall, median", decimals(3)),
        Column("pair_f1_splits_healed.median",
               "pair F1 were pure split fragments merged (a merge never wrong), median",
               decimals(3)),
        Column("pair_f1_unlocated_placed.median",
               "pair F1 were the reports without a position placed right, median", decimals(3)),
        Column("pair_f1_merges_undone.median",
               "pair F1 were every wrong merge undone, median", decimals(3)),
        Column("missed_share_no_position.median",
               "pairs split apart: one report without a position, median share", percent(0)),
        Column("missed_share_time.median", "same, further apart in time than the window",
               percent(0)),
        Column("missed_share_distance.median", "same, further apart than the gate reaches",
               percent(0)),
        Column("missed_share_category.median", "same, close but of two stated categories",
               percent(0)),
        Column("missed_share_within_bounds.median",
               "same, none of these (kept apart by the decisions)", percent(0)),
        Column("commune_accuracy.median", "commune accuracy, median", percent(1), "≥ 98.5 %"),
        Column("commune_accuracy_start.median",
               "same, a moving incident right only in its start commune", percent(1)),
        Column("commune_ceiling.median",
               "a commune one of its reports names is right (ceiling), median", percent(1)),
        Column("commune_ceiling.min", "same, min", percent(1)),
        Column("null_false_alerts_per_day.max", "false alerts / day, worst null world",
               decimals(2), "≤ 1"),
        Column("bursts_detected_share.median", "bursts detected, median", percent(), "≥ 90 %"),
        Column("median_delay_h.median", "median delay, median", hours, "≤ 2.5 h"),
        Column("delay_floor_h.median", "3rd incident first reported, median", hours),
        Column("truth_median_delay_h.median", "median delay on the true incidents, median",
               hours),
        Column("reported_median_delay_h.median",
               "same, the true incidents as their first reports tell them, median", hours),
        Column("truth_threshold.median", "alert threshold on the true incidents, median",
               decimals(1)),
        Column("reported_threshold.median", "same, as their first reports tell them, median",
               decimals(1)),
        Column("threshold.median", "same, on the pipeline's incidents, median", decimals(1)),
    ), ("scenario",), transpose=True),
    "chaos": Block("chaos", (PY + "chaos",), (
        Column("sigkills", "SIGKILLs"),
        Column("outage_s", "ClickHouse outage", decimals(0, " s")),
        Column("hard_checks_passed", "hard guarantees held", yes_no, "yes"),
        Column("pair_f1_vs_backtest", "pair F1, live vs `vigie backtest`", decimals(3),
               "≥ 0.98"),
        Column("pair_f1_live_vs_truth", "pair F1, live vs truth", decimals(3)),
        Column("pair_f1_backtest_vs_truth", "pair F1, backtest vs truth", decimals(3)),
        Column("recovery_clickhouse_s", "recovery after the outage", decimals(1, " s")),
        Column("recovery_broker_s", "recovery after the broker restart", decimals(1, " s")),
        Column("recovery_max_s", "slowest recovery", decimals(1, " s")),
        Column("alerts.doubles", "alerts under two ids", thousands, "0"),
        Column("alerts.orphans", "orphaned alerts", thousands, "0"),
        Column("alerts.reference_alert_ids", "alerts in the backtest", thousands),
        Column("alerts.reference_alerted_live", "of them alerted live too", thousands),
        Column("run_s", "scenario", decimals(0, " s")),
    ), ("seed",), transpose=True),
    "restart": Block("restart", (PY + "bench_restart --store server",), (
        Column("reports", "reports in the history"),
        Column("ready_s", "start → ready", decimals(1, " s")),
        Column("recovery_s", "table recovery", decimals(1, " s")),
        Column("replayed", "changelog records read"),
        Column("changelog", "changelog records written"),
        Column("store_bytes", "data directory", mebibytes),
    ), ("days", "table_store", "case")),
    "diagnostic": Block("diagnostic", (PY + "bench_diagnostic -n 520000 --store server",), (
        Column("diagnostic_median_s", "diagnostic, median", decimals(2, " s"), "≤ 1 s"),
        Column("diagnostic_max_s", "diagnostic, max", decimals(2, " s"), "≤ 1 s"),
        Column("diagnostic_cpu_median_s", "CPU (client + server), median", decimals(2, " s")),
        Column("diagnostic_cpu_max_s", "CPU, max", decimals(2, " s")),
        Column("first_after_load_s", "first run after the bulk load", decimals(2, " s")),
        Column("incidents", "incidents stored"),
        Column("load_s", "load", decimals(0, " s")),
    ), ("store",)),
}

RunKey = tuple[str, str | None, str | None, str | None]


def _run_key(m: Measurement) -> RunKey:
    return (m.date, m.commit, m.via, m.recorded_in)


def latest_runs(ms: Sequence[Measurement], benchmark: str, command: str
                ) -> tuple[list[Measurement], list[Measurement]]:
    """(records of the latest run without an error, records of a failed attempt after it
    or []). Runs are the groups of a command's records with one date, commit, launcher."""
    mine = [m for m in ms if m.benchmark == benchmark and m.command == command
            and m.variant is None and m.stat is None]
    runs: dict[RunKey, list[Measurement]] = {}
    last: dict[RunKey, int] = {}
    for i, m in enumerate(mine):
        runs.setdefault(_run_key(m), []).append(m)
        last[_run_key(m)] = i
    order = sorted(runs, key=last.__getitem__)
    failed: list[Measurement] = []
    for key in reversed(order):
        if any(m.is_error for m in runs[key]):
            if not failed:
                failed = runs[key]
            continue
        return runs[key], failed
    return [], failed


def _human_date(date: str) -> str:
    return date.replace("T", " ").replace("Z", " UTC")


def provenance(run: Sequence[Measurement], commands: Sequence[str]) -> str:
    """`commands`; date; commit; launcher; machine (of `run`, the same for every command)."""
    m = run[0]
    parts = [", ".join(f"`{c}`" for c in commands), _human_date(m.date),
             f"commit {m.commit}" if m.commit else "commit not recorded"]
    if m.via:
        parts.append(f"via `{m.via}`")
    if m.recorded_in:
        parts.append(f"figures from the former BENCHMARKS.md log at {m.recorded_in}")
    if m.machine:
        parts.append(m.machine)
    return "; ".join(parts) + "."


# How a row's params read ("seed 1", "3 extra incidents/h"); others read "name value".
PARAM_LABELS: dict[str, str] = {
    "seed": "seed {}", "scenario": "{}", "store": "{}", "mode": "{}", "lines": "{:,} lines",
    "points": "{:,} points", "extra_incidents_per_h": "+{:g}/h", "days": "{:g} days",
    "table_store": "{}", "case": "{}",
}


def _param_label(params: Mapping[str, object], keys: Sequence[str]) -> str:
    parts = [PARAM_LABELS.get(k, k.replace("_", " ") + " {}").format(params[k])
             for k in keys if k in params]
    return ", ".join(parts) or NO_VALUE


def _row_label(m: Measurement, block: Block) -> str:
    if block.command_labels and m.command in block.commands:
        return block.command_labels[block.commands.index(m.command)]
    return _param_label(m.params, block.row_params)


def table(run: Sequence[Measurement], block: Block) -> list[str]:
    rows: dict[str, dict[str, Value]] = {}
    for m in run:
        if m.metric == "bench_wall_s":
            continue
        rows.setdefault(_row_label(m, block), {})[m.metric] = m.value
    # columns the run measured (an older run or another command may print fewer metrics)
    cols = [c for c in block.columns if any(c.metric in v for v in rows.values())]
    rows = {k: v for k, v in rows.items() if any(c.metric in v for c in cols)}
    targets = any(c.target for c in cols)
    if block.transpose:
        head = ["", *rows, *(["target"] if targets else [])]
        body = [[c.label, *(c.fmt(v.get(c.metric)) for v in rows.values()),
                 *([c.target or NO_VALUE] if targets else [])] for c in cols]
    else:
        head = ["", *(c.label for c in cols)]
        body = [[label, *(c.fmt(v.get(c.metric)) for c in cols)] for label, v in rows.items()]
        if targets:
            body.append(["target", *(c.target or NO_VALUE for c in cols)])
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(cells) + " |" for cells in body)]


def anatomy(run: Sequence[Measurement]) -> list[str]:
    """Per outbreak lines -> how long after its 3rd reported incident the alert comes (on
    the true incidents) and per-category medians of the arrival and alert times."""
    outbreaks: dict[tuple[object, object], dict[str, Value]] = {}
    category: dict[tuple[object, object], str] = {}
    for m in run:
        if "outbreak" not in m.params:
            continue
        key = (m.params.get("seed"), m.params["outbreak"])
        outbreaks.setdefault(key, {})[m.metric] = m.value
        category[key] = str(m.params.get("category"))
    gaps = [float(v["alert_truth_h"]) - float(v["incident_3_reported_h"])  # type: ignore[arg-type]
            for v in outbreaks.values()
            if _num(v.get("alert_truth_h")) is not None
            and _num(v.get("incident_3_reported_h")) is not None]
    alerted = sum(1 for v in outbreaks.values() if _num(v.get("alert_truth_h")) is not None)
    seeds = sorted({str(k[0]) for k in outbreaks})
    lines = [f"{len(outbreaks)} evaluated outbreaks (seeds {', '.join(seeds)}); on the true "
             f"incidents the detector alerts on {alerted} of them"
             + (f"; on the {len(gaps)} with a 3rd reported incident, a median "
                f"{statistics.median(gaps):.2f} h (max {max(gaps):.2f} h) after that report."
                if gaps else "."),
             "",
             "| category | outbreaks | 3rd incident reported (median h after the start) "
             "| alert, true incidents | alert, full pipeline |",
             "|---|---|---|---|---|"]
    cats = sorted(set(category.values()))
    for cat in cats:
        vals = [v for k, v in outbreaks.items() if category[k] == cat]

        def med(metric: str, vals: list[dict[str, Value]] = vals) -> str:
            xs = [x for x in (_num(v.get(metric)) for v in vals) if x is not None]
            return f"{statistics.median(xs):.2f} h" if xs else NO_VALUE

        lines.append(f"| {cat} | {len(vals)} | {med('incident_3_reported_h')} | "
                     f"{med('alert_truth_h')} | {med('alert_pipeline_h')} |")
    return lines


def render(name: str, ms: Sequence[Measurement]) -> str:
    block = BLOCKS[name]
    lines: list[str] = []
    records: list[Measurement] = []
    # commands whose latest runs share date, commit, launcher and machine: one line
    sources: dict[tuple[RunKey, str | None], tuple[list[Measurement], list[str]]] = {}
    for command in block.commands:
        run, failed = latest_runs(ms, block.benchmark, command)
        if failed:
            err = next(m for m in failed if m.is_error)
            lines.append(f"`{command}`: the latest attempt failed, {_human_date(err.date)}, "
                         f"commit {err.commit or 'not recorded'}: {err.value}"
                         + (f" ({err.note})" if err.note else "") + ".")
        if not run:
            lines.append(f"`{command}`: no recorded run.")
            continue
        records += run
        key = (_run_key(run[0]), run[0].machine)
        sources.setdefault(key, (run, []))[1].append(command)
    lines += [provenance(run, commands) for run, commands in sources.values()]
    if records:
        lines.append("")
        lines += anatomy(records) if block.kind == "anatomy" else table(records, block)
    return "\n".join(lines) + "\n"


def fill(text: str, ms: Sequence[Measurement]) -> str:
    """`text` with every generated block rewritten from `ms`."""
    opened = _OPEN.findall(text)
    closed = [m.group(1) for m in _BLOCK.finditer(text)]
    if opened != closed:
        raise ReferenceError(f"generated blocks not closed by '<!-- end generated:NAME -->': "
                             f"{sorted(set(opened) - set(closed)) or opened}")
    unknown = sorted(set(opened) - set(BLOCKS))
    dupes = sorted({n for n in opened if opened.count(n) > 1})
    missing = [n for n in BLOCKS if n not in opened]
    if unknown or dupes or missing:
        raise ReferenceError(f"generated blocks: unknown {unknown}, repeated {dupes}, "
                             f"missing {missing} (known: {list(BLOCKS)})")
    return _BLOCK.sub(lambda m: f"<!-- generated:{m.group(1)} -->\n{render(m.group(1), ms)}"
                      f"<!-- end generated:{m.group(1)} -->", text)


def rewrite(path: Path, ms: Sequence[Measurement]) -> bool:
    """Rewrite the generated blocks of `path`; whether it changed."""
    text = path.read_text(encoding="utf-8")
    new = fill(text, ms)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.reference", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR)
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if the file's generated tables are not current")
    args = ap.parse_args(argv)
    try:
        ms = load(args.results)
        if args.check:
            text = args.file.read_text(encoding="utf-8")
            if fill(text, ms) != text:
                print(f"reference: {args.file} is not current: run python -m "
                      "benchmarks.reference", file=sys.stderr)
                return 1
            return 0
        changed = rewrite(args.file, ms)
    except (HistoryError, ReferenceError) as exc:
        print(f"reference: {exc}", file=sys.stderr)
        return 2
    print(f"reference: {args.file} {'rewritten' if changed else 'already current'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
