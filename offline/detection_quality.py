"""The detection quality harness (`run_quality`, used by tests and `make bench`): simulated
Essonne reports with injected outbreaks, detection after a warm-up, alerts scored against the
outbreaks (`agents.core.detection.quality`).

Two modes: `truth` counts the simulator's true incidents (the detector alone), `pipeline`
replays the simulated stream through the whole backtest (`offline.replay`: intake,
correlation, detection).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agents.core.detection import DetectionConfig
from agents.core.detection.cells import cell_index_from_refdata
from agents.core.detection.quality import OutbreakTruth, QualityReport, evaluate
from agents.core.refdata import load_refdata
from offline.replay import BacktestOptions, DetectionLoop, Message, run_backtest

if TYPE_CHECKING:
    from offline.simulator.engine import Simulation


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
    # truth mode: the share of an incident's later reports that found an incident of their
    # own (a correlation that splits one event into several), see `_split_incidents`
    split_share: float = 0.0

    def simulation(self) -> Simulation:
        """The simulated stream of this setup."""
        from offline.simulator.config import SimulationConfig
        from offline.simulator.engine import simulate

        return simulate(
            SimulationConfig(
                start=self.start,
                days=self.days,
                seed=self.seed,
                **self.outbreaks.sim_fields(),
            )
        )


def truth_incidents(
    sim: Iterable[Any], *, as_reported: bool = False
) -> Iterator[tuple[float, Message | None]]:
    """(send time, incident as the correlation would emit it once) per simulator message.

    With `as_reported`, each true incident is counted as its first report tells it (the
    message's own `value`): under the category the report names, at the position it states,
    and known only by its commune (not counted per cell, as the pipeline's commune-only
    incidents) when it states none. Against the true incidents, what the reports' own
    category confusions, position errors and missing positions cost the detection, before
    any correlation; a founding message that does not parse is counted as the truth."""
    for m in sim:
        clock = m.timestamp_ms / 1000.0
        t = m.incident_truth
        if t is None:
            yield clock, None
            continue
        incident: Message = {
            "incident_id": t["incident_id"],
            "version": 1,
            "category": t["category"],
            "first_occurred_at": t["start"],
            "lat": t["lat"],
            "lon": t["lon"],
            "insee": t["insee"],
        }
        if as_reported:
            incident.update(_as_reported(m.value))
        yield clock, incident


def _as_reported(value: bytes) -> Message:
    """The category and place a founding report states (see `truth_incidents`): {} when it
    does not parse as a report."""
    try:
        report = json.loads(value)
        category, location = report["category"], report.get("location") or {}
    except (ValueError, TypeError, KeyError):
        return {}
    if not isinstance(category, str) or not isinstance(location, dict):
        return {}
    lat, lon = location.get("lat"), location.get("lon")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return {"category": category, "lat": float(lat), "lon": float(lon)}
    return {"category": category, "precision": "commune"}


SPLIT_JITTER_M = 150.0  # position error of a split-off incident (per axis, metres)


def _split_incidents(
    sim: Iterable[Any], share: float, seed: int
) -> Iterator[tuple[float, Message | None]]:
    """`truth_incidents`, with each later report of an incident founding an incident of its
    own with probability `share`: same category, first seen when that report is sent, its
    position a Gaussian `SPLIT_JITTER_M` off the incident's (a stream whose correlation
    splits one event into several incidents)."""
    rng = random.Random(seed)
    known: dict[str, dict[str, Any]] = {}
    splits = 0
    for m in sim:
        clock = m.timestamp_ms / 1000.0
        t = m.incident_truth
        if t is not None:
            known[str(t["incident_id"])] = t
        else:
            base = known.get(str(m.truth.get("incident_id")))
            if base is not None and not m.truth.get("is_redelivery") and rng.random() < share:
                splits += 1
                lat = float(base["lat"]) + rng.gauss(0.0, SPLIT_JITTER_M) / 111_320.0
                lon = float(base["lon"]) + rng.gauss(0.0, SPLIT_JITTER_M) / 73_000.0
                t = {
                    **base,
                    "incident_id": f"{base['incident_id']}~{splits}",
                    "lat": lat,
                    "lon": lon,
                    "start": clock,
                }
        yield from truth_incidents([TruthEvent(m.timestamp_ms, t)])


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """What `truth_incidents` reads of a simulator message: its send time, the true
    incident it is the first report of (None: any other message), and its bytes (read with
    `as_reported` only)."""

    timestamp_ms: int
    incident_truth: dict[str, Any] | None
    value: bytes = b""


def detect_on(
    stream: Iterable[tuple[float, Message | None]], detect_from: float, options: BacktestOptions
) -> list[dict[str, Any]]:
    """The alerts of the backtest's detection loop over a stream of (clock, incident version
    or None), detecting from `detect_from` on (the truth mode of `run_quality`)."""
    return detection_loop_on(stream, detect_from, options).alerts


def detection_loop_on(
    stream: Iterable[tuple[float, Message | None]], detect_from: float, options: BacktestOptions
) -> DetectionLoop:
    """`detect_on`'s detection loop once it has read the stream: its alerts, and its
    detector (the threshold it ended on)."""
    loop = DetectionLoop(cell_index_from_refdata(load_refdata()), options)
    loop.start_detection_at(detect_from)
    for clock, incident in stream:
        if incident is not None:
            loop.counter.observe(incident, clock)
        loop.tick(clock)
    return loop


def run_quality(setup: QualitySetup | None = None) -> tuple[QualityReport, dict[str, Any]]:
    """Simulate `days` of Essonne reports with outbreaks, detect after the warm-up, score."""
    s = setup or QualitySetup()
    sim = s.simulation()
    opts = BacktestOptions(s.detect_every_s, s.warmup_days, s.detection)
    started = time.perf_counter()
    if s.mode == "pipeline":
        lines = (m.value for m in sim)
        alerts = run_backtest(lines, options=opts).alerts
    else:
        stream = (
            _split_incidents(sim, s.split_share, s.seed) if s.split_share else truth_incidents(sim)
        )
        alerts = detect_on(stream, sim.t0 + 86400.0 * s.warmup_days, opts)
    elapsed = time.perf_counter() - started
    outbreaks = [OutbreakTruth.from_truth(o) for o in sim.outbreaks]
    report = evaluate(
        alerts, outbreaks, eval_start=sim.t0 + 86400.0 * s.warmup_days, eval_end=sim.t1
    )
    return report, {"elapsed_s": round(elapsed, 2), "alerts": alerts, "setup": s}
