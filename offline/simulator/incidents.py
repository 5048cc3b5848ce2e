"""Ground-truth incidents: background Poisson process, chronic spots, outbreaks, twins.

Rates are per UTC hour slot, shaped by the category's local hour-of-day and day-of-week
profiles (Europe/Paris, DST-correct: a slot's local hour comes from zoneinfo, so the
spring-forward day has 23 slots and the fall-back day 25).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from offline.simulator.area import M_PER_DEG_LAT, SimArea
from offline.simulator.config import (
    MOBILE,
    OUTBREAK_CATEGORIES,
    PARIS,
    PERSISTENT,
    POINT,
    CategoryProfile,
    SimulationConfig,
)
from offline.simulator.sources import RULES, STATION_RULE


@dataclass(slots=True)
class Incident:
    incident_id: str
    category: str
    kind: str
    start: float
    end: float
    lat: float
    lon: float
    budget_m: float  # how far a report's position may stray and stay inside the area
    commune: int  # index in area.communes
    lat2: float  # end of a mobile incident's path (= lat, lon otherwise)
    lon2: float
    outbreak_id: str | None = None
    spot_id: str | None = None
    spot_kind: str | None = None
    twin_of: str | None = None
    twinned: bool = False  # has a near-coincident twin (same partner reports both)

    def truth(self, insee: str, path: Sequence[str] = ()) -> dict[str, object]:
        """Ground-truth record; `insee`: the commune where it began (its point's);
        `path`: the communes a mobile incident's path crosses (default: `insee` only)."""
        return {
            "type": "incident",
            "incident_id": self.incident_id,
            "category": self.category,
            "kind": self.kind,
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "lat_end": round(self.lat2, 6),
            "lon_end": round(self.lon2, 6),
            "insee": insee,
            "insee_path": list(path) or [insee],
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "outbreak_id": self.outbreak_id,
            "chronic_spot_id": self.spot_id,
            "twin_of": self.twin_of,
        }


@dataclass(frozen=True, slots=True)
class Spot:
    spot_id: str
    spot_kind: str  # point_de_deal | hall | gare
    categories: tuple[tuple[str, float], ...]
    duration_h: tuple[float, float] | None  # overrides the category's (persistent kinds)
    commune: int
    lat: float
    lon: float
    budget_m: float


@dataclass(frozen=True, slots=True)
class Outbreak:
    outbreak_id: str
    category: str
    lat: float
    lon: float
    radius_m: float
    start: float
    end: float
    intensity: float
    commune: int
    budget_m: float
    baseline_per_day: float
    extra_per_day: float

    def truth(self, insee: str) -> dict[str, object]:
        return {
            "type": "outbreak",
            "outbreak_id": self.outbreak_id,
            "category": self.category,
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "radius_m": self.radius_m,
            "start": self.start,
            "end": self.end,
            "intensity": round(self.intensity, 3),
            "insee": insee,
            "baseline_per_day": round(self.baseline_per_day, 4),
            "extra_per_day": round(self.extra_per_day, 4),
        }


SPOT_KINDS = {
    "point_de_deal": ((("trafic_stupefiants", 1.0),), (4.0, 12.0)),
    "hall": ((("occupation_hall", 1.0),), (2.0, 6.0)),
    "gare": ((("vol", 0.5), ("violence", 0.25), ("degradation", 0.25)), None),
}


def _norm(values: tuple[float, ...]) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    out: np.ndarray = a / a.mean()
    return out


def loguniform(rnd: random.Random, lo: float, hi: float) -> float:
    return lo if hi <= lo else math.exp(rnd.uniform(math.log(lo), math.log(hi)))


def offset(lat: float, lon: float, dist_m: float, angle: float) -> tuple[float, float]:
    dlat = dist_m * math.cos(angle) / M_PER_DEG_LAT
    dlon = dist_m * math.sin(angle) / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def expected_reports(
    category: str, prof: CategoryProfile, duration_h: tuple[float, float]
) -> float:
    """Expected valid original reports of one incident (the calibration of volumes)."""
    rules = RULES[category]
    fired = sum(r.p * (1.0 + r.extra) for r in rules)
    none = math.prod(1.0 - r.p for r in rules)
    total = fired + none * (1.0 + rules[0].extra)
    if prof.kind == PERSISTENT:
        lo, hi = duration_h
        mean_h = lo if hi <= lo else (hi - lo) / math.log(hi / lo)
        total += prof.repeat_per_day * mean_h / 24.0
    return total


class IncidentModel:
    """Draws incidents chunk by chunk; all state (spots, outbreaks, rates) fixed up front."""

    def __init__(self, cfg: SimulationConfig, area: SimArea, t0: float, t1: float) -> None:
        self.cfg, self.area, self.t0, self.t1 = cfg, area, t0, t1
        self.rng = np.random.default_rng([cfg.seed, 1])
        self.rnd = random.Random(cfg.seed * 1_000_003 + 7)
        self.cats = list(cfg.categories)
        self.hours = {c: _norm(p.hours) for c, p in cfg.categories.items()}
        self.weekdays = {c: _norm(p.weekdays) for c, p in cfg.categories.items()}
        pop = np.array([max(c.population, 1) for c in area.communes], dtype=float)
        self.weights = {}
        for c, p in cfg.categories.items():
            w = pop**p.pop_exponent
            self.weights[c] = w / w.sum()
        self.spots = self._place_spots(pop)
        self.daily = self._calibrate()  # background incidents/day per category
        self.outbreaks = self._place_outbreaks(pop)
        self._seq = 0

    # --- setup ---
    def _point_with_budget(self, commune: int, min_budget: float) -> tuple[float, float, float]:
        d = self.area.pool_dist_m[commune]
        ok = np.flatnonzero(d >= min_budget)
        j = int(ok[self.rng.integers(len(ok))]) if len(ok) else int(np.argmax(d))
        return (
            float(self.area.pool_lat[commune, j]),
            float(self.area.pool_lon[commune, j]),
            float(d[j]),
        )

    def _place_spots(self, pop: np.ndarray) -> list[Spot]:
        cfg = self.cfg
        w = pop**1.6
        w /= w.sum()
        spots: list[Spot] = []
        plan = [
            ("point_de_deal", cfg.dealing_points),
            ("hall", cfg.occupied_halls),
            ("gare", cfg.stations),
        ]
        for kind, n in plan:
            cats, dur = SPOT_KINDS[kind]
            for _ in range(n):
                ci = int(self.rng.choice(len(pop), p=w))
                lat, lon, budget = self._point_with_budget(ci, 80.0)
                spots.append(Spot(f"spot-{len(spots):02d}", kind, cats, dur, ci, lat, lon, budget))
        return spots

    def _calibrate(self) -> dict[str, float]:
        cfg = self.cfg
        per_cat = {c: expected_reports(c, p, p.duration_h) for c, p in cfg.categories.items()}
        spot_reports = 0.0
        for s in self.spots:
            for cat, share in s.categories:
                prof = cfg.categories[cat]
                e = expected_reports(cat, prof, s.duration_h or prof.duration_h)
                if s.spot_kind == "gare":
                    e += STATION_RULE.p
                spot_reports += cfg.spot_incidents_per_day * share * e
        total_share = sum(p.share for p in cfg.categories.values())
        mix = sum(p.share / total_share * per_cat[c] for c, p in cfg.categories.items())
        incidents = max(cfg.reports_per_day - spot_reports, 0.0) / mix * cfg.scale
        return {c: incidents * p.share / total_share for c, p in cfg.categories.items()}

    def _place_outbreaks(self, pop: np.ndarray) -> list[Outbreak]:
        cfg = self.cfg
        out: list[Outbreak] = []
        horizon = self.t1 - self.t0
        w = pop / pop.sum()
        cats = [c for c in OUTBREAK_CATEGORIES if c in cfg.categories] or self.cats
        for k in range(cfg.outbreaks):
            cat = cats[int(self.rng.integers(len(cats)))]
            radius = float(round(self.rng.uniform(*cfg.outbreak_radius_m), 0))
            ci = int(self.rng.choice(len(pop), p=w))
            lat, lon, budget = self._point_with_budget(ci, radius + 100.0)
            if budget < radius + 50.0:  # the commune is too thin: shrink the zone
                radius = max(budget - 50.0, 50.0)
            dur = min(self.rng.uniform(*cfg.outbreak_duration_h) * 3600.0, horizon)
            lo = self.t0 + min(0.3 * horizon, max(horizon - dur, 0.0))
            start = float(round(self.rng.uniform(lo, max(self.t1 - dur, lo)), 0))
            intensity = float(self.rng.uniform(*cfg.outbreak_intensity))
            commune = self.area.communes[ci]
            frac = min(1.0, math.pi * radius**2 / max(commune.area_km2 * 1e6, 1.0))
            base = self.daily[cat] * float(self.weights[cat][ci]) * frac
            extra = max((intensity - 1.0) * base, cfg.outbreak_min_extra_per_day * cfg.scale)
            out.append(
                Outbreak(
                    f"ob-{k:02d}",
                    cat,
                    lat,
                    lon,
                    radius,
                    start,
                    start + dur,
                    intensity,
                    ci,
                    budget,
                    base,
                    extra,
                )
            )
        return out

    # --- generation ---
    def _slots(self, a: float, b: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        starts = np.arange(a, b, 3600.0)
        lh = np.empty(len(starts), dtype=int)
        wd = np.empty(len(starts), dtype=int)
        for i, s in enumerate(starts):
            local = datetime.fromtimestamp(float(s), PARIS)
            lh[i], wd[i] = local.hour, local.weekday()
        return starts, lh, wd

    def _new(
        self,
        cat: str,
        t: float,
        ci: int,
        lat: float,
        lon: float,
        budget: float,
        dur_h: tuple[float, float] | None = None,
    ) -> Incident:
        prof = self.cfg.categories[cat]
        rnd = self.rnd
        lo, hi = dur_h or prof.duration_h
        end = t + loguniform(rnd, lo, hi) * 3600.0
        lat2, lon2 = lat, lon
        if prof.kind == MOBILE:
            length = min(rnd.uniform(300.0, 1500.0), budget - 40.0)
            if length > 50.0:
                lat2, lon2 = offset(lat, lon, length, rnd.uniform(0, 2 * math.pi))
                budget -= length
        self._seq += 1
        return Incident(
            f"inc-{self._seq:07d}", cat, prof.kind, t, end, lat, lon, budget, ci, lat2, lon2
        )

    def chunk(self, a: float, b: float) -> list[Incident]:
        """All incidents starting in [a, b) (b - a is a whole number of hours)."""
        starts, lh, wd = self._slots(a, b)
        rng, area = self.rng, self.area
        out: list[Incident] = []
        n_pool = area.pool_lat.shape[1]
        for cat in self.cats:
            lam = self.daily[cat] / 24.0 * self.hours[cat][lh] * self.weekdays[cat][wd]
            idx = np.repeat(np.arange(len(starts)), rng.poisson(lam))
            if not len(idx):
                continue
            times = starts[idx] + rng.random(len(idx)) * 3600.0
            communes = rng.choice(len(area.communes), size=len(idx), p=self.weights[cat])
            picks = rng.integers(n_pool, size=len(idx))
            for t, ci, j in zip(times.tolist(), communes.tolist(), picks.tolist(), strict=True):
                out.append(
                    self._new(
                        cat,
                        t,
                        ci,
                        float(area.pool_lat[ci, j]),
                        float(area.pool_lon[ci, j]),
                        float(area.pool_dist_m[ci, j]),
                    )
                )
        out.extend(self._spot_incidents(starts, lh, wd))
        out.extend(self._outbreak_incidents(starts, lh, a, b))
        out.extend(self._twins(out, a, b))
        return out

    def _spot_incidents(self, starts: np.ndarray, lh: np.ndarray, wd: np.ndarray) -> list[Incident]:
        out = []
        rate = self.cfg.spot_incidents_per_day * self.cfg.scale / 24.0
        for s in self.spots:
            for cat, share in s.categories:
                lam = rate * share * self.hours[cat][lh] * self.weekdays[cat][wd]
                for i in np.repeat(np.arange(len(starts)), self.rng.poisson(lam)).tolist():
                    t = float(starts[i]) + self.rnd.random() * 3600.0
                    lat, lon = offset(
                        s.lat,
                        s.lon,
                        self.rnd.uniform(0, min(25.0, s.budget_m / 2)),
                        self.rnd.uniform(0, 2 * math.pi),
                    )
                    ci = self.area.commune_at(lat, lon, s.commune)
                    inc = self._new(cat, t, ci, lat, lon, s.budget_m - 25.0, s.duration_h)
                    inc.spot_id, inc.spot_kind = s.spot_id, s.spot_kind
                    out.append(inc)
        return out

    def _outbreak_incidents(
        self, starts: np.ndarray, lh: np.ndarray, a: float, b: float
    ) -> list[Incident]:
        out = []
        for ob in self.outbreaks:
            if ob.end <= a or ob.start >= b:
                continue
            lo = np.maximum(starts, ob.start)
            hi = np.minimum(starts + 3600.0, ob.end)
            cover = np.clip(hi - lo, 0.0, None) / 3600.0
            lam = ob.extra_per_day / 24.0 * self.hours[ob.category][lh] * cover
            for i in np.repeat(np.arange(len(starts)), self.rng.poisson(lam)).tolist():
                t = float(lo[i] + self.rnd.random() * (hi[i] - lo[i]))
                r = ob.radius_m * math.sqrt(self.rnd.random())
                lat, lon = offset(ob.lat, ob.lon, r, self.rnd.uniform(0, 2 * math.pi))
                ci = self.area.commune_at(lat, lon, ob.commune)
                inc = self._new(ob.category, t, ci, lat, lon, ob.budget_m - r)
                if inc.kind == MOBILE:  # keep the whole path inside the zone
                    inc.lat2, inc.lon2 = lat, lon
                inc.outbreak_id = ob.outbreak_id
                out.append(inc)
        return out

    def _twins(self, incidents: list[Incident], a: float, b: float) -> list[Incident]:
        """Near-coincident distinct incidents (same category, 30-150 m, within 2 h)."""
        out = []
        rnd = self.rnd
        for inc in incidents:
            p = self.cfg.categories[inc.category].twin_rate
            if p <= 0 or inc.outbreak_id or inc.kind != POINT or rnd.random() >= p:
                continue
            d = rnd.uniform(30.0, 150.0)
            if inc.budget_m - d < 20.0:
                continue
            lat, lon = offset(inc.lat, inc.lon, d, rnd.uniform(0, 2 * math.pi))
            t = min(max(inc.start + rnd.uniform(-7200.0, 7200.0), a), b - 1.0)
            ci = self.area.commune_at(lat, lon, inc.commune)
            twin = self._new(inc.category, t, ci, lat, lon, inc.budget_m - d)
            twin.twin_of = inc.incident_id
            inc.twinned = True
            out.append(twin)
        return out
