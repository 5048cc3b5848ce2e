"""The match posterior against the local density of a category (`Correlator._by_posterior`):
it keeps apart the distinct incidents of a burst that the spatial gate alone would merge,
leaves honest scattered reports of one incident merged, and is neutral where the category
is sparse."""

from __future__ import annotations

import math

import pytest

from agents.core.correlation import Correlator
from agents.core.correlation.config import CorrelationConfig
from agents.core.correlation.estimate import StreamEstimates
from tests.correlation.test_engine import rec

MIN = 60.0
CATEGORY = "incendie"  # witnessed: 1 h window, 350 m cap, closes after 6 h
ACC = 150.0  # stated 95 % radius of every report: the gate admits ~330 m between two


def _ring(engine: Correlator, n: int) -> list[str]:
    """`n` earlier incidents of the category, 2 h before and 150 m around the origin (each
    one report): a burst under way there."""
    ids = []
    for i in range(n):
        a = 2.0 * math.pi * i / n
        out = engine.process(
            rec(
                east_m=150.0 * math.cos(a),
                north_m=150.0 * math.sin(a),
                t=-120.0 * MIN + i * MIN,
                category=CATEGORY,
                accuracy=ACC,
            )
        )
        ids.append(out[-1]["incident_id"])
    return ids


def _engine(density: bool = True) -> Correlator:
    return Correlator(CorrelationConfig(density=density))


@pytest.mark.parametrize("density", [True, False])
def test_burst_incidents_250_m_apart_stay_apart_only_with_the_density_term(
    density: bool,
) -> None:
    engine = _engine(density)
    ring = _ring(engine, 3)
    a = engine.process(rec(t=0.0, category=CATEGORY, accuracy=ACC))[-1]["incident_id"]
    b = engine.process(rec(east_m=-250.0, t=10.0 * MIN, category=CATEGORY, accuracy=ACC))[-1][
        "incident_id"
    ]
    assert a not in ring
    # the gate alone admits 250 m at this accuracy: without the term, one incident
    assert (a != b) is density


def test_scattered_reports_of_one_incident_still_merge_in_a_burst() -> None:
    engine = _engine()
    _ring(engine, 3)
    a = engine.process(rec(t=0.0, category=CATEGORY, accuracy=ACC))[-1]["incident_id"]
    b = engine.process(
        rec(east_m=90.0, north_m=-40.0, t=5.0 * MIN, category=CATEGORY, accuracy=ACC)
    )[-1]
    assert b["incident_id"] == a and b["report_count"] == 2


def test_density_term_is_neutral_where_the_category_is_sparse() -> None:
    """Alone in its neighbourhood, the same 250 m pair merges as the gate says."""
    engine = _engine()
    a = engine.process(rec(t=0.0, category=CATEGORY, accuracy=ACC))[-1]["incident_id"]
    b = engine.process(rec(east_m=-250.0, t=10.0 * MIN, category=CATEGORY, accuracy=ACC))
    assert b[-1]["incident_id"] == a
    # other categories around do not count against it
    engine = _engine()
    for i in range(4):
        engine.process(rec(east_m=100.0 * i, t=-60.0 * MIN, category="nuisance", accuracy=ACC))
    a = engine.process(rec(t=0.0, category=CATEGORY, accuracy=ACC))[-1]["incident_id"]
    b = engine.process(rec(east_m=-250.0, t=10.0 * MIN, category=CATEGORY, accuracy=ACC))
    assert b[-1]["incident_id"] == a


def test_a_report_between_two_burst_incidents_joins_the_nearer_one() -> None:
    engine = _engine()
    _ring(engine, 3)
    a = engine.process(rec(t=0.0, category=CATEGORY, accuracy=ACC))[-1]["incident_id"]
    b = engine.process(rec(east_m=-300.0, t=1.0 * MIN, category=CATEGORY, accuracy=ACC))[-1][
        "incident_id"
    ]
    assert a != b
    # 80 m from b, 220 m from a: b's, though a is older and both pass the gate
    c = engine.process(
        rec(east_m=-220.0, north_m=10.0, t=3.0 * MIN, category=CATEGORY, accuracy=ACC)
    )[-1]["incident_id"]
    assert c == b


