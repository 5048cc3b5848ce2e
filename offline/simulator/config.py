"""Parameters of the simulator: one dataclass, every default documented.

Times: `start` is a local date (Europe/Paris midnight) or an ISO datetime; internally
everything is UTC epoch seconds and hour-of-day / day-of-week profiles are applied in
local time (DST-correct through zoneinfo).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from offline.simulator.area import SimArea
    from offline.simulator.world import ReportingWorld

PARIS = ZoneInfo("Europe/Paris")

POINT, MOBILE, PERSISTENT = "point", "mobile", "persistent"


def _hours(spec: dict[tuple[int, int], float], base: float = 1.0) -> tuple[float, ...]:
    """24 relative weights by local hour: `base` everywhere, `spec[(a, b)]` for a <= h < b."""
    out = [base] * 24
    for (a, b), w in spec.items():
        for h in range(a, b):
            out[h % 24] = w
    return tuple(out)


WEEKDAYS_FLAT = (1.0,) * 7
WEEKDAYS_WORK = (1.15, 1.15, 1.15, 1.15, 1.1, 0.7, 0.6)  # Mon..Sun
WEEKDAYS_WEEKEND = (0.7, 0.7, 0.75, 0.8, 1.1, 1.5, 1.45)


@dataclass(frozen=True)
class CategoryProfile:
    """Generative parameters of one incident category.

    share: share of background incidents (renormalised over categories).
    hours: 24 relative weights by local hour (renormalised to mean 1).
    weekdays: 7 relative weights Monday..Sunday (renormalised to mean 1).
    kind: `point` (one place, short), `mobile` (moves along a short path, e.g. rodeo),
      `persistent` (lasts hours to days, reported repeatedly).
    duration_h: (min, max) duration in hours, drawn log-uniformly.
    repeat_per_day: persistent only: further reports per day while it lasts.
    pop_exponent: commune weight = population ** pop_exponent (urban bias > 1).
    twin_rate: probability that a near-coincident but distinct incident of the same
      category happens 30-150 m away within 2 h (two burglaries in the same street).
    severity: typical severity 1-5 given by partners.
    """

    share: float
    hours: tuple[float, ...]
    weekdays: tuple[float, ...] = WEEKDAYS_FLAT
    kind: str = POINT
    duration_h: tuple[float, float] = (0.05, 0.5)
    repeat_per_day: float = 0.0
    pop_exponent: float = 1.0
    twin_rate: float = 0.0
    severity: int = 2


def default_categories() -> dict[str, CategoryProfile]:
    """Category mix and time profiles (plausible orders of magnitude, not official data)."""
    return {
        "infraction_routiere": CategoryProfile(
            0.19,
            _hours({(0, 6): 0.2, (7, 10): 2.4, (10, 16): 1.0, (16, 20): 2.2}, 0.6),
            WEEKDAYS_WORK,
            pop_exponent=0.9,
            severity=2,
        ),
        "nuisance": CategoryProfile(
            0.15,
            _hours(
                {
                    (0, 3): 2.6,
                    (3, 6): 0.8,
                    (6, 12): 0.25,
                    (12, 19): 0.6,
                    (19, 21): 1.3,
                    (21, 24): 2.6,
                }
            ),
            WEEKDAYS_WEEKEND,
            pop_exponent=1.15,
            severity=1,
        ),
        "degradation": CategoryProfile(
            0.12,
            _hours({(0, 5): 1.6, (5, 9): 0.4, (9, 17): 0.7, (17, 20): 1.1, (20, 24): 1.6}),
            pop_exponent=1.1,
            twin_rate=0.03,
            severity=2,
        ),
        "vol": CategoryProfile(
            0.12,
            _hours({(0, 7): 0.3, (7, 10): 1.3, (10, 16): 1.3, (16, 20): 1.7, (20, 24): 0.8}),
            pop_exponent=1.15,
            twin_rate=0.03,
            severity=2,
        ),
        "cambriolage": CategoryProfile(
            0.07,
            _hours({(0, 6): 0.35, (6, 9): 0.8, (9, 18): 2.0, (18, 21): 1.2}, 0.6),
            WEEKDAYS_WORK,
            duration_h=(0.1, 0.6),
            pop_exponent=0.9,
            twin_rate=0.06,
            severity=3,
        ),
        "violence": CategoryProfile(
            0.08,
            _hours({(0, 4): 1.8, (4, 10): 0.4, (10, 17): 0.9, (17, 24): 1.5}),
            WEEKDAYS_WEEKEND,
            pop_exponent=1.2,
            severity=4,
        ),
        "trafic_stupefiants": CategoryProfile(
            0.04,
            _hours({(0, 3): 1.1, (3, 12): 0.3, (12, 16): 1.0, (16, 23): 2.0, (23, 24): 1.5}),
            kind=PERSISTENT,
            duration_h=(6.0, 96.0),
            repeat_per_day=1.2,
            pop_exponent=1.35,
            severity=3,
        ),
        "rodeo": CategoryProfile(
            0.05,
            _hours(
                {
                    (0, 2): 0.8,
                    (2, 12): 0.1,
                    (12, 16): 0.8,
                    (16, 18): 1.8,
                    (18, 23): 3.0,
                    (23, 24): 1.5,
                }
            ),
            WEEKDAYS_WEEKEND,
            kind=MOBILE,
            duration_h=(0.2, 1.0),
            pop_exponent=1.2,
            severity=3,
        ),
        "incendie": CategoryProfile(
            0.04,
            _hours({(0, 5): 2.2, (5, 10): 0.4, (10, 18): 0.6, (18, 21): 1.2, (21, 24): 2.2}),
            WEEKDAYS_WEEKEND,
            pop_exponent=1.2,
            twin_rate=0.04,
            severity=4,
        ),
        "occupation_hall": CategoryProfile(
            0.04,
            _hours({(0, 2): 2.0, (2, 15): 0.15, (15, 18): 1.0, (18, 24): 3.0}),
            WEEKDAYS_WEEKEND,
            kind=PERSISTENT,
            duration_h=(3.0, 72.0),
            repeat_per_day=1.5,
            pop_exponent=1.4,
            severity=2,
        ),
        "campement_illicite": CategoryProfile(
            0.01,
            _hours({(0, 7): 0.3, (7, 19): 1.6}, 0.6),
            WEEKDAYS_WORK,
            kind=PERSISTENT,
            duration_h=(48.0, 480.0),
            repeat_per_day=0.6,
            pop_exponent=1.0,
            severity=2,
        ),
        "autre": CategoryProfile(
            0.10,
            _hours({(0, 7): 0.3, (7, 20): 1.3}, 0.9),
            pop_exponent=1.0,
            severity=1,
        ),
    }


OUTBREAK_CATEGORIES = ("cambriolage", "rodeo", "degradation", "vol", "incendie", "nuisance")


@dataclass
class SimulationConfig:
    """Everything the simulator needs; deterministic for a given `seed`.

    Volume: `reports_per_day * scale` is the expected number of *valid original* reports
    a day for the whole area from the background and chronic spots (calibrated from the
    source model); outbreaks add on top, re-deliveries and malformed messages too.
    """

    start: str | date | datetime = "2024-03-18"  # spans the 31 March DST switch with 4 weeks
    days: float = 28.0
    seed: int = 1
    reports_per_day: float = 1500.0  # ~1,500 reports/day for 1.3 M inhabitants
    scale: float = 1.0  # multiplies every rate (benchmarks)
    # --- delivery faults (shares of all emitted messages) ---
    redelivery_rate: float = 0.02
    replay_share: float = 0.3  # of re-deliveries: 1-72 h later (replay); others within 30 s
    malformed_rate: float = 0.01
    # --- chronic spots (elevated rates every day at fixed places) ---
    dealing_points: int = 12  # trafic_stupefiants, nightly activity
    occupied_halls: int = 15  # occupation_hall, evenings
    stations: int = 10  # vol / violence / degradation at a station, reported by transport
    spot_incidents_per_day: float = 0.8  # per spot (share of the total volume, not on top)
    # --- outbreaks (hotspots to detect) ---
    outbreaks: int = 4
    outbreak_radius_m: tuple[float, float] = (300.0, 900.0)
    outbreak_duration_h: tuple[float, float] = (12.0, 72.0)
    outbreak_intensity: tuple[float, float] = (6.0, 15.0)  # rate multiplier inside the zone
    outbreak_min_extra_per_day: float = 4.0  # floor on extra incidents/day (tiny baselines)
    # --- report model ---
    citizen_commune_only_rate: float = 0.05
    mislabel_rate: float = 1.0  # multiplies per-category citizen mislabel probabilities
    omit_reported_at_rate: float = 0.02  # valid reports without reported_at (Kafka ts stands)
    contact_rate: float = 0.5  # citizen reports with a (fictional) contact
    # --- engine ---
    pool_size: int = 256  # pre-sampled points per commune
    categories: dict[str, CategoryProfile] = field(default_factory=default_categories)
    area: SimArea | None = None  # None: the real Essonne reference data
    # a drawn reporting model (`offline.simulator.world`); None: the default model above
    world: ReportingWorld | None = None
