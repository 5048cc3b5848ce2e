"""`vigie params`: what the correlation engine learns from a stream of reports.

Replays a JSONL file of reports through the live intake and correlation (as `vigie backtest`
does, without detection) and prints the parameters the engine estimated from it
(`agents.core.correlation.estimate.StreamEstimates.summary`), as JSON:

- `dispersion`, per source kind and `stated` / `default` accuracy: `scale` (per-axis
  standard deviation per metre of accuracy; 0.41 means accuracy_m is an honest 95 %
  radius, as the contract says; larger: understated), `stated_radius_confidence` (the
  confidence the stated radius really has), `match_share`, `pairs` (discounted count);
- `median_lag_s` per source kind, `mean_spread_s` and `spread_shape` per category class
  and per incident category (the time spread's gamma law: its mean and its shape, 1 for
  the exponential, under 1 for a heavier tail; a category's from its own joins, which the
  engine shrinks towards its class's while they are few), `confusion_rate` per reported
  category.

    vigie params --input reports.jsonl

A running worker exposes the same dispersion estimates as the gauge
`vigie_correlation_dispersion_scale` (pooled over the partitions it holds).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

import orjson


def _read_lines(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        yield from fh


def learn(path: str) -> dict[str, Any]:
    """The engine's estimates after reading every report of `path` (summary form)."""
    # imported here: `vigie --help` need not load the reference data
    from agents.core.detection.cells import cell_index_from_refdata
    from agents.core.refdata import load_refdata
    from offline.replay import BacktestOptions, DetectionLoop, Replay

    loop = DetectionLoop(cell_index_from_refdata(load_refdata()), BacktestOptions())
    loop.warmup_s = float("inf")  # correlation only: never run the detector
    replay = Replay(loop)
    replay.feed(_read_lines(path), None, None)
    return {
        "reports": replay.counts["accepted"],
        "rejected": replay.counts["rejected"],
        **replay.correlator.estimates.summary(),
    }


def handle(args: argparse.Namespace) -> int:
    try:
        result = learn(args.input)
    except OSError as exc:
        print(f"vigie params: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return 1
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "params", help="correlation parameters the engine learns from a report file"
    )
    p.add_argument("--input", required=True, help="reports, one JSON object a line")
    p.set_defaults(func=handle)
