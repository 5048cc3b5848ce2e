"""Correlation parameters: category classes, category compatibility, lateness.

Every number the engine uses lives here, with its meaning. Distances in metres, times in
seconds (event time). The defaults are hand-set priors; `vigie eval` and the correlation
benchmark (`BENCHMARKS.md`) score them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from agents.core.confusions import CONFUSED_PAIRS
from schemas.enums import Category, SourceKind


class CategoryClass(StrEnum):
    """How long and how far the situations of a category extend (`default_classes`)."""

    POINT = "point"  # one place, short
    MOBILE = "mobile"  # moves along a path
    PERSISTENT = "persistent"  # one place, hours to days


POINT, MOBILE, PERSISTENT = CategoryClass.POINT, CategoryClass.MOBILE, CategoryClass.PERSISTENT

HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class ClassParams:
    """How far and how long reports of one category class may be apart and still merge.

    radius_m: a point report joins an incident if its distance to the incident's centre is
      at most `radius_m + accuracy_factor * accuracy` (its stated or default accuracy),
      capped at `max_radius_m`.
    link_m: mobile classes only (0 = off): also joins if within `link_m` of the *nearest*
      located member (the cluster may move, e.g. a rodeo along a street).
    max_diameter_m: chain guard: the report must be within this distance of *every* located
      member, so chains of close pairs cannot glue distant reports.
    window_s: the report's occurred_at may be at most this far outside the incident's
      [first_occurred_at, last_occurred_at] span.
    max_span_s: the incident's span (last - first occurred_at) may not grow beyond this.
    close_after_s: the incident closes after this long without any change (stream clock).
    commune_window_s: with `CorrelationConfig.commune_posterior` off, a match without a
      position on one side (commune-only report, or an incident with no located member),
      which carries no spatial evidence, needs the report's occurred_at within this much of
      the incident's span (much tighter than `window_s`: without a place, only closeness in
      time speaks for the match). With it on (the default), the posterior weighs that
      closeness instead, within `window_s`.
    max_fit: a spatial match is taken only if its time gap (in windows) plus its distance
      (in allowed radii; mobile link matches count 1 + distance in links) stays at most this:
      a report both at the edge of the radius and of the window is more likely another
      incident.
    """

    radius_m: float
    accuracy_factor: float
    max_radius_m: float
    link_m: float
    max_diameter_m: float
    window_s: float
    max_span_s: float
    close_after_s: float
    commune_window_s: float = 900.0
    max_fit: float = math.inf


def default_classes() -> dict[CategoryClass, ClassParams]:
    return {
        # one place, short: burglary, theft, assault, car fire... Burglary victims guess
        # the time (+-1.5 h), so the window is a few hours; twins 30-150 m apart are kept
        # apart by the partner rule and the tight radius.
        POINT: ClassParams(
            radius_m=120.0,
            accuracy_factor=1.0,
            max_radius_m=350.0,
            link_m=0.0,
            max_diameter_m=600.0,
            window_s=3.0 * HOUR,
            max_span_s=8.0 * HOUR,
            close_after_s=6.0 * HOUR,
            max_fit=1.0,
        ),
        # rodeo: moves along a path up to ~1.5 km within an hour; witnesses report within
        # minutes, so two reports more than half an hour apart are more often two rodeos.
        MOBILE: ClassParams(
            radius_m=350.0,
            accuracy_factor=1.0,
            max_radius_m=900.0,
            link_m=600.0,
            max_diameter_m=2200.0,
            window_s=0.5 * HOUR,
            max_span_s=3.0 * HOUR,
            close_after_s=2.0 * HOUR,
        ),
        # encampment, drug dealing point, occupied hall: hours to days, reported repeatedly.
        PERSISTENT: ClassParams(
            radius_m=100.0,
            accuracy_factor=1.0,
            max_radius_m=300.0,
            link_m=0.0,
            max_diameter_m=700.0,
            window_s=24.0 * HOUR,
            max_span_s=10.0 * DAY,
            close_after_s=48.0 * HOUR,
            max_fit=1.25,
        ),
    }


def default_category_params() -> dict[str, ClassParams]:
    """Categories whose situations last differently from the rest of their class."""
    classes = default_classes()
    persistent, point, mobile = classes[PERSISTENT], classes[POINT], classes[MOBILE]
    # witnessed on the spot (fire, fight, noise, traffic, damage): reported with an accurate
    # time, so the window is short; thefts are often found later; burglaries keep the class's
    # long window (the victim guesses when it happened).
    witnessed = replace(point, window_s=1.0 * HOUR)
    return {
        **dict.fromkeys(
            (
                Category.INCENDIE,
                Category.VIOLENCE,
                Category.NUISANCE,
                Category.INFRACTION_ROUTIERE,
                Category.DEGRADATION,
                Category.AUTRE,
            ),
            witnessed,
        ),
        Category.VOL: replace(point, window_s=2.0 * HOUR),
        # a rodeo lasts minutes to an hour: a cluster spanning longer is several rodeos in
        # the same streets (and hotspot detection, which counts incidents, sees a series
        # of rodeos as such rather than as one long incident)
        Category.RODEO: replace(mobile, max_span_s=1.0 * HOUR),
        # away from chronic places (see `ChronicPlaces`), a dealing point or an occupied
        # hall is a situation that lasts days and is reported about once a day: a long window
        Category.TRAFIC_STUPEFIANTS: replace(persistent, window_s=36.0 * HOUR),
        Category.OCCUPATION_HALL: replace(persistent, window_s=36.0 * HOUR),
        Category.CAMPEMENT_ILLICITE: replace(
            persistent,
            window_s=120.0 * HOUR,
            max_span_s=21.0 * DAY,
            close_after_s=120.0 * HOUR,
            commune_window_s=24.0 * HOUR,
        ),
    }


def default_category_class() -> dict[str, CategoryClass]:
    return {
        Category.CAMBRIOLAGE: POINT,
        Category.VOL: POINT,
        Category.VIOLENCE: POINT,
        Category.DEGRADATION: POINT,
        Category.INCENDIE: POINT,
        Category.INFRACTION_ROUTIERE: POINT,
        Category.NUISANCE: POINT,
        Category.AUTRE: POINT,
        Category.RODEO: MOBILE,
        Category.CAMPEMENT_ILLICITE: PERSISTENT,
        Category.TRAFIC_STUPEFIANTS: PERSISTENT,
        Category.OCCUPATION_HALL: PERSISTENT,
    }


# Reports of categories that reporters confuse may merge (symmetric pairs; the one
# definition is `agents.core.confusions`).
DEFAULT_COMPATIBLE: tuple[tuple[str, str], ...] = CONFUSED_PAIRS

# Default position accuracy (m) when a point report states none.
DEFAULT_ACCURACY_M: dict[str, float] = {SourceKind.CITIZEN: 100.0}
DEFAULT_PARTNER_ACCURACY_M = 30.0
MIN_ACCURACY_M = 10.0


@dataclass(frozen=True, slots=True)
class ChronicPlaces:
    """Places where a situation recurs night after night (a dealing point, a hall occupied
    every evening): there, each night is its own incident, and a report after a quiet hour
    starts a new one instead of extending yesterday's.

    A place is the H3 r9 cell of a located report of one of `categories`. It is chronic for
    a report when reports of those categories were located in it on at least `min_days` of
    the `lookback_days` days before the report's day (noon-to-noon UTC days of
    `occurred_at`, so a night counts once: `places.day_of`). A located
    report of one of `categories` at a chronic place then uses `window_s` and `max_span_s`
    instead of its category's. Elsewhere the category's own (long) parameters apply.

    Why: at a chronic dealing point or hall a new episode starts most nights; one long
    window would merge every night into one incident, while one-off situations elsewhere
    last days and are reported about once a day.
    """

    categories: tuple[str, ...] = (Category.TRAFIC_STUPEFIANTS, Category.OCCUPATION_HALL)
    min_days: int = 3
    lookback_days: int = 10
    window_s: float = 1.0 * HOUR
    max_span_s: float = 8.0 * HOUR


@dataclass(frozen=True, slots=True)
class CorrelationConfig:
    """Everything the correlation engine needs (immutable; build a new one to change it).

    allowed_lateness_s: how long a closed incident stays in state after its last change, so
      that late reports (social landlords upload in batches hours later) and re-deliveries
      still find it; after that it is evicted (a later report creates a new incident, never
      lost).
    category_mismatch_cost: added to a candidate's cost when categories differ but are
      compatible (an exact match wins over a compatible one at equal distance).
    mismatch_link_m: when the report's category differs from the incident's (compatible), a
      mobile link match (`ClassParams.link_m`) reaches at most this far: a rodeo reported as
      a nuisance is on the rodeo's path, a noise complaint 600 m away is more often another
      nuisance.
    chronic: where recurring situations get short windows (`ChronicPlaces`); None = off.
    gate_confidence: share of the true pairs the spatial gate must admit: a point report
      joins within `radius_m + accuracy_factor * z * sigma`, z the Rayleigh (chi-square,
      2 d.o.f.) quantile of this share and sigma the per-axis standard deviation of the
      report around the centre: hypot(s * report accuracy, centre sigma), s the per-axis
      standard deviation per metre of stated accuracy of the report's source, as learnt
      from the stream (`estimate.StreamEstimates`; the contract's prior before), the
      centre's from its members' accuracies corrected alike.
    learn: estimate the dispersion from the stream (False: keep the contract's prior).
    density: where other incidents of a point report's category are around, choose among
      the admissible candidates by match posterior (`Correlator._by_posterior`): the odds
      of each against the report being another incident of that category at the local
      rate of such incidents; False: the cheapest admissible candidate.
    match_posterior: the least posterior (the best candidate against a new incident) the
      best candidate needs there to be joined.
    commune_posterior: a match without a position on one side (a commune-only report, or
      an incident with no located member) is weighed by its posterior
      (`Correlator._by_commune_posterior`: closeness in time, the learnt time spread and
      reports per incident of the category, against the commune's rate of incidents of the
      category and the other candidates) within the class's time window, and taken at
      `match_posterior`; False: only within `ClassParams.commune_window_s`, and only when
      single or clearly the cheapest.
    max_reports: an incident holding this many reports takes no more: the next report of
      the same event founds a new incident. It bounds the work and memory one incident
      costs (each report re-derives the incident from its members) and the size of its
      records: with the longest ids the contract allows, a full incident's changelog state
      and published version stay under Kafka's default 1 MB message limit
      (tests/correlation/test_incident_cap.py), where a flood of reports at one place would
      otherwise grow one record past it and stop the pipeline.
    """

    classes: dict[CategoryClass, ClassParams] = field(default_factory=default_classes)
    category_class: dict[str, CategoryClass] = field(default_factory=default_category_class)
    category_params: dict[str, ClassParams] = field(default_factory=default_category_params)
    compatible_pairs: tuple[tuple[str, str], ...] = DEFAULT_COMPATIBLE
    allowed_lateness_s: float = 48.0 * HOUR
    category_mismatch_cost: float = 0.5
    mismatch_link_m: float = 300.0
    chronic: ChronicPlaces | None = field(default_factory=ChronicPlaces)
    gate_confidence: float = 0.95
    learn: bool = True
    density: bool = True
    match_posterior: float = 0.5
    commune_posterior: bool = True
    max_reports: int = 500
    _compat: frozenset[tuple[str, str]] = field(init=False, repr=False)
    _pair_cache: dict[tuple[str, str, bool], ClassParams] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pairs = {(a, b) for a, b in self.compatible_pairs}
        pairs |= {(b, a) for a, b in pairs}
        object.__setattr__(self, "_compat", frozenset(pairs))
        object.__setattr__(self, "_pair_cache", {})

    def compatible(self, a: str, b: str) -> bool:
        return a == b or (a, b) in self._compat

    def categories(self) -> frozenset[str]:
        """Every category these parameters know (by class or by own parameters)."""
        return frozenset((*self.category_class, *self.category_params))

    def class_of(self, category: str) -> CategoryClass:
        return self.category_class.get(category, POINT)

    def params(self, category: str, chronic: bool = False) -> ClassParams:
        """The category's own parameters if set, else its class's; at a chronic place
        (`chronic`), a category of `ChronicPlaces.categories` takes its window and span."""
        own = self.category_params.get(category)
        p = own if own is not None else self.classes[self.class_of(category)]
        if chronic and self.chronic is not None and category in self.chronic.categories:
            p = replace(p, window_s=self.chronic.window_s, max_span_s=self.chronic.max_span_s)
        return p

    def commune_reach_s(self, p: ClassParams) -> float:
        """How far in time from an incident's span a match without a position on one side
        may be: the class's window with `commune_posterior` (the posterior weighs the
        closeness), else its `commune_window_s`."""
        return p.window_s if self.commune_posterior else p.commune_window_s

    def pair_params(self, a: str, b: str, chronic: bool = False) -> ClassParams:
        """Parameters for a report of category `a` against an incident of category `b`:
        the more permissive class of the two (a rodeo reported as a nuisance is a rodeo).
        `chronic`: the report is at a chronic place (`ChronicPlaces`)."""
        cached = self._pair_cache.get((a, b, chronic))
        if cached is not None:
            return cached
        pa, pb = self.params(a, chronic), self.params(b, chronic)
        best = pa if (pa.max_radius_m, pa.window_s) >= (pb.max_radius_m, pb.window_s) else pb
        self._pair_cache[(a, b, chronic)] = best
        return best

    def search_radius_m(self, category: str, other: str | None = None) -> float:
        """How far from a report of `category` the index cells of an incident of `other`
        (default: any compatible category) may lie. Incidents are indexed under their
        centre's cell and their located members' cells; a report joins only within
        `max_radius_m` of the centre or (mobile) `link_m` of a member."""
        others = (other,) if other is not None else tuple(self.categories())
        radii = [
            max(p.max_radius_m, p.link_m)
            for c in (category, *others)
            if self.compatible(category, c)
            for p in (self.pair_params(category, c),)
        ]
        return max(radii)
