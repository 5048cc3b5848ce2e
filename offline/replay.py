"""The replay engine of `vigie backtest`: a JSONL file of reports through the live core, on
event time only.

Pipeline (the same code as live): the intake (`agents.core.intake`: `validate_report` with
message_timestamp=-1, so a missing `reported_at` counts as `occurred_at` -> exact
re-delivery drop (same report_id anywhere earlier in the replay) -> enrichment) ->
correlation (`agents.core.correlation`) -> incident counts (each incident once, in the hour it
was first seen: its version 1's `updated_at`, as live, see `agents.core.detection.counts`) ->
`PoissonScanDetector.run(clock)` every `detect_every_s` seconds of *stream clock* (the
greatest `reported_at` read so far; never the wall clock, never an earlier occurred_at).

Clocks: a file has no Kafka timestamps, so a line's *message time*, which its times must
agree with (`TimeBounds`: at most 15 min after it, 30 days before it, by default), is the
file's own clock: a `StreamClock` (`agents.core.clock`) over the event times of the lines
(`reported_at`, else `occurred_at`) up to `LOOKAHEAD` lines past the line. It follows a file
in time order, late batches included, exactly; it leaps ahead more than 6 h (a quiet
spell) only when 3 of 50 consecutive lines agree, and starts once 3 lines agree, so a lone
line stamped 2100 (or 1999) is rejected `timestamp_in_future` (`timestamp_too_old`) instead
of dragging the clock. Lines before the clock starts (a file of fewer than 3 readable
lines) are not checked against it. The stream clock of the detection loop, like the
correlation watermark, is a `StreamClock` over the accepted records.

History for baselines: the counts of the input itself. Detection starts once the stream
clock is `warmup_days` past the first report; the optional history (same format) is
replayed first through the same pipeline, its incidents only feed the counts (they are not
part of the result), and then the default warm-up is 0. Baselines are refitted daily and the
threshold recalibrated weekly, from the counts before the current time only.
"""

from __future__ import annotations

import gc
import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from agents.core.clock import DEFAULT_WINDOW, StreamClock
from agents.core.correlation import Correlator
from agents.core.detection import (
    DetectionConfig,
    IncidentCounter,
    InMemoryCountStore,
    PoissonScanDetector,
)
from agents.core.detection.cells import CellIndex, cell_index_from_refdata
from agents.core.geo import Geocoder
from agents.core.intake import Intake
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.refdata import load_refdata
from agents.core.validation import Rejection
from schemas.report import parse_rfc3339
from streams import gc_policy
from streams.settings import correlation_config, get_settings, time_bounds

Message = dict[str, object]

INTAKE_BATCH = 2000  # records enriched per call (the vectorised geocoder's batch)
# Lines read past a line before it is validated: the file clock has then seen every later
# line that could confirm a leap up to that line's time (a leap needs `quorum` of `window`).
LOOKAHEAD = DEFAULT_WINDOW


