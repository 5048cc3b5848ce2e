"""Random reporting worlds: drawn deterministically over their ranges, recorded in the truth,
and visible in the stream they produce (`offline.simulator.world`)."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from offline.simulator import SimMessage, SimulationConfig, apply_world, draw_world, simulate
from offline.simulator.area import M_PER_DEG_LAT
from offline.simulator.world import (
    RADIUS_FACTOR,
    RANGES,
    SOURCE_KINDS,
    STATED_ACCURACY,
    ReportingWorld,
    burst_fields,
)
from vigie.cli import main

Obj = dict[str, Any]
SEEDS = range(1000, 1200)


def test_the_draw_is_a_function_of_the_seed_alone() -> None:
    import random

    a = draw_world(1234)
    random.seed(99)  # the global stream plays no part
    assert draw_world(1234) == a
    assert draw_world(1235) != a
    assert ReportingWorld.from_truth(orjson.loads(orjson.dumps(a.truth()))) == a


def _spans(values: list[float], lo: float, hi: float, log: bool = False) -> bool:
    """Inside [lo, hi] and reaching within 10 % of the range of both ends."""
    f = math.log if log else float
    width = f(hi) - f(lo)
    return (
        all(lo <= v <= hi for v in values)
        and f(min(values)) - f(lo) < 0.1 * width
        and f(hi) - f(max(values)) < 0.1 * width
    )


def test_every_parameter_stays_in_its_range_and_spans_it() -> None:
    worlds = [draw_world(s) for s in SEEDS]
    for name, log in (
        ("citizen_error_m", True),
        ("partner_error_m", True),
        ("lag_factor", True),
        ("incident_rate", True),
        ("late_batch_share", False),
        ("confusion", False),
        ("commune_only", False),
        ("redelivery_rate", False),
    ):
        values = [float(getattr(w, name)) for w in worlds]
        assert _spans(values, *RANGES[name], log=log), name
    under = [w.understatement for w in worlds if w.stated_accuracy == "understated"]
    assert _spans(under, *RANGES["understatement"])
    assert all(w.understatement == 1.0 for w in worlds if w.stated_accuracy != "understated")
    for kind in SOURCE_KINDS:
        weights = [w.source_weights[kind] for w in worlds]
        assert _spans(weights, *RANGES["source_weight"], log=True), kind
    scales = [w.chronic_scale for w in worlds if w.chronic_places]
    assert _spans(scales, *RANGES["chronic_scale"])
    assert all(w.chronic_scale == 0.0 for w in worlds if not w.chronic_places)
    assert {w.stated_accuracy for w in worlds} == set(STATED_ACCURACY)
    assert {w.accuracy_radius for w in worlds} == set(RADIUS_FACTOR)
    assert {w.chronic_places for w in worlds} == {True, False}


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dy = (lat1 - lat2) * M_PER_DEG_LAT
    dx = (lon1 - lon2) * M_PER_DEG_LAT * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


def _stream(world: ReportingWorld, days: float = 2.0) -> tuple[list[SimMessage], dict[str, Obj]]:
    cfg = apply_world(SimulationConfig(start="2024-03-04", days=days, seed=world.seed), world)
    messages = list(simulate(cfg))
    incidents = {
        str(m.incident_truth["incident_id"]): m.incident_truth
        for m in messages
        if m.incident_truth is not None
    }
    return messages, incidents


def _originals(messages: list[SimMessage], citizen: bool) -> list[tuple[SimMessage, Obj]]:
    return [
        (m, orjson.loads(m.value))
        for m in messages
        if m.truth["incident_id"] is not None
        and not m.truth["is_redelivery"]
        and (m.truth["source_kind"] == "citizen") == citizen
    ]


def _errors(
    pairs: list[tuple[SimMessage, Obj]], incidents: dict[str, Obj]
) -> list[tuple[float, float | None]]:
    """(distance from the true place, stated accuracy) of point positions of still incidents."""
    out = []
    for m, msg in pairs:
        inc = incidents[str(m.truth["incident_id"])]
        loc = msg["location"]
        if "lat" not in loc or inc["kind"] == "mobile":
            continue
        d = _distance_m(loc["lat"], loc["lon"], float(inc["lat"]), float(inc["lon"]))
        out.append((d, loc.get("accuracy_m")))
    return out


STREAM_DAYS = 4.0
T0 = datetime.fromisoformat("2024-03-04T00:00:00+01:00").timestamp()
T1 = T0 + STREAM_DAYS * 86400.0
# re-deliveries come up to 72 h after their report, batch uploads up to ~33 h after the
# record: measured where neither is cut off by the end of the stream
STEADY_FROM, HELD_UNTIL = T0 + 3 * 86400.0, T1 - 40 * 3600.0


@pytest.fixture(scope="module")
def honest() -> tuple[ReportingWorld, list[SimMessage], dict[str, Obj]]:
    world = replace(
        draw_world(1001),
        citizen_error_m=200.0,
        partner_error_m=40.0,
        stated_accuracy="honest",
        accuracy_radius="r68",
        understatement=1.0,
        commune_only=0.1,
        redelivery_rate=0.05,
        confusion=0.15,
        late_batch_share=0.5,
        source_weights=dict.fromkeys(SOURCE_KINDS, 1.0),
    )
    return (world, *_stream(world, days=STREAM_DAYS))


def test_positions_stated_accuracy_and_shares_follow_the_drawn_world(
    honest: tuple[ReportingWorld, list[SimMessage], dict[str, Obj]],
) -> None:
    _, messages, incidents = honest
    citizens = _originals(messages, citizen=True)
    errors = _errors(citizens, incidents)
    assert len(errors) > 1000
    # median distance tracks the drawn median error (a few positions are pulled in at the
    # edge of the served area)
    assert statistics.median(d for d, _ in errors) == pytest.approx(200.0, rel=0.12)
    # honest r68: about 68 % of positions within their stated accuracy
    within = sum(1 for d, acc in errors if acc is not None and d <= acc) / len(errors)
    assert within == pytest.approx(0.68, abs=0.04)
    partner_errors = _errors(_originals(messages, citizen=False), incidents)
    assert statistics.median(d for d, _ in partner_errors) == pytest.approx(40.0, rel=0.12)
    commune_only = sum(1 for _, msg in citizens if "insee" in msg["location"]) / len(citizens)
    assert commune_only == pytest.approx(0.1, abs=0.02)
    steady = [m for m in messages if m.timestamp_ms / 1000.0 >= STEADY_FROM]
    redelivered = sum(1 for m in steady if m.truth["is_redelivery"]) / len(steady)
    assert redelivered == pytest.approx(0.05, abs=0.015)  # ~2,000 messages: sd 0.005
    mislabelled = sum(
        1 for m, _ in citizens if m.truth["reported_category"] != m.truth["true_category"]
    ) / len(citizens)
    assert mislabelled == pytest.approx(0.15, abs=0.02)


def _sent_late(m: SimMessage, msg: Obj) -> bool:
    """Sent more than a minute after its `reported_at` (held for a batch upload)."""
    reported = msg.get("reported_at")
    if reported is None:
        return False
    return m.timestamp_ms / 1000.0 - datetime.fromisoformat(reported).timestamp() > 60.0


def test_late_batch_uploads_hold_back_the_drawn_share_of_live_partner_reports(
    honest: tuple[ReportingWorld, list[SimMessage], dict[str, Obj]],
) -> None:
    _, messages, _ = honest
    live = [
        (m, msg)
        for m, msg in _originals(messages, citizen=False)
        if msg["source"]["kind"] != "bailleur_social"  # always batched
        and "reported_at" in msg
        and datetime.fromisoformat(msg["reported_at"]).timestamp() < HELD_UNTIL
    ]
    late = sum(1 for m, msg in live if _sent_late(m, msg)) / len(live)
    assert late == pytest.approx(0.5, abs=0.05)
    citizens = _originals(messages, citizen=True)
    assert not any(_sent_late(m, msg) for m, msg in citizens)


def test_understated_and_absent_accuracy() -> None:
    base = replace(draw_world(1002), citizen_error_m=120.0, commune_only=0.0, confusion=0.0)
    under = replace(base, stated_accuracy="understated", accuracy_radius="r95", understatement=0.3)
    messages, incidents = _stream(under, days=1.0)
    errors = _errors(_originals(messages, citizen=True), incidents)
    within = sum(1 for d, acc in errors if acc is not None and d <= acc) / len(errors)
    assert all(acc is not None for _, acc in errors)
    assert within < 0.5  # stated smaller than the true error (honest r95 would be 0.95)
    absent = replace(base, stated_accuracy="absent")
    messages, _ = _stream(absent, days=1.0)
    citizens = _originals(messages, citizen=True)
    assert citizens
    assert not any("accuracy_m" in msg["location"] for _, msg in citizens)


def test_lags_scale_with_the_drawn_factor() -> None:
    def median_lag(factor: float) -> float:
        world = replace(draw_world(1004), lag_factor=factor)
        messages, _ = _stream(world, days=1.0)
        lags = []
        for _, msg in _originals(messages, citizen=True):
            if "reported_at" in msg:
                reported = datetime.fromisoformat(msg["reported_at"]).timestamp()
                lags.append(reported - datetime.fromisoformat(msg["occurred_at"]).timestamp())
        return statistics.median(lags)

    assert median_lag(3.0) > 2.0 * median_lag(0.3)


def test_chronic_places_or_none() -> None:
    world = draw_world(1005)
    none = replace(world, chronic_places=False, chronic_scale=0.0)
    cfg = apply_world(SimulationConfig(days=1.0, seed=1005), none)
    assert simulate(cfg).chronic_spots == []
    some = replace(world, chronic_places=True, chronic_scale=1.0)
    cfg = apply_world(SimulationConfig(days=1.0, seed=1005), some)
    assert len(simulate(cfg).chronic_spots) == 12 + 15 + 10


def _truth(path: Path) -> list[Obj]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def test_cli_random_world_is_recorded_and_null_world_has_no_outbreak(tmp_path: Path) -> None:
    out, truth = tmp_path / "r.jsonl", tmp_path / "t.jsonl"
    args = ["simulate", "--world", "random", "--seed", "1007", "--days", "2"]
    assert main([*args, "--no-outbreaks", "--out", str(out), "--truth", str(truth)]) == 0
    lines = _truth(truth)
    assert lines[0] == orjson.loads(orjson.dumps(draw_world(1007).truth()))
    assert not any(x["type"] == "outbreak" for x in lines)
    assert not any(x.get("outbreak_id") for x in lines)
    assert main([*args, "--outbreak-model", "burst", "--out", str(out), "--truth", str(truth)]) == 0
    lines = _truth(truth)
    outbreaks = [x for x in lines if x["type"] == "outbreak"]
    assert len(outbreaks) == burst_fields({"outbreaks": 40}, 2.0)["outbreaks"] == 3
    assert all(150.0 <= x["radius_m"] <= 400.0 for x in outbreaks)


def test_default_world_is_unchanged_and_unrecorded(tmp_path: Path) -> None:
    a, b, truth = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "t.jsonl"
    args = ["simulate", "--seed", "3", "--days", "1"]
    assert main([*args, "--out", str(a), "--truth", str(truth)]) == 0
    assert main([*args, "--world", "default", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert not any(x["type"] == "world" for x in _truth(truth))


def test_source_mix_follows_the_drawn_weights() -> None:
    def citizen_share(weight: float) -> float:
        weights = dict.fromkeys(SOURCE_KINDS, 1.0) | {"citizen": weight}
        world = replace(draw_world(1006), source_weights=weights)
        messages, _ = _stream(world, days=1.0)
        citizens = len(_originals(messages, citizen=True))
        return citizens / (citizens + len(_originals(messages, citizen=False)))

    low, high = citizen_share(0.4), citizen_share(2.5)
    assert high > low + 0.15
