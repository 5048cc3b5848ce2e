"""The incident state's changelog form: what the correlate agent's Faust table holds.

The engine keeps typed `Incident`s; the table keeps JSON dicts (`Incident.to_dict` /
`Incident.from_dict`). `data/legacy_incident_states.json` holds states as the previous engine
(which kept the dicts themselves as its state) wrote them, with the table's `_partition`, one
in a still older format, and what that engine exported after restoring them and emitted
10 days later: a worker upgraded over that changelog must go on exactly the same way.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agents.core.correlation import Correlator, Incident
from agents.core.correlation.incident import Member
from schemas.enums import Category, IncidentStatus, Precision, SourceKind
from tests.correlation.test_engine import rec

LEGACY = Path(__file__).with_name("data") / "legacy_incident_states.json"


def _legacy() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(LEGACY.read_text())
    return data


def _exact(value: object) -> str:
    """JSON text with sorted keys: equal only if every value has the same type too."""
    return json.dumps(value, sort_keys=True)


def test_states_written_by_the_previous_engine_restore_exactly() -> None:
    legacy = _legacy()
    engine = Correlator()
    engine.restore(copy.deepcopy(legacy["written"]), watermark=legacy["watermark"])
    assert sorted(engine.incident_ids()) == sorted(legacy["exported_after_restore"])
    for iid, before in legacy["exported_after_restore"].items():
        expected = {k: v for k, v in before.items() if k != "_partition"}  # the table's
        exported = engine.export_incident(iid)
        assert _exact(exported) == _exact(expected)
        assert list(exported) == [k for k in legacy["written"][0] if k != "_partition"]
    later = engine.advance(legacy["watermark"] + 10 * 86400.0)
    # the versions hold what the previous engine emitted (fields added since aside)
    old_keys = list(legacy["versions_10_days_later"][0])
    assert _exact([{k: v[k] for k in old_keys} for v in later]) == _exact(
        legacy["versions_10_days_later"]
    )
    assert sorted(engine.drain_evicted()) == sorted(legacy["exported_after_restore"])
    assert len(engine) == 0


def test_the_older_format_is_read() -> None:
    """No `first_seen_at` (the earliest member's `reported_at`), r9 `cells` instead of the
    search `grid`, derived fields missing: all recomputed from the members."""
    older = next(s for s in _legacy()["written"] if "cells" in s)
    assert "first_seen_at" not in older and "grid" not in older and "h3_r7" not in older
    incident = Incident.from_dict(older)
    assert incident.first_seen_at == min(m["reported_at"] for m in older["members"])
    assert incident.h3 == older["h3"] and incident.lat == older["lat"]
    assert incident.h3_r7 and incident.confidence > 0


def test_round_trip_through_json_keeps_every_field() -> None:
    engine = Correlator()
    engine.process(rec(kind="police_nationale", org="csp-evry"))
    [version] = engine.process(rec(east_m=30, t=300, contact="c1", category="vol"))
    iid = version["incident_id"]
    exported = engine.export_incident(iid)
    again = Incident.from_dict(json.loads(json.dumps(exported)))
    assert _exact(again.to_dict(exported["grid"])) == _exact(exported)
    assert again.status is IncidentStatus.OPEN and again.precision is Precision.POINT
    assert again.category is Category.CAMBRIOLAGE  # police outvotes one citizen
    assert [m.source_kind for m in again.members] == [SourceKind.POLICE_NATIONALE,
                                                       SourceKind.CITIZEN]
    # plain strings at the boundary: nothing but JSON types leaves the engine
    for value in (*exported.values(), *exported["members"][0].values(), *version.values(),
                  *version["categories"], *version["source_kinds"]):
        assert type(value) in (str, int, float, list, type(None)), value


def test_a_member_dict_is_made_once_and_never_changes() -> None:
    engine = Correlator()
    [v1] = engine.process(rec(kind="police_nationale", org="csp-evry"))
    first = engine.export_incident(v1["incident_id"])
    engine.process(rec(east_m=30, t=300, contact="c1"))
    second = engine.export_incident(v1["incident_id"])
    assert second["members"][0] is first["members"][0]  # shared, not rebuilt
    assert len(first["members"]) == 1 and len(second["members"]) == 2
    assert first["version"] == 1 and second["version"] == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: s.pop("members"), "no 'members'"),
        (lambda s: s.update(members=[]), "has no member"),
        (lambda s: s["members"][0].pop("acc"), "no 'acc'"),
        (lambda s: s["members"][0].update(category="unknown"), "'unknown' is not a valid Category"),
        (lambda s: s.update(status="pending"), "'pending' is not a valid IncidentStatus"),
        (lambda s: s["members"][0].update(lat="north"), "could not convert"),
    ],
)
def test_a_malformed_state_is_refused_with_its_reason(change: Any, reason: str) -> None:
    state = copy.deepcopy(_legacy()["written"][0])
    change(state)
    fine = _legacy()["written"][1]
    engine = Correlator()
    with pytest.raises(ValueError, match=reason) as info:
        engine.restore([fine, state])
    assert state["incident_id"] in str(info.value)
    assert len(engine) == 0  # nothing half-restored


def test_a_report_of_an_unknown_category_is_refused() -> None:
    with pytest.raises(ValueError, match="'graffiti' is not a valid Category"):
        Member.of(rec(category="graffiti"), 48.6, 2.4)


def test_an_incident_restored_twice_is_refused_before_any_change() -> None:
    written = _legacy()["written"]
    engine = Correlator()
    with pytest.raises(ValueError, match="restored twice"):
        engine.restore([written[1], written[2], written[1]])
    assert len(engine) == 0
    engine.restore([written[1]])
    with pytest.raises(ValueError, match="restored twice"):
        engine.restore([written[2], written[1]])
    assert engine.incident_ids() == [written[1]["incident_id"]]
