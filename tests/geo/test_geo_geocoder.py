"""Geocoder: golden points, out-of-area rejection, commune-only reports, H3, sampling."""

from __future__ import annotations

import h3
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agents.core.geo import (
    Geocoder,
    h3_cells,
    h3_parents,
    h3_to_str,
    random_point_in,
    random_points_in,
)
from agents.core.record import ReportRecord
from agents.core.refdata import RefData, from_local_m, to_local_m
from agents.core.validation import Rejection
from schemas.rejection import RejectReason


def record(
    rid: str,
    lat: float | None = None,
    lon: float | None = None,
    insee: str | None = None,
    accuracy_m: float | None = None,
) -> ReportRecord:
    return ReportRecord(
        report_id=rid,
        source_kind="police_nationale",
        source_org="csp-evry",
        source_channel=None,
        category="vol",
        occurred_at=1.7e9,
        reported_at=1.7e9,
        lat=lat,
        lon=lon,
        accuracy_m=accuracy_m,
        insee=insee,
        severity=None,
        contact_hash=None,
        description_hash=None,
        description_len=0,
        precision="point" if insee is None else "commune",
    )


def test_every_commune_interior_point_maps_to_itself(refdata: RefData, geocoder: Geocoder) -> None:
    codes = list(refdata.communes)
    pts = [refdata.communes[c].polygon.representative_point() for c in codes]
    lats = np.array([p.y for p in pts])
    lons = np.array([p.x for p in pts])
    found = [geocoder.codes[i] for i in geocoder.locate(lats, lons)]
    assert found == codes
    assert len(codes) == 194
    for c in codes[:10]:
        com = refdata.communes[c]
        assert geocoder.insee_at(com.rep_lat, com.rep_lon) == c


