"""`vigie backtest`: the command line of the replay engine (`offline.replay`).

Reads a JSONL file of reports (and optionally an earlier one for baselines), replays it
through the live core on event time, and writes `incidents.jsonl`, `alerts.jsonl` (the exact
bytes the live topics carry), `rejected.jsonl` (line, reason, detail) and `summary.json`.
The detection quality harness is `offline.detection_quality`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson


def _read_lines(path: str) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        yield from fh


def _write_jsonl(
    path: Path,
    rows: Iterable[Mapping[str, Any]],
    encode: Callable[[Mapping[str, Any]], bytes] = lambda row: orjson.dumps(
        row, option=orjson.OPT_SORT_KEYS
    ),
) -> None:
    """One JSON object a line; incidents and alerts as the exact bytes the live topics carry
    (contract v1, RFC 3339 times), so a subscriber's parser reads both."""
    with open(path, "wb") as fh:
        for row in rows:
            fh.write(encode(row))
            fh.write(b"\n")


def handle(args: argparse.Namespace) -> int:
    # imported here: `vigie --help` need not load the reference data's geometry libraries
    from agents.core.correlation import incident_json
    from agents.core.detection import DetectionConfig
    from agents.core.detection.output import alert_json
    from offline.replay import BacktestOptions, run_backtest

    detection = DetectionConfig(false_alerts_per_day=args.false_alerts_per_day)
    opts = BacktestOptions(args.detect_every, args.warmup_days, detection)
    history = _read_lines(args.history) if args.history else None
    result = run_backtest(_read_lines(args.input), history=history, options=opts)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "incidents.jsonl", result.incidents, incident_json)
    _write_jsonl(out / "alerts.jsonl", result.alerts, alert_json)
    _write_jsonl(out / "rejected.jsonl", result.rejected)
    (out / "summary.json").write_bytes(
        orjson.dumps(result.summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    )
    print(orjson.dumps(result.summary).decode())
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("backtest", help="replay a reports JSONL file through the core")
    p.add_argument("--input", required=True, help="reports, one JSON object a line")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--history", help="optional earlier reports (JSONL) for baselines only")
    p.add_argument(
        "--warmup-days",
        type=float,
        default=None,
        help="detection starts this long after the first report (default 14, 0 with --history)",
    )
    p.add_argument(
        "--detect-every",
        type=float,
        default=300.0,
        help="detection period in seconds of stream clock (default 300)",
    )
    p.add_argument(
        "--false-alerts-per-day",
        type=float,
        default=1.0,
        help="target false-alert rate for the whole area (default 1)",
    )
    p.set_defaults(func=handle)


_: Callable[..., Any] = register
