"""Benchmark history as data: one JSON object per measurement, one file per benchmark.

    python -m benchmarks.history [--bench NAME ...] [--metric NAME ...] [--param KEY=VALUE ...]

prints a markdown table per benchmark of its measurements over time. The files are
`benchmarks/results/<benchmark>.jsonl`, appended to in chronological order by
`python -m benchmarks.run_all --record` (`make bench`), so the last record of a metric is
its latest measurement. A record (`Measurement`):

    {"benchmark": "pipeline", "metric": "pipeline_reports_per_s", "value": 6098,
     "unit": "reports/s", "params": {"store": "server", "messages": 150000},
     "date": "2026-11-26T10:04Z", "commit": "85a5573", "machine": "AMD EPYC, 2 cores, ...",
     "command": "python -m benchmarks.bench_pipeline -n 150000 --store server",
     "via": "make bench"}

Optional keys: `stat` (the value aggregates several runs or seeds: "min-max" with `value`
[lowest, highest], "mean", "approx", "upper bound", "estimate"), `runs` (how many),
`variant` (the code measured is not the mainline of its date: a trial not kept, the state
before a change), `note`, `load_avg` (1/5/15 min before the run), `recorded_in` (for figures
imported from the former BENCHMARKS.md log: the commit of that file which held them).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeAlias

RESULTS_DIR = Path(__file__).resolve().parent / "results"

Scalar: TypeAlias = str | int | float | bool | None
Value: TypeAlias = Scalar | list[Scalar]

# Keys of a benchmark's JSON line that say what was measured (seed, store, scenario...),
# not what was measured on it; nested dicts may carry them too (`steady_state.warmup_days`).
PARAM_KEYS = frozenset({
    "seed", "scenario", "mode", "store", "messages", "days", "points", "batch", "lines",
    "extra_incidents_per_h", "outbreak", "category", "radius_m", "warmup_days",
    "table_store", "case",
})
# Keys that are not measurements: the benchmark's name, a description, a constant target and
# the pass/fail flags derived from it and the values, the per-command wall time (kept once
# per run, see `measurements_from_run`), the error text (kept in the error record's note).
DROPPED_KEYS = frozenset({
    "bench", "rates", "target_per_s", "meets_target", "steady_meets_target", "bench_wall_s",
    "error", "stderr_tail",
})
# Rates printed as [per second of CPU time, per second of wall time] (`bench_geo`).
CPU_WALL_PAIRS = frozenset({
    "locate_per_s", "h3_r9_r8_r7_per_s", "commune_h3_per_s", "enrich_batch_records_per_s",
})
STATS = frozenset({"min-max", "mean", "approx", "upper bound", "estimate"})
NO_VALUE = "\u2013"  # an en dash: nothing measured
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z)?$")


class HistoryError(ValueError):
    """A record or a results file that does not follow the format (with where and why)."""


@dataclass(frozen=True)
class Measurement:
    benchmark: str
    metric: str
    value: Value
    unit: str | None
    params: dict[str, Scalar]
    date: str
    commit: str | None
    machine: str | None
    command: str | None
    via: str | None = None
    stat: str | None = None
    runs: int | None = None
    variant: str | None = None
    note: str | None = None
    load_avg: list[float] | None = field(default=None)
    recorded_in: str | None = None

    def __post_init__(self) -> None:
        check(self)

    def as_dict(self) -> dict[str, Any]:
        """The JSON object: the required keys always, the optional ones when set."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in REQUIRED or v is not None:
                out[f.name] = v
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measurement:
        missing = [k for k in REQUIRED if k not in d]
        unknown = sorted(set(d) - ALL_KEYS)
        if missing or unknown:
            raise HistoryError(f"missing keys {missing}, unknown keys {unknown}")
        return cls(**d)

    @property
    def is_error(self) -> bool:
        return self.metric == "error"


REQUIRED = ("benchmark", "metric", "value", "unit", "params", "date", "commit", "machine",
            "command")
ALL_KEYS = frozenset(f.name for f in fields(Measurement))


