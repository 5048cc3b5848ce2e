"""Rules of the correlation engine, one test each, on hand-made enriched records."""

from __future__ import annotations

import math
import random
from typing import Any

import h3
import orjson
import pytest

from agents.core.correlation import VERSION_KEYS, Correlator, incident_json
from agents.core.correlation.config import CorrelationConfig
from agents.core.correlation.engine import _Report
from agents.core.correlation.estimate import StreamEstimates
from agents.core.record import ReportRecord
from schemas.incident import Incident

LAT0, LON0 = 48.6290, 2.4410  # Évry-Courcouronnes
T0 = 1_710_748_800.0  # 2024-03-18 08:00 UTC
M_PER_DEG = 111_320.0
_seq = 0


def rec(
    *,
    east_m: float = 0.0,
    north_m: float = 0.0,
    t: float = 0.0,
    category: str = "cambriolage",
    kind: str = "citizen",
    org: str = "citoyen",
    contact: str | None = None,
    accuracy: float | None = 20.0,
    commune_only: bool = False,
    insee: str = "91228",
    reported_after: float = 60.0,
    report_id: str | None = None,
) -> ReportRecord:
    """An enriched record `east_m`/`north_m` metres from the origin, `t` seconds after T0."""
    global _seq
    _seq += 1
    lat = LAT0 + north_m / M_PER_DEG
    lon = LON0 + east_m / (M_PER_DEG * math.cos(math.radians(LAT0)))
    r9 = h3.latlng_to_cell(lat, lon, 9)
    return ReportRecord(
        report_id=report_id or f"R-{_seq:06d}",
        source_kind=kind,
        source_org=org,
        source_channel=None,
        category=category,
        occurred_at=T0 + t,
        reported_at=T0 + t + reported_after,
        lat=lat,
        lon=lon,
        accuracy_m=None if commune_only else accuracy,
        insee=insee,
        severity=None,
        contact_hash=contact,
        description_hash=None,
        description_len=0,
        commune="Évry-Courcouronnes",
        jurisdiction="csp-evry",
        precision="commune" if commune_only else "point",
        h3_r7=h3.cell_to_parent(r9, 7),
        h3_r8=h3.cell_to_parent(r9, 8),
        h3_r9=r9,
    )


def run(engine: Correlator, *records: ReportRecord) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in records:
        out.extend(engine.process(r))
    return out


