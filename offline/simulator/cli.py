"""`vigie simulate`: write the simulated stream to files or send it to Kafka."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterable
from datetime import datetime

from offline.simulator.config import PARIS, SimulationConfig
from offline.simulator.engine import SimMessage, simulate
from offline.simulator.output import paced, produce_kafka, truth_header, write_jsonl


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "simulate", help="generate a realistic Essonne report stream with ground truth"
    )
    d = SimulationConfig()
    p.add_argument("--days", type=float, default=None, help=f"days simulated ({d.days:g})")
    p.add_argument("--start", default=None, help=f"local start date/time ({d.start})")
    p.add_argument("--seed", type=int, default=d.seed)
    vol = p.add_mutually_exclusive_group()
    vol.add_argument("--scale", type=float, default=d.scale, help="multiplies every rate")
    vol.add_argument(
        "--rate-per-day",
        type=float,
        default=None,
        help=f"valid original reports/day ({d.reports_per_day:g})",
    )
    p.add_argument("--count", type=int, default=None, help="stop after N messages")
    p.add_argument("--outbreaks", type=int, default=d.outbreaks)
    p.add_argument("--malformed-rate", type=float, default=d.malformed_rate)
    p.add_argument("--redelivery-rate", type=float, default=d.redelivery_rate)
    p.add_argument("--to", choices=("file", "kafka"), default="file")
    p.add_argument("--out", default="reports.jsonl", help="reports file (--to file)")
    p.add_argument("--truth", default=None, help="ground-truth file (default: none)")
    p.add_argument("--bootstrap", default=None, help="Kafka bootstrap (VIGIE_KAFKA_BOOTSTRAP)")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace at wall-clock speed, the stream starting now (default 7 days)",
    )
    p.add_argument("--speedup", type=float, default=1.0, help="with --realtime: clock factor")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    cfg = SimulationConfig(
        seed=args.seed,
        scale=args.scale,
        outbreaks=args.outbreaks,
        malformed_rate=args.malformed_rate,
        redelivery_rate=args.redelivery_rate,
    )
    if args.rate_per_day is not None:
        cfg.reports_per_day = args.rate_per_day
    if args.realtime and args.start is None:
        cfg.start = datetime.now(PARIS).replace(second=0, microsecond=0, tzinfo=None)
        cfg.days = 7.0
    elif args.start is not None:
        cfg.start = args.start
    if args.days is not None:
        cfg.days = args.days
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    began = time.perf_counter()
    sim = simulate(cfg)
    setup = time.perf_counter() - began
    stream: Iterable[SimMessage] = sim
    if args.count is not None:
        stream = itertools.islice(stream, args.count)
    if args.to == "kafka":
        from streams.settings import get_settings

        bootstrap = args.bootstrap or get_settings().kafka_bootstrap
        speedup = args.speedup if args.realtime else None
        stats = produce_kafka(
            stream, bootstrap, truth_path=args.truth, header=truth_header(sim), speedup=speedup
        )
        where = f"kafka {bootstrap}"
    else:
        if args.realtime:
            stream = paced(stream, args.speedup)
        stats = write_jsonl(
            stream, args.out, args.truth, header=truth_header(sim), flush_each=args.realtime
        )
        where = args.out
    print(
        f"simulate: {stats.messages} messages ({stats.bytes / 1e6:.1f} MB) to {where} in "
        f"{stats.seconds:.2f} s ({stats.rate:,.0f} msg/s; setup {setup:.2f} s)",
        file=sys.stderr,
    )
    return 0
