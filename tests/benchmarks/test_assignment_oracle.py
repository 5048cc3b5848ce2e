"""`benchmarks.assignment_oracle`: each report goes to the true incident most likely to have
produced it, by place, time and category, under the world's error model."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from benchmarks.assignment_oracle import (
    M_PER_DEG_LAT,
    M_PER_DEG_LON,
    AssignmentOracle,
    ErrorModel,
    OracleReport,
    TrueIncident,
    oracle_incidents,
)
from offline.simulator import draw_world

LAT, LON = 48.6, 2.3
T0 = 1_710_000_000.0
MODEL = ErrorModel(
    citizen_sigma_m=100.0,
    partner_sigma_m=20.0,
    citizen_factor=None,
    partner_factor=1.5,
    confusion=0.1,
)


def incident(iid: str, north_m: float = 0.0, **kw: object) -> TrueIncident:
    fields: dict[str, object] = {
        "incident_id": iid,
        "category": "cambriolage",
        "mobile": False,
        "lat": LAT + north_m / M_PER_DEG_LAT,
        "lon": LON,
        "lat_end": LAT + north_m / M_PER_DEG_LAT,
        "lon_end": LON,
        "insee": "91228",
        "start": T0,
        "end": T0 + 1800.0,
    }
    fields.update(kw)
    return TrueIncident(**fields)  # type: ignore[arg-type]


def line(
    rid: str,
    north_m: float | None = 0.0,
    minutes: float = 10.0,
    category: str = "cambriolage",
    kind: str = "citizen",
    accuracy_m: float | None = None,
    east_m: float = 0.0,
) -> bytes:
    location: dict[str, object]
    if north_m is None:
        location = {"insee": "91228"}
    else:
        location = {
            "lat": LAT + north_m / M_PER_DEG_LAT,
            "lon": LON + east_m / M_PER_DEG_LON,
        }
        if accuracy_m is not None:
            location["accuracy_m"] = accuracy_m
    occurred = datetime.fromtimestamp(T0 + minutes * 60.0, UTC).isoformat()
    return json.dumps(
        {
            "report_id": rid,
            "source": {"kind": kind, "org": "x"},
            "category": category,
            "occurred_at": occurred,
            "location": location,
        }
    ).encode()


def assign(oracle: AssignmentOracle, data: bytes) -> str | None:
    return oracle.assign(OracleReport.of_line(data))


def test_a_report_goes_to_the_nearest_of_two_incidents_of_its_time() -> None:
    oracle = AssignmentOracle([incident("a"), incident("b", north_m=600.0)], MODEL)
    assert assign(oracle, line("r1", north_m=100.0)) == "a"
    assert assign(oracle, line("r2", north_m=450.0)) == "b"


def test_time_tells_two_incidents_of_one_place_apart() -> None:
    later = incident("late", start=T0 + 86400.0, end=T0 + 86400.0 + 1800.0)
    oracle = AssignmentOracle([incident("early"), later], MODEL)
    assert assign(oracle, line("r1", minutes=5.0)) == "early"
    assert assign(oracle, line("r2", minutes=24 * 60 + 5.0)) == "late"
    # a guessed time hours after the end still reaches the incident (a victim's guess)
    assert assign(oracle, line("r3", minutes=3 * 60.0)) == "early"


def test_category_confusion_follows_the_world() -> None:
    # burglary and theft are confused with each other (agents.core.confusions)
    near_theft = [incident("burglary"), incident("theft", north_m=400.0, category="vol")]
    confusing = AssignmentOracle(near_theft, MODEL)
    # filed as a theft, right at the burglary: the place outweighs a 10 % confusion
    assert assign(confusing, line("r1", category="vol")) == "burglary"
    exact = AssignmentOracle(
        near_theft,
        ErrorModel(100.0, 20.0, None, 1.5, confusion=0.0),
    )
    assert assign(exact, line("r2", category="vol")) == "theft"
    # a partner files the true category: never the burglary
    assert assign(confusing, line("r3", category="vol", kind="police")) == "theft"


def test_a_stated_accuracy_is_read_by_the_worlds_convention() -> None:
    oracle = AssignmentOracle(
        [incident("a"), incident("b", north_m=300.0)],
        ErrorModel(100.0, 20.0, citizen_factor=1.0, partner_factor=1.0, confusion=0.0),
    )
    # a sigma of 10 m (the stated accuracy over a factor of 1): the nearer incident
    assert assign(oracle, line("r1", north_m=120.0, accuracy_m=10.0)) == "a"
    assert assign(oracle, line("r2", north_m=170.0, accuracy_m=10.0)) == "b"


def test_a_moving_incident_is_met_along_its_path() -> None:
    path = incident(
        "rodeo",
        category="rodeo",
        mobile=True,
        lat_end=LAT + 1200.0 / M_PER_DEG_LAT,
        end=T0 + 3600.0,
    )
    parked = incident("parked", north_m=1200.0, category="rodeo", end=T0 + 3600.0)
    oracle = AssignmentOracle([path, parked], MODEL)
    # at the path's start early on: the moving one (the parked one is 1.2 km away)
    assert assign(oracle, line("r1", north_m=0.0, minutes=2.0, category="rodeo")) == "rodeo"
    # half-way through, half-way along: only the moving one is near
    assert assign(oracle, line("r2", north_m=600.0, minutes=29.0, category="rodeo")) == "rodeo"


def test_a_commune_only_report_goes_to_its_communes_incident_of_its_time() -> None:
    other_day = incident("other", start=T0 + 3 * 86400.0, end=T0 + 3 * 86400.0 + 600.0)
    elsewhere = incident("elsewhere", insee="91377")
    oracle = AssignmentOracle([incident("here"), other_day, elsewhere], MODEL)
    assert assign(oracle, line("r1", north_m=None)) == "here"


def test_a_report_no_incident_can_explain_stands_alone() -> None:
    oracle = AssignmentOracle([incident("a")], MODEL)
    lines = {"r1": line("r1", minutes=10.0), "r2": line("r2", minutes=20 * 24 * 60.0)}
    out = oracle_incidents(oracle, lines)
    assert out["r1"] == "a"
    assert out["r2"] == "alone:r2"


def test_the_model_of_a_drawn_world() -> None:
    world = draw_world(7000)
    model = ErrorModel.of_world(world)
    assert model.citizen_sigma_m == pytest.approx(
        world.citizen_error_m / math.sqrt(2.0 * math.log(2.0))
    )
    assert model.citizen_factor == world.stated_factor()
    assert model.confusion == world.confusion