def event_time(line: bytes) -> float | None:
    """A line's time for the file clock: its `reported_at`, else its `occurred_at` (as the
    backtest reads them); None when neither is readable (validation then rejects it)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    value = obj.get("reported_at")
    if value is None:
        value = obj.get("occurred_at")
    try:
        return parse_rfc3339(value).timestamp()
    except ValueError:
        return None


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
        self.stream = StreamClock()  # robust to lone far-future records (agents.core.clock)
        self.clock = float("-inf")
        self.next_run = float("-inf")
        self.runs = 0
        self.alerts: list[Message] = []

    def start_detection_at(self, t: float) -> None:
        self.detect_from = t

    def tick(self, reported_at: float) -> None:
        """Read one accepted record's time; when the stream clock moved on, run detection
        if a period has passed."""
        clock = self.stream.observe(reported_at)
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


class Replay:
    """Lines of a JSONL file through the intake, the correlation and the detection loop,
    configured from the settings as the live worker is."""

    def __init__(self, loop: DetectionLoop) -> None:
        settings = get_settings()
        self.refdata = load_refdata(settings.refdata or None)
        jurisdictions = load_jurisdictions(settings.jurisdictions or None, self.refdata)
        geocoder = Geocoder(self.refdata, jurisdictions)
        self.intake: Intake[int] = Intake(  # tag: the line number
            # tokens never leave the process (no output carries one): a random key, so
            # no configured key is needed, nor exposed, to replay a file
            pseudonymiser=Pseudonymiser.ephemeral(),
            enricher=geocoder,
            bounds=time_bounds(settings),
        )
        # the file's message time (see the module docstring), across history and input
        self.file_clock = StreamClock(start_quorum=True)
        self.correlator = Correlator(  # as the live worker
            correlation_config(settings), commune_at=geocoder.commune_at
        )
        self.loop = loop
        self.counts = {"lines": 0, "accepted": 0, "rejected": 0, "duplicates": 0, "blank": 0}

    def feed(
        self,
        lines: Iterable[bytes],
        incidents_out: list[Message] | None,
        rejected_out: list[Message] | None,
        batch: int = INTAKE_BATCH,
    ) -> None:
        intake, clock = self.intake, self.file_clock
        ahead: deque[tuple[int, bytes]] = deque()  # lines read, not yet validated

        def add(number: int, line: bytes) -> None:
            now = clock.now
            intake.add(number, line, -1.0, reference_time=now if now > -math.inf else None)
            if intake.pending >= batch:
                self._flush(incidents_out, rejected_out)

        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                self.counts["blank"] += 1
                continue
            self.counts["lines"] += 1
            t = event_time(line)
            if t is not None:
                clock.observe(t)
            ahead.append((number, line))
            if len(ahead) > LOOKAHEAD:
                add(*ahead.popleft())
        while ahead:
            add(*ahead.popleft())
        self._flush(incidents_out, rejected_out)

    def _flush(
        self, incidents_out: list[Message] | None, rejected_out: list[Message] | None
    ) -> None:
        chunk = self.intake.flush()
        self.counts["duplicates"] += chunk.redeliveries
        for number, rejection in chunk.rejected:
            self._reject(number, rejection, rejected_out)
        loop, process = self.loop, self.correlator.process
        for _number, rec in chunk.accepted:
            self.counts["accepted"] += 1
            for version in process(rec):
                loop.counter.observe(version, max(loop.clock, rec.reported_at))
                if incidents_out is not None:
                    incidents_out.append(version)
            loop.tick(rec.reported_at)

    def _reject(self, number: int, rej: Rejection, out: list[Message] | None) -> None:
        self.counts["rejected"] += 1
        if out is not None:
            out.append({"line": number, "reason": str(rej.reason), "detail": rej.detail})


@contextmanager
def _few_gc_collections() -> Iterator[None]:
    """Fewer garbage collections while a replay runs: the reference data and the growing
    correlation state are long-lived, yet every full collection walks them (8 full
    collections cost ~0.9 s of a 4-week backtest). Objects that exist at entry are frozen
    out of collection, and the generation thresholds are raised; both are restored at exit."""
    saved = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*gc_policy.THRESHOLDS)  # the worker's (`streams.gc_policy`)
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
    loop = DetectionLoop(cell_index_from_refdata(load_refdata()), opts)
    replay = Replay(loop)
    result = BacktestResult()
    started = time.perf_counter()
    if history is not None:
        saved = loop.warmup_s
        loop.warmup_s = float("inf")  # no detection while replaying history
        replay.feed(history, None, None)
        loop.warmup_s = saved
        loop.detect_from = None
    replay.feed(lines, result.incidents, result.rejected)
    elapsed = time.perf_counter() - started
    result.alerts = loop.alerts
    read = replay.counts["lines"]
    result.summary = {
        **replay.counts,
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
