"""`vigie backtest`: replay a JSONL file of reports through the live core, event time only.

Pipeline (the same code as live): `validate_report` (message_timestamp=-1: a missing
`reported_at` counts as `occurred_at`) -> exact re-delivery drop (same report_id) ->
enrichment (`agents.core.geo`) -> correlation (`agents.core.correlation`) -> incident
counts (each incident once, in the hour it was first seen: its version 1's `updated_at`, as
live, see `agents.core.detection.counts`) -> `PoissonScanDetector.run(clock)` every
`--detect-every` seconds of *stream clock* (the greatest `reported_at` read so far; never the
wall clock, never an earlier occurred_at).

History for baselines: the counts of the input itself. Detection starts once the stream
clock is `--warmup-days` past the first report; the optional `--history` file (same format) is
replayed first through the same pipeline, its incidents only feed the counts (its lines are
not written out), and then the default warm-up is 0. Baselines are refitted daily and the
threshold recalibrated weekly, from the counts before the current time only.

This module also holds the quality harness (`run_quality`) used by tests and `make bench`.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from agents.core.correlation import incident_json
from agents.core.detection import (
    DetectionConfig,
    IncidentCounter,
    InMemoryCountStore,
    PoissonScanDetector,
)
from agents.core.detection.cells import CellIndex, cell_index_from_refdata
from agents.core.detection.output import alert_json
from agents.core.detection.quality import OutbreakTruth, QualityReport, evaluate

if TYPE_CHECKING:
    from streams.simulator.engine import Simulation

Message = dict[str, object]


@dataclass(frozen=True, slots=True)
class BacktestOptions:
    detect_every_s: float = 300.0
    warmup_days: float | None = None  # None: 14 days, or 0 with a history file
    detection: DetectionConfig = field(default_factory=DetectionConfig)


@dataclass(slots=True)
class BacktestResult:
    incidents: list[Message] = field(default_factory=list)
    alerts: list[Message] = field(default_factory=list)
    rejected: list[Message] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


class DetectionLoop:
    """Counts incidents and runs the detector on the stream clock after the warm-up."""

    def __init__(self, index: CellIndex, options: BacktestOptions) -> None:
        self.store = InMemoryCountStore()
        self.detector = PoissonScanDetector(self.store, index, options.detection)
        self.counter = IncidentCounter(self.store, self.detector.observe_cell)
        self.every = options.detect_every_s
        self.warmup_s = 86400.0 * (14.0 if options.warmup_days is None else options.warmup_days)
        self.detect_from: float | None = None
        self.clock = float("-inf")
        self.next_run = float("-inf")
        self.runs = 0
        self.alerts: list[Message] = []

    def start_detection_at(self, t: float) -> None:
        self.detect_from = t

    def tick(self, clock: float) -> None:
        """Advance the stream clock; run detection when a period has passed."""
        if clock <= self.clock:
            return
        self.clock = clock
        if self.detect_from is None:
            self.detect_from = clock + self.warmup_s
        if clock < self.detect_from or clock < self.next_run:
            return
        self.alerts.extend(self.detector.run(clock))
        self.runs += 1
        self.next_run = (clock // self.every + 1) * self.every


# ---------------------------------------------------------------------------------------
# Full pipeline (validation, enrichment, correlation): the live core.


class _Pipeline:
    def __init__(self, loop: DetectionLoop) -> None:
        from agents.core.correlation import Correlator
        from agents.core.geo import Geocoder
        from agents.core.jurisdictions import load_jurisdictions
        from agents.core.pseudonym import Pseudonymiser
        from agents.core.refdata import load_refdata
        from streams.settings import correlation_config, get_settings

        settings = get_settings()
        self.refdata = load_refdata(settings.refdata or None)
        jurisdictions = load_jurisdictions(settings.jurisdictions or None, self.refdata)
        self.geocoder = Geocoder(self.refdata, jurisdictions)
        self.correlator = Correlator(correlation_config(settings))  # as the live worker
        self.pseudonymiser = Pseudonymiser(settings.pseudonym_secret.get_secret_value().encode())
        self.loop = loop
        self.seen: set[str] = set()
        self.counts = {"lines": 0, "accepted": 0, "rejected": 0, "duplicates": 0, "blank": 0}

    def feed(
        self,
        lines: Iterable[bytes],
        incidents_out: list[Message] | None,
        rejected_out: list[Message] | None,
        batch: int = 2000,
    ) -> None:
        from agents.core.validation import Rejection, validate_report

        pending: list[tuple[int, Any]] = []
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                self.counts["blank"] += 1
                continue
            self.counts["lines"] += 1
            rec = validate_report(line, message_timestamp=-1, pseudonymiser=self.pseudonymiser)
            if isinstance(rec, Rejection):
                self._reject(number, rec, rejected_out)
                continue
            if rec.report_id in self.seen:
                self.counts["duplicates"] += 1
                continue
            self.seen.add(rec.report_id)
            pending.append((number, rec))
            if len(pending) >= batch:
                self._flush(pending, incidents_out, rejected_out)
                pending = []
        self._flush(pending, incidents_out, rejected_out)

    def _reject(self, number: int, rej: Any, out: list[Message] | None) -> None:
        self.counts["rejected"] += 1
        if out is not None:
            out.append({"line": number, "reason": str(rej.reason), "detail": rej.detail})

    def _flush(
        self,
        pending: list[tuple[int, Any]],
        incidents_out: list[Message] | None,
        rejected_out: list[Message] | None,
    ) -> None:
        from agents.core.validation import Rejection

        if not pending:
            return
        enriched = self.geocoder.enrich_batch([rec for _, rec in pending])
        for (number, _), rec in zip(pending, enriched, strict=True):
            if isinstance(rec, Rejection):
                self._reject(number, rec, rejected_out)
                continue
            self.counts["accepted"] += 1
            for version in self.correlator.process(rec):
                self.loop.counter.observe(version, max(self.loop.clock, rec.reported_at))
                if incidents_out is not None:
                    incidents_out.append(version)
            self.loop.tick(rec.reported_at)


@contextmanager
def _few_gc_collections() -> Iterator[None]:
    """Fewer garbage collections while a replay runs: the reference data and the growing
    correlation state are long-lived, yet every full collection walks them (8 full
    collections cost ~0.9 s of a 4-week backtest). Objects that exist at entry are frozen
    out of collection, and the generation thresholds are raised; both are restored at exit."""
    saved = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


def run_backtest(
    lines: Iterable[bytes],
    *,
    history: Iterable[bytes] | None = None,
    options: BacktestOptions | None = None,
) -> BacktestResult:
    with _few_gc_collections():
        return _run_backtest(lines, history, options or BacktestOptions())


def _run_backtest(
    lines: Iterable[bytes], history: Iterable[bytes] | None, opts: BacktestOptions
) -> BacktestResult:
    if history is not None and opts.warmup_days is None:
        opts = replace(opts, warmup_days=0.0)
    from agents.core.refdata import load_refdata

    loop = DetectionLoop(cell_index_from_refdata(load_refdata()), opts)
    pipe = _Pipeline(loop)
    result = BacktestResult()
    started = time.perf_counter()
    if history is not None:
        saved = loop.warmup_s
        loop.warmup_s = float("inf")  # no detection while replaying history
        pipe.feed(history, None, None)
        loop.warmup_s = saved
        loop.detect_from = None
    pipe.feed(lines, result.incidents, result.rejected)
    elapsed = time.perf_counter() - started
    result.alerts = loop.alerts
    read = pipe.counts["lines"]
    result.summary = {
        **pipe.counts,
        "incidents": len({i["incident_id"] for i in result.incidents}),
        "incident_versions": len(result.incidents),
        "alert_messages": len(result.alerts),
        "alerts_opened": sum(1 for a in result.alerts if a["status"] == "open"),
        "detection_runs": loop.runs,
        "detection_from": loop.detect_from,
        "threshold": loop.detector.threshold,
        "stream_clock_end": loop.clock,
        "elapsed_s": round(elapsed, 3),
        "reports_per_second": round(read / elapsed, 1) if elapsed > 0 else None,
    }
    return result


# ---------------------------------------------------------------------------------------
# Quality harness.


@dataclass(frozen=True, slots=True)
class OutbreakModel:
    """Outbreaks injected by the simulator (passed as `SimulationConfig` fields).

    `BURST` is the kind the detection targets are about, "something unusual building up
    within the hour" (a burglary spree, a night of car fires, rodeos): episodes of 3 to 24
    hours adding on average 3 incidents an hour (72 a day, shaped by the category's hour
    profile, so fewer at its quiet hours) within 150-400 m. `intensity` (1, 1) makes the
    excess exactly that floor whatever the local baseline. `DEFAULT` is the simulator's own
    model (12-72 h, 300-900 m, 6-15x the local rate but at least 4 extra incidents a day):
    mostly too weak to stand out within hours; reported as a second line.
    """

    outbreaks: int
    radius_m: tuple[float, float]
    duration_h: tuple[float, float]
    intensity: tuple[float, float]
    min_extra_per_day: float

    def sim_fields(self) -> dict[str, Any]:
        return {
            "outbreaks": self.outbreaks,
            "outbreak_radius_m": self.radius_m,
            "outbreak_duration_h": self.duration_h,
            "outbreak_intensity": self.intensity,
            "outbreak_min_extra_per_day": self.min_extra_per_day,
        }


BURST = OutbreakModel(40, (150.0, 400.0), (3.0, 24.0), (1.0, 1.0), 72.0)
DEFAULT_OUTBREAKS = OutbreakModel(24, (300.0, 900.0), (12.0, 72.0), (6.0, 15.0), 4.0)


@dataclass(frozen=True, slots=True)
class QualitySetup:
    """28 simulated days: 21 of history (baselines, calibration; outbreaks in it are part of
    the history, as in real life) and 7 evaluated days. The simulator starts outbreaks
    after 30 % of the period, so about a third of them start in the evaluated week."""

    seed: int = 1
    days: float = 28.0
    warmup_days: float = 21.0
    outbreaks: OutbreakModel = BURST
    start: str = "2024-03-04"
    mode: str = "truth"  # "truth": true incidents counted; "pipeline": the full backtest
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    detect_every_s: float = 300.0

    def simulation(self) -> Simulation:
        """The simulated stream of this setup."""
        from streams.simulator.config import SimulationConfig
        from streams.simulator.engine import simulate

        return simulate(
            SimulationConfig(
                start=self.start,
                days=self.days,
                seed=self.seed,
                **self.outbreaks.sim_fields(),
            )
        )


def _truth_incidents(sim: Iterable[Any]) -> Iterator[tuple[float, Message | None]]:
    """(send time, incident as the correlation would emit it once) per simulator message."""
    for m in sim:
        clock = m.timestamp_ms / 1000.0
        t = m.incident_truth
        if t is None:
            yield clock, None
            continue
        yield (
            clock,
            {
                "incident_id": t["incident_id"],
                "version": 1,
                "category": t["category"],
                "first_occurred_at": t["start"],
                "lat": t["lat"],
                "lon": t["lon"],
                "insee": t["insee"],
            },
        )


def run_quality(setup: QualitySetup | None = None) -> tuple[QualityReport, dict[str, Any]]:
    """Simulate `days` of Essonne reports with outbreaks, detect after the warm-up, score."""
    from agents.core.refdata import load_refdata

    s = setup or QualitySetup()
    sim = s.simulation()
    opts = BacktestOptions(s.detect_every_s, s.warmup_days, s.detection)
    started = time.perf_counter()
    if s.mode == "pipeline":
        lines = (m.value for m in sim)
        alerts = run_backtest(lines, options=opts).alerts
    else:
        loop = DetectionLoop(cell_index_from_refdata(load_refdata()), opts)
        loop.start_detection_at(sim.t0 + 86400.0 * s.warmup_days)
        for clock, incident in _truth_incidents(sim):
            if incident is not None:
                loop.counter.observe(incident, clock)
            loop.tick(clock)
        alerts = loop.alerts
    elapsed = time.perf_counter() - started
    outbreaks = [OutbreakTruth.from_truth(o) for o in sim.outbreaks]
    report = evaluate(
        alerts, outbreaks, eval_start=sim.t0 + 86400.0 * s.warmup_days, eval_end=sim.t1
    )
    return report, {"elapsed_s": round(elapsed, 2), "alerts": alerts, "setup": s}


# ---------------------------------------------------------------------------------------
# CLI.


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
