"""The engine's work per report is bounded by the incidents within its reach, not by its state.

State keeps closed incidents for days after their last report (`allowed_lateness_s`, for
late reports), and a burst packs many open ones into a few cells: a report must neither
gather the incidents its time windows cannot reach (`IncidentIndex` time buckets) or of
categories it cannot join (`IncidentIndex` categories, in a commune too), nor run
the member by member rules on those too far away for any gate or past any commune window
(`Correlator._skip_test`, `engine._SkipTest`), and what it decides must stay what the full
rules decide.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from agents.core.correlation import Correlator
from agents.core.correlation.engine import _Report
from agents.core.correlation.estimate import StreamEstimates
from agents.core.correlation.incident import Incident
from agents.core.correlation.index import time_bucket
from agents.core.correlation.spatial import (
    distance_floor_m,
    distance_m,
    grid_box,
    grid_cell,
    grid_disc,
)
from agents.core.record import ReportRecord
from tests.correlation.python_engine import python_correlator
from tests.correlation.test_engine import T0, rec

HOUR = 3600.0
# the engine's Python class: `counting` patches its methods (a compiled one takes no patch)
Engine = python_correlator()


@contextmanager
def counting(engine: Correlator) -> Iterator[dict[str, int]]:
    """Counts, while open, the candidates the engine gathers (`_candidates`) and the ones it
    runs the full rules on (`_cost`)."""
    seen = {"gathered": 0, "costed": 0}
    candidates, cost = engine._candidates, engine._cost

    def gathered(record: ReportRecord, lat: float, lon: float, *since: float) -> list[Incident]:
        found = candidates(record, lat, lon, *since)
        seen["gathered"] += len(found)
        return found

    def costed(
        incident: Incident, report: _Report, chronic: bool = False, d_centre: float = -1.0
    ) -> float | None:
        seen["costed"] += 1
        return cost(incident, report, chronic, d_centre)

    engine._candidates = gathered  # type: ignore[method-assign, assignment]
    engine._cost = costed  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        del engine._candidates, engine._cost  # back to the class's


class _SkipsNothing:
    """A skip test that lets every candidate through to the full rules."""

    def skip(self, incident: Incident, d_centre: float) -> bool:
        return False


def partner_incidents(
    n: int, category: str, step_s: float, commune_only: bool = False
) -> Correlator:
    """An engine holding `n` incidents at one spot (or, `commune_only`, in one commune): one
    partner's reports of `category`, `step_s` apart (one partner's reports never merge)."""
    engine = Engine()
    for i in range(n):
        engine.process(
            rec(
                t=i * step_s,
                category=category,
                kind="police_municipale",
                org="pm-1",
                commune_only=commune_only,
            )
        )
    return engine


def old_state(n: int, commune_only: bool = False) -> Correlator:
    """`n` closed incidents at one spot (`partner_incidents`, a minute apart), then a day's
    quiet: all still in state (late reports may reopen them), none within any time window
    of a report now."""
    engine = partner_incidents(n, "degradation", 60.0, commune_only)
    engine.advance(engine.watermark + 20 * HOUR)
    assert len(engine) == n and engine.open_count == 0
    # what the engine learnt from those reports (none of them ever joined an incident, so
    # a further report of the category looks unlikely) is not what these tests are about:
    # the decision is taken on the priors, whatever `n`
    engine.estimates = StreamEstimates()
    return engine


@pytest.mark.parametrize("commune_only", [False, True])
def test_old_incidents_in_state_are_not_gathered(commune_only: bool) -> None:
    gathered = []
    for n in (50, 800):
        engine = old_state(n)
        now = engine.watermark - T0 - 60.0
        recent = rec(t=now - 600.0, category="degradation")
        report = rec(t=now, category="degradation", commune_only=commune_only)
        engine.process(recent)
        with counting(engine) as seen:
            out = engine.process(report)
        # the report joins the one incident within its window
        assert [v["version"] for v in out] == [2]
        assert set(out[0]["report_ids"]) == {recent.report_id, report.report_id}
        gathered.append(seen["gathered"])
    # 16 times the old incidents, the same work: only the recent incident (and at most the
    # old ones of its time bucket, none here) is gathered
    assert gathered[0] == gathered[1] == 1


def test_a_commune_full_of_other_categories_is_not_gathered() -> None:
    """A commune holds every category's incidents: a commune-only report gathers only those
    of a category it may join, and a point report only the commune's incidents without a
    position (commune-only ones) of such a category, whatever the others' number."""
    assert not Engine().config.compatible("cambriolage", "rodeo")
    for commune_only in (False, True):
        gathered = []
        for n in (50, 800):
            engine = partner_incidents(n, "rodeo", 2.0, commune_only=True)  # open, apart
            recent = rec(t=n * 2.0, category="cambriolage", commune_only=True)
            report = rec(t=n * 2.0 + 60.0, category="cambriolage", commune_only=commune_only)
            engine.process(recent)
            with counting(engine) as seen:
                out = engine.process(report)
            assert set(out[-1]["report_ids"]) == {recent.report_id, report.report_id}
            gathered.append(seen["gathered"])
        assert gathered == [1, 1]


