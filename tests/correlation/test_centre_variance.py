"""The dispersion of a source is learnt apart from the spread of the centre it is compared
with, members weigh in the centre by their learnt dispersion, and a commune-only report's
commune counts as evidence of the incident's commune."""

from __future__ import annotations

import math
import random

import pytest

from agents.core.correlation.estimate import DispersionStats, StreamEstimates
from agents.core.correlation.incident import Incident, Member
from tests.correlation.test_engine import rec


def pairs_against_coarse_centres(
    rnd: random.Random, scale: float, centre_sigma: float, radius: float, n: int
) -> list[tuple[float, float, float]]:
    """(distance, report variance unit, centre variance) of matching pairs: a report of
    accuracy 10-60 m scattering `scale` * accuracy per axis around the true place, a centre
    scattering `centre_sigma` per axis around it (coarse citizen positions)."""
    out: list[tuple[float, float, float]] = []
    while len(out) < n:
        acc = rnd.uniform(10.0, 60.0)
        s_r, s_c = scale * acc, centre_sigma * rnd.uniform(0.5, 1.5)
        dx = rnd.gauss(0.0, s_r) - rnd.gauss(0.0, s_c)
        dy = rnd.gauss(0.0, s_r) - rnd.gauss(0.0, s_c)
        d = math.hypot(dx, dy)
        if d <= radius:
            out.append((d, acc * acc, s_c * s_c))
    return out


@pytest.mark.parametrize("true_scale", [0.4, 0.7, 1.5])
def test_a_precise_source_is_not_blamed_for_the_centres_scatter(true_scale: float) -> None:
    rnd = random.Random(11)
    stats = DispersionStats()
    for d, v, c in pairs_against_coarse_centres(rnd, true_scale, 30.0, 2000.0, 8000):
        stats.observe(d, v, 2000.0, c)
    assert stats.scale() == pytest.approx(true_scale, rel=0.15)
    # without the centre's variance the same pairs make the source look several times
    # coarser than it is (what the estimator did before)
    blind = DispersionStats()
    for d, v, _c in pairs_against_coarse_centres(random.Random(11), true_scale, 30.0, 2000.0, 8000):
        blind.observe(d, v, 2000.0)
    assert blind.scale() > 1.2 * true_scale


def test_statistics_saved_without_info_read_back() -> None:
    est = StreamEstimates.from_dict({"dispersion": {"citizen|stated": [10.0, 4.0, 12.0]}})
    stats = est.dispersion[("citizen", True)]
    assert stats.info == stats.weight == 10.0
    again = StreamEstimates.from_dict(est.to_dict())
    assert again.to_dict() == est.to_dict()
    with pytest.raises(ValueError, match="statistics"):
        StreamEstimates.from_dict({"dispersion": {"citizen|stated": [1.0, 1.0, 1.0, 1.0, 1.0]}})
    with pytest.raises(ValueError, match="finite"):
        StreamEstimates.from_dict({"dispersion": {"citizen|stated": [-1.0, 1.0, 1.0, 1.0]}})


def test_a_member_that_scatters_more_pulls_the_centre_less() -> None:
    partner = rec(kind="police_municipale", org="pm-91228", accuracy=30.0)
    citizen = rec(east_m=200.0, accuracy=30.0)
    same = Incident.found(partner, partner.lat or 0.0, partner.lon or 0.0)
    same.add(citizen, citizen.lat or 0.0, citizen.lon or 0.0)
    # the citizen's source was learnt to scatter 4 times what it states
    learnt = Incident.found(partner, partner.lat or 0.0, partner.lon or 0.0)
    learnt.add(citizen, citizen.lat or 0.0, citizen.lon or 0.0, scale_ratio=4.0)
    assert same.lon == pytest.approx((partner.lon + citizen.lon) / 2)  # type: ignore[operator]
    # inverse-variance weights 1 : 1/16: the centre 1/17 of the way to the citizen
    span = citizen.lon - partner.lon  # type: ignore[operator]
    assert learnt.lon - partner.lon == pytest.approx(span / 17.0)  # type: ignore[operator]
    assert learnt.centre_acc > same.centre_acc
    # the corrected accuracy is kept in the state, and a state without it reads back as is
    exported = learnt.to_dict([])
    assert exported["members"][1]["eff"] == pytest.approx(120.0)
    assert "eff" not in exported["members"][0]
    back = Incident.from_dict(exported)
    assert back.lon == pytest.approx(learnt.lon) and back.members[1].eff == 120.0
    legacy = dict(exported["members"][1])
    legacy.pop("eff")
    assert Member.from_dict(legacy).eff == legacy["acc"]


def test_commune_only_reports_name_the_incidents_commune() -> None:
    located = rec(insee="91228")  # its position lies in 91228 (near a border, say)
    one = rec(commune_only=True, insee="91174")
    two = rec(commune_only=True, insee="91174", t=60.0)
    inc = Incident.found(located, located.lat or 0.0, located.lon or 0.0)
    inc.add(one, one.lat or 0.0, one.lon or 0.0)
    assert inc.insee == "91228"  # one statement against one position: the position
    inc.add(two, two.lat or 0.0, two.lon or 0.0)
    assert inc.insee == "91174"  # two reports naming the commune outweigh it
    assert (inc.lat, inc.lon) == (located.lat, located.lon)  # the centre does not move