def _is_scalar(v: object) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def check(m: Measurement) -> None:
    """Raise `HistoryError` (saying which field and why) unless `m` follows the format."""
    if not isinstance(m.benchmark, str) or not _NAME.match(m.benchmark):
        raise HistoryError(f"benchmark {m.benchmark!r}: lower-case letters, digits and _ only")
    if not isinstance(m.metric, str) or not m.metric:
        raise HistoryError(f"{m.benchmark}: metric must be a non-empty string")
    where = f"{m.benchmark}.{m.metric}"
    if not (_is_scalar(m.value) or (isinstance(m.value, list)
                                    and all(_is_scalar(v) for v in m.value))):
        raise HistoryError(f"{where}: value must be a number, string, bool, null or a list of them")
    if not isinstance(m.params, dict) or not all(
            isinstance(k, str) and _is_scalar(v) for k, v in m.params.items()):
        raise HistoryError(f"{where}: params must map names to scalars")
    if not isinstance(m.date, str) or not _DATE.match(m.date):
        raise HistoryError(f"{where}: date {m.date!r} is not YYYY-MM-DD[THH:MM[:SS]Z]")
    for name in ("unit", "commit", "machine", "command", "via", "variant", "note",
                 "recorded_in"):
        v = getattr(m, name)
        if v is not None and not isinstance(v, str):
            raise HistoryError(f"{where}: {name} must be a string or null")
    if m.stat is not None and m.stat not in STATS:
        raise HistoryError(f"{where}: stat {m.stat!r} is not one of {sorted(STATS)}")
    if m.stat == "min-max" and not (isinstance(m.value, list) and len(m.value) == 2):
        raise HistoryError(f"{where}: a min-max value is [lowest, highest]")
    if m.runs is not None and (not isinstance(m.runs, int) or m.runs < 1):
        raise HistoryError(f"{where}: runs must be a positive integer")
    if m.load_avg is not None and not (
            isinstance(m.load_avg, list)
            and all(isinstance(x, int | float) for x in m.load_avg)):
        raise HistoryError(f"{where}: load_avg must be a list of numbers")


UNITS = {
    "false_alerts_per_day": "alerts/day",
    "background_same_cell_pairs_within_1h_per_day": "pairs/day",
    "messages_per_s": "msgs/s",
}


def unit_for(metric: str, value: object = None) -> str | None:
    """The unit of a metric named by the benchmarks' conventions (suffixes)."""
    if metric in UNITS:
        return UNITS[metric]
    base, _, last = metric.rpartition(".")
    if last in ("cpu", "wall") and base in CPU_WALL_PAIRS:
        thing = "records" if base.startswith("enrich") else "points"
        return f"{thing}/s ({'CPU time, one core' if last == 'cpu' else 'wall time'})"
    name = metric.rsplit(".", 1)[-1]
    segments = metric.split(".")
    if any(word in name for word in ("precision", "recall", "f1")):
        return "score"
    if (metric.startswith("border_split_pair_share") or name == "ratio"
            or name.endswith(("_share", "_rate", "_fraction"))):
        return "share"
    if name.endswith("reports_per_s"):
        return "reports/s"
    if name.endswith("msgs_per_s"):
        return "msgs/s"
    if name.endswith("_per_s"):
        return "1/s"
    if name.endswith("_per_day"):
        return "1/day"
    if any(s.endswith("_h") for s in segments):
        return "h"
    if name.endswith("_s"):
        return "s"
    if name.endswith("_m"):
        return "m"
    if isinstance(value, int) and not isinstance(value, bool):
        return "count"
    return None


def measurements_from_result(
    result: Mapping[str, Any], *, date: str, commit: str | None, machine: str | None,
    command: str | None, via: str | None = None, load_avg: list[float] | None = None,
    recorded_in: str | None = None, benchmark: str | None = None,
) -> list[Measurement]:
    """One benchmark JSON line -> its measurements: every key but the params and the dropped
    ones is a metric; nested dicts give `outer.inner` metrics (`outer.inner.leaf` one level
    further, e.g. `merges_by_table.reports.rows_merged`), CPU/wall rate pairs give
    `name.cpu` and `name.wall`. A line with `error` (a command that failed) gives one
    `error` record whose value is the error and whose note is the last line of stderr.
    `benchmark` overrides the line's `bench` (`run_all` names a failed command, not a
    benchmark)."""
    name = benchmark or result.get("bench")
    if not isinstance(name, str):
        raise HistoryError(f"result without a benchmark name: {dict(result)!r:.200}")
    params: dict[str, Scalar] = {k: v for k, v in result.items()
                                 if k in PARAM_KEYS and _is_scalar(v)}
    common: dict[str, Any] = {"date": date, "commit": commit, "machine": machine,
                              "command": command, "via": via, "load_avg": load_avg,
                              "recorded_in": recorded_in}
    out: list[Measurement] = []

    def add(metric: str, value: Any, p: dict[str, Scalar], note: str | None = None) -> None:
        out.append(Measurement(benchmark=name, metric=metric, value=value,
                               unit=unit_for(metric, value), params=p, note=note, **common))

    if "error" in result:
        tail = [s for s in str(result.get("stderr_tail", "")).splitlines() if s.strip()]
        add("error", str(result["error"]), params, note=tail[-1].strip()[:300] if tail else None)
    for key, value in result.items():
        if key in PARAM_KEYS or key in DROPPED_KEYS:
            continue
        if isinstance(value, dict):
            inner = {**params, **{k: v for k, v in value.items()
                                  if k in PARAM_KEYS and _is_scalar(v)}}
            for k, v in value.items():
                if k in PARAM_KEYS:
                    continue
                if isinstance(v, dict):
                    for leaf, x in v.items():
                        add(f"{key}.{k}.{leaf}", x, inner)
                else:
                    add(f"{key}.{k}", v, inner)
        elif key in CPU_WALL_PAIRS and isinstance(value, list) and len(value) == 2:
            add(f"{key}.cpu", value[0], params)
            add(f"{key}.wall", value[1], params)
        else:
            add(key, value, params)
    return out


