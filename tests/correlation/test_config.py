"""Correlation parameters, confidence formula, neighbourhood search bound, partition key."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import h3
import pytest

from agents.core.correlation.confidence import confidence, source_weight
from agents.core.correlation.config import MOBILE, PERSISTENT, POINT, CorrelationConfig
from agents.core.correlation.spatial import (
    cell_of,
    distance_m,
    grid_box,
    grid_cell,
    partition_key,
)
from agents.core.record import ReportRecord


def test_compatibility_table_is_symmetric_and_explicit() -> None:
    cfg = CorrelationConfig()
    for a, b in (("rodeo", "nuisance"), ("incendie", "degradation"), ("cambriolage", "vol")):
        assert cfg.compatible(a, b) and cfg.compatible(b, a)
    assert cfg.compatible("vol", "vol")
    assert not cfg.compatible("cambriolage", "rodeo")
    assert not cfg.compatible("incendie", "violence")
    custom = CorrelationConfig(compatible_pairs=())
    assert not custom.compatible("rodeo", "nuisance")


def test_classes_and_pair_parameters() -> None:
    cfg = CorrelationConfig()
    assert cfg.class_of("cambriolage") == POINT
    assert cfg.class_of("rodeo") == MOBILE
    assert cfg.class_of("campement_illicite") == PERSISTENT
    assert cfg.class_of("unknown") == POINT
    # a rodeo reported as a nuisance is matched with the rodeo's (mobile) parameters
    assert cfg.pair_params("nuisance", "rodeo") is cfg.params("rodeo")
    assert cfg.pair_params("rodeo", "nuisance") is cfg.params("rodeo")
    assert cfg.params("rodeo").link_m == cfg.classes[MOBILE].link_m
    assert cfg.search_radius_m("nuisance") >= cfg.classes[MOBILE].link_m
    assert cfg.search_radius_m("cambriolage") == cfg.classes[POINT].max_radius_m


def test_category_parameters_override_their_class() -> None:
    cfg = CorrelationConfig()
    camp, deal = cfg.params("campement_illicite"), cfg.params("trafic_stupefiants")
    assert camp.window_s > deal.window_s and camp.max_span_s > deal.max_span_s
    assert cfg.params("occupation_hall").radius_m == cfg.classes[PERSISTENT].radius_m
    # a rodeo session longer than an hour is several rodeos
    assert cfg.params("rodeo").max_span_s == 3600.0 < cfg.classes[MOBILE].max_span_s
    plain = CorrelationConfig(category_params={})
    assert plain.params("campement_illicite") is plain.classes[PERSISTENT]


@pytest.mark.parametrize("radius", [100.0, 350.0, 900.0, 2000.0])
@pytest.mark.parametrize("lat_range", [(48.3, 48.78), (-60.0, 65.0)])
def test_search_grid_box_holds_every_point_within_the_radius(
    radius: float, lat_range: tuple[float, float]
) -> None:
    rnd = random.Random(int(radius))
    for _ in range(400):
        lat, lon = rnd.uniform(*lat_range), rnd.uniform(-179.0, 179.0)
        d, bearing = radius * math.sqrt(rnd.random()), rnd.uniform(0, 2 * math.pi)
        lat2 = lat + d * math.cos(bearing) / 111_320.0
        lon2 = lon + d * math.sin(bearing) / (111_320.0 * math.cos(math.radians(lat)))
        assert distance_m(lat, lon, lat2, lon2) == pytest.approx(d, rel=2e-3, abs=0.5)
        assert grid_cell(lat2, lon2) in grid_box(lat, lon, radius)


def _rec(lat: float, lon: float) -> ReportRecord:
    return ReportRecord(
        report_id="r",
        source_kind="citizen",
        source_org="citoyen",
        source_channel=None,
        category="vol",
        occurred_at=0.0,
        reported_at=0.0,
        lat=lat,
        lon=lon,
        accuracy_m=None,
        insee="91228",
        severity=None,
        contact_hash=None,
        description_hash=None,
        description_len=0,
        h3_r9=cell_of(lat, lon),
    )


def test_partition_key_is_a_coarse_parent_shared_by_neighbours() -> None:
    a, b = _rec(48.6300, 2.4400), _rec(48.6305, 2.4405)
    assert partition_key(a) == h3.cell_to_parent(a.h3_r9, 5)
    assert partition_key(a, 4) == h3.cell_to_parent(a.h3_r9, 4)
    assert partition_key(a) == partition_key(b)
    far = _rec(48.40, 2.00)
    assert partition_key(far, 6) != partition_key(a, 6)


@dataclass(frozen=True)
class _Reporter:
    source_kind: str
    source_org: str
    report_id: str
    contact_hash: str | None


def _m(kind: str, org: str, rid: str, contact: str | None = None) -> _Reporter:
    return _Reporter(kind, org, rid, contact)


def test_confidence_formula() -> None:
    police = _m("police_nationale", "csp-evry", "p1")
    assert confidence([police]) == 0.6
    assert confidence([police, _m("police_nationale", "csp-evry", "p2")]) == 0.6  # one org
    citizen = _m("citizen", "citoyen", "c1", "h1")
    assert confidence([police, citizen]) == pytest.approx(1 - 0.4 * 0.75)
    same_citizen_twice = [citizen, _m("citizen", "citoyen", "c2", "h1")]
    assert confidence(same_citizen_twice) == 0.25
    three = [_m("citizen", "citoyen", f"c{i}", f"h{i}") for i in range(3)]
    assert confidence(three) == pytest.approx(1 - 0.75**3, abs=1e-4)
    anonymous = [_m("citizen", "citoyen", f"a{i}") for i in range(2)]  # no contact: distinct
    assert confidence(anonymous) == pytest.approx(1 - 0.85**2, abs=1e-4)
    assert (
        source_weight("gendarmerie") > source_weight("bailleur_social") > source_weight("citizen")
    )
    assert 0.0 <= confidence(three + anonymous + [police]) < 1.0
