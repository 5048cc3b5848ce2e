"""One-off import of the former BENCHMARKS.md log into the history files.

    git show 8ca331f:BENCHMARKS.md > /tmp/old.md
    python -m benchmarks.legacy /tmp/old.md --out benchmarks/results

Until 8ca331f, `make bench` appended a "## Run of <date> (commit <c>)" section of JSON lines to
BENCHMARKS.md, and the figures of other runs (direct runs, trials, seeds beyond 1-2) were
written in its prose. `parse_runs` reads the run sections mechanically; `PROSE` holds the
prose figures, copied by hand with the commit of BENCHMARKS.md that wrote each
(`recorded_in`) and the day of that commit. Prose figures that repeat a run section's
figure (the summary table was read off those runs), and statistics computed from recorded
values (means of listed seeds, medians of the anatomy lines), are not copied again.
Simulator and detector settings quoted in the prose are configuration, not measurements.

Records go out in the order BENCHMARKS.md received them (`RECORDED_ORDER`), run sections
before prose of the same commit. The converter refuses to write into non-empty files: the
history is appended to by `run_all` from then on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.history import Measurement, Scalar, append, measurements_from_run, unit_for
from benchmarks.run_all import BENCHMARK_OF

_RUN = re.compile(r"^## Run of (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}) UTC \(commit ([0-9a-f]+)\)$")
_MACHINE = re.compile(r"^Machine: (.*), load average before the run ([0-9., ]+)\.$")
_SUB = re.compile(r"^### (\S+)$")
_TICKED = re.compile(r"`([^`]+)`")

# The commit of BENCHMARKS.md that added each run section (git blame of its header line).
RUN_RECORDED_IN = {
    "2026-11-25T22:02Z": "a7cb4e5", "2026-11-25T22:08Z": "a7cb4e5",
    "2026-11-26T00:34Z": "37e6562", "2026-11-26T01:50Z": "d277c98",
    "2026-11-26T02:05Z": "d277c98", "2026-11-26T02:31Z": "d277c98",
    "2026-11-26T04:25Z": "ae30cfd", "2026-11-26T04:30Z": "ae30cfd",
    "2026-11-26T06:46Z": "af66f52", "2026-11-26T08:54Z": "b79641b",
    "2026-11-26T10:04Z": "05a3891",
}
# Commits of BENCHMARKS.md in the order they were made (git log).
RECORDED_ORDER = (
    "131210e", "a7cb4e5", "37e6562", "d277c98", "16d4949", "2c06853", "b98eda4", "ae30cfd",
    "b5d6691", "af66f52", "1fb68e3", "c4cf223", "bce37fb", "87594a7", "b79641b", "a0661a0",
    "05a3891", "49467f4", "8ca331f",
)
# How the former log described its machine (every figure in it was measured there).
VM = "2-core / 24 GiB Linux VM, Python 3.11.7"


class LegacyError(ValueError):
    """The old log does not read as expected (with the line number)."""


def _via_and_note(command_line: str) -> tuple[str, str | None]:
    """`Command: `make bench` (`python -m ...`).` -> ("make bench", None); a parenthesis
    that is not a command is the run's note."""
    ticks = _TICKED.findall(command_line)
    if not ticks:
        raise LegacyError(f"no command in {command_line!r}")
    rest = command_line.split("`" + ticks[0] + "`", 1)[1].strip().rstrip(".").strip()
    note = None
    if rest.startswith("(") and rest.endswith(")") and not rest.startswith("(`"):
        note = rest[1:-1]
    return ticks[0], note