def _outward_points(refdata: RefData, distance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the outline buffered `distance_m` outward (all at >= that distance)."""
    lat0 = (refdata.outline.bounds[1] + refdata.outline.bounds[3]) / 2
    ring = from_local_m(to_local_m(refdata.outline, lat0).buffer(distance_m), lat0)
    xy = shapely.get_coordinates(shapely.segmentize(ring.exterior, 0.002))
    return xy[:, 1], xy[:, 0]


def test_points_just_outside_the_departement_are_rejected(
    refdata: RefData, geocoder: Geocoder
) -> None:
    lats, lons = _outward_points(refdata, 50.0)
    assert len(lats) > 500
    assert (geocoder.locate(lats, lons) == -1).all()
    records = [record(f"r{i}", la, lo) for i, (la, lo) in enumerate(zip(lats, lons, strict=True))]
    results = geocoder.enrich_batch(records)
    assert all(isinstance(r, Rejection) and r.reason is RejectReason.OUT_OF_AREA for r in results)
    assert results[3].report_id == "r3"
    # ... and just inside (50 m inward) they are accepted
    lats_in, lons_in = _outward_points(refdata, -50.0)
    assert (geocoder.locate(lats_in, lons_in) >= 0).all()


def test_far_and_invalid_points_are_outside(geocoder: Geocoder) -> None:
    lats = np.array([48.8566, 45.76, np.nan, 48.6, 0.0])
    lons = np.array([2.3522, 4.83, 2.4, np.inf, 0.0])
    assert geocoder.locate(lats, lons).tolist() == [-1] * 5
    assert geocoder.insee_at(48.8566, 2.3522) is None  # Paris


def test_grid_index_agrees_with_brute_force(refdata: RefData, geocoder: Geocoder) -> None:
    rng = np.random.default_rng(7)
    xmin, ymin, xmax, ymax = refdata.outline.bounds
    lons = rng.uniform(xmin - 0.02, xmax + 0.02, 100_000)
    lats = rng.uniform(ymin - 0.02, ymax + 0.02, 100_000)
    expected = np.full(len(lats), -1)
    for i, code in enumerate(geocoder.codes):
        inside = shapely.contains_xy(refdata.communes[code].polygon, lons, lats)
        expected[inside] = i
    got = geocoder.locate(lats, lons)
    assert (got == expected).all()
    assert (got >= 0).sum() > 50_000  # the département fills most of its bounding box


def test_one_point_is_located_as_in_a_batch(refdata: RefData, geocoder: Geocoder) -> None:
    """`commune_at` (an incident's centre) takes the scalar path: the same commune as the
    batch path, for random points, for points on shared borders (the vertices of the
    communes' outlines: the lowest commune index) and for invalid ones."""
    rng = np.random.default_rng(11)
    xmin, ymin, xmax, ymax = refdata.outline.bounds
    lons = rng.uniform(xmin - 0.02, xmax + 0.02, 20_000)
    lats = rng.uniform(ymin - 0.02, ymax + 0.02, 20_000)
    vertices = np.concatenate(
        [shapely.get_coordinates(refdata.communes[c].polygon) for c in geocoder.codes]
    )
    lons = np.concatenate([lons, vertices[:, 0], [2.4, np.inf, np.nan, -np.inf]])
    lats = np.concatenate([lats, vertices[:, 1], [np.nan, 48.6, np.nan, 48.6]])
    batch = geocoder.locate(lats, lons)
    one = [geocoder._grid.locate_one(float(a), float(b)) for a, b in zip(lats, lons, strict=True)]
    assert one == batch.tolist()
    assert len(vertices) > 1_000 and (batch[20_000:-4] >= 0).all()
    i = int(np.argmax(batch >= 0))  # the first point inside
    at = geocoder.commune_at(float(lats[i]), float(lons[i]))
    code = geocoder.codes[batch[i]]
    assert at == (code, refdata.communes[code].name, geocoder.jurisdiction_ids[batch[i]])
    assert geocoder.commune_at(48.8566, 2.3522) is None  # Paris


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(min_value=0, max_value=193), seed=st.integers(0, 2**32 - 1))
def test_random_points_in_a_commune_map_to_it(
    refdata: RefData, geocoder: Geocoder, k: int, seed: int
) -> None:
    commune = refdata.communes[geocoder.codes[k]]
    lat, lon = random_point_in(commune, np.random.default_rng(seed))
    assert commune.polygon.contains(shapely.Point(lon, lat))
    lat0 = commune.rep_lat
    local = to_local_m(commune.polygon.boundary, lat0)
    dist_m = local.distance(to_local_m(shapely.Point(lon, lat), lat0))
    assume(dist_m > 3.0)
    assert geocoder.insee_at(lat, lon) == commune.insee


def test_random_points_are_uniform_over_the_polygon(refdata: RefData) -> None:
    commune = refdata.communes["91228"]
    lats, lons = random_points_in(commune, np.random.default_rng(3), 20_000)
    assert shapely.contains_xy(commune.polygon, lons, lats).all()
    # the share falling in the western half of the bbox matches its area share
    xmin, ymin, xmax, ymax = commune.polygon.bounds
    west = commune.polygon.intersection(shapely.box(xmin, ymin, (xmin + xmax) / 2, ymax))
    share = west.area / commune.polygon.area
    assert (lons < (xmin + xmax) / 2).mean() == pytest.approx(share, abs=0.015)


def test_enrich_batch_fills_records_in_order(refdata: RefData, geocoder: Geocoder) -> None:
    evry = refdata.communes["91228"]
    massy = refdata.communes["91377"]
    recs = [
        record("a", evry.rep_lat, evry.rep_lon, accuracy_m=12.0),
        record("b", 48.8566, 2.3522),  # Paris
        record("c", insee="91377"),
        record("d", insee="75056"),  # Paris: not in the served area
        record("e", insee="91222"),  # delegated commune of Le Mérévillois
        record("f", massy.rep_lat + 1e-4, massy.rep_lon),
    ]
    out = geocoder.enrich_batch(recs)
    assert [getattr(r, "report_id", None) for r in out] == ["a", "b", "c", "d", "e", "f"]
    a, b, c, d, e, f = out
    assert isinstance(a, ReportRecord) and a is recs[0]
    assert (a.insee, a.commune, a.precision, a.accuracy_m) == (
        "91228",
        "Évry-Courcouronnes",
        "point",
        12.0,
    )
    assert a.jurisdiction == "csp-evry"
    assert a.h3_r9 == h3.latlng_to_cell(evry.rep_lat, evry.rep_lon, 9)
    assert a.h3_r8 == h3.cell_to_parent(a.h3_r9, 8)
    assert a.h3_r7 == h3.cell_to_parent(a.h3_r9, 7)
    assert isinstance(b, Rejection) and b.reason is RejectReason.OUT_OF_AREA
    assert isinstance(c, ReportRecord)
    assert (c.lat, c.lon, c.precision) == (massy.rep_lat, massy.rep_lon, "commune")
    assert c.commune == "Massy" and c.accuracy_m is None
    assert c.h3_r9 == h3.latlng_to_cell(massy.rep_lat, massy.rep_lon, 9)
    assert isinstance(d, Rejection) and d.reason is RejectReason.UNKNOWN_INSEE
    assert d.report_id == "d"
    assert isinstance(e, ReportRecord) and (e.insee, e.commune) == ("91390", "Le Mérévillois")
    assert isinstance(f, ReportRecord) and f.insee == "91377"
    assert geocoder.enrich_batch([]) == []


def test_record_without_location_is_rejected(geocoder: Geocoder) -> None:
    (r,) = geocoder.enrich_batch([record("z")])
    assert isinstance(r, Rejection) and r.reason is RejectReason.MISSING_FIELD


def test_vectorised_h3_matches_the_library() -> None:
    rng = np.random.default_rng(11)
    lats = rng.uniform(48.2, 48.8, 5_000)
    lons = rng.uniform(1.9, 2.7, 5_000)
    r9 = h3_cells(lats, lons, 9)
    s9 = h3_to_str(r9)
    assert s9 == [h3.latlng_to_cell(a, b, 9) for a, b in zip(lats, lons, strict=True)]
    for res in (8, 7, 5, 0):
        assert h3_to_str(h3_parents(r9, 9, res)) == [h3.cell_to_parent(c, res) for c in s9]
    assert h3_to_str(np.array([], dtype=np.uint64)) == []
