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
from offline.simulator.world import apply_world, burst_fields, draw_world


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
    p.add_argument("--outbreaks", type=int, default=None, help=f"outbreaks ({d.outbreaks})")
    p.add_argument(
        "--no-outbreaks",
        action="store_true",
        help="no outbreak at all (a null world: every alert on it is false)",
    )
    p.add_argument(
        "--outbreak-model",
        choices=OUTBREAK_MODELS,
        default="default",
        help="default: the simulator's (12-72 h, 6-15x the local rate); burst: the detection "
        "targets' kind (3-24 h, ~3 extra incidents an hour, 150-400 m; 40 per 28 days)",
    )
    p.add_argument(
        "--world",
        choices=("default", "random"),
        default="default",
        help="reporting model: the default one, or one drawn from wide ranges by --seed "
        "(recorded as the `world` line of the ground truth; see offline.simulator.world)",
    )
    p.add_argument("--malformed-rate", type=float, default=d.malformed_rate)
    p.add_argument(
        "--redelivery-rate",
        type=float,
        default=None,
        help=f"share of re-delivered messages ({d.redelivery_rate:g}; a random world draws it)",
    )
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


OUTBREAK_MODELS = ("default", "burst")


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    cfg = SimulationConfig(
        seed=args.seed,
        scale=args.scale,
        malformed_rate=args.malformed_rate,
    )
    if args.world == "random":
        cfg = apply_world(cfg, draw_world(args.seed))
    if args.redelivery_rate is not None:  # given: it wins over the world's
        cfg.redelivery_rate = args.redelivery_rate
    if args.rate_per_day is not None:
        cfg.reports_per_day = args.rate_per_day
    if args.realtime and args.start is None:
        cfg.start = datetime.now(PARIS).replace(second=0, microsecond=0, tzinfo=None)
        cfg.days = 7.0
    elif args.start is not None:
        cfg.start = args.start
    if args.days is not None:
        cfg.days = args.days
    if args.outbreak_model == "burst":
        # imported here: `vigie --help` need not load the detection package
        from offline.detection_quality import BURST

        for name, value in burst_fields(BURST.sim_fields(), cfg.days).items():
            setattr(cfg, name, value)
    if args.outbreaks is not None:
        cfg.outbreaks = args.outbreaks
    if args.no_outbreaks:
        cfg.outbreaks = 0
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
