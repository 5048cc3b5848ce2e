"""Alert lifecycle: open -> update -> closed, with hysteresis, cooldown and cluster collapse.

Each run receives the candidate zones (best zone per centre cell scoring at least the close
threshold). Per category, candidates are taken by decreasing score; a candidate overlapping the
best zone of an earlier cluster joins it (its cells are merged, its score is not used), so the
overlapping zones of one cluster give one alert carrying the best zone's figures.

* an open alert stays open while some cluster overlapping its cells scores >= close threshold
  (it is then updated when its observed count, cells, window or severity change) and closes
  otherwise (hysteresis: open needs the higher open threshold);
* a cluster overlapping no open alert opens one if it scores >= open threshold, unless an alert
  of the same category overlapping it closed less than `cooldown_s` ago.

The lifecycle's state (open alerts, recent closures) lives in memory; after a restart (or a
change of the worker that runs it) `restore` takes it back from the stored current versions,
so that a hotspot goes on under its alert id and an alert of a zone gone quiet closes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from agents.core.detection.cells import cells_center_radius

Message = dict[str, object]


@dataclass(frozen=True, slots=True)
class Candidate:
    category: str
    center_cell: str
    cells: frozenset[str]
    insee: frozenset[str]
    observed: float
    expected: float
    score: float
    window_start: float
    window_end: float


@dataclass(slots=True)
class _Cluster:
    best: Candidate
    cells: set[str]
    insee: set[str]


@dataclass(slots=True)
class _OpenAlert:
    alert_id: str
    category: str
    version: int
    cells: frozenset[str]
    message: Message
    signature: tuple[object, ...]


STATUSES = ("open", "update", "closed")


@dataclass(frozen=True, slots=True)
class AlertState:
    """The current (highest) version of an alert as stored: the fields of its lifecycle
    message (contract v1) with `center` flattened and times in epoch seconds."""

    alert_id: str
    version: int
    status: str
    kind: str
    category: str
    center_lat: float
    center_lon: float
    radius_m: float
    cells: tuple[str, ...]
    insee: tuple[str, ...]
    window_start: float
    window_end: float
    observed: float
    expected: float
    score: float
    severity: int
    emitted_at: float
    detector: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"alert {self.alert_id}: unknown status {self.status!r}")
        if self.version < 1:
            raise ValueError(f"alert {self.alert_id}: version {self.version} < 1")
        if not self.cells:
            raise ValueError(f"alert {self.alert_id}: no cells")

    def message(self) -> Message:
        """The lifecycle message of this version (the keys, in the order, of a new one)."""
        return {
            "alert_id": self.alert_id,
            "status": self.status,
            "kind": self.kind,
            "category": self.category,
            "center": {"lat": self.center_lat, "lon": self.center_lon},
            "radius_m": self.radius_m,
            "cells": list(self.cells),
            "insee": list(self.insee),
            "window_start": self.window_start,
            "window_end": self.window_end,
            "observed": self.observed,
            "expected": self.expected,
            "score": self.score,
            "severity": self.severity,
            "emitted_at": self.emitted_at,
            "version": self.version,
            "detector": self.detector,
        }


@dataclass(frozen=True, slots=True)
class LifecycleParams:
    open_threshold: float
    close_ratio: float = 0.6
    cooldown_s: float = 6 * 3600.0
    detector: str = "poisson_scan"

    @property
    def close_threshold(self) -> float:
        return self.open_threshold * self.close_ratio


def severity_of(score: float, threshold: float) -> int:
    """1 at the threshold, +1 each time the score doubles, capped at 5."""
    if threshold <= 0 or score <= threshold:
        return 1
    return max(1, min(5, 1 + int(math.log2(score / threshold))))


@lru_cache(maxsize=4096)
def _center_radius(cells: tuple[str, ...]) -> tuple[tuple[float, float], float]:
    """`cells_center_radius` of sorted cells, cached: the clusters of an open alert come
    back run after run."""
    return cells_center_radius(cells)


@dataclass(slots=True)
class AlertManager:
    params: LifecycleParams
    open_alerts: dict[str, _OpenAlert] = field(default_factory=dict)
    _recently_closed: list[tuple[str, frozenset[str], float]] = field(default_factory=list)

    def step(self, now: float, candidates: list[Candidate]) -> list[Message]:
        clusters = self._clusters(candidates)
        self._recently_closed = [
            c for c in self._recently_closed if now - c[2] < self.params.cooldown_s
        ]
        out: list[Message] = []
        used: set[int] = set()
        for alert in sorted(self.open_alerts.values(), key=lambda a: a.alert_id):
            match = None
            for i, cl in enumerate(clusters):
                if i in used or cl.best.category != alert.category:
                    continue
                if not alert.cells.isdisjoint(cl.cells):
                    match = i
                    break  # clusters are sorted by decreasing score
            if match is None or clusters[match].best.score < self.params.close_threshold:
                out.append(self._close(alert, now))
                continue
            used.add(match)
            msg = self._update(alert, clusters[match], now)
            if msg is not None:
                out.append(msg)
        for i, cl in enumerate(clusters):
            if i in used or cl.best.score < self.params.open_threshold:
                continue
            if self._cooling(cl):
                continue
            if any(
                a.category == cl.best.category and not a.cells.isdisjoint(cl.cells)
                for a in self.open_alerts.values()
            ):
                continue  # already covered by an alert that matched a better cluster
            out.append(self._open(cl, now))
        return out

    def restore(self, alerts: Iterable[AlertState], now: float) -> None:
        """Replace the lifecycle's state with the stored one: the alerts not closed are open
        again (same id, version, cells and last message: the next `step` updates or closes
        them as usual), those closed less than `cooldown_s` before `now` hold back their
        zone. Of two states of one id the higher version wins."""
        latest: dict[str, AlertState] = {}
        for alert in alerts:
            known = latest.get(alert.alert_id)
            if known is None or alert.version > known.version:
                latest[alert.alert_id] = alert
        self.open_alerts = {}
        self._recently_closed = []
        for alert_id in sorted(latest):
            alert = latest[alert_id]
            cells = frozenset(alert.cells)
            if alert.status == "closed":
                if now - alert.emitted_at < self.params.cooldown_s:
                    self._recently_closed.append((alert.category, cells, alert.emitted_at))
                continue
            msg = alert.message()
            self.open_alerts[alert_id] = _OpenAlert(
                alert_id, alert.category, alert.version, cells, msg, self._signature(msg)
            )

    def expire_cooldowns(self, now: float) -> bool:
        """Forget cooldowns that ended by `now`; True if there were any."""
        before = len(self._recently_closed)
        self._recently_closed = [
            c for c in self._recently_closed if now - c[2] < self.params.cooldown_s
        ]
        return len(self._recently_closed) < before

    def _clusters(self, candidates: list[Candidate]) -> list[_Cluster]:
        clusters: list[_Cluster] = []
        ordered = sorted(candidates, key=lambda c: (-c.score, c.category, c.center_cell))
        for cand in ordered:
            for cl in clusters:
                if cl.best.category == cand.category and not cl.best.cells.isdisjoint(cand.cells):
                    cl.cells |= cand.cells
                    cl.insee |= cand.insee
                    break
            else:
                clusters.append(_Cluster(cand, set(cand.cells), set(cand.insee)))
        return clusters

    def _cooling(self, cl: _Cluster) -> bool:
        return any(
            cat == cl.best.category and not cells.isdisjoint(cl.cells)
            for cat, cells, _ in self._recently_closed
        )

    def _message(
        self, alert_id: str, status: str, version: int, cl: _Cluster, now: float
    ) -> Message:
        cells = tuple(sorted(cl.cells))
        center, radius = _center_radius(tuple(sorted(cl.best.cells)))
        _, full_radius = _center_radius(cells)
        best = cl.best
        return {
            "alert_id": alert_id,
            "status": status,
            "kind": "hotspot",
            "category": best.category,
            "center": {"lat": round(center[0], 6), "lon": round(center[1], 6)},
            "radius_m": round(max(radius, full_radius), 1),
            "cells": list(cells),
            "insee": sorted(i for i in cl.insee if i),
            "window_start": best.window_start,
            "window_end": best.window_end,
            "observed": best.observed,
            "expected": round(best.expected, 4),
            "score": round(best.score, 3),
            "severity": severity_of(best.score, self.params.open_threshold),
            "emitted_at": now,
            "version": version,
            "detector": self.params.detector,
        }

    @staticmethod
    def _signature(msg: Message) -> tuple[object, ...]:
        cells = msg["cells"]
        if not isinstance(cells, list | tuple):
            raise TypeError("alert cells is not a list")
        return (msg["observed"], tuple(cells), msg["window_start"], msg["severity"])

    def _open(self, cl: _Cluster, now: float) -> Message:
        digest = hashlib.sha1(
            f"{cl.best.category}|{cl.best.center_cell}|{now:.3f}".encode(), usedforsecurity=False
        ).hexdigest()[:16]
        alert_id = f"hs-{digest}"
        msg = self._message(alert_id, "open", 1, cl, now)
        self.open_alerts[alert_id] = _OpenAlert(
            alert_id, cl.best.category, 1, frozenset(cl.cells), msg, self._signature(msg)
        )
        return msg

    def _update(self, alert: _OpenAlert, cl: _Cluster, now: float) -> Message | None:
        msg = self._message(alert.alert_id, "update", alert.version + 1, cl, now)
        sig = self._signature(msg)
        alert.cells = frozenset(cl.cells)
        if sig == alert.signature:
            return None
        alert.version += 1
        alert.message, alert.signature = msg, sig
        return msg

    def _close(self, alert: _OpenAlert, now: float) -> Message:
        del self.open_alerts[alert.alert_id]
        alert.version += 1
        msg = dict(alert.message)
        msg.update(status="closed", version=alert.version, emitted_at=now)
        self._recently_closed.append((alert.category, alert.cells, now))
        return msg
