"""Territorial diagnostic: the figures of one territory (a commune, a group of communes or a
jurisdiction) over a period, compared with the period before, the département and the
communes of the same size band. Pure: the aggregates come in as typed rows (read from
ClickHouse by `agents.ports.sql.diagnostic`), the figures go out as a `Diagnostic`.

- Rates are per 1,000 inhabitants over the period (populations of the reference data).
- The trend test compares the period with the one before with a quasi-Poisson rate ratio:
  log(A / B) has variance phi * (1/A + 1/B), phi the overdispersion of the weekly counts
  around each period's mean (Pearson, floored at 1: never narrower than Poisson). The
  change is called beyond the usual variation when |z| > 1.96 (5 %, two-sided); the
  categories are decided together (Holm), so that the chance of calling any of them
  changed by chance alone stays under 5 %.
- "Présence dynamique" expects, for each place (H3 r8 cell) and time slot of the coming
  week, the counts of the period shrunk toward the place's weekly level times the
  territory's slot profile (the structure of the detector's baseline: rate of a cell x
  time profile), with a gamma-Poisson (negative binomial) 80 % prediction interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from agents.core.distributions import negative_binomial_quantile
from schemas.enums import CATEGORIES

WEEK_S = 7 * 86_400
DEFAULT_WEEKS = 12
MAX_WEEKS = 52
SLOT_HOURS = 4  # time slots of the "présence dynamique": weekday x 4-hour block (Paris)
SLOTS_PER_DAY = 24 // SLOT_HOURS
Z_95 = 1.959964
ALPHA = 0.05  # two-sided level of the trend tests
FORECAST_PRIOR_WEEKS = 4.0  # weight of the place x profile prior, in weeks of data
FORECAST_LEVEL = 0.8

# Population size bands of communes (inhabitants, lower bound inclusive) and their labels.
SIZE_BANDS: tuple[tuple[int, str], ...] = (
    (0, "moins de 2 000 habitants"),
    (2_000, "2 000 à 5 000 habitants"),
    (5_000, "5 000 à 10 000 habitants"),
    (10_000, "10 000 à 20 000 habitants"),
    (20_000, "20 000 à 50 000 habitants"),
    (50_000, "50 000 habitants et plus"),
)


class TerritoryKind(StrEnum):
    COMMUNE = "commune"
    GROUP = "communes"
    JURISDICTION = "jurisdiction"


@dataclass(frozen=True, slots=True)
class Territory:
    """A set of communes (current INSEE codes, sorted) under one label."""

    kind: TerritoryKind
    key: str  # INSEE code, comma-joined codes, or jurisdiction id
    label: str
    communes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.communes:
            raise ValueError("a territory needs at least one commune")


def size_band(population: int) -> int:
    """The index in SIZE_BANDS of a population."""
    band = 0
    for i, (low, _) in enumerate(SIZE_BANDS):
        if population >= low:
            band = i
    return band


# ---- inputs (aggregates) -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CommuneCount:
    """Incidents of one commune and category in the period (the comparisons' figures)."""

    insee: str
    category: str
    current: int


@dataclass(frozen=True, slots=True)
class WeekCount:
    """Territory incidents of one category in week `week` (0 = oldest of the 2 x W weeks)."""

    category: str
    week: int
    n: int


@dataclass(frozen=True, slots=True)
class HourCount:
    """Territory incidents of one category in a Paris hour of week (Monday 0 h = 0)."""

    category: str
    how: int
    n: int


@dataclass(frozen=True, slots=True)
class SourceCount:
    """Territory reports of one source kind in the period, from `orgs` distinct sources."""

    kind: str
    n: int
    orgs: int


@dataclass(frozen=True, slots=True)
class ChronicPlace:
    """A place (H3 r9 cell) with dealing / hall reports on `days` distinct days."""

    cell: str
    commune: str
    days: int
    reports: int
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class AlertSummary:
    alert_id: str
    category: str
    status: str
    severity: int
    observed: float
    expected: float
    window_start: int
    emitted_at: int


@dataclass(frozen=True, slots=True)
class SlotCount:
    """Located territory incidents in a place (H3 r8) and time slot over the period."""

    cell: str
    commune: str
    slot: int  # weekday * SLOTS_PER_DAY + hour // SLOT_HOURS (Paris)
    n: int


# ---- outputs -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrendTest:
    current: int
    previous: int
    ratio: float  # (current + 0.5) / (previous + 0.5)
    change_pct: float
    dispersion: float  # phi, >= 1
    z: float
    p_value: float  # two-sided, normal approximation
    significant: bool
    direction: str  # "hausse", "baisse", "stable"


@dataclass(frozen=True, slots=True)
class CategoryProfile:
    category: str
    current: int
    previous: int
    rate: float  # per 1,000 inhabitants over the period
    dept_rate: float
    band_rate: float | None
    ratio_dept: float | None
    ratio_band: float | None
    trend: TrendTest
    weekly: tuple[int, ...]  # the 2 x W weeks, oldest first


@dataclass(frozen=True, slots=True)
class Forecast:
    cell: str
    commune: str
    slot: int
    expected: float
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class Diagnostic:
    territory: Territory
    weeks: int
    until: int  # period end (UTC epoch s, exclusive); the period is [until - weeks, until)
    population: int
    population_source: str
    band: int | None  # size band of the territory (None: several communes of several bands)
    band_communes: int  # communes of the band used for the comparison
    total: CategoryProfile
    categories: tuple[CategoryProfile, ...]  # by current count, largest first
    hour_of_week: dict[str, tuple[int, ...]]  # category (and "total") → 168 counts
    sources: tuple[SourceCount, ...]
    citizen_share: float | None
    chronic_places: tuple[ChronicPlace, ...]
    alerts: tuple[AlertSummary, ...]
    forecast: tuple[Forecast, ...]
    forecast_note: str = field(default="")

    @property
    def since(self) -> int:
        return self.until - self.weeks * WEEK_S


# ---- statistics ----------------------------------------------------------------------------
def dispersion(current: Sequence[int], previous: Sequence[int]) -> float:
    """Pearson overdispersion of weekly counts around each period's own mean, >= 1."""
    chi2, dof = 0.0, -2
    for series in (current, previous):
        if not series:
            continue
        mean = sum(series) / len(series)
        dof += len(series)
        if mean > 0:
            chi2 += sum((n - mean) ** 2 for n in series) / mean
    if dof <= 0:
        return 1.0
    return max(1.0, chi2 / dof)


def trend_test(current: Sequence[int], previous: Sequence[int]) -> TrendTest:
    """Quasi-Poisson test of the rate ratio of two periods of weekly counts (same length)."""
    a, b = sum(current), sum(previous)
    phi = dispersion(current, previous)
    ratio = (a + 0.5) / (b + 0.5)
    z = math.log(ratio) / math.sqrt(phi * (1.0 / (a + 0.5) + 1.0 / (b + 0.5)))
    p_value = math.erfc(abs(z) / math.sqrt(2.0))
    change = (a - b) / b * 100.0 if b > 0 else (0.0 if a == 0 else math.inf)
    return _decided(TrendTest(a, b, ratio, change, phi, z, p_value, False, ""), abs(z) > Z_95)


def _decided(test: TrendTest, significant: bool) -> TrendTest:
    direction = "stable" if not significant else ("hausse" if test.z > 0 else "baisse")
    return replace(test, significant=significant, direction=direction)


def holm(tests: Sequence[TrendTest], alpha: float = ALPHA) -> list[TrendTest]:
    """The tests of several categories decided together (Holm's step-down method): the
    chance that any category is called changed by chance alone stays under `alpha`."""
    order = sorted(range(len(tests)), key=lambda i: tests[i].p_value)
    decided = list(tests)
    still = True
    for rank, i in enumerate(order):
        still = still and tests[i].p_value <= alpha / (len(tests) - rank)
        decided[i] = _decided(tests[i], still)
    return decided


def per_thousand(count: int | float, population: int) -> float:
    return 1000.0 * float(count) / population if population > 0 else 0.0


def forecast(slots: Iterable[SlotCount], weeks: int, top: int = 10) -> tuple[Forecast, ...]:
    """Expected located incidents per place x slot for a coming week (see module doc)."""
    counts: dict[tuple[str, int], int] = {}
    commune_of: dict[str, str] = {}
    for row in slots:
        counts[(row.cell, row.slot)] = counts.get((row.cell, row.slot), 0) + row.n
        commune_of[row.cell] = row.commune
    if not counts or weeks <= 0:
        return ()
    n_slots = 7 * SLOTS_PER_DAY
    slot_total = [0.0] * n_slots
    cell_total: dict[str, float] = {}
    for (cell, slot), n in counts.items():
        slot_total[slot] += n
        cell_total[cell] = cell_total.get(cell, 0.0) + n
    grand = sum(slot_total)
    # territory slot profile, lightly smoothed toward flat (one pseudo-count per slot)
    profile = [(s + 1.0) / (grand + n_slots) for s in slot_total]
    k = FORECAST_PRIOR_WEEKS
    inv_scale = weeks + k
    p = inv_scale / (inv_scale + 1.0)
    tail = (1.0 - FORECAST_LEVEL) / 2.0
    # (expected, cell, slot, shape) of every place x slot; the intervals of the top ones only
    ranked: list[tuple[float, str, int, float]] = []
    for cell, total in cell_total.items():
        level = total / weeks  # incidents per week at the place
        for slot in range(n_slots):
            shape = counts.get((cell, slot), 0) + k * level * profile[slot]
            ranked.append((shape / inv_scale, cell, slot, shape))
    ranked.sort(key=lambda e: (-e[0], e[1], e[2]))
    return tuple(
        Forecast(
            cell,
            commune_of[cell],
            slot,
            expected,
            negative_binomial_quantile(shape, p, tail),
            negative_binomial_quantile(shape, p, 1.0 - tail),
        )
        for expected, cell, slot, shape in ranked[:top]
    )


# ---- assembly ------------------------------------------------------------------------------
def _weekly(rows: Iterable[WeekCount], weeks: int) -> dict[str, list[int]]:
    series: dict[str, list[int]] = {}
    for row in rows:
        if 0 <= row.week < 2 * weeks:
            series.setdefault(row.category, [0] * (2 * weeks))[row.week] += row.n
    return series


def build_diagnostic(
    territory: Territory,
    *,
    weeks: int,
    until: int,
    populations: Mapping[str, int],
    population_source: str,
    commune_counts: Iterable[CommuneCount],
    weekly: Iterable[WeekCount],
    hours: Iterable[HourCount],
    sources: Iterable[SourceCount],
    chronic: Iterable[ChronicPlace],
    alerts: Iterable[AlertSummary],
    slots: Iterable[SlotCount],
) -> Diagnostic:
    """The diagnostic of `territory` from the aggregates (`commune_counts`: every commune of
    the département in the period, for the comparisons; the others: the territory's
    only, `weekly` over the period and the one before)."""
    inside = set(territory.communes)
    pop = sum(populations.get(c, 0) for c in territory.communes)
    dept_pop = sum(populations.values())
    bands = {size_band(populations.get(c, 0)) for c in territory.communes}
    band = size_band(pop) if territory.kind is not TerritoryKind.COMMUNE else bands.pop()
    peers = [c for c, p in populations.items() if size_band(p) == band and c not in inside]
    peer_set = set(peers)
    peer_pop = sum(populations[c] for c in peers)

    zero = (0, 0)
    dept: dict[str, tuple[int, int]] = {}
    peer: dict[str, tuple[int, int]] = {}
    for row in commune_counts:
        for target, keep in ((dept, True), (peer, row.insee in peer_set)):
            if keep:
                target[row.category] = (target.get(row.category, zero)[0] + row.current, 0)
    # the territory's own counts: its weekly series (the period, then the one before)
    series = _weekly(weekly, weeks)
    own = {c: (sum(s[weeks:]), sum(s[:weeks])) for c, s in series.items()}

    def profile(
        category: str, counts: Mapping[str, tuple[int, int]], weekly_counts: list[int]
    ) -> CategoryProfile:
        cur, prev = counts.get(category, zero)
        rate = per_thousand(cur, pop)
        d_rate = per_thousand(dept.get(category, zero)[0], dept_pop)
        b_rate = per_thousand(peer.get(category, zero)[0], peer_pop) if peer_pop else None
        return CategoryProfile(
            category=category,
            current=cur,
            previous=prev,
            rate=rate,
            dept_rate=d_rate,
            band_rate=b_rate,
            ratio_dept=rate / d_rate if d_rate > 0 else None,
            ratio_band=rate / b_rate if b_rate else None,
            trend=trend_test(weekly_counts[weeks:], weekly_counts[:weeks]),
            weekly=tuple(weekly_counts),
        )

    empty = [0] * (2 * weeks)
    cats = [
        profile(c, own, series.get(c, empty))
        for c in CATEGORIES
        if own.get(c, zero) != zero or c in series
    ]
    # categories decided together: with a dozen of them, one would otherwise be called
    # changed by chance in about every second diagnostic
    tests = holm([p.trend for p in cats])
    cats = [replace(p, trend=t) for p, t in zip(cats, tests, strict=True)]
    cats.sort(key=lambda p: (-p.current, p.category))
    total_series = [sum(s[i] for s in series.values()) for i in range(2 * weeks)]

    def summed(counts: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        return {"total": (sum(v[0] for v in counts.values()), sum(v[1] for v in counts.values()))}

    dept = {**dept, **summed(dept)}
    peer = {**peer, **summed(peer)}
    total = profile("total", summed(own), total_series)

    how: dict[str, list[int]] = {"total": [0] * 168}
    for hour in hours:
        if 0 <= hour.how < 168:
            how.setdefault(hour.category, [0] * 168)[hour.how] += hour.n
            how["total"][hour.how] += hour.n
    source_rows = tuple(sorted(sources, key=lambda s: (-s.n, s.kind)))
    reports = sum(s.n for s in source_rows)
    citizens = sum(s.n for s in source_rows if s.kind == "citizen")
    return Diagnostic(
        territory=territory,
        weeks=weeks,
        until=until,
        population=pop,
        population_source=population_source,
        band=band,
        band_communes=len(peers),
        total=total,
        categories=tuple(cats),
        hour_of_week={k: tuple(v) for k, v in how.items()},
        sources=source_rows,
        citizen_share=citizens / reports if reports else None,
        chronic_places=tuple(sorted(chronic, key=lambda p: (-p.days, -p.reports, p.cell))),
        alerts=tuple(alerts),
        forecast=forecast(slots, weeks),
        forecast_note=(
            "Ces prévisions reflètent ce qui est signalé, pas tout ce qui se produit :"
            " un lieu peu signalé peut être sous-estimé."
        ),
    )