def test_old_commune_only_incidents_are_not_gathered_by_a_point_report() -> None:
    """Incidents without a position are looked up by commune and time bucket too: the days
    of closed commune-only incidents kept for late reports are not read."""
    gathered = []
    for n in (50, 800):
        engine = old_state(n, commune_only=True)
        now = engine.watermark - T0 - 60.0
        with counting(engine) as seen:
            engine.process(rec(t=now, category="degradation"))
        gathered.append(seen["gathered"])
    assert gathered == [0, 0]


def test_a_burst_runs_the_full_rules_only_on_incidents_in_reach() -> None:
    """Many open incidents of one category around a report (one partner's, so they do not
    merge): the full rules run only on those within a search radius of it."""
    rnd = random.Random(3)
    engine = Engine()
    for i in range(400):
        engine.process(
            rec(
                east_m=rnd.uniform(-1500, 1500),
                north_m=rnd.uniform(-1500, 1500),
                t=i * 5.0,
                category="degradation",
                kind="police_municipale",
                org="pm-1",
                accuracy=10.0,
            )
        )
    report = rec(t=2001.0, category="degradation", accuracy=10.0)
    assert report.lat is not None and report.lon is not None
    states = list(engine._index.incidents.values())
    within = sum(1 for s in states if distance_m(report.lat, report.lon, s.lat, s.lon) <= 350.0)
    with counting(engine) as seen:
        engine.process(report)
    assert 0 < within < 40 and seen["gathered"] > 3 * within
    assert 0 < seen["costed"] <= within


def test_skipping_far_incidents_decides_as_the_full_rules() -> None:
    """Random mixed streams (mobile links, cross-category pairs, coarse sources): the engine
    decides as one that runs the full rules on every gathered candidate."""
    rnd = random.Random(11)
    cats = ["rodeo", "nuisance", "cambriolage", "vol", "degradation", "trafic_stupefiants"]
    stream = [
        rec(
            east_m=rnd.uniform(-2500, 2500),
            north_m=rnd.uniform(-2500, 2500),
            t=i * 20.0,
            category=rnd.choice(cats),
            kind=rnd.choice(["citizen", "police_nationale", "police_municipale"]),
            org=rnd.choice(["citoyen", "csp-evry", "pm"]),
            accuracy=rnd.choice([10.0, 50.0, 300.0, None]),
            commune_only=rnd.random() < 0.05,
            contact=f"c{i % 40}",
        )
        for i in range(1500)
    ]
    fast, full = Engine(), Engine()
    full._skip_test = lambda *_: _SkipsNothing()  # type: ignore[method-assign, assignment]
    for r in stream:
        assert fast.process(r) == full.process(r)
    assert fast.export_estimates() == full.export_estimates()


