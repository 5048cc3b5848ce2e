"""Detection quality against ground-truth outbreaks: detected share, delay, false alerts/day.

An alert is *true* when it matches an outbreak: compatible category (same, or a pair that
reporters confuse, `agents.core.confusions`), zones that meet (distance between centres <= alert
radius + outbreak radius) and times that meet (the alert's [window_start, last emission]
meets [outbreak start, outbreak end + `grace_s`]). An outbreak is detected when a true alert
matches it; its delay is the first emission of such an alert minus the outbreak start (0 if
an alert already covered it). Only alerts opened and outbreaks starting in the evaluation
period count.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import SupportsFloat

from agents.core.confusions import confused
from agents.core.detection.cells import haversine_m


def compatible(alert_category: str, outbreak_category: str) -> bool:
    """An alert of `alert_category` may be about an outbreak of `outbreak_category`: the
    same category, or one that reporters confuse with it."""
    return confused(alert_category, outbreak_category)


def _number(data: Mapping[str, object], key: str, what: str) -> float:
    """`data[key]` as a float; TypeError naming the field when it is not a number."""
    value = data[key]
    if not isinstance(value, SupportsFloat):
        raise TypeError(f"{what} {key} is not a number")
    return float(value)


@dataclass(frozen=True, slots=True)
class OutbreakTruth:
    outbreak_id: str
    category: str
    lat: float
    lon: float
    radius_m: float
    start: float
    end: float

    @classmethod
    def from_truth(cls, truth: Mapping[str, object]) -> OutbreakTruth:
        """From the simulator's outbreak ground-truth record."""

        return cls(
            str(truth["outbreak_id"]),
            str(truth["category"]),
            _number(truth, "lat", "outbreak"),
            _number(truth, "lon", "outbreak"),
            _number(truth, "radius_m", "outbreak"),
            _number(truth, "start", "outbreak"),
            _number(truth, "end", "outbreak"),
        )


@dataclass(slots=True)
class _AlertSpan:
    alert_id: str
    category: str
    lat: float
    lon: float
    radius_m: float
    window_start: float
    opened_at: float
    last_at: float


@dataclass(slots=True)
class QualityReport:
    outbreaks: int
    detected: int
    delays_s: list[float]
    alerts_opened: int
    false_alerts: int
    days: float
    missed: list[str] = field(default_factory=list)

    @property
    def detected_share(self) -> float:
        return self.detected / self.outbreaks if self.outbreaks else 1.0

    @property
    def median_delay_s(self) -> float | None:
        return statistics.median(self.delays_s) if self.delays_s else None

    @property
    def false_alerts_per_day(self) -> float:
        return self.false_alerts / self.days if self.days > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "outbreaks": self.outbreaks,
            "detected": self.detected,
            "detected_share": round(self.detected_share, 4),
            "median_delay_h": None
            if self.median_delay_s is None
            else round(self.median_delay_s / 3600, 3),
            "alerts_opened": self.alerts_opened,
            "false_alerts": self.false_alerts,
            "false_alerts_per_day": round(self.false_alerts_per_day, 3),
            "days": round(self.days, 3),
            "missed": self.missed,
        }


def _spans(alerts: Iterable[Mapping[str, object]]) -> list[_AlertSpan]:
    spans: dict[str, _AlertSpan] = {}
    for a in alerts:
        aid = str(a["alert_id"])
        center = a["center"]
        assert isinstance(center, Mapping)
        emitted = _number(a, "emitted_at", "alert")
        radius = _number(a, "radius_m", "alert")
        span = spans.get(aid)
        if span is None:
            spans[aid] = _AlertSpan(
                aid,
                str(a["category"]),
                float(center["lat"]),
                float(center["lon"]),
                radius,
                _number(a, "window_start", "alert"),
                emitted,
                emitted,
            )
        else:
            span.last_at = max(span.last_at, emitted)
            span.radius_m = max(span.radius_m, radius)
    return list(spans.values())


def _matches(span: _AlertSpan, ob: OutbreakTruth, grace_s: float) -> bool:
    if not compatible(span.category, ob.category):
        return False
    if span.last_at < ob.start or span.window_start > ob.end + grace_s:
        return False
    return haversine_m((span.lat, span.lon), (ob.lat, ob.lon)) <= span.radius_m + ob.radius_m


def evaluate(
    alerts: Iterable[Mapping[str, object]],
    outbreaks: Iterable[OutbreakTruth],
    *,
    eval_start: float,
    eval_end: float,
    grace_s: float = 24 * 3600.0,
) -> QualityReport:
    spans = [s for s in _spans(alerts) if eval_start <= s.opened_at < eval_end]
    obs = [o for o in outbreaks if eval_start <= o.start < eval_end]
    true_ids: set[str] = set()
    delays: list[float] = []
    missed: list[str] = []
    for ob in obs:
        hits = [s for s in spans if _matches(s, ob, grace_s)]
        true_ids.update(s.alert_id for s in hits)
        if hits:
            delays.append(max(0.0, min(s.opened_at for s in hits) - ob.start))
        else:
            missed.append(ob.outbreak_id)
    # alerts matching an outbreak that started before the evaluation period are not false
    for ob in outbreaks:
        if ob.start < eval_start:
            true_ids.update(s.alert_id for s in spans if _matches(s, ob, grace_s))
    false = sum(1 for s in spans if s.alert_id not in true_ids)
    return QualityReport(
        outbreaks=len(obs),
        detected=len(obs) - len(missed),
        delays_s=delays,
        alerts_opened=len(spans),
        false_alerts=false,
        days=(eval_end - eval_start) / 86400.0,
        missed=missed,
    )