def measurements_from_run(
    results: Sequence[Mapping[str, Any]], *, benchmark: str, **meta: Any,
) -> list[Measurement]:
    """All the JSON lines one command printed: each line's measurements, then the command's
    wall time once (`bench_wall_s`, which `run_all` stamps on every line). `benchmark` is
    the one a failed command was meant to measure (used for its error record)."""
    out: list[Measurement] = []
    for r in results:
        out += measurements_from_result(r, benchmark=benchmark if "error" in r else None,
                                        **meta)
    wall = next((r["bench_wall_s"] for r in results if "bench_wall_s" in r), None)
    if wall is not None:
        first = results[0].get("bench") if "error" not in results[0] else benchmark
        out.append(Measurement(benchmark=str(first), metric="bench_wall_s", value=wall,
                               unit="s", params={}, **meta))
    return out


def append(directory: Path, measurements: Iterable[Measurement]) -> dict[str, int]:
    """Append each measurement to `<directory>/<benchmark>.jsonl`; records per file."""
    directory.mkdir(parents=True, exist_ok=True)
    by_bench: dict[str, list[Measurement]] = {}
    for m in measurements:
        by_bench.setdefault(m.benchmark, []).append(m)
    for bench, ms in by_bench.items():
        with open(directory / f"{bench}.jsonl", "a", encoding="utf-8") as fh:
            fh.writelines(m.to_json() + "\n" for m in ms)
    return {b: len(ms) for b, ms in by_bench.items()}


def load(directory: Path = RESULTS_DIR) -> list[Measurement]:
    """Every record of every `*.jsonl` in `directory`, file by file (sorted), in file order.
    A malformed line is an error naming the file and line, never skipped."""
    out: list[Measurement] = []
    for path in sorted(directory.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    m = Measurement.from_dict(json.loads(line))
                except (json.JSONDecodeError, TypeError, HistoryError) as exc:
                    raise HistoryError(f"{path.name}:{n}: {exc}") from exc
                if m.benchmark != path.stem:
                    raise HistoryError(f"{path.name}:{n}: benchmark {m.benchmark!r} in the "
                                       f"file of {path.stem!r}")
                out.append(m)
    return out


def short_command(command: str | None) -> str:
    if command is None:
        return "(not recorded)"
    return command.replace("python -m benchmarks.", "")


def format_value(value: Value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return value


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def notes_of(m: Measurement) -> str:
    parts = []
    if m.stat:
        parts.append(m.stat + (f" of {m.runs} runs" if m.runs else ""))
    elif m.runs:
        parts.append(f"{m.runs} runs")
    if m.variant:
        parts.append(f"variant: {m.variant}")
    if m.note:
        parts.append(m.note)
    return "; ".join(parts)


def history_markdown(
    measurements: Sequence[Measurement], *, benchmarks: Sequence[str] = (),
    metrics: Sequence[str] = (), params: Mapping[str, str] | None = None,
) -> str:
    """A markdown table per benchmark: one row per measurement, in recorded order."""
    params = params or {}
    chosen = [
        m for m in measurements
        if (not benchmarks or m.benchmark in benchmarks)
        and (not metrics or m.metric in metrics)
        and all(str(m.params.get(k)) == v for k, v in params.items())
    ]
    blocks = []
    for bench in dict.fromkeys(m.benchmark for m in chosen):
        rows = ["| date | commit | command | params | metric | value | unit | notes |",
                "|---|---|---|---|---|---|---|---|"]
        for m in (x for x in chosen if x.benchmark == bench):
            p = ", ".join(f"{k}={format_value(v)}" for k, v in m.params.items())
            cells = (m.date, m.commit or NO_VALUE, short_command(m.command), p, m.metric,
                     format_value(m.value), m.unit or "", notes_of(m))
            rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        blocks.append(f"## {bench}\n\n" + "\n".join(rows) + "\n")
    return "\n".join(blocks) if blocks else "No measurement matches.\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.history", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=RESULTS_DIR, help="directory of *.jsonl")
    ap.add_argument("--bench", nargs="*", default=[], help="benchmarks (file names) to show")
    ap.add_argument("--metric", nargs="*", default=[], help="metrics to show")
    ap.add_argument("--param", nargs="*", default=[], metavar="KEY=VALUE",
                    help="only measurements with these params (e.g. seed=1 store=server)")
    args = ap.parse_args(argv)
    wanted: dict[str, str] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            ap.error(f"--param {item!r}: expected KEY=VALUE")
        wanted[key] = value
    try:
        data = load(args.results)
    except HistoryError as exc:
        print(f"history: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(history_markdown(data, benchmarks=args.bench, metrics=args.metric,
                                      params=wanted))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