def test_time_buckets_follow_the_latest_report() -> None:
    """An incident joined by later reports moves bucket; a late report does not move it."""
    engine = Engine()
    first = rec(t=0.0, category="campement_illicite", kind="bailleur_social", org="b-1")
    later = [
        rec(t=k * 20 * HOUR, category="campement_illicite", reported_after=60.0)
        for k in range(1, 5)
    ]
    late = rec(t=-2 * HOUR, category="campement_illicite", reported_after=30 * HOUR)
    for r in (first, *later, late):
        engine.process(r)
        index = engine._index
        for iid, buckets in index.bucketing().items():
            assert buckets == {time_bucket(index.incidents[iid].last_occurred_at)}
    assert len(engine) == 1


def test_distance_floor_is_below_every_distance_in_the_box() -> None:
    rnd = random.Random(5)
    for _ in range(3000):
        lat0, lon0 = rnd.uniform(-70, 70), rnd.uniform(-170, 170)
        box_lat = sorted(lat0 + rnd.uniform(-0.05, 0.05) for _ in range(2))
        box_lon = sorted(lon0 + rnd.uniform(-0.05, 0.05) for _ in range(2))
        lat, lon = lat0 + rnd.uniform(-0.2, 0.2), lon0 + rnd.uniform(-0.2, 0.2)
        floor = distance_floor_m(lat, lon, *box_lat, *box_lon)
        inside = [(rnd.uniform(*box_lat), rnd.uniform(*box_lon)) for _ in range(5)] + [
            (a, b) for a in box_lat for b in box_lon
        ]
        nearest = min(distance_m(lat, lon, a, b) for a, b in inside)
        assert floor <= nearest * (1 + 1e-12) + 1e-9
    assert distance_floor_m(48.6, 2.4, 48.5, 48.7, 2.3, 2.5) == 0.0
    assert math.isclose(
        distance_floor_m(48.6, 2.4, 48.6, 48.6, 2.41, 2.42), distance_m(48.6, 2.4, 48.6, 2.41)
    )


@pytest.mark.parametrize("radius", [100.0, 350.0, 525.0, 900.0, 3600.0])
@pytest.mark.parametrize("lat_range", [(48.3, 48.78), (-70.0, 70.0)])
def test_search_disc_holds_every_point_within_the_radius(
    radius: float, lat_range: tuple[float, float]
) -> None:
    """`grid_disc` holds the cell of every point `distance_m` puts within the radius, right
    up to its edge, and never more cells than the worst-case box (`grid_box`)."""
    rnd = random.Random(int(radius))
    for _ in range(400):
        lat, lon = rnd.uniform(*lat_range), rnd.uniform(-179.0, 179.0)
        disc = grid_disc(lat, lon, radius)
        assert set(disc) <= set(grid_box(lat, lon, radius))
        bearing = rnd.uniform(0, 2 * math.pi)
        unit_lat = math.cos(bearing) / 111_320.0
        unit_lon = math.sin(bearing) / (111_320.0 * math.cos(math.radians(lat)))
        for share in (rnd.random(), 1.0 - 1e-12, 1.0):
            d = radius * share
            lat2, lon2 = lat + d * unit_lat, lon + d * unit_lon
            # onto the radius by `distance_m` itself (its cosine is at the mid latitude)
            scale = d / distance_m(lat, lon, lat2, lon2)
            lat2, lon2 = lat + d * scale * unit_lat, lon + d * scale * unit_lon
            if distance_m(lat, lon, lat2, lon2) <= radius:
                assert grid_cell(lat2, lon2) in disc


