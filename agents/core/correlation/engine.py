"""The correlation engine: merges accepted, enriched reports into incidents (pure, no Faust).

Candidates come from the search-grid cells around a point report (`spatial.grid_disc`;
incidents are indexed under the grid cells of their located members and of their successive
centres, per member category) or, for a commune-only report, from the incidents touching its
commune: `index.IncidentIndex` holds the incidents and those look-ups. A candidate must
pass every rule (see `Correlator._cost`); the cheapest one wins, else the report founds a
new incident. The spatial rule reads what the engine learnt from its stream so far
(`Correlator.estimates`, `estimate.StreamEstimates`): how far each source's positions
really scatter for their stated accuracy. Where other incidents of a point report's
category are around (a burst), the admissible candidates are weighed instead by their
match posterior against the report being another incident of that category at the local
rate (`Correlator._by_posterior`), from the learnt dispersion, time spread, reports per
incident and category confusion. A match without a position on one side (commune level) is
weighed alike, on time alone, against the commune's rate of incidents of the category and
the other candidates of the commune (`Correlator._by_commune_posterior`).

Clock: the watermark is the greatest `reported_at` seen (event time, never the wall clock),
read through `agents.core.clock.StreamClock`: a lone record far ahead of the others does not
move it (a leap of more than 6 h needs 3 records of 50 that agree).
An open incident closes when the watermark is more than its class's `close_after_s` past
its latest evidence (`last_seen`, the greatest `reported_at` of its members); a closed
incident stays in state, and can be re-opened by a late report, until the watermark is
`allowed_lateness_s` further; then it is evicted (a later report founds a new incident:
nothing is lost, and ingest drops exact re-deliveries of older ids).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.core.clock import StreamClock
from agents.core.correlation.config import PERSISTENT, CorrelationConfig
from agents.core.correlation.estimate import PRIOR_SCALE, StreamEstimates, rayleigh_quantile
from agents.core.correlation.incident import (
    CLOSED,
    OPEN,
    POINT,
    CommuneAt,
    Incident,
    StateDict,
    accuracy_of,
    category_member,
)
from agents.core.correlation.index import IncidentIndex, SearchPlan
from agents.core.correlation.places import PlaceMemory, PlaceRecord, day_of
from agents.core.correlation.spatial import distance_floor_m, distance_m
from agents.core.record import ReportRecord
from schemas.enums import SourceKind

Version = dict[str, Any]
_CITIZEN = SourceKind.CITIZEN

# Same-partner rule: two records of one partner system (non-citizen `source_org`) never
# merge, except, in the classes listed here, a record at least this long (occurred_at) after
# that partner's other records in the incident. A partner's system files one report per
# one-off event (a police station does not file one burglary twice: two of its records
# close by are two burglaries, the twins the rule keeps apart), but a persistent situation
# is observed again and again: a landlord's guard on each round, each municipal patrol, at
# any interval. So in the persistent class the rule is off (0 s): the spatial gate and the
# match posterior tell two situations of one place apart, as for any two sources. (A 3-hour
# exception, hand-set, refused the rounds of the same evening: on 18 random worlds it split
# enough situations to cost 0.017 of median pair F1 and to double the median false alerts.)
DEFAULT_PARTNER_REPEAT_S: dict[str, float] = {PERSISTENT: 0.0}
# With `CorrelationConfig.commune_posterior` off, a commune-level match (no position on one
# side) is taken only if it is the single
# admissible one, or cheaper than the next by this much (cost units: 1 = a whole time
# window, or an exact-vs-compatible category difference of `category_mismatch_cost` x 2).
COMMUNE_MARGIN = 1.0
# A report's search reach, spatial cap and chain guard widen with its source's dispersion
# (`Correlator._widen_for`) up to this factor.
MAX_WIDEN = 4.0
# Prior of the commune's rate of new incidents of a category (`_by_commune_posterior`):
# this many incidents per time span besides those seen, so a commune with none seen yet is
# not taken for one where no other incident can happen (a Jeffreys-like half count).
COMMUNE_RATE_PRIOR = 0.5
_COMMUNE_LEVEL = 100.0  # cost offset of a commune-level match (spatial costs stay below 10)
# relative (and absolute, m) margin of the candidate loop's far test over rounding
_FAR_MARGIN = 1e-9


def _first(item: tuple[str, Incident, float]) -> str:
    return item[0]


class _Report:
    """What the candidate rules (`Correlator._cost`, `_SkipTest`) read of the report being
    matched, copied once per report. `ReportRecord` is not of the compiled group
    (`agents.core.native`): compiled code reads its attributes by the generic look-up, and
    the rules read a dozen of them per candidate, hundreds of candidates per report where
    reports are dense; this class is compiled with the engine (fields read directly)."""

    def __init__(self, record: ReportRecord) -> None:
        # the `Category` member: compared with the incidents' categories by identity
        self.category: str = category_member(record.category)
        self.t: float = record.occurred_at
        self.source_kind: str = record.source_kind
        self.source_org: str = record.source_org
        self.lat: float | None = record.lat
        self.lon: float | None = record.lon
        self.point: bool = record.precision == POINT
        self.insee: str | None = record.insee
        self.acc: float = accuracy_of(record)  # its accuracy (m)


class _SkipTest:
    """A test of a candidate that is True only when `_cost` would refuse it and `_learn`
    not count it, whatever its members' sources: the candidate loop skips it before the
    member by member work. A match without a position on one side (a commune-only report,
    or an incident with no located member): its span further than `commune_reach`
    (`Correlator._reaches`) from the report. Between two positions, far: the centre beyond
    `max_radius_m` times the widening of the pair (the centre gate's cap) and, for a
    same-category incident, beyond the report's own search reach (`_learn` observes no
    nearer pair), and every located member beyond the link distance of the pair (none in a
    non-mobile pair), by a lower bound from the incident's extent
    (`spatial.distance_floor_m`, with a margin for rounding). `skip`'s second argument: the
    distance from the report to the incident's centre (`distance_m`), read between two
    positions only. (A compiled class, not a closure: a method call with a float argument
    is a direct C call, once per candidate.)"""

    def __init__(
        self,
        config: CorrelationConfig,
        report: _Report,
        chronic: bool,
        commune_reach: float,
        widen: float,
        index: IncidentIndex,
    ) -> None:
        self.config = config
        self.report = report
        self.chronic = chronic
        self.commune_reach = commune_reach
        self.widen = widen
        self.index = index
        self.point = report.point and report.lat is not None and report.lon is not None
        # incident category -> (centre distance beyond which it is far, link distance):
        # None for a category the report cannot join
        self.limits: dict[str, tuple[float, float] | None] = {}

    def skip(self, incident: Incident, d_centre: float) -> bool:
        r = self.report
        if not self.point or incident.precision != POINT:  # `_cost`'s commune-level rules
            t, reach = r.t, self.commune_reach
            return t - incident.last_occurred_at > reach or incident.first_occurred_at - t > reach
        category = incident.category
        limits = self.limits
        if category in limits:
            limit = limits[category]
        else:
            limit = self._limit(category)
            limits[category] = limit
        if limit is None:
            return True
        if d_centre <= limit[0]:
            return False
        link = limit[1]
        if link <= 0.0:
            return True
        box = self.index.extent(incident.incident_id)
        lat, lon = r.lat, r.lon
        assert lat is not None and lon is not None
        return box is not None and (
            distance_floor_m(lat, lon, *box) > link * (1.0 + _FAR_MARGIN) + _FAR_MARGIN
        )

    def _limit(self, category: str) -> tuple[float, float] | None:
        cfg, rcat, widen = self.config, self.report.category, self.widen
        if not cfg.compatible(rcat, category):
            return None
        p = cfg.pair_params(rcat, category, self.chronic)
        if category == rcat:
            own = cfg.search_radius_m(rcat, rcat) * widen
            return (max(p.max_radius_m * widen, own), p.link_m)
        return (p.max_radius_m * widen, min(p.link_m, cfg.mismatch_link_m))


class Correlator:
    """Stateful merge of reports into incidents; every change returns a new version dict."""

    def __init__(
        self,
        config: CorrelationConfig | None = None,
        *,
        partner_repeat_s: Mapping[str, float] | None = None,
        commune_margin: float = COMMUNE_MARGIN,
        commune_at: CommuneAt | None = None,
    ) -> None:
        self.config = config or CorrelationConfig()
        # the geocoder's commune of a point (`Incident.refresh`: an incident of several
        # located reports takes its centre's commune); None: its nearest member's
        self.commune_at = commune_at
        self.commune_margin = commune_margin
        self.partner_repeat_s = dict(
            DEFAULT_PARTNER_REPEAT_S if partner_repeat_s is None else partner_repeat_s
        )
        self.watermark = float("-inf")
        self._clock = StreamClock()  # what moves the watermark (robust to outliers)
        self._index = IncidentIndex()  # the incidents in state and their look-ups
        self._deadlines: list[tuple[float, str]] = []  # (close or evict time, id), lazy
        # category -> ((radius m, compatible categories searched that far), ...)
        self._search: dict[str, SearchPlan] = {}
        # category -> (longest time window, longest commune window) of the categories it
        # may join (`_reaches`)
        self._reach: dict[str, tuple[float, float]] = {}
        self._evicted: list[str] = []
        # incidents open, kept at every change of status (`open_count`: the worker's gauge
        # reads it every few seconds, and a walk of the state was a pause that grew with it)
        self._open = 0
        chronic = self.config.chronic
        self._places = PlaceMemory(chronic) if chronic is not None else None
        self._chronic_categories = frozenset(chronic.categories if chronic else ())
        # days a report may arrive after its day and still ask about it (place memory)
        self._keep_days = int(self.config.allowed_lateness_s // 86400) + 2
        # what the engine learns from its stream (`estimate`): the gate reads it
        self.estimates = StreamEstimates()
        self._gate_z = rayleigh_quantile(self.config.gate_confidence)
        self._scale = PRIOR_SCALE  # per report: its source's learnt scale
        self._obs_d = math.inf  # per report: the nearest same-category candidate's distance
        self._obs_v = 0.0  # ... the report's variance unit (its accuracy^2, m^2)
        self._obs_c = 0.0  # ... and that centre's per-axis variance (m^2)
        self._obs_radius: dict[str, float] = {}  # category -> its own search radius
        # per report: how much wider than the contract's its source scatters (>= 1, in
        # quarter steps): the spatial caps, the chain guard and the search reach scale by it
        self._widen = 1.0
        self._plans: dict[tuple[str, float], SearchPlan] = {}  # (category, widen) -> plan
        self._joinable_of: dict[str, tuple[str, ...]] = {}  # category -> `_joinable`
        # per candidate (`_cost`): a centre match's squared distance in sigmas (-1: none)
        # and its sigma^2 (m^2), for `_by_posterior`
        self._match_z2 = -1.0
        self._match_s2 = 1.0

    # ---- public API ----
    @property
    def open_count(self) -> int:
        """The incidents open in state (a count kept at each change of status)."""
        return self._open

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, incident_id: object) -> bool:
        return incident_id in self._index

    def incident_ids(self) -> list[str]:
        return list(self._index.incidents)

    def process(self, record: ReportRecord) -> list[Version]:
        """Merge one enriched report. Returns the versions it causes, in order: closures
        due to the watermark moving to its `reported_at`, then the new or changed incident.
        A report already in an incident (same identity: source kind, source org,
        report_id) is ignored (idempotent re-delivery)."""
        lat, lon = record.lat, record.lon
        if lat is None or lon is None or self._index.has_report(record.key):
            return []
        out = self.advance(self._clock.observe(record.reported_at))
        place, day = self._place_of(record), day_of(record.occurred_at)
        chronic = (
            place is not None and self._places is not None and (self._places.is_chronic(place, day))
        )
        learn = self.config.learn
        key = (record.source_kind, record.accuracy_m is not None and record.accuracy_m > 0)
        scale = self.estimates.scale(key) if learn else PRIOR_SCALE
        self._scale = scale
        self._widen = self._widen_for(record, scale) if learn else 1.0
        self._obs_d = math.inf
        best = self._best_candidate(record, lat, lon, chronic)
        if learn:
            self._learn(record, key, best)
        if best is None:
            incident = Incident.found(record, lat, lon, scale / PRIOR_SCALE)
            self._index.found(incident)
            self._open += 1
        else:
            incident = best
            incident.add(record, lat, lon, scale / PRIOR_SCALE, self.commune_at)
            if incident.status != OPEN:  # a closed incident joined again reopens
                incident.status = OPEN
                self._open += 1
            self._index.joined(incident)
        heapq.heappush(self._deadlines, (self._deadline(incident), incident.incident_id))
        if place is not None and self._places is not None:
            self._places.observe(place, day)
        out.append(self._emit(incident))
        return out

    def _learn(self, record: ReportRecord, key: tuple[str, bool], best: Incident | None) -> None:
        """Feed the estimators (`estimate.StreamEstimates`) with one report: its lag, the
        nearest same-category candidate (whatever the gate decided) and, when it joins an
        incident, how long after the incident's start it occurred and into which category."""
        est = self.estimates
        est.observe_lag(record.source_kind, record.reported_at - record.occurred_at)
        if self._obs_d < math.inf:
            radius = self._obs_radius.get(record.category)
            if radius is None:
                radius = self._obs_radius[record.category] = self.config.search_radius_m(
                    record.category, record.category
                )
            radius *= self._widen  # the reach of this report's search
            if self._obs_d <= radius:
                est.observe_pair(key, self._obs_d, self._obs_v, radius, self._obs_c)
        est.observe_outcome(
            self.config.class_of(record.category)._value_, best is not None, record.category
        )
        if best is not None:
            est.observe_join(
                self.config.class_of(best.category)._value_,
                record.category,
                best.category._value_,
                record.occurred_at - best.first_occurred_at,
            )

    def _widen_for(self, record: ReportRecord, scale: float) -> float:
        """How far past the configured caps a report's gate may reach (1 = not at all):
        the larger of its source's learnt scale over the contract's and the gate of a pair
        of two reports as coarse as this one over the category's cap, in quarter steps
        (cached search plans), at most `MAX_WIDEN` (the search work grows with its square)."""
        p = self.config.params(record.category)
        gate = p.radius_m + self._gate_z * scale * accuracy_of(record) * math.sqrt(2.0)
        need = max(scale / PRIOR_SCALE, gate / p.max_radius_m)
        return 1.0 if need <= 1.0 else min(math.ceil(4.0 * need) / 4.0, MAX_WIDEN)

    def _place_of(self, record: ReportRecord) -> str | None:
        """The place (H3 r9 cell) a report counts for in the chronic-place memory: a
        located report of a `ChronicPlaces` category; else None."""
        if (
            self._places is None
            or record.category not in self._chronic_categories
            or record.precision != POINT
        ):
            return None
        return record.h3_r9 or None

    def advance(self, watermark: float) -> list[Version]:
        """Move the stream clock forward (never back); returns the closures it causes and
        evicts closed incidents past the allowed lateness."""
        if watermark <= self.watermark:
            return []
        if self._places is not None and (
            math.isinf(self.watermark) or day_of(watermark) != day_of(self.watermark)
        ):
            self._places.prune(day_of(watermark), self._keep_days)
        self.watermark = watermark
        self._clock.follow(watermark)
        out: list[Version] = []
        while self._deadlines and self._deadlines[0][0] < watermark:
            at, iid = heapq.heappop(self._deadlines)
            incident = self._index.incidents.get(iid)
            if incident is None:
                continue
            due = self._deadline(incident)
            if due != at:  # a stale entry (the incident changed since): queue its real time
                heapq.heappush(self._deadlines, (due, iid))
            elif incident.status == OPEN:
                incident.status = CLOSED
                self._open -= 1
                out.append(self._emit(incident))
            else:
                self._index.evict(iid)
                self._evicted.append(iid)
        return out

    def drain_evicted(self) -> list[str]:
        """Ids evicted from state since the last call (delete them from the Faust table)."""
        out, self._evicted = self._evicted, []
        return out

    @property
    def place_count(self) -> int:
        """Places in the chronic-place memory."""
        return len(self._places) if self._places is not None else 0

    @property
    def places_changed(self) -> bool:
        """The place memory changed since the last `export_places` (persist it)."""
        return self._places is not None and self._places.changed

    def export_places(self) -> dict[str, list[int]]:
        """The place memory (`PlaceMemory.export`), JSON-serialisable; {} when off."""
        return self._places.export() if self._places is not None else {}

    def export_place_changes(self) -> dict[str, PlaceRecord]:
        """The place memory's records changed since the last export, by name
        (`PlaceMemory.export_changes`: persist only these); {} when off."""
        return self._places.export_changes() if self._places is not None else {}

    @property
    def estimates_changed(self) -> bool:
        """The estimates changed since the last `export_estimates` (persist them)."""
        return self.estimates.changed

    def export_estimates(self) -> dict[str, Any]:
        """The learnt parameters (`StreamEstimates.to_dict`), JSON-serialisable."""
        return self.estimates.to_dict()

    def export_incident(self, incident_id: str) -> StateDict:
        """A JSON-serialisable snapshot of one incident's state (for a Faust table; the
        format `Incident.to_dict`): later changes to the incident do not reach it."""
        index = self._index
        return index.incidents[incident_id].to_dict(index.grid(incident_id))

    def restore(
        self,
        incidents: Iterable[Mapping[str, Any]],
        watermark: float | None = None,
        places: Mapping[str, Sequence[int]] | None = None,
        estimates: Mapping[str, Any] | None = None,
    ) -> None:
        """Rebuild the engine from exported states. `watermark`: the stream clock persisted
        with them (default: the greatest `updated_at`, the clock at their last change).
        `places`: the exported place memory (None: state saved before it existed; the engine
        learns its chronic places again from the reports that follow). `estimates`: the
        exported learnt parameters (None: the engine starts again from the priors). A
        malformed state (`Incident.from_dict`, `StreamEstimates.from_dict`), or an incident
        already in the engine or given twice, raises ValueError before the engine changes."""
        restored = [Incident.from_dict(exported) for exported in incidents]
        learnt = StreamEstimates.from_dict(estimates) if estimates else None
        seen: set[str] = set()
        for incident in restored:
            iid = incident.incident_id
            if iid in seen or iid in self._index:
                raise ValueError(f"incident state {iid}: restored twice")
            seen.add(iid)
        if places and self._places is not None:
            self._places.restore(places)
        if learnt is not None:
            self.estimates = learnt
        for incident in restored:
            # the derived fields and the search cells are recomputed from the members, so
            # states saved by an older version (or with JSON lists for tuples) restore alike
            if self.commune_at is not None:
                incident.place(self.commune_at)
            self._index.restored(incident)
            if incident.status == OPEN:
                self._open += 1
            heapq.heappush(self._deadlines, (self._deadline(incident), incident.incident_id))
            if watermark is None:
                self.watermark = max(self.watermark, incident.updated_at)
        if watermark is not None:
            self.watermark = max(self.watermark, watermark)
        self._clock.follow(self.watermark)

    # ---- matching ----
    def _best_candidate(
        self, record: ReportRecord, lat: float, lon: float, chronic: bool = False
    ) -> Incident | None:
        """The cheapest admissible incident. A match at commune level (a commune-only report,
        or an incident with no located member) carries no position, so it is taken only
        when its posterior against a new incident and the other commune-level candidates
        holds (`_by_commune_posterior`; with `CorrelationConfig.commune_posterior` off: when
        it is the single commune-level candidate or clearly the best one, by
        `commune_margin`): otherwise the report stays apart rather than glue two incidents
        of one town. A spatial match always wins over a commune-level one. `chronic`: the
        report is at a chronic place (`ChronicPlaces` windows); (`lat`, `lon`): its position."""
        best: Incident | None = None
        best_cost = float("inf")
        commune_level: list[tuple[float, Incident]] = []
        report = _Report(record)
        t, category, point = report.t, report.category, report.point
        reach, commune_reach = self._reaches(category)
        p = self.config.params(category)
        density = self.config.density and point
        radius = p.max_radius_m
        lookback = max(reach, p.close_after_s)
        # only incidents whose latest report is within `lookback` (>= `reach`) of the report
        # can pass a time window below or count in `around`, and for a commune-only report
        # within its commune reach: the index skips the older ones
        since = t - (lookback if point else commune_reach)
        skip = self._skip_test(report, chronic, commune_reach)
        full = self.config.max_reports
        # (incident id, incident, distance from the report to its centre; -1 without a
        # position on one side): the candidates `_cost` weighs, in id order (ties go the
        # same way on replay)
        near: list[tuple[str, Incident, float]] = []
        # a point report's unlocated candidates (no position: a match at commune level)
        # count only when no spatial match is found: weighed after the others, and only then
        # (`_cost` learns nothing from them)
        unlocated: list[tuple[str, Incident, float]] = []
        # same-category located incidents that started within `lookback` of the report,
        # their centre within `radius` of it, and how many reports each holds: the local
        # rate of that category (`_by_posterior`)
        around: dict[str, int] = {}
        for s in self._candidates(record, lat, lon, since):
            iid = s.incident_id
            # out of every time window: what `_cost` would say, only sooner (most candidates
            # are old incidents of busy cells kept for late reports)
            reached = t - s.last_occurred_at <= reach and s.first_occurred_at - t <= reach
            if not point or s.precision != POINT:
                if reached:
                    (unlocated if point else near).append((iid, s, -1.0))
                continue
            dense = density and s.category == category and abs(s.first_occurred_at - t) <= lookback
            if not (reached or dense):
                continue
            d = distance_m(lat, lon, s.lat, s.lon)
            if dense and d <= radius:
                around[iid] = len(s.members)
            # the skip test first: most candidates where reports are dense are far, and
            # the members list is one more object to fetch from memory per candidate
            if reached and not skip.skip(s, d) and len(s.members) < full:
                near.append((iid, s, d))
        near.sort(key=_first)
        # (cost, incident, d^2 / sigma^2 (-1: no centre match), sigma^2 m^2)
        spatial: list[tuple[float, Incident, float, float]] = []
        for _, state, d in near:
            self._match_z2 = -1.0
            cost = self._cost(state, report, chronic, d)
            if cost is None:
                continue
            if cost >= _COMMUNE_LEVEL:
                commune_level.append((cost, state))
            else:
                spatial.append((cost, state, self._match_z2, self._match_s2))
                if cost < best_cost:
                    best, best_cost = state, cost
        if density and len(around) > 1 and spatial:
            return self._by_posterior(record, spatial, around, radius, lookback)
        if best is None and unlocated:
            unlocated.sort(key=_first)
            for _, state, _ in unlocated:
                if len(state.members) >= full or skip.skip(state, -1.0):
                    continue
                cost = self._cost(state, report, chronic)
                if cost is not None:
                    commune_level.append((cost, state))
        if best is None and commune_level:
            commune_level.sort(key=lambda cs: cs[0])
            if self.config.commune_posterior:
                return self._by_commune_posterior(record, commune_level, lookback)
            if len(commune_level) == 1 or (
                commune_level[1][0] - commune_level[0][0] >= self.commune_margin
            ):
                return commune_level[0][1]
        return best

    def _by_posterior(
        self,
        record: ReportRecord,
        spatial: list[tuple[float, Incident, float, float]],
        around: Mapping[str, int],
        radius: float,
        lookback: float,
    ) -> Incident | None:
        """The spatial candidate of greatest match odds, or None when the posterior that
        the report belongs to it rather than to a new incident or to another candidate,
        odds / (1 + the sum of every candidate's odds), is below
        `CorrelationConfig.match_posterior` (the report then founds an incident): as in
        `_by_commune_posterior`, candidates that explain the report about as well share
        the evidence, so a report halfway between two incidents of a burst stays apart
        rather than glue itself to one of them at a coin's odds.

        Each candidate j is weighed (Fellegi-Sunter odds) as the source of the report
        against the report being the first of another incident of its category:
          odds_j = m * g(t - first_j) * N(d_j; sigma_j) * P(category | j's) / lambda_j
        with m the further reports an incident of j's class receives, g their time density,
        N the circular Gaussian of the report's position around j's centre at the learnt
        dispersion, P the learnt category confusion (`estimate.StreamEstimates`), and
        lambda_j the local rate (per m^2 and s) of incidents of the report's category: the
        reports of the same-category incidents within `radius` of the report that started
        within `lookback` of its time, j's left out, over 1 + m of the report's category
        (the reports an incident holds), over that disc and time span. Reports, not the
        engine's incidents, measure the rate: where its own decisions merged several
        incidents into one (a burst's), counting that one would understate the rate and
        so invite more merges; where they split one, its fragments' few reports count for
        what they are. Where no other such incident is around,
        lambda_j = 0: the odds are unbounded and the gates alone decide (the density term
        bites only where incidents of the category are actually dense). A mobile link
        match (the report near a member, not the centre: the cluster moves) takes for N the
        uniform density over the link disc, 1 / (pi link^2): on a moving incident's path,
        the report may be anywhere within a link of its latest positions.
        Unbounded candidates win over bounded ones, the cheapest (`_cost`) first."""
        est = self.estimates
        cfg = self.config
        t, category = record.occurred_at, record.category
        # the incidents counted started from `lookback` before the report up to the clock
        span = lookback + min(max(self.watermark - t, 0.0), lookback)
        exposure = math.pi * radius * radius * span
        n_compatible = len(self._joinable(category))
        # reports per incident of the report's category: 1 + the further ones it receives
        per_incident = 1.0 + est.further_reports(cfg.class_of(category)._value_, category)
        reports_around = sum(around.values())
        scored: list[tuple[float, float, Incident]] = []  # (odds, cost, incident)
        unbounded: list[tuple[float, Incident]] = []
        for cost, state, z2, sigma2 in spatial:
            others = len(around) - (state.incident_id in around)
            if z2 < 0.0 or others == 0:
                unbounded.append((cost, state))
                continue
            klass = cfg.class_of(state.category)._value_
            odds = (
                est.further_reports(klass, state.category)
                * est.time_density(klass, t - state.first_occurred_at, state.category)
                * math.exp(-0.5 * z2)
                / (2.0 * math.pi * sigma2)
                * est.category_likelihood(category, state.category._value_, n_compatible)
                * exposure
                * per_incident
                / (reports_around - around.get(state.incident_id, 0))
            )
            scored.append((odds, cost, state))
        if unbounded:
            return min(unbounded, key=lambda cs: cs[0])[1]
        odds, _, best = max(scored, key=lambda ocs: (ocs[0], -ocs[1]))
        total = sum(o for o, _, _ in scored)
        return best if odds / (1.0 + total) >= cfg.match_posterior else None

    def _by_commune_posterior(
        self, record: ReportRecord, commune_level: list[tuple[float, Incident]], lookback: float
    ) -> Incident | None:
        """The commune-level candidate of greatest match odds, or None when its posterior
        against a new incident and every other candidate, odds / (1 + sum of the odds), is
        below `CorrelationConfig.match_posterior` (the report then founds an incident).

        Without a position on one side, the commune and the time are the only evidence.
        Each candidate j (same commune, within its class's time window) is weighed as
        the source of the report against the report being the first of another incident
        of its category in that commune:
          odds_j = m * g(gap_j) * P(category | j's) * span / (others_j + COMMUNE_RATE_PRIOR)
        with m the further reports an incident of j's category receives, g their time
        density at the report's distance in time from j's span (0 inside it), P the
        learnt category confusion (`estimate.StreamEstimates`, as `_by_posterior`), and the
        last factor the inverse of the commune's rate of new incidents of the report's
        category: the same-category incidents of the commune (j left out) that started
        within `lookback` of the report, over the time span they were counted in. Unlike
        the spatial posterior, the other candidates share the evidence (nothing but the
        time tells two incidents of one commune apart): their odds count against the best
        one, so a report between two incidents of its commune stays apart."""
        est = self.estimates
        cfg = self.config
        t, category = record.occurred_at, record.category
        # the incidents counted started from `lookback` before the report up to the clock
        span = lookback + min(max(self.watermark - t, 0.0), lookback)
        around = {
            s.incident_id
            for s in self._index.in_commune(record.insee or "", t - lookback, (category,))
            if s.category == category and abs(s.first_occurred_at - t) <= lookback
        }
        n_compatible = len(self._joinable(category))
        total, best, best_odds = 0.0, None, -1.0
        for _, state in commune_level:  # cheapest first: ties go to the cheaper
            others = len(around) - (state.incident_id in around)
            gap = max(state.first_occurred_at - t, t - state.last_occurred_at, 0.0)
            klass = cfg.class_of(state.category)._value_
            odds = (
                est.further_reports(klass, state.category)
                * est.time_density(klass, gap, state.category)
                * est.category_likelihood(category, state.category._value_, n_compatible)
                * span
                / (others + COMMUNE_RATE_PRIOR)
            )
            total += odds
            if odds > best_odds:
                best, best_odds = state, odds
        return best if best_odds / (1.0 + total) >= cfg.match_posterior else None

    def _candidates(
        self, record: ReportRecord, lat: float, lon: float, since: float = -math.inf
    ) -> list[Incident]:
        """Incidents a report at (`lat`, `lon`) could join: a commune-only report, any
        incident touching its commune with a member of a category it may join; a point
        report, the incidents with a member of a compatible category indexed within the
        search radius of that category pair (`CorrelationConfig.search_radius_m`), plus the
        commune's incidents of such categories that have no located member yet. `since`:
        of those, the index may leave out any whose latest `occurred_at` is before it
        (`IncidentIndex.nearby`)."""
        insee = record.insee or ""
        plan = self._search_plan(record.category)
        if record.precision != POINT:
            return self._index.in_commune(insee, since, self._joinable(record.category))
        if self._widen > 1.0:
            widened = self._plans.get((record.category, self._widen))
            if widened is None:
                widened = self._plans[(record.category, self._widen)] = tuple(
                    (radius * self._widen, others) for radius, others in plan
                )
            plan = widened
        return self._index.nearby(insee, lat, lon, plan, since)

    def _joinable(self, category: str) -> tuple[str, ...]:
        """Every category a report of `category` may join (its search plan's)."""
        joinable = self._joinable_of.get(category)
        if joinable is None:
            joinable = self._joinable_of[category] = tuple(
                other for _, others in self._search_plan(category) for other in others
            )
        return joinable

    def _skip_test(self, report: _Report, chronic: bool, commune_reach: float) -> _SkipTest:
        """The report's `_SkipTest` (a method: the exactness test puts one that skips
        nothing in its place)."""
        return _SkipTest(self.config, report, chronic, commune_reach, self._widen, self._index)

    def _search_plan(self, category: str) -> SearchPlan:
        """(radius in m, categories) groups: how far to look for incidents of each category
        a report of `category` may join (`CorrelationConfig.search_radius_m`)."""
        plan = self._search.get(category)
        if plan is None:
            cfg = self.config
            known = sorted({category, *cfg.categories()})
            by_radius: dict[float, list[str]] = {}
            for other in known:
                if cfg.compatible(category, other):
                    by_radius.setdefault(cfg.search_radius_m(category, other), []).append(
                        category_member(other)  # the index's own key: matched by identity
                    )
            plan = self._search[category] = tuple(
                (radius, tuple(others)) for radius, others in sorted(by_radius.items())
            )
        return plan

    def _reaches(self, category: str) -> tuple[float, float]:
        """The longest time window (`ClassParams.window_s`) and the longest commune window
        (`commune_window_s`; the time window with `CorrelationConfig.commune_posterior`)
        of any category a report of `category` may join: a match
        without a position on one side (`_cost`'s commune-level rules) is further from the
        incident's span than the second, in no case."""
        reach = self._reach.get(category)
        if reach is None:
            params = [
                self.config.pair_params(category, other, chronic)
                for _, others in self._search_plan(category)
                for other in others
                for chronic in (False, True)
            ]
            reach = self._reach[category] = (
                max(p.window_s for p in params),
                max(self.config.commune_reach_s(p) for p in params),
            )
        return reach

    def _cost(
        self,
        incident: Incident,
        report: _Report,
        chronic: bool = False,
        d_centre: float = -1.0,
    ) -> float | None:
        """Cost of merging the report (`report`: its fields) into `incident`, or None when a
        rule forbids it.

        Rules: compatible categories; the same partner system never sends one incident
        twice under two ids; occurred_at within the window around the incident's span and
        the span bounded; then by precision: commune-only on either side needs the same
        commune; point against point needs the distance to the centre within
        `radius_m + accuracy_factor * z * hypot(s * report accuracy, s0 * centre accuracy)`
        capped at `max_radius_m`, z the statistically grounded gate
        (`CorrelationConfig.gate_confidence`), s the report's source's learnt scale
        (`_learn`; for a source that scatters more than the contract says, the cap, the
        chain guard and the search reach widen by its learnt scale over the prior's), s0
        the contract's and the centre's accuracy that of the inverse-variance mean of the
        located members, each corrected by its own source's learnt scale
        (`Member.eff`), or, mobile, to a member
        within `link_m` (at most
        `mismatch_link_m` across two categories); the distance to every located member
        within `max_diameter_m` (chain guard); and the fit (time gap in
        windows + distance in allowed radii) at most `max_fit`. Without a position on one
        side, the gap must stay within `commune_window_s` (the window with
        `CorrelationConfig.commune_posterior`: `_by_commune_posterior` weighs it).
        Per-category parameters
        (`CorrelationConfig.category_params`) override the class's, and at a chronic place
        (`chronic`) the `ChronicPlaces` window and span override those. `d_centre`: the
        distance from the report to the incident's centre when the caller has it (-1: not).
        """
        cfg = self.config
        category = incident.category
        rcat = report.category
        if not cfg.compatible(rcat, category):
            return None
        p = cfg.pair_params(rcat, category, chronic)
        t = report.t
        first, last = incident.first_occurred_at, incident.last_occurred_at
        gap = max(first - t, t - last, 0.0)
        if gap > p.window_s or max(last, t) - min(first, t) > p.max_span_s:
            return None
        if report.source_kind != _CITIZEN:
            repeat = self.partner_repeat_s.get(cfg.class_of(category))
            # a repeat interval of 0 (the persistent class's default) refuses nothing:
            # the members are not read
            if repeat is None or repeat > 0.0:
                for m in incident.members:
                    if m.source_org == report.source_org and (
                        repeat is None or abs(m.occurred_at - t) < repeat
                    ):
                        return None
        cost = gap / p.window_s
        link = p.link_m
        if rcat != category:
            cost += cfg.category_mismatch_cost
            link = min(link, cfg.mismatch_link_m)
        points = incident.points
        lat, lon = report.lat, report.lon
        if not report.point or not points or lat is None or lon is None:
            insee = report.insee
            if insee != incident.insee and all(m.insee != insee for m in incident.members):
                return None
            if gap > cfg.commune_reach_s(p):
                return None
            return cost + _COMMUNE_LEVEL  # weaker evidence than any spatial match
        if d_centre < 0.0:
            d_centre = distance_m(lat, lon, incident.lat, incident.lon)
        acc = report.acc
        # per-axis sigma of the report around the centre: its own (its source's learnt
        # scale times its accuracy) and the centre's (`Incident.centre_acc`, from its
        # members' learnt scales, in the contract's units)
        centre_var = (PRIOR_SCALE * incident.centre_acc) ** 2
        sigma = math.sqrt((self._scale * acc) ** 2 + centre_var)
        if rcat == category and d_centre < self._obs_d:  # for the estimators
            self._obs_d, self._obs_v, self._obs_c = d_centre, acc * acc, centre_var
        widen = self._widen
        allowed = min(p.radius_m + p.accuracy_factor * self._gate_z * sigma, p.max_radius_m * widen)
        if d_centre > allowed and link <= 0.0:
            return None  # refused by the centre gate, as below, without the members' distances
        # the nearest and the furthest located member (a loop: no list, no boxed floats)
        d_near, d_far = math.inf, -math.inf
        for m in points:
            d = distance_m(lat, lon, m.lat, m.lon)
            if d < d_near:
                d_near = d
            if d > d_far:
                d_far = d
        if d_far > p.max_diameter_m * widen:
            return None
        if d_centre <= allowed:
            spatial = d_centre / allowed
            sigma2 = max(sigma * sigma, 1.0)
            self._match_z2, self._match_s2 = d_centre * d_centre / sigma2, sigma2
        elif link > 0 and d_near <= link:  # mobile: the cluster may move
            spatial = 1.0 + d_near / link
            # uniform over the link disc (`_by_posterior`): N(0; sigma^2 = link^2 / 2)
            self._match_z2, self._match_s2 = 0.0, link * link / 2.0
        else:
            return None
        if gap / p.window_s + spatial > p.max_fit:
            return None
        return cost + spatial

    # ---- bookkeeping ----
    def _deadline(self, incident: Incident) -> float:
        close = incident.last_seen + self.config.params(incident.category).close_after_s
        return close if incident.status == OPEN else close + self.config.allowed_lateness_s

    def _emit(self, incident: Incident) -> Version:
        incident.version += 1
        incident.updated_at = max(self.watermark, incident.last_seen)
        if incident.status == CLOSED:
            heapq.heappush(self._deadlines, (self._deadline(incident), incident.incident_id))
        return incident.version_dict()
