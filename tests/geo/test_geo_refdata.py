"""The packaged reference file and its format."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from agents.core.refdata import (
    DEFAULT_REFDATA,
    RefData,
    area_km2,
    decode_geometry,
    encode_geometry,
    load_refdata,
    make_commune,
    quantize,
    write_refdata,
)


def test_packaged_file_is_small_and_complete(refdata: RefData) -> None:
    assert DEFAULT_REFDATA.stat().st_size < 200_000
    assert refdata.departements == ("91",)
    assert len(refdata.communes) == 194
    assert all(code.startswith("91") and len(code) == 5 for code in refdata.communes)
    assert refdata.communes["91228"].name == "Évry-Courcouronnes"
    assert "91000" in refdata.communes["91228"].postcodes
    assert refdata.communes["91377"].name == "Massy"
    # INSEE 2026 populations: Essonne is about 1.3 million inhabitants
    total = sum(c.population for c in refdata.communes.values())
    assert 1_250_000 < total < 1_450_000
    assert "IGN" in refdata.attribution and "Licence Ouverte" in refdata.attribution


def test_geometries_form_an_exact_coverage(refdata: RefData) -> None:
    polys = [c.polygon for c in refdata.communes.values()]
    assert all(p.is_valid and not p.is_empty for p in polys)
    assert shapely.coverage_is_valid(polys, gap_width=1e-4)
    total = sum(c.area_km2 for c in refdata.communes.values())
    assert area_km2(refdata.outline) == pytest.approx(total, rel=1e-9)
    # Essonne: 1,804 km² officially (ellipsoid, full-resolution borders)
    assert 1_780 < total < 1_830
    assert refdata.outline.geom_type == "Polygon"
    assert len(refdata.outline.interiors) == 0


def test_representative_points_are_inside(refdata: RefData) -> None:
    for c in refdata.communes.values():
        assert c.polygon.contains(shapely.Point(c.rep_lon, c.rep_lat)), c.insee


def test_delegated_commune_code_resolves_to_its_commune_nouvelle(refdata: RefData) -> None:
    # Estouches (91222) merged into Le Mérévillois (91390) in 2019
    assert refdata.resolve_insee("91222") == "91390"
    assert refdata.resolve_insee("91390") == "91390"
    assert refdata.resolve_insee("75056") is None


def test_area_on_the_sphere() -> None:
    # 1° x 1° at the equator on the authalic sphere: (pi/180 * R)^2 * ~1
    assert area_km2(box(0, 0, 1, 1)) == pytest.approx(12_363.7, rel=1e-3)
    # the same box at 60°N is about half as large
    assert area_km2(box(0, 59.5, 1, 60.5)) == pytest.approx(12_363.7 * 0.5, rel=2e-3)


def test_geometry_encoding_round_trips(refdata: RefData) -> None:
    poly = box(2.1, 48.5, 2.2, 48.6).difference(box(2.13, 48.53, 2.14, 48.54))
    multi = MultiPolygon([poly, box(2.3, 48.5, 2.31, 48.51)])
    back = decode_geometry(encode_geometry(multi))
    assert back.equals_exact(multi, 1e-7)
    assert len(back.geoms[0].interiors) == 1
    for c in list(refdata.communes.values())[:20]:
        assert quantize(c.polygon).equals_exact(c.polygon, 0.0)


def test_write_then_load(tmp_path: Path, refdata: RefData) -> None:
    communes = [refdata.communes[c] for c in ("91228", "91174")]
    copies = [
        make_commune(c.insee, c.name, c.population, c.postcodes, c.polygon, c.departement)
        for c in communes
    ]
    out = tmp_path / "r.json.gz"
    write_refdata(out, copies, departements=["91"], aliases={"x": "91228"}, meta={"k": 1})
    again = load_refdata(out)
    assert list(again.communes) == ["91174", "91228"]
    assert again.communes["91228"].polygon.equals_exact(communes[0].polygon, 0.0)
    assert again.resolve_insee("x") == "91228"
    doc = orjson.loads(gzip.decompress(out.read_bytes()))
    doc["format"] = 99
    out.write_bytes(gzip.compress(orjson.dumps(doc)))
    with pytest.raises(ValueError, match="unsupported"):
        load_refdata(out)


def test_geojson_for_the_map(refdata: RefData) -> None:
    full = refdata.to_geojson(0)
    small = refdata.to_geojson(100)
    assert len(full["features"]) == len(small["features"]) == 194
    assert {f["properties"]["insee"] for f in small["features"]} == set(refdata.communes)
    assert len(orjson.dumps(small)) < len(orjson.dumps(full))
    geoms = [shapely.geometry.shape(f["geometry"]) for f in small["features"]]
    assert all(g.is_valid for g in geoms)
    # the simplified outline stays close to the real one (within 1% of the area)
    union_area = area_km2(shapely.union_all(geoms))
    assert union_area == pytest.approx(area_km2(refdata.outline), rel=0.01)
