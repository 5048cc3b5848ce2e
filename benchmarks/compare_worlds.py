"""Two robustness runs compared world by world: `python -m benchmarks.compare_worlds A B`.

A change to the correlation or the detection moves each world's figures a little, up in
some worlds and down in others, and the medians of two runs differ by about as much as
those moves: whether B is better than A is a question about the pairs (the same world
under each), not about two medians. For each figure this prints the worlds both runs
scored, the two medians, the median of the per-world differences (B - A), how many worlds
B made better, worse or left equal, and the exact two-sided sign test's p-value of those
counts (the probability of a split at least that uneven were B neither better nor worse;
ties left out). A change whose p-value is large has not been shown to do anything.

A and B are each either
- a file of `python -m benchmarks.bench_robustness` output: its JSON lines, one per world
  (the summary line, the table and anything else in the file are ignored), or
- `commit:<sha>`: the per-world records of that commit in
  `benchmarks/results/robustness.jsonl` (`python -m benchmarks.run_all --record`).

Worlds pair by (scenario, seed). A world whose drawn reporting model differs between the two
runs (the simulator changed in between) is reported and left out: its differences would be
the simulator's, not the change's.

    python -m benchmarks.compare_worlds before.txt after.txt [--metric pair_f1 ...]
    python -m benchmarks.compare_worlds commit:8abfcd9 commit:b07b450
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from benchmarks.history import RESULTS_DIR, Measurement, load, measurements_from_result

WorldKey = tuple[str, int]  # (scenario, seed)
Figures = dict[str, Any]  # one world's figures, nested ones flattened as "pairs.point.false"

BENCHMARK = "robustness"
COMMIT_PREFIX = "commit:"
_NO_DATE = "1970-01-01"  # a run's own lines carry no date: a placeholder for the records


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure compared: its name in the benchmark's output and which way is better
    (+1 higher, -1 lower, 0 neither: the counts say higher / lower)."""

    metric: str
    better: int