def test_a_report_halfway_between_two_burst_incidents_founds_its_own() -> None:
    """Two incidents of a burst explain it equally well: the posterior of either, against a
    new incident and the other, stays under one half, so it joins neither (a report a
    little nearer one of them joins it: the test above)."""
    engine = _engine()
    _ring(engine, 3)
    a = engine.process(rec(east_m=-150.0, t=0.0, category=CATEGORY, accuracy=ACC))[-1]
    b = engine.process(rec(east_m=150.0, t=1.0 * MIN, category=CATEGORY, accuracy=ACC))[-1]
    assert a["incident_id"] != b["incident_id"]
    c = engine.process(rec(north_m=-30.0, t=2.0 * MIN, category=CATEGORY, accuracy=ACC))[-1]
    assert c["incident_id"] not in (a["incident_id"], b["incident_id"])
    assert c["report_count"] == 1


def _joins_nearby(neighbour_reports: int, east_m: float) -> bool:
    """Whether a report `east_m` east of a one-report incident joins it, a neighbour
    incident of the category 100 m north having been reported `neighbour_reports` times
    100 minutes before (outside the 1 h window: never a candidate, only the local rate).
    Priors only (`learn` off): both cases weigh the reports with the same estimates."""
    engine = Correlator(CorrelationConfig(learn=False))
    for i in range(neighbour_reports):
        engine.process(
            rec(north_m=100.0, t=-100.0 * MIN + i * 10.0, category=CATEGORY, accuracy=ACC)
        )
    first = engine.process(rec(t=0.0, category=CATEGORY, accuracy=ACC))[-1]
    assert first["report_count"] == 1  # the neighbour is out of its window
    out = engine.process(rec(east_m=east_m, t=10.0 * MIN, category=CATEGORY, accuracy=ACC))
    return bool(out[-1]["incident_id"] == first["incident_id"])


def test_the_local_rate_counts_the_reports_around_not_the_engines_incidents() -> None:
    """One incident holding six reports is, at one further report per incident, the rate
    of three: the posterior is stricter beside it than beside a one-report incident. (Counted
    by incidents, both neighbours weigh alike: an engine that merged a burst's incidents
    into one would see its rate drop and merge more.)"""
    reach = {
        n: max((x for x in range(0, 401, 10) if _joins_nearby(n, float(x))), default=-1)
        for n in (1, 6)
    }
    assert reach[1] > reach[6] > 0  # the busy neighbour leaves a smaller join radius
    assert _joins_nearby(6, 20.0)  # close by, the report still joins


def test_estimates_behind_the_posterior() -> None:
    est = StreamEstimates()
    assert est.further_reports("point") == pytest.approx(1.0)  # prior: join share 1/2
    for _ in range(300):
        est.observe_outcome("point", True)
        est.observe_outcome("point", False)
        est.observe_outcome("point", False)
    assert est.further_reports("point") == pytest.approx(0.5, rel=0.05)  # 1 join per 2
    # time density: Laplace around the start, integrating to 1
    step = 10.0
    mass = sum(est.time_density("point", k * step) * step for k in range(-3000, 3000))
    assert mass == pytest.approx(1.0, rel=0.01)
    assert est.time_density("point", 0.0) > est.time_density("point", 3600.0)
    # category: the prior favours the report's own; learnt confusions take over
    own = est.category_likelihood("vol", "vol", 3)
    other = est.category_likelihood("vol", "cambriolage", 3)
    assert own > other > 0.0
    for _ in range(50):
        est.observe_join("point", "vol", "cambriolage", 0.0)
    assert est.category_likelihood("vol", "cambriolage", 3) > own
    again = StreamEstimates.from_dict(est.to_dict())
    assert again.further_reports("point") == pytest.approx(est.further_reports("point"))


def test_a_malformed_join_share_state_is_refused() -> None:
    good = StreamEstimates()
    good.observe_outcome("point", True)
    state = good.to_dict()
    assert StreamEstimates.from_dict(state).outcome["point"].n == pytest.approx(1.0)
    state["outcome"] = {"point": [1.0, "x"]}
    with pytest.raises(ValueError, match="estimates state"):
        StreamEstimates.from_dict(state)
