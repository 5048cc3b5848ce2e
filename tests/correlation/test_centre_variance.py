"""The dispersion of a source is learnt apart from the spread of the centre it is compared
with, members weigh in the centre by their learnt dispersion, an incident of several
positions takes the commune of its centre, and a commune-only report's commune counts as
evidence of the incident's commune."""

from __future__ import annotations

import math
import random

import pytest

from agents.core.correlation import Correlator
from agents.core.correlation.estimate import DispersionStats, StreamEstimates
from agents.core.correlation.incident import CommuneAt, Incident, Member
from agents.core.record import ReportRecord
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


def _west_east(border_lon: float) -> tuple[list[tuple[float, float]], CommuneAt]:
    """A geocoder of two communes either side of a meridian (`Correlator`'s `commune_at`)
    that records every point it is asked about."""
    asked: list[tuple[float, float]] = []

    def commune_at(lat: float, lon: float) -> tuple[str, str, str] | None:
        asked.append((lat, lon))
        if lon < border_lon:
            return ("91228", "Évry-Courcouronnes", "pn-evry")
        return ("91174", "Corbeil-Essonnes", "pn-corbeil")

    return asked, commune_at


def test_an_incident_of_several_positions_takes_its_centres_commune() -> None:
    # two reports 200 m east of a third, each geocoded on its own side of a border 150 m
    # east of the third: the centre (133 m east) lies west of the border, its nearest
    # member east of it
    west, east, also_east = _three_reports()
    border = west.lon + (east.lon - west.lon) * 0.75  # type: ignore[operator]
    asked, commune_at = _west_east(border)
    inc = Incident.found(east, east.lat or 0.0, east.lon or 0.0)
    inc.add(also_east, also_east.lat or 0.0, also_east.lon or 0.0, commune_at=commune_at)
    assert inc.insee == "91174"
    inc.add(west, west.lat or 0.0, west.lon or 0.0, commune_at=commune_at)
    assert (inc.insee, inc.commune, inc.jurisdiction) == (
        "91228",
        "Évry-Courcouronnes",
        "pn-evry",
    )
    assert asked[-1] == (inc.lat, inc.lon) and len(asked) == 2  # the centre, at each add
    # without a geocoder: the commune of the member nearest the centre
    plain = Incident.found(east, east.lat or 0.0, east.lon or 0.0)
    plain.add(also_east, also_east.lat or 0.0, also_east.lon or 0.0)
    plain.add(west, west.lat or 0.0, west.lon or 0.0)
    assert plain.insee == "91174"


def _three_reports() -> tuple[ReportRecord, ReportRecord, ReportRecord]:
    """One report geocoded in 91228 and two 200 m east of it in 91174 (coarse citizen
    positions: one incident to the engine)."""
    return (
        rec(east_m=0.0, insee="91228", t=120.0, accuracy=150.0),
        rec(east_m=200.0, insee="91174", accuracy=150.0),
        rec(east_m=200.0, insee="91174", t=60.0, accuracy=150.0),
    )


def test_the_centres_commune_needs_two_positions_and_yields_to_stated_communes() -> None:
    asked, commune_at = _west_east(-180.0)  # every point is "east": 91174
    only = rec(insee="91228")
    inc = Incident.found(only, only.lat or 0.0, only.lon or 0.0)
    stated = rec(commune_only=True, insee="91228", t=30.0)
    inc.add(stated, stated.lat or 0.0, stated.lon or 0.0, commune_at=commune_at)
    assert asked == [] and inc.insee == "91228"  # one position: its own geocoded commune
    second = rec(east_m=50.0, insee="91228", t=60.0)
    inc.add(second, second.lat or 0.0, second.lon or 0.0, commune_at=commune_at)
    assert inc.insee == "91174"  # the centre's, one statement against it is not enough
    for k in (2, 3):
        more = rec(commune_only=True, insee="91228", t=60.0 * k)
        inc.add(more, more.lat or 0.0, more.lon or 0.0, commune_at=commune_at)
    assert inc.insee == "91228"  # three reports naming 91228 outweigh the position


def test_a_restored_incident_takes_its_centres_commune_again() -> None:
    west, east, also_east = _three_reports()
    border = west.lon + (east.lon - west.lon) * 0.75  # type: ignore[operator]
    _, commune_at = _west_east(border)
    engine = Correlator(commune_at=commune_at)
    engine.process(east)
    engine.process(also_east)
    (version,) = engine.process(west)
    assert version["insee"] == "91228" and len(version["report_ids"]) == 3
    state = engine.export_incident(version["incident_id"])
    again = Correlator(commune_at=commune_at)
    again.restore([state])
    assert again.export_incident(version["incident_id"])["insee"] == "91228"
    # a correlator without the geocoder derives it from the members alone
    plain = Correlator()
    plain.restore([state])
    assert plain.export_incident(version["incident_id"])["insee"] == "91174"


def test_a_centre_outside_the_served_area_keeps_the_nearest_members_commune() -> None:
    # an incident on the département's edge: its centre may fall outside every commune
    west, east, also_east = _three_reports()
    inc = Incident.found(east, east.lat or 0.0, east.lon or 0.0)
    for r in (also_east, west):
        inc.add(r, r.lat or 0.0, r.lon or 0.0, commune_at=lambda lat, lon: None)
    assert (inc.insee, inc.commune, inc.jurisdiction) == (
        east.insee,
        east.commune,
        east.jurisdiction,
    )
