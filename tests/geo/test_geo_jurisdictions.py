"""Commune → jurisdiction mapping: the packaged illustrative file and load-time checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.core.jurisdictions import (
    DEFAULT_JURISDICTIONS,
    JurisdictionError,
    Jurisdictions,
    load_jurisdictions,
    parse_jurisdictions,
)
from agents.core.refdata import RefData

HEADER = "insee,jurisdiction_id,jurisdiction_name,force"


def full_mapping(refdata: RefData) -> list[str]:
    return [f"{code},gn-test,Gendarmerie test,GN" for code in refdata.communes]


def test_packaged_example_covers_every_commune(
    refdata: RefData, jurisdictions: Jurisdictions
) -> None:
    assert "ILLUSTRATIVE" in DEFAULT_JURISDICTIONS.read_text(encoding="utf-8").splitlines()[0]
    assert set(jurisdictions.by_insee) == set(refdata.communes)
    assert jurisdictions.of("91228").id == "csp-evry"
    assert jurisdictions.of("91228").force == "PN"
    assert jurisdictions.of("91001").force == "GN"
    forces = {j.force for j in jurisdictions.all()}
    assert forces == {"PN", "GN"}
    main_towns = ["91174", "91377", "91477", "91326", "91589", "91549", "91223", "91201"]
    assert all(jurisdictions.of(c).force == "PN" for c in main_towns)


def test_a_user_file_replaces_it(tmp_path: Path, refdata: RefData) -> None:
    path = tmp_path / "j.csv"
    path.write_text("# mine\n" + "\n".join([HEADER, *full_mapping(refdata)]) + "\n")
    j = load_jurisdictions(str(path), refdata)
    assert j.of("91228").id == "gn-test" and j.source == str(path)
    assert len(j.all()) == 1


def test_errors_list_every_offending_code(refdata: RefData) -> None:
    rows = full_mapping(refdata)
    rows = [r for r in rows if not r.startswith(("91001,", "91016,"))]  # two missing
    rows += [
        "75056,csp-paris,Paris,PN",  # unknown
        "91228,csp-evry,CSP Évry,PN",  # duplicate
        "91174,gn-test,Gendarmerie test,XX",  # bad force (and a duplicate, reported once)
    ]
    with pytest.raises(JurisdictionError) as err:
        parse_jurisdictions("\n".join([HEADER, *rows]), refdata, "x.csv")
    msg = str(err.value)
    assert msg.startswith("x.csv: ")
    assert "unknown INSEE codes (not in the served area): 75056" in msg
    assert "duplicate INSEE codes: 91228" in msg
    assert "bad force (must be PN or GN): 91174 ('XX')" in msg
    assert "communes without a jurisdiction: 91001, 91016" in msg


def test_header_malformed_rows_and_inconsistent_ids(refdata: RefData) -> None:
    with pytest.raises(JurisdictionError, match="header must be"):
        parse_jurisdictions("code,id,name,force\n", refdata)
    rows = full_mapping(refdata)
    rows[0] = rows[0] + ",extra"
    rows[1] = rows[1].replace("Gendarmerie test", "Another name")
    with pytest.raises(JurisdictionError) as err:
        parse_jurisdictions("\n".join([HEADER, *rows]), refdata)
    assert "malformed rows: row 2" in str(err.value)
    assert "different names or forces: gn-test" in str(err.value)