def final(versions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for v in versions:
        last[v["incident_id"]] = v
    return last


def groups(versions: list[dict[str, Any]]) -> list[set[str]]:
    return sorted((set(v["report_ids"]) for v in final(versions).values()), key=min)


# ---- merge rules ----
def test_citizen_and_police_reports_of_one_burglary_merge() -> None:
    a = rec(kind="police_nationale", org="csp-evry", t=0)
    b = rec(east_m=40, t=1800, contact="h1")
    assert groups(run(Correlator(), a, b)) == [{a.report_id, b.report_id}]


def test_two_records_of_one_partner_system_stay_apart() -> None:
    a = rec(kind="police_nationale", org="csp-evry")
    b = rec(kind="police_nationale", org="csp-evry", east_m=30, t=600)
    c = rec(kind="police_nationale", org="gendarmerie-91", east_m=10, t=300)
    engine = Correlator()
    out = run(engine, a, b, c)
    assert len(final(out)) == 2
    # the other partner joins one of them, never both records of csp-evry together
    for g in groups(out):
        assert not {a.report_id, b.report_id} <= g


def test_same_partner_may_re_report_a_persistent_incident_at_any_interval() -> None:
    """A persistent situation is observed again and again by the same partner (each round
    of a landlord's guard, each patrol): its records merge, half a day or five minutes
    apart; one-off events keep the rule (`test_two_records_of_one_partner_system_stay_apart`).
    The exception is configurable per class (`partner_repeat_s`)."""
    day = 86400.0
    a = rec(category="campement_illicite", kind="bailleur_social", org="bailleur-3f")
    b = rec(category="campement_illicite", kind="bailleur_social", org="bailleur-3f", t=0.5 * day)
    assert len(final(run(Correlator(), a, b))) == 1
    c = rec(category="occupation_hall", kind="bailleur_social", org="bailleur-3f", t=600)
    d = rec(category="occupation_hall", kind="bailleur_social", org="bailleur-3f", t=900)
    assert len(final(run(Correlator(), c, d))) == 1
    # with a minimum interval between a partner's records of one situation: kept apart
    three_hours = Correlator(partner_repeat_s={"persistent": 3 * 3600.0})
    c = rec(category="occupation_hall", kind="bailleur_social", org="bailleur-3f", t=600)
    d = rec(category="occupation_hall", kind="bailleur_social", org="bailleur-3f", t=900)
    assert len(final(run(three_hours, c, d))) == 2
    # two places of one partner, 400 m apart: two situations (the spatial gate)
    e = rec(category="occupation_hall", kind="bailleur_social", org="bailleur-3f", t=600)
    f = rec(
        category="occupation_hall", kind="bailleur_social", org="bailleur-3f", t=900, east_m=400
    )
    assert len(final(run(Correlator(), e, f))) == 2


@pytest.mark.parametrize(("cat_a", "cat_b"), [("rodeo", "nuisance"), ("incendie", "degradation")])
def test_compatible_categories_merge(cat_a: str, cat_b: str) -> None:
    a = rec(category=cat_a, kind="police_municipale", org="pm-evry")
    b = rec(category=cat_b, east_m=50, t=300, contact="h2")
    out = run(Correlator(), a, b)
    [inc] = final(out).values()
    assert inc["category"] == cat_a  # the partner outweighs the citizen's label
    assert inc["categories"] == sorted([cat_a, cat_b])


def test_incompatible_categories_do_not_merge() -> None:
    a = rec(category="cambriolage", kind="police_nationale", org="csp-evry")
    b = rec(category="rodeo", east_m=10, t=60)
    c = rec(category="violence", east_m=5, t=120)
    assert len(final(run(Correlator(), a, b, c))) == 3


def test_far_apart_or_long_after_do_not_merge() -> None:
    a = rec(kind="police_nationale", org="csp-evry")
    far = rec(east_m=2000, t=300)
    later = rec(t=2 * 86400)
    assert len(final(run(Correlator(), a, far, later))) == 3


def test_mobile_rodeo_follows_its_path() -> None:
    # a rodeo seen along a 1 km street within 30 min: one incident
    rs = [rec(category="rodeo", east_m=200 * i, t=360 * i, contact=f"c{i}") for i in range(6)]
    out = run(Correlator(), *rs)
    assert groups(out) == [{r.report_id for r in rs}]


def test_a_relabelled_report_joins_a_rodeo_only_close_to_its_path() -> None:
    """Along the path (link), a rodeo report joins 500 m from the last sighting; a noise
    complaint that far is more often another nuisance (`mismatch_link_m`), but joins when it
    is close to the rodeo."""
    path = [rec(category="rodeo", east_m=300 * i, t=120 * i, contact=f"p{i}") for i in range(2)]
    ahead = 300 + 500

    def joins(category: str, east_m: float) -> bool:
        late = rec(category=category, east_m=east_m, t=400, contact="n1")
        return len(final(run(Correlator(), *path, late))) == 1

    assert joins("rodeo", ahead)
    assert not joins("nuisance", ahead)
    assert joins("nuisance", 300 + 250)
    wide = Correlator(CorrelationConfig(mismatch_link_m=600.0))
    late = rec(category="nuisance", east_m=ahead, t=400, contact="n1")
    assert len(final(run(wide, *path, late))) == 1


def test_chain_guard_bounds_the_spread() -> None:
    cfg = CorrelationConfig()
    p = cfg.params("rodeo")
    step = 0.9 * p.link_m
    rs = [rec(category="rodeo", east_m=step * i, t=120 * i, contact=f"k{i}") for i in range(12)]
    out = run(Correlator(cfg), *rs)
    assert len(final(out)) >= 2  # the chain is cut
    pos = {r.report_id: step * i for i, r in enumerate(rs)}
    for g in groups(out):
        xs = [pos[i] for i in g]
        assert max(xs) - min(xs) <= p.max_diameter_m


def test_same_citizen_twice_counts_once() -> None:
    one = run(Correlator(), rec(contact="same"), rec(contact="same", east_m=10, t=60))
    two = run(Correlator(), rec(contact="x"), rec(contact="y", east_m=10, t=60))
    assert final(one) and final(two)
    [c_one] = [v["confidence"] for v in final(one).values()]
    [c_two] = [v["confidence"] for v in final(two).values()]
    [c_single] = [v["confidence"] for v in final(run(Correlator(), rec(contact="z"))).values()]
    assert c_one == c_single < c_two


def test_confidence_grows_with_partner_weight() -> None:
    police = final(run(Correlator(), rec(kind="police_nationale", org="csp-evry")))
    landlord = final(run(Correlator(), rec(kind="bailleur_social", org="bailleur-3f")))
    citizen = final(run(Correlator(), rec(contact="c")))
    conf = [next(iter(d.values()))["confidence"] for d in (police, landlord, citizen)]
    assert 1.0 >= conf[0] > conf[1] > conf[2] > 0.0


# ---- precision-aware ----
def test_commune_only_report_joins_the_single_candidate_without_moving_it() -> None:
    a = rec(kind="police_nationale", org="csp-evry", east_m=800, north_m=-300)
    b = rec(commune_only=True, t=900, contact="h")  # placed at the commune's point
    engine = Correlator()
    out = run(engine, a, b)
    [inc] = final(out).values()
    assert inc["report_count"] == 2 and inc["precision"] == "point"
    assert (inc["lat"], inc["lon"]) == (round(a.lat or 0, 6), round(a.lon or 0, 6))


def test_commune_only_report_stays_apart_when_ambiguous_or_elsewhere() -> None:
    a = rec(kind="police_nationale", org="csp-evry", east_m=-1500)
    b = rec(kind="gendarmerie", org="bgend-x", east_m=1500, t=60)
    c = rec(commune_only=True, t=900)
    assert len(final(run(Correlator(), a, b, c))) == 3
    d = rec(kind="police_nationale", org="csp-evry")
    e = rec(commune_only=True, t=900, insee="91201")
    assert len(final(run(Correlator(), d, e))) == 2


def test_commune_only_match_weighs_closeness_in_time() -> None:
    """Without a position, time is the only evidence: a commune-level match is taken when
    its posterior (`Correlator._by_commune_posterior`) holds, which closeness in time
    raises. 40 minutes after a burglary, past the fixed 15-minute commune window of the
    older rule (`commune_posterior` off), a commune-only report of one joins; three hours
    after, it stays apart."""
    cfg = CorrelationConfig()
    assert cfg.commune_posterior
    old_rule = CorrelationConfig(commune_posterior=False)
    assert old_rule.params("cambriolage").commune_window_s < 40 * 60

    def merged(config: CorrelationConfig, after_s: float) -> bool:
        a = rec(kind="police_nationale", org="csp-evry")
        b = rec(commune_only=True, t=after_s, contact="n")
        return len(final(run(Correlator(config), a, b))) == 1

    assert merged(cfg, 40 * 60)
    assert not merged(old_rule, 40 * 60)
    assert not merged(cfg, 1.25 * 3600)
    assert not merged(cfg, 3 * 3600)
    # a point report as far in time as a refused commune-only one (1.25 h), close in place,
    # merges (the spatial evidence)
    c = rec(kind="police_nationale", org="csp-evry")
    d = rec(east_m=40, t=1.25 * 3600, contact="p")
    assert len(final(run(Correlator(cfg), c, d))) == 1


def test_commune_only_match_reads_the_communes_rate_of_the_category() -> None:
    """The same commune-only report, 40 minutes after a burglary, joins it in a commune
    where no other burglary started lately, and stays apart in one where six did (they are
    no candidates: too long ago for its time window, but they tell that another burglary
    in the town is likely)."""

    def merged(others: int) -> bool:
        engine = Correlator()
        # six burglaries 4 to 5 hours earlier, far apart, one partner each (none merge)
        for i in range(others):
            engine.process(
                rec(
                    kind="police_municipale",
                    org=f"pm-{i}",
                    east_m=-3000 + 1000 * i,
                    north_m=2000,
                    t=-5 * 3600 + 600 * i,
                )
            )
        engine.estimates = StreamEstimates()  # the same priors in both towns
        a = rec(kind="police_nationale", org="csp-evry")
        b = rec(commune_only=True, t=40 * 60, contact="n")
        run(engine, a)
        out = engine.process(b)
        return out[-1]["report_count"] == 2

    assert merged(0)
    assert not merged(6)


def test_encampment_reports_days_apart_merge_but_dealing_nights_do_not() -> None:
    day = 86400.0
    camp = [
        rec(category="campement_illicite", kind="police_municipale", org="pm", t=0.0),
        rec(
            category="campement_illicite", kind="bailleur_social", org="b3f", t=2.5 * day, east_m=30
        ),
    ]
    assert len(final(run(Correlator(), *camp))) == 1
    deal = [
        rec(category="trafic_stupefiants", kind="police_municipale", org="pm", t=0.0),
        rec(
            category="trafic_stupefiants", kind="bailleur_social", org="b3f", t=2.5 * day, east_m=30
        ),
    ]
    assert len(final(run(Correlator(), *deal))) == 2


def test_candidate_search_finds_every_admissible_incident() -> None:
    """The search grid never hides an incident a report could join: brute force over all
    incidents in state agrees with the indexed search."""
    import random

    rnd = random.Random(7)
    engine = Correlator()
    cats = ["rodeo", "nuisance", "cambriolage", "vol", "trafic_stupefiants", "incendie"]
    for i in range(600):
        r = rec(
            east_m=rnd.uniform(-3000, 3000),
            north_m=rnd.uniform(-3000, 3000),
            t=i * 30.0,
            category=rnd.choice(cats),
            kind=rnd.choice(["citizen", "police_nationale", "police_municipale"]),
            org=rnd.choice(["citoyen", "csp-evry", "pm"]),
            accuracy=rnd.choice([10.0, 50.0, 300.0]),
            contact=f"c{i}",
        )
        assert r.lat is not None and r.lon is not None
        found = {s.incident_id for s in engine._candidates(r, r.lat, r.lon)}
        admissible = {
            iid
            for iid, incident in engine._index.incidents.items()
            if engine._cost(incident, _Report(r)) is not None
        }
        assert admissible <= found
        engine.process(r)


def test_commune_only_reports_do_not_glue_point_incidents() -> None:
    c = rec(commune_only=True)
    a = rec(kind="police_nationale", org="csp-evry", east_m=-1500, t=60)
    b = rec(kind="gendarmerie", org="bgend-x", east_m=1500, t=120)
    out = run(Correlator(), c, a, b)
    for g in groups(out):
        assert not {a.report_id, b.report_id} <= g


# ---- idempotence, lateness, lifecycle ----
def test_exact_redelivery_is_ignored() -> None:
    a = rec(kind="police_nationale", org="csp-evry")
    engine = Correlator()
    first = engine.process(a)
    assert engine.process(a) == []
    assert engine.export_incident(first[-1]["incident_id"])["version"] == 1


def test_an_exported_state_is_a_snapshot() -> None:
    engine = Correlator()
    [v1] = engine.process(rec(kind="police_nationale", org="csp-evry"))
    iid = v1["incident_id"]
    exported = engine.export_incident(iid)
    frozen = orjson.dumps(exported)
    engine.process(rec(east_m=40, t=600, contact="w"))  # joins the same incident
    assert engine.export_incident(iid)["version"] == 2
    assert orjson.dumps(exported) == frozen  # not even its member list grew


def test_late_report_merges_and_reopens() -> None:
    cfg = CorrelationConfig()
    engine = Correlator(cfg)
    a = rec(kind="police_nationale", org="csp-evry")
    [v1] = engine.process(a)
    closing = engine.advance(a.reported_at + cfg.params("cambriolage").close_after_s + 1)
    assert [v["status"] for v in closing] == ["closed"] and closing[0]["version"] == 2
    # the victim's report, uploaded hours later, about the same burglary
    late = rec(east_m=30, t=1200, reported_after=60.0, contact="v")
    out = engine.process(late)
    assert out[-1]["incident_id"] == v1["incident_id"]
    assert out[-1]["status"] == "open" and out[-1]["version"] == 3
    assert out[-1]["report_count"] == 2


def test_open_count_follows_every_change_of_status() -> None:
    """The open count is kept, not counted: after reports that found, join and reopen
    incidents, closures, evictions and a restore, it equals a count of the incidents open."""
    rnd = random.Random(4)
    engine = Correlator()

    def walked(e: Correlator) -> int:
        return sum(1 for iid in e.incident_ids() if e.export_incident(iid)["status"] == "open")

    last: dict[str, str] = {}  # incident id -> status of its latest version
    reopened, t, mixed = 0, 0.0, False  # mixed: open and closed incidents at once
    for i in range(600):
        t += rnd.expovariate(1 / 900.0)  # a report every 15 minutes or so
        east, north = rnd.uniform(-800, 800), rnd.uniform(-800, 800)
        category = rnd.choice(["cambriolage", "rodeo", "campement_illicite"])
        versions = engine.process(
            rec(east_m=east, north_m=north, t=t, category=category, contact=f"c{i}")
        )
        if i % 40 == 0:  # the clock jumps: some close, or are evicted
            versions += engine.advance(engine.watermark + rnd.uniform(0, 3 * 86400))
        if i % 40 == 1:  # past every close: a late report of the same place reopens one
            versions += engine.advance(engine.watermark + 7 * 3600)
            versions += engine.process(
                rec(east_m=east, north_m=north, t=t + 60, category=category, contact=f"l{i}")
            )
        for v in versions:
            if v["status"] == "open" and last.get(v["incident_id"]) == "closed":
                reopened += 1
            last[v["incident_id"]] = v["status"]
        assert engine.open_count == walked(engine)
        mixed = mixed or 0 < engine.open_count < len(engine)
    assert reopened > 0 and mixed and engine.drain_evicted()  # every change of status
    rebuilt = Correlator()
    rebuilt.restore([engine.export_incident(iid) for iid in engine.incident_ids()])
    assert rebuilt.open_count == engine.open_count == walked(rebuilt)


def test_lifecycle_closes_after_class_dependent_inactivity() -> None:
    engine = Correlator()
    rodeo = rec(category="rodeo", contact="a")
    camp = rec(category="campement_illicite", kind="police_municipale", org="pm", east_m=3000)
    ids = {v["incident_id"]: v["category"] for v in run(engine, rodeo, camp)}
    assert engine.open_count == 2
    closed = engine.advance(camp.reported_at + 4 * 3600)
    assert [ids[v["incident_id"]] for v in closed] == ["rodeo"]
    assert engine.open_count == 1
    camp_close = CorrelationConfig().params("campement_illicite").close_after_s
    assert camp_close > 2 * 86400  # encampments last days
    closed = engine.advance(camp.reported_at + camp_close + 1)
    assert [ids[v["incident_id"]] for v in closed] == ["campement_illicite"]
    assert engine.advance(camp.reported_at + 86400) == []  # the clock never goes back
    # evicted after the allowed lateness: state is bounded
    engine.advance(camp.reported_at + 30 * 86400)
    assert len(engine) == 0
    assert sorted(engine.drain_evicted()) == sorted(ids) and engine.drain_evicted() == []


def test_versions_have_exactly_the_table_columns_and_valid_json() -> None:
    out = run(Correlator(), rec(kind="police_nationale", org="csp-evry"), rec(t=60, contact="c"))
    for v in out:
        assert tuple(v) == VERSION_KEYS
        model = Incident.model_validate_json(incident_json(v))
        assert model.incident_id == v["incident_id"] and model.version == v["version"]
        data = orjson.loads(incident_json(v))
        assert data["first_occurred_at"].endswith("Z")
        assert h3.get_resolution(v["h3"]) == 9 and h3.cell_to_parent(v["h3"], 7) == v["h3_r7"]
    assert [v["version"] for v in out] == [1, 2]


def test_incident_ids_are_deterministic() -> None:
    a = rec(kind="police_nationale", org="csp-evry", report_id="PN-1")
    b = rec(kind="police_nationale", org="csp-evry", report_id="PN-1")
    assert run(Correlator(), a)[0]["incident_id"] == run(Correlator(), b)[0]["incident_id"]