DEFAULT_FIGURES = (
    Figure("pair_f1", +1),
    Figure("pair_precision", +1),
    Figure("pair_recall", +1),
    Figure("bcubed_f1", +1),
    Figure("commune_accuracy", +1),
    Figure("bursts_detected_share", +1),
    Figure("median_delay_h", -1),
    Figure("false_alerts_per_day", -1),
    Figure("threshold", 0),
)
LOWER_IS_BETTER = frozenset(f.metric for f in DEFAULT_FIGURES if f.better < 0)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One figure over the worlds both runs scored (`compare`)."""

    metric: str
    better_way: int
    worlds: int
    median_a: float | None
    median_b: float | None
    median_diff: float | None  # median of the per-world B - A
    up: int  # worlds where B is higher
    down: int  # ... lower
    tied: int
    p_value: float  # exact two-sided sign test of up against down

    @property
    def better(self) -> int:
        """Worlds B made better (higher, or lower where lower is better; 0: neither way)."""
        return self.up if self.better_way > 0 else self.down if self.better_way < 0 else 0

    @property
    def worse(self) -> int:
        return self.down if self.better_way > 0 else self.up if self.better_way < 0 else 0


def _figures(measurements: Iterable[Measurement]) -> dict[WorldKey, Figures]:
    """Per-world figures of robustness records (the latest of a figure recorded twice)."""
    out: dict[WorldKey, Figures] = {}
    for m in measurements:
        scenario, seed = m.params.get("scenario"), m.params.get("seed")
        if m.benchmark != BENCHMARK or not isinstance(scenario, str) or not isinstance(seed, int):
            continue
        out.setdefault((scenario, seed), {})[m.metric] = m.value
    return out


def worlds_of_output(lines: Iterable[str]) -> dict[WorldKey, Figures]:
    """The per-world JSON lines of a `bench_robustness` run, read as `run_all --record`
    records them (`history.measurements_from_result`: nested figures as
    `pairs.point.false`); anything else in the file is skipped."""
    rows: list[Measurement] = []
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("bench") == BENCHMARK:
            rows += measurements_from_result(
                row, date=_NO_DATE, commit=None, machine=None, command=None
            )
    return _figures(rows)


def worlds_of_commit(measurements: Iterable[Measurement], commit: str) -> dict[WorldKey, Figures]:
    """The per-world figures recorded for a commit (`commit`: its hash or a prefix of it)."""
    return _figures(
        m
        for m in measurements
        if commit and m.commit and (m.commit.startswith(commit) or commit.startswith(m.commit))
    )


def drawn_differently(
    a: Mapping[WorldKey, Figures], b: Mapping[WorldKey, Figures]
) -> list[WorldKey]:
    """Worlds of both runs whose drawn reporting model (`world.*` figures) differs."""
    out = []
    for key in sorted(a.keys() & b.keys()):
        wa = {k: v for k, v in a[key].items() if k.startswith("world.")}
        wb = {k: v for k, v in b[key].items() if k.startswith("world.")}
        if wa and wb and wa != wb:
            out.append(key)
    return out


def sign_test_p(up: int, down: int) -> float:
    """Exact two-sided sign test: the probability, with each world equally likely to go
    either way, of a split at least as uneven as `up` against `down` (1 with none)."""
    n = up + down
    if n == 0:
        return 1.0
    k = min(up, down)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def compare(
    a: Mapping[WorldKey, Figures],
    b: Mapping[WorldKey, Figures],
    figures: Sequence[Figure] = DEFAULT_FIGURES,
) -> list[Comparison]:
    """Each figure over the worlds where both runs have a number for it."""
    out = []
    keys = sorted(a.keys() & b.keys())
    for fig in figures:
        pairs = [
            (va, vb)
            for key in keys
            for va, vb in ((_number(a[key].get(fig.metric)), _number(b[key].get(fig.metric))),)
            if va is not None and vb is not None
        ]
        diffs = [vb - va for va, vb in pairs]
        up = sum(1 for d in diffs if d > 0)
        down = sum(1 for d in diffs if d < 0)
        out.append(
            Comparison(
                metric=fig.metric,
                better_way=fig.better,
                worlds=len(pairs),
                median_a=statistics.median(va for va, _ in pairs) if pairs else None,
                median_b=statistics.median(vb for _, vb in pairs) if pairs else None,
                median_diff=statistics.median(diffs) if diffs else None,
                up=up,
                down=down,
                tied=len(diffs) - up - down,
                p_value=sign_test_p(up, down),
            )
        )
    return out


def load_run(spec: str, results_dir: Path = RESULTS_DIR) -> dict[WorldKey, Figures]:
    """A run by its command-line name: `commit:<sha>` or a file of the benchmark's output."""
    if spec.startswith(COMMIT_PREFIX):
        return worlds_of_commit(load(results_dir), spec[len(COMMIT_PREFIX) :])
    with open(spec, encoding="utf-8") as f:
        return worlds_of_output(f)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def print_comparisons(
    comparisons: Sequence[Comparison], out: TextIO, names: tuple[str, str] = ("A", "B")
) -> None:
    a, b = names
    out.write(
        f"| figure | worlds | median {a} | median {b} | median of {b} - {a} "
        "| better | worse | equal | sign test p |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    for c in comparisons:
        if c.better_way == 0:
            better, worse = f"{c.up} higher", f"{c.down} lower"
        else:
            better, worse = str(c.better), str(c.worse)
        out.write(
            f"| {c.metric} | {c.worlds} | {_fmt(c.median_a)} | {_fmt(c.median_b)} "
            f"| {_fmt(c.median_diff)} | {better} | {worse} | {c.tied} | {c.p_value:.3g} |\n"
        )


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare_worlds",
        description="Two robustness runs compared world by world (paired, sign test).",
    )
    parser.add_argument(
        "a", help="the reference run: a file of bench_robustness output, or commit:<sha>"
    )
    parser.add_argument("b", help="the run compared with it (same forms)")
    parser.add_argument(
        "--metric",
        action="append",
        default=None,
        help="a figure to compare (repeatable; default: the main ones). "
        "Lower is better for median_delay_h and false_alerts_per_day, else higher",
    )
    parser.add_argument(
        "--scenario",
        choices=("outbreaks", "null"),
        default=None,
        help="only the worlds of this scenario",
    )
    args = parser.parse_args(argv)
    try:
        a, b = load_run(args.a), load_run(args.b)
    except (OSError, ValueError) as exc:
        print(f"compare_worlds: {exc}", file=sys.stderr)
        return 2
    if args.scenario is not None:
        a = {k: v for k, v in a.items() if k[0] == args.scenario}
        b = {k: v for k, v in b.items() if k[0] == args.scenario}
    moved = drawn_differently(a, b)
    for key in moved:
        a.pop(key)
    figures = (
        DEFAULT_FIGURES
        if not args.metric
        else tuple(Figure(m, -1 if m in LOWER_IS_BETTER else +1) for m in args.metric)
    )
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    out.write(
        f"{len(a.keys() & b.keys())} worlds in both runs; {len(only_a)} only in {args.a}, "
        f"{len(only_b)} only in {args.b}\n"
    )
    if moved:
        listed = ", ".join(f"{s} {n}" for s, n in moved)
        out.write(f"left out, drawn differently in the two runs (simulator changed): {listed}\n")
    if not a.keys() & b.keys():
        print("compare_worlds: no world in both runs", file=sys.stderr)
        return 1
    print_comparisons(compare(a, b, figures), out, ("A", "B"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
