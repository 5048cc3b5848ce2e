"""`IncidentIndex`: its look-ups always say exactly what its incidents say, through new
incidents, joins, restores and evictions."""

from __future__ import annotations

import json
import random

import pytest

from agents.core.correlation import Correlator, Incident
from agents.core.correlation.index import IncidentIndex
from agents.core.correlation.spatial import grid_cell
from agents.core.record import ReportRecord
from tests.correlation.test_engine import rec


def _stream(n: int, seed: int = 3) -> list[ReportRecord]:
    rnd = random.Random(seed)
    cats = ["rodeo", "nuisance", "cambriolage", "vol", "occupation_hall", "incendie"]
    return [
        rec(
            east_m=rnd.uniform(-2500, 2500),
            north_m=rnd.uniform(-2500, 2500),
            t=i * 120.0,
            category=rnd.choice(cats),
            kind=rnd.choice(["citizen", "police_nationale", "police_municipale"]),
            org=rnd.choice(["citoyen", "csp-evry", "pm"]),
            accuracy=rnd.choice([10.0, 50.0, 300.0]),
            contact=f"c{rnd.randrange(50)}",
            commune_only=rnd.random() < 0.15,
            insee=rnd.choice(["91228", "91174", "91377"]),
        )
        for i in range(n)
    ]


def _expected(index: IncidentIndex) -> dict[str, set[tuple[object, ...]]]:
    """The entries each look-up must hold, from the incidents alone."""
    out: dict[str, set[tuple[object, ...]]] = {
        "reports": set(), "cells": set(), "communes": set(), "unlocated": set()
    }
    for iid, incident in index.incidents.items():
        grid = index.grid(iid)
        # indexed at least under its centre's cell and its located members' cells
        assert grid_cell(incident.lat, incident.lon) in grid
        assert {grid_cell(m.lat, m.lon) for m in incident.points} <= set(grid)
        out["reports"] |= {(m.key, iid) for m in incident.members}
        out["cells"] |= {(c, k, iid) for c in grid for k in incident.categories()}
        communes = {(m.insee, k, iid) for m in incident.members for k in incident.categories()}
        out["communes"] |= communes
        if not incident.points:
            out["unlocated"] |= communes
    return out


def test_lookups_follow_the_incidents_through_their_life() -> None:
    engine = Correlator()
    records = _stream(900)
    unlocated_seen = joined = 0
    for r in records:
        for v in engine.process(r):
            joined += v["report_count"] > 1
        index = engine._index
        unlocated_seen += bool(index.entries()["unlocated"])
        if r.report_id.endswith("0"):  # every tenth report: a full check
            assert index.entries() == _expected(index)
    assert joined > 100 and unlocated_seen > 100  # joins and unlocated incidents happened
    assert engine._index.entries() == _expected(engine._index)
    # everything closes, then leaves the state: nothing stays behind in any look-up
    engine.advance(records[-1].reported_at + 30 * 86400.0)
    engine.advance(records[-1].reported_at + 60 * 86400.0)
    assert len(engine) == 0
    assert engine._index.entries() == {"reports": set(), "cells": set(), "communes": set(),
                                       "unlocated": set()}


def test_a_restored_index_follows_its_incidents_too() -> None:
    records = _stream(600, seed=4)
    engine = Correlator()
    for r in records[:400]:
        engine.process(r)
    states = [json.loads(json.dumps(engine.export_incident(i))) for i in engine.incident_ids()]
    again = Correlator()
    again.restore(states, watermark=engine.watermark)
    assert again._index.entries() == _expected(again._index)
    for r in records[400:]:
        again.process(r)
    assert again._index.entries() == _expected(again._index)


def test_an_incident_is_indexed_once() -> None:
    index = IncidentIndex()
    r = rec()
    assert r.lat is not None and r.lon is not None
    index.found(Incident.found(r, r.lat, r.lon))
    with pytest.raises(ValueError, match="already in the index"):
        index.found(Incident.found(r, r.lat, r.lon))
    assert len(index) == 1 and index.has_report(r.key)