def parse_runs(text: str) -> list[tuple[str, list[Measurement]]]:
    """Every "## Run of" section of the old log -> (its run date, its measurements)."""
    out: list[tuple[str, list[Measurement]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _RUN.match(lines[i])
        if not m:
            i += 1
            continue
        date, commit = f"{m.group(1)}T{m.group(2)}Z", m.group(3)
        start = i
        i += 1
        section: list[str] = []
        while i < len(lines) and not lines[i].startswith("## "):
            section.append(lines[i])
            i += 1
        out.append((date, _parse_section(section, date, commit, start + 2)))
    return out


def _parse_section(lines: list[str], date: str, commit: str, first_line: int
                   ) -> list[Measurement]:
    machine = via = run_note = None
    load_avg: list[float] | None = None
    subs: list[dict[str, Any]] = []
    in_json = False
    for n, line in enumerate(lines, first_line):
        if in_json:
            if line.startswith("```"):
                in_json = False
            else:
                try:
                    subs[-1]["results"].append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise LegacyError(f"line {n}: not JSON: {exc}") from exc
            continue
        if (mm := _MACHINE.match(line)) is not None:
            machine = mm.group(1)
            load_avg = [float(x) for x in mm.group(2).split(",")]
        elif line.startswith("Command: "):
            via, run_note = _via_and_note(line)
        elif (ms := _SUB.match(line)) is not None:
            subs.append({"name": ms.group(1), "command": None, "results": [], "notes": []})
        elif line.startswith("```json"):
            if not subs:
                raise LegacyError(f"line {n}: JSON block outside a ### section")
            in_json = True
        elif line.strip() and subs:
            if subs[-1]["command"] is None and line.startswith("`") and line.endswith("`"):
                subs[-1]["command"] = line.strip("`")
            else:
                subs[-1]["notes"].append(line.strip())
    if machine is None or via is None:
        raise LegacyError(f"line {first_line}: run section without Machine: or Command:")
    out: list[Measurement] = []
    for sub in subs:
        if sub["command"] is None or not sub["results"]:
            raise LegacyError(f"run {date}: section {sub['name']} without command or results")
        notes = [x for x in (run_note, " ".join(sub["notes"]) or None) if x]
        # `throughput(days, 1)` at every recorded commit: seed 1, printed after `days` since
        sub["results"] = [_with_seed(res) if res.get("bench") == "backtest_throughput"
                          and "seed" not in res else res for res in sub["results"]]
        ms_ = measurements_from_run(
            sub["results"], benchmark=BENCHMARK_OF[sub["name"]], date=date, commit=commit,
            machine=machine, command=sub["command"], via=via, load_avg=load_avg)
        if notes:
            ms_ = [_with(m, note="; ".join(x for x in (m.note, *notes) if x)) for m in ms_]
        out += ms_
    return out


def _with_seed(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in result.items():
        out[k] = v
        if k == "days":
            out["seed"] = 1
    return out


def _with(m: Measurement, **changes: Any) -> Measurement:
    return Measurement(**{**m.as_dict(), **changes})


def _day(recorded_in: str) -> str:
    return "2026-11-25" if recorded_in in ("131210e", "a7cb4e5") else "2026-11-26"


def fig(bench: str, metric: str, value: Any, recorded_in: str, *, unit: str | None = None,
        params: Mapping[str, Scalar] | None = None, command: str | None = None,
        commit: str | None = None, via: str | None = None, stat: str | None = None,
        runs: int | None = None, variant: str | None = None, note: str | None = None,
        date: str | None = None) -> Measurement:
    """One figure from the old log's prose."""
    return Measurement(
        benchmark=bench, metric=metric, value=value,
        unit=unit if unit is not None else unit_for(metric, value),
        params=dict(params or {}), date=date or _day(recorded_in), commit=commit,
        machine=VM, command=command, via=via, stat=stat, runs=runs, variant=variant,
        note=note, recorded_in=recorded_in)


def per_seed(bench: str, metric: str, values: Sequence[Any], seeds: Sequence[int],
             recorded_in: str, *, params: Mapping[str, Scalar] | None = None,
             **kw: Any) -> list[Measurement]:
    """The same figure for several seeds ("1.95 / 2.35 h" for seeds 1 / 2)."""
    if len(values) != len(seeds):
        raise LegacyError(f"{bench}.{metric}: {len(values)} values for {len(seeds)} seeds")
    return [fig(bench, metric, v, recorded_in, params={"seed": s, **(params or {})}, **kw)
            for s, v in zip(seeds, values, strict=True)]


PIPE_SERVER = "python -m benchmarks.bench_pipeline -n 150000 --store server"
SERVER: dict[str, Scalar] = {"store": "server", "messages": 150000}
TRUTH: dict[str, Scalar] = {"scenario": "burst", "mode": "truth"}
PIPELINE: dict[str, Scalar] = {"scenario": "burst", "mode": "pipeline"}
BACKTEST_28: dict[str, Scalar] = {"days": 28.0, "seed": 1, "lines": 42587}
S12, S14, S18 = (1, 2), (1, 2, 3, 4), (1, 2, 3, 4, 5, 6, 7, 8)
PIPE_SEEDS_1_8 = ("python -m benchmarks.bench_detection --mode pipeline --seeds "
                  "1,2,3,4,5,6,7,8 --no-throughput")
PHYSICS_1_8 = "python -m benchmarks.bench_detection --physics --seeds 1,2,3,4,5,6,7,8"
BEFORE_COMMUNE = "before: incidents known only by their commune counted per cell"
MYPYC = "trial, not kept: the per-report core compiled with mypyc"
RODEO_30 = "trial, not kept: a rodeo incident spans at most 30 min instead of 1 h"
NO_TWINS = "trial: no twinned incidents in the calibration's null simulation"
_STALL = "server ingest runs of the stall investigation, 01:56-02:58 UTC"


def _stall_rows() -> list[Measurement]:
    """The table of server ingest runs of 01:56-02:58 UTC (the runs through run_all at 02:05
    and 02:31 are in the run sections and not repeated here)."""
    rows: list[tuple[str | None, str, str | None, list[int], str, str]] = [
        # (commit, code note, variant, reports/s, worker log, recorded_in)
        ("aa69252", "session start", None, [7811], "worker log clean", "2c06853"),
        ("aa69252", "session start", None, [774], "worker log: evicted 2x, producer buffer "
         "full", "2c06853"),
        (None, "code 6b54719-f270f32, before the stall fix", None,
         [7927, 9763, 7856, 7218, 7968, 7362], "worker log clean", "2c06853"),
        (None, "code 6b54719-f270f32, before the stall fix", None, [2003],
         "worker log: evicted, producer buffer full", "2c06853"),
        (None, "code 6b54719-f270f32, before the stall fix", "detector off", [1187, 1399],
         "worker log: evicted, producer buffer full", "b98eda4"),
        (None, "code 6b54719-f270f32, before the stall fix", "detector off", [8114],
         "worker log clean", "2c06853"),
        ("cbfbd3d", "", None, [7534], "worker log clean", "b98eda4"),
        ("a8010ab", "after the stall fix", None,
         [8954, 7372, 7836, 7059, 7382, 7927, 7113, 7634], "worker log clean (7 kept)",
         "2c06853"),
    ]
    out: list[Measurement] = []
    for commit, code, variant, values, log, rec in rows:
        note = "; ".join(x for x in (_STALL, code, log) if x)
        out += [fig("pipeline", "pipeline_reports_per_s", v, rec, params=SERVER,
                    command=PIPE_SERVER, commit=commit, variant=variant, note=note)
                for v in values]
    out.append(fig("pipeline", "pipeline_reports_per_s", 1095, "2c06853", params=SERVER,
                   command=PIPE_SERVER, via="python -m benchmarks.run_all",
                   note=f"{_STALL}; code 6b54719-f270f32, before the stall fix; log not kept"))
    out.append(fig("pipeline", "pipeline_reports_per_s", 3631, "2c06853", params=SERVER,
                   command=PIPE_SERVER, commit="a8010ab", via="python -m benchmarks.run_all",
                   note=f"{_STALL}; log not kept"))
    out += [fig("pipeline", "pipeline_reports_per_s", v, "2c06853", params=SERVER,
                command=PIPE_SERVER, commit="a8010ab", via="benchmarks.run_all.run(...)",
                note=f"{_STALL}; worker log: producer buffer full, no eviction")
            for v in (3550, 3927, 3510)]
    return out


def prose() -> list[Measurement]:
    """The figures of the old log's prose, by the commit that wrote them."""
    r: list[Measurement] = []
    # --- 131210e, 2026-11-25: detection section
    r.append(fig("detection_quality", "false_alerts_per_day", 1.6, "131210e",
                 params={"seed": 1, **TRUTH},
                 variant="threshold calibrated on the Poisson null alone (no twinned incidents)"))
    r.append(fig("detection_quality", "median_delay_change_h", 0.4, "131210e", params=TRUTH,
                 stat="upper bound",
                 variant="trials: other windows, twin share 0.03 instead of 0.05"))
    r.append(fig("backtest_throughput", "reports_per_s", 600, "131210e", params=BACKTEST_28,
                 command="vigie backtest --input r28.jsonl --out DIR", stat="approx",
                 variant="before the incremental scan"))
    # --- a7cb4e5, 2026-11-25: reading the ingestion ratio
    r.append(fig("pipeline", "validation_us_per_message", 15, "a7cb4e5", unit="µs",
                 stat="approx", note="contract v1 validation (pydantic)"))
    r.append(fig("pipeline", "python_us_per_report", 100, "a7cb4e5", unit="µs", stat="approx",
                 note="validation, pseudonymisation, geocoding, two forwards, two table "
                      "writes, on one core"))
    # --- 37e6562: why the median delay stays above 1 h; the backtest's split
    physics = "python -m benchmarks.bench_detection --physics"
    burst: dict[str, Scalar] = {"scenario": "burst"}
    for k, vals in (("1", (0.53, 0.77)), ("2", (1.46, 1.78)), ("3", (1.89, 2.33))):
        r += per_seed("detection_physics", f"median_first_report_h.incident_{k}", vals, S12,
                      "37e6562", params=burst, command=physics)
    r += per_seed("detection_physics", "background_same_cell_pairs_within_1h_per_day",
                  (8.8, 9.6), S12, "37e6562", params=burst, command=physics)
    r += per_seed("detection_quality", "median_delay_h", (1.95, 3.12), S12, "37e6562",
                  params=TRUTH, variant="trial: alert from 2 incidents (threshold recalibrated)")
    r += per_seed("detection_quality", "median_delay_h", (1.91, 2.31), S12, "37e6562",
                  params=TRUTH, variant="trial: detector every 60 s instead of 300 s")
    r += per_seed("detection_quality", "false_alerts_per_day", (1.57, 1.29), S12, "37e6562",
                  params=TRUTH, variant="trial: calibration with twin share 0",
                  note="same delays")
    r.append(fig("detection_quality", "median_delay_h", [2.24, 2.79], "37e6562",
                 params={"seeds": "1,2", **TRUTH}, stat="min-max",
                 variant="trials: other zone sizes and windows"))
    r.append(fig("detection_quality", "true_outbreak_incidents", 552, "37e6562",
                 params=PIPELINE, note="one run: the true incidents of the outbreaks"))
    r.append(fig("detection_quality", "pipeline_outbreak_incidents", 293, "37e6562",
                 params=PIPELINE, note="the same run: incidents correlation made of them"))
    prof = "cProfile of the 4-week backtest, 35 s profiled"
    for part, share in (("correlation", 0.57), ("detection", 0.29), ("validation", 0.07),
                        ("geocoding", 0.04)):
        r.append(fig("backtest_profile", f"time_share.{part}", share, "37e6562",
                     unit="share", params={"days": 28.0}, stat="approx", note=prof))
    r.append(fig("backtest_profile", "calibration_s", 6.7, "37e6562", params={"days": 28.0},
                 note=f"{prof}; two threshold calibrations of 24 null days"))
    r.append(fig("backtest_profile", "incremental_scans", 3900, "37e6562",
                 params={"days": 28.0}, stat="approx", note=prof))
    r.append(fig("validation", "messages_per_s", 28000, "37e6562", stat="approx",
                 note="validation alone (pydantic, HMAC)"))
    # --- d277c98: anatomy, rodeo cap, detection speed
    r.append(fig("detection_anatomy", "first_3h_true_incidents", [12, 17, 14], "d277c98",
                 unit="count", params={"category": "rodeo", "seeds": "1,2"},
                 variant="before the rodeo span cap of 1 h",
                 note="three rodeo outbreaks, real rodeos within 170-390 m"))
    r.append(fig("detection_anatomy", "first_3h_pipeline_incidents", [6, 4, 2], "d277c98",
                 unit="count", params={"category": "rodeo", "seeds": "1,2"},
                 variant="before the rodeo span cap of 1 h",
                 note="the same outbreaks: incidents the correlation made of them"))
    r.append(fig("detection_anatomy", "alert_pipeline_earlier_h", [1.1, 3.0], "d277c98",
                 params={"category": "rodeo"}, stat="min-max",
                 note="rodeo span capped at 1 h, three rodeo outbreaks; no change on the "
                      "correlation harness"))
    r.append(fig("detection_quality", "false_alerts_per_day", 60, "d277c98",
                 variant="trial: each new reporter counted as an extra detection unit"))
    r.append(fig("detection_quality", "false_alerts_per_day", 15, "d277c98",
                 variant="trial: each report more than 30 min from the incident's other "
                         "reports counted as an extra detection unit"))
    replay = "detection alone, replayed from the recorded inputs of the 4-week backtest"
    before_inc = "before incremental zone window counts and max-only calibration scans"
    r.append(fig("detection_replay", "elapsed_s", 7.0, "d277c98", note=replay,
                 variant=before_inc))
    r.append(fig("detection_replay", "elapsed_s", [4.3, 4.7], "d277c98", note=replay,
                 stat="min-max"))
    r.append(fig("detection_replay", "calibration_s", [3.1, 4.8], "d277c98", note=replay,
                 stat="min-max", variant=before_inc))
    r.append(fig("detection_replay", "calibration_s", 0.8, "d277c98", note=replay))
    r.append(fig("backtest_throughput", "reports_per_s_without_detection", 3700, "d277c98",
                 unit="reports/s", params=BACKTEST_28, stat="estimate"))
    # --- 2c06853, b98eda4: the stall investigation table
    r += _stall_rows()
    # --- ae30cfd: the bimodal server benchmark explained
    r.append(fig("pipeline", "pipeline_reports_per_s", [3146, 4784], "ae30cfd", params=SERVER,
                 command=PIPE_SERVER, stat="min-max", runs=9,
                 note="direct runs since the topic fix, commits 9d9e799-6d3be18"))
    r.append(fig("pipeline", "pipeline_reports_per_s", [3879, 4784], "ae30cfd", params=SERVER,
                 command=PIPE_SERVER, commit="6d3be18", stat="min-max", runs=4,
                 note="the direct runs with the agent fixes of 6d3be18"))
    r.append(fig("pipeline", "pipeline_reports_per_s", [3146, 4101], "ae30cfd", params=SERVER,
                 command=PIPE_SERVER, stat="min-max", runs=6,
                 note="runs since the worker creates its topics first: no missing topic"))
    r.append(fig("pipeline", "correlation_first_version_s", [7, 9], "ae30cfd", params=SERVER,
                 command=PIPE_SERVER, stat="min-max", runs=6,
                 note="the same runs: second of the first incident version published"))
    r.append(fig("pipeline", "bare_consumer_msgs_per_s", [64000, 101000], "ae30cfd",
                 params=SERVER, command=PIPE_SERVER, stat="min-max",
                 note="the runs since the topic fix"))
    r.append(fig("pipeline", "ratio", [0.05, 0.06], "ae30cfd", params=SERVER,
                 command=PIPE_SERVER, stat="min-max", note="the runs since the topic fix"))
    send_changelog = "Faust Table.send_changelog buffer, before the agent sent its changelog " \
                     "records to the producer itself"
    r.append(fig("pipeline", "changelog_buffer_drain_msgs_per_s", 2000, "ae30cfd",
                 params=SERVER, stat="approx", variant=send_changelog,
                 note="from the kept worker logs"))
    r.append(fig("pipeline", "changelog_buffer_pending_max", 46000, "ae30cfd", params=SERVER,
                 variant=send_changelog, note="from the kept worker logs"))
    r.append(fig("pipeline", "candidate_incidents_per_report", 67, "ae30cfd", params=SERVER,
                 stat="approx", note="150k reports over 6 days of data"))
    r.append(fig("pipeline", "candidate_incidents_in_time_window_per_report", 9, "ae30cfd",
                 params=SERVER, stat="approx", note="150k reports over 6 days of data"))
    before_fix3 = "before the third session's agent fixes"
    r.append(fig("pipeline", "correlate_deepcopy_sample_share", 0.12, "ae30cfd",
                 params=SERVER, variant=before_fix3,
                 note="py-spy: the correlate agent deep-copying incident states"))
    dense: dict[str, Scalar] = {"stream": "dense"}
    r.append(fig("correlation_engine", "reports_per_s", [1612, 1813], "ae30cfd", params=dense,
                 stat="min-max", variant=before_fix3))
    r.append(fig("correlation_engine", "reports_per_s", [2115, 2325], "ae30cfd", params=dense,
                 stat="min-max", note="same versions, byte for byte"))
    r.append(fig("pipeline", "correlated_reports_per_s", [633, 699], "ae30cfd", params=SERVER,
                 command=PIPE_SERVER, stat="min-max", variant=before_fix3))
    r.append(fig("pipeline", "correlated_reports_per_s", [863, 971], "ae30cfd", params=SERVER,
                 command=PIPE_SERVER, stat="min-max"))
    # --- af66f52: backtest and correlation speed (fourth session)
    bt: dict[str, Scalar] = {"stream": "28-day backtest", "reports": 41372}
    grid = "before the int-keyed grid index and per-change centre cells and confidence"
    pair = "one alternated pair"
    r.append(fig("correlation_engine", "cpu_s", 5.61, "af66f52", params=bt, variant=grid,
                 note=pair))
    r.append(fig("correlation_engine", "reports_per_s", 7508, "af66f52", params=bt,
                 variant=grid, note=pair))
    r.append(fig("correlation_engine", "cpu_s", 4.50, "af66f52", params=bt, note=pair))
    r.append(fig("correlation_engine", "reports_per_s", 9366, "af66f52", params=bt, note=pair))
    r.append(fig("detection_replay", "cpu_s", 3.14, "af66f52", note=f"{replay}; min of 7",
                 variant="before the fourth session's detection changes"))
    r.append(fig("detection_replay", "cpu_s", 1.76, "af66f52", note=f"{replay}; min of 7"))
    r.append(fig("backtest_throughput", "gc_cpu_s_saved", [0.6, 2.3], "af66f52",
                 unit="s", params=BACKTEST_28, stat="min-max", runs=3,
                 note="alternated pairs; objects at entry frozen, GC thresholds raised"))
    prof4 = "cProfile of a 4-week backtest"
    for part, share in (("correlation", 0.51), ("detection", 0.21), ("validation", 0.11)):
        r.append(fig("backtest_profile", f"time_share.{part}", share, "af66f52",
                     unit="share", params={"days": 28.0}, stat="approx", note=prof4))
    r.append(fig("backtest_profile", "setup_s", 1.5, "af66f52", params={"days": 28.0},
                 stat="approx", note=f"{prof4}: reference data and geocoder set-up"))
    r.append(fig("backtest_throughput", "reports_per_s", [3411, 4654], "af66f52",
                 params=BACKTEST_28, command="benchmarks.bench_detection.throughput(28, 1)",
                 stat="min-max", runs=5, note="direct runs"))
    alt = "alternated in the same minutes"
    r += [fig("backtest_throughput", "reports_per_s", v, "af66f52", params=BACKTEST_28,
              commit="25d8a98", variant="the third session's final code", note=alt)
          for v in (2716, 3260)]
    r += [fig("backtest_throughput", "reports_per_s", v, "af66f52", params=BACKTEST_28,
              note=f"fourth session's code, {alt} with 25d8a98; the same 14 alerts")
          for v in (3789, 3961)]
    # --- c4cf223: chronic places (fifth session)
    chronic = "before chronic places"
    c1: dict[str, Scalar] = {"seed": 1}
    r.append(fig("correlation", "false_pairs", 1112, "c4cf223", params=c1, variant=chronic))
    r.append(fig("correlation", "false_pairs.dealing_or_hall", 734, "c4cf223", params=c1,
                 variant=chronic))
    r.append(fig("correlation", "missed_pairs", 2722, "c4cf223", params=c1, variant=chronic))
    r.append(fig("correlation", "missed_pairs.dealing_or_hall", 1736, "c4cf223", params=c1,
                 variant=chronic))
    # --- bce37fb: steady state on seeds 3-10, the fourth session's engine, noon days
    steady: dict[str, Scalar] = {"days": 14.0, "warmup_days": 7.0}
    s3_10 = tuple(range(3, 11))
    r += per_seed("correlation", "steady_state.pairwise_precision",
                  (0.960, 0.954, 0.958, 0.948, 0.956, 0.960, 0.951, 0.949), s3_10, "bce37fb",
                  params=steady, note="command not recorded")
    r += per_seed("correlation", "steady_state.pairwise_f1",
                  (0.914, 0.907, 0.910, 0.894, 0.916, 0.908, 0.902, 0.894), s3_10, "bce37fb",
                  params=steady, note="command not recorded")
    engine4 = "the fourth session's engine (before chronic places and the mismatch link)"
    r += per_seed("correlation", "steady_state.pairwise_precision",
                  (0.923, 0.923, 0.917, 0.914), S14, "bce37fb", params=steady, variant=engine4)
    r += per_seed("correlation", "steady_state.pairwise_f1", (0.886, 0.881, 0.887, 0.882),
                  S14, "bce37fb", params=steady, variant=engine4)
    r.append(fig("detection_quality", "extra_false_alerts", 2, "bce37fb",
                 params={"seed": 1, **PIPELINE},
                 variant="trial: chronic-place days from midnight to midnight",
                 note="a one-off hall occupation over two nights split into 4 incidents"))
    # --- 87594a7, a0661a0: the mismatch link
    r.append(fig("correlation", "false_pairs.cross_category_into_rodeo", 247, "87594a7",
                 params={"seeds": "1-3"}, variant="before the 300 m mismatch link",
                 note="noise complaints and traffic offences merged into a rodeo, most "
                      "400-1,000 m away"))
    # --- b79641b: the fifth session's backtest runs
    r.append(fig("backtest_throughput", "reports_per_s", [4713, 4963], "b79641b",
                 params=BACKTEST_28, stat="min-max", runs=3,
                 variant="the fifth session's code before its last correlation changes"))
    mismatch = "the 300 m mismatch link against none"
    r.append(fig("correlation", "steady_state.pairwise_precision_change", [0.003, 0.009],
                 "a0661a0", unit="score", params={"seeds": "1-6"}, stat="min-max",
                 note=mismatch))
    r.append(fig("correlation", "steady_state.pairwise_recall_change", [-0.008, -0.003],
                 "a0661a0", unit="score", params={"seeds": "1-6"}, stat="min-max",
                 note=mismatch))
    # --- 05a3891: commune-only incidents left out of the scan; the mypyc trial
    r += per_seed("detection_quality", "false_alerts_per_day",
                  (0.86, 0.43, 0.57, 0.57, 0.43, 1.29, 0.86, 0.57), S18, "05a3891",
                  params=PIPELINE, command=PIPE_SEEDS_1_8, variant=BEFORE_COMMUNE)
    r += per_seed("detection_quality", "median_delay_h",
                  (2.56, 3.78, 2.73, 2.24, 1.86, 2.46, 2.22, 2.44), S18, "05a3891",
                  params=PIPELINE, command=PIPE_SEEDS_1_8, variant=BEFORE_COMMUNE)
    r.append(fig("detection_quality", "false_alerts", 9, "05a3891",
                 params={"seed": 6, **PIPELINE}, command=PIPE_SEEDS_1_8,
                 variant=BEFORE_COMMUNE))
    r.append(fig("detection_quality", "false_alerts.with_commune_only_incidents", 8,
                 "05a3891", params={"seed": 6, **PIPELINE}, command=PIPE_SEEDS_1_8,
                 variant=BEFORE_COMMUNE))
    r += per_seed("detection_quality", "false_alerts_per_day",
                  (0.43, 0.14, 0.14, 0.14, 0.29, 0.29, 0.29, 0.43), S18, "05a3891",
                  params=PIPELINE, command=PIPE_SEEDS_1_8)
    r += per_seed("detection_quality", "median_delay_h",
                  (2.56, 4.12, 2.73, 2.32, 1.84, 2.20, 2.22, 2.62), S18, "05a3891",
                  params=PIPELINE, command=PIPE_SEEDS_1_8)
    r.append(fig("detection_quality", "detected_share", [0.88, 1.0], "05a3891",
                 params={"seeds": "1-8", **PIPELINE}, command=PIPE_SEEDS_1_8, stat="min-max",
                 note="the same outbreaks detected as before the change"))
    r.append(fig("detection_quality", "false_alerts_per_day", 0.21, "05a3891",
                 params={"seeds": "1-8", **TRUTH}, stat="mean"))
    pairs = "4 alternated pairs on the 4-week backtest"
    for i, (compiled, interpreted) in enumerate(
            ((4700, 4744), (5874, 4676), (5136, 3166), (5564, 4657)), 1):
        p: dict[str, Scalar] = {**BACKTEST_28, "pair": i}
        r.append(fig("backtest_throughput", "reports_per_s", compiled, "05a3891", params=p,
                     variant=MYPYC, note=pairs))
        r.append(fig("backtest_throughput", "reports_per_s", interpreted, "05a3891",
                     params=p, note=f"{pairs}: the interpreted core"))
    r.append(fig("backtest_throughput", "alerts_opened", 14, "05a3891", params=BACKTEST_28,
                 note=f"{pairs}: compiled and interpreted alike"))
    r.append(fig("backtest_throughput", "incident_versions", 64797, "05a3891",
                 params=BACKTEST_28, note=f"{pairs}: compiled and interpreted alike"))
    # --- 49467f4, 8ca331f: the delay floor on seeds 1-8, two trials
    r += per_seed("detection_physics", "median_first_report_h.incident_2",
                  (1.46, 1.78, 1.45, 1.06, 1.15, 1.89, 1.20, 1.06), S18, "49467f4",
                  params=burst, command=PHYSICS_1_8)
    r += per_seed("detection_physics", "median_first_report_h.incident_3",
                  (1.89, 2.33, 1.91, 2.20, 1.60, 2.12, 1.68, 1.66), S18, "49467f4",
                  params=burst, command=PHYSICS_1_8)
    r.append(fig("detection_physics", "background_same_cell_pairs_within_1h_per_day", [9, 10],
                 "49467f4", params={"seeds": "1-8", **burst}, command=PHYSICS_1_8,
                 stat="min-max"))
    r += per_seed("detection_quality", "median_delay_h",
                  (1.95, 2.35, 1.82, 2.20, 1.66, 2.23, 1.89, 1.81), S18, "49467f4",
                  params=TRUTH, note="command not recorded")
    r += per_seed("detection_quality", "median_delay_h", (2.44, 3.42, 2.73, 2.32), S14,
                  "49467f4", params=PIPELINE, variant=RODEO_30)
    r.append(fig("correlation", "steady_state.pairwise_f1", 0.897, "49467f4",
                 params={"seed": 1, **steady}, variant=RODEO_30))
    s14: dict[str, Scalar] = {"seeds": "1-4"}
    r.append(fig("detection_quality", "false_alerts_per_day", [0.14, 0.29], "49467f4",
                 params=s14, stat="min-max",
                 note="5 % twinned incidents in the null simulation (the setting kept), "
                      "calibrated for 1 a day"))
    r.append(fig("detection_quality", "false_alerts_per_day", [1.29, 1.71], "49467f4",
                 params=s14, stat="min-max", variant=NO_TWINS))
    r.append(fig("detection_quality", "median_delay_change_h", [-0.11, 0.0], "49467f4",
                 params=s14, stat="min-max", variant=NO_TWINS))
    r.append(fig("detection_quality", "false_alerts_per_day", [1.57, 2.71], "8ca331f",
                 params=s14, stat="min-max",
                 variant=f"{NO_TWINS}, and no posterior draw of the rates"))
    return r


def convert(text: str) -> list[Measurement]:
    """The old log -> every record, in the order BENCHMARKS.md received them."""
    rank = {c: i for i, c in enumerate(RECORDED_ORDER)}
    keyed: list[tuple[int, int, int, Measurement]] = []
    for i, (date, ms) in enumerate(parse_runs(text)):
        if date not in RUN_RECORDED_IN:
            raise LegacyError(f"run of {date}: unknown recording commit")
        keyed += [(rank[RUN_RECORDED_IN[date]], 0, i, m) for m in ms]
    for i, m in enumerate(prose()):
        keyed.append((rank[str(m.recorded_in)], 1, i, m))
    return [m for *_, m in sorted(keyed, key=lambda k: k[:3])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.legacy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path, help="the former BENCHMARKS.md (git show 8ca331f:...)")
    ap.add_argument("--out", type=Path, required=True, help="directory of the *.jsonl files")
    args = ap.parse_args(argv)
    records = convert(args.old.read_text(encoding="utf-8"))
    taken = sorted(p.name for p in args.out.glob("*.jsonl") if p.stat().st_size) \
        if args.out.exists() else []
    if taken:
        print(f"legacy: {args.out} already holds {taken}: not written", file=sys.stderr)
        return 1
    counts = append(args.out, records)
    print(f"legacy: {sum(counts.values())} records: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