@pytest.mark.parametrize("category", ["rodeo", "nuisance"])
def test_a_moving_incident_is_joined_by_link_far_from_its_centre(category: str) -> None:
    """A rodeo moving east: a report past its latest position, beyond any centre gate but
    within a link of that member (a nuisance report: the shorter cross-category link), is
    not skipped as far: it joins."""
    engine = Engine()
    path = [
        rec(east_m=450.0 * k, t=120.0 * k, category="rodeo", accuracy=10.0, contact=f"w{k}")
        for k in range(5)
    ]
    run = [engine.process(r) for r in path]
    assert len(engine) == 1 and run[-1][-1]["version"] == 5
    beyond = 1800.0 + (280.0 if category == "nuisance" else 350.0)
    report = rec(east_m=beyond, t=600.0, category=category, accuracy=10.0, contact="w9")
    incident = next(iter(engine._index.incidents.values()))
    assert report.lat is not None and report.lon is not None
    assert distance_m(report.lat, report.lon, incident.lat, incident.lon) > 1000.0
    out = engine.process(report)
    assert len(engine) == 1 and out[-1]["version"] == 6


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_state_with_a_time_out_of_range_still_restores_and_is_indexed(bad: float) -> None:
    """Time buckets take any float: a hand-edited state with a non-finite latest time
    restores as before, indexed in one bucket (+inf: the last, read by every look-up)."""
    engine = Engine()
    out = engine.process(rec(category="degradation"))
    state = engine.export_incident(out[-1]["incident_id"])
    state["last_occurred_at"] = bad
    again = Engine()
    again.restore([state])
    index = again._index
    assert index.bucketing() == {state["incident_id"]: {time_bucket(bad)}}
    report = rec(t=600.0, category="degradation")
    assert report.lat is not None and report.lon is not None
    found = {
        s.incident_id
        for s in again._candidates(report, report.lat, report.lon, report.occurred_at - HOUR)
    }
    assert (state["incident_id"] in found) is (bad == math.inf)


class _CountingBuckets(dict[int, set[Incident]]):
    """A key's buckets that count every bucket they hand out, by look-up or by walk."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.reads = 0

    def get(self, key: int, default: object = None) -> object:  # type: ignore[override]
        self.reads += 1
        return super().get(key, default)

    def __getitem__(self, key: int) -> set[Incident]:
        self.reads += 1
        return super().__getitem__(key)

    def items(self) -> Iterator[tuple[int, set[Incident]]]:  # type: ignore[override]
        for pair in super().items():
            self.reads += 1
            yield pair

    def __iter__(self) -> Iterator[int]:
        for key in super().__iter__():
            self.reads += 1
            yield key

    def keys(self) -> Iterator[int]:  # type: ignore[override]
        return self.__iter__()

    def values(self) -> Iterator[set[Incident]]:  # type: ignore[override]
        for _, held in self.items():
            yield held


def _held(n: int, seed: int) -> list[Incident]:
    rnd = random.Random(seed)
    return [
        Incident.found(r, r.lat or 0.0, r.lon or 0.0)
        for r in (
            rec(east_m=rnd.uniform(-50, 50), t=i * 60.0, category="campement_illicite")
            for i in range(n)
        )
    ]


def test_a_look_up_reads_only_the_buckets_it_reaches() -> None:
    """A key holding many days of buckets (closed incidents kept for late reports) hands a
    look-up of a recent time only the buckets from that time on: its work does not grow
    with the days the key holds."""
    from agents.core.correlation import index as index_module

    incidents = _held(120, 1)
    reads = []
    for days in (2, 30):
        buckets = _CountingBuckets(
            {b: {incidents[b % len(incidents)]} for b in range(days * 4)}
        )
        last = days * 4 - 1
        found: list[Incident] = []
        index_module._gather(
            {"campement_illicite": buckets}, ("campement_illicite",), last - 1, last, days, found
        )
        assert set(found) == buckets[last - 1] | buckets[last]
        reads.append(buckets.reads - 2)  # the two reads of the assertion above
    assert reads[0] == reads[1] <= 2


def test_a_look_up_finds_the_same_incidents_whichever_way_it_reads() -> None:
    """Every incident of a bucket from `lo` on, once, whether the key holds more buckets
    than the look-up reaches (read by bucket) or fewer (walked)."""
    from agents.core.correlation import index as index_module

    incidents = _held(60, 2)
    rnd = random.Random(5)
    for mark in range(1, 300):
        buckets = {
            b: set(rnd.sample(incidents, rnd.randint(1, 4)))
            for b in rnd.sample(range(-5, 40), rnd.randint(1, 20))
        }
        lo = rnd.randint(-8, 45)
        hi = max(buckets)
        found: list[Incident] = []
        index_module._gather({"c": buckets}, ("c", "other"), lo, hi, mark, found)
        want = {i for b, held in buckets.items() if b >= lo for i in held}
        assert len(found) == len(set(found)) and set(found) == want
