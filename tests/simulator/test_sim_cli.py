"""`vigie simulate` to files, and a simulator on a small fake area (the adapter)."""

from __future__ import annotations

from pathlib import Path

import orjson
from shapely.geometry import box

from offline.simulator import SimulationConfig, simulate, write_jsonl
from offline.simulator.area import build_area
from vigie.cli import main


def test_cli_writes_reports_and_aligned_truth(tmp_path: Path) -> None:
    out, truth = tmp_path / "r.jsonl", tmp_path / "t.jsonl"
    code = main(
        [
            "simulate",
            "--days",
            "2",
            "--seed",
            "4",
            "--count",
            "1500",
            "--outbreaks",
            "2",
            "--out",
            str(out),
            "--truth",
            str(truth),
        ]
    )
    assert code == 0
    reports = out.read_bytes().splitlines()
    lines = [orjson.loads(x) for x in truth.read_bytes().splitlines()]
    assert len(reports) == 1500
    msgs = [x for x in lines if x["type"] == "message"]
    assert len(msgs) == 1500
    assert sum(1 for x in lines if x["type"] == "outbreak") == 2
    assert {x["type"] for x in lines} == {"outbreak", "chronic_spot", "incident", "message"}
    for raw, t in zip(reports, msgs, strict=True):  # line i of truth describes report line i
        if t["expected_reject_reason"] is None:
            assert orjson.loads(raw)["report_id"] == t["report_id"]


def test_rate_per_day_option_scales_volume(tmp_path: Path) -> None:
    small, big = tmp_path / "s.jsonl", tmp_path / "b.jsonl"
    assert main(["simulate", "--days", "1", "--rate-per-day", "500", "--out", str(small)]) == 0
    assert main(["simulate", "--days", "1", "--rate-per-day", "3000", "--out", str(big)]) == 0
    n_small = len(small.read_bytes().splitlines())
    n_big = len(big.read_bytes().splitlines())
    assert 4 < n_big / n_small < 8


def test_fake_area_points_stay_inside(tmp_path: Path) -> None:
    # a 3 x 1 strip of ~1.5 km squares: a town, a suburb, a village
    d = 0.02
    rows = [
        ("91001", "Ville", 50_000, box(2.0, 48.0, 2.0 + d, 48.0 + d)),
        ("91002", "Banlieue", 8_000, box(2.0 + d, 48.0, 2.0 + 2 * d, 48.0 + d)),
        ("91003", "Village", 300, box(2.0 + 2 * d, 48.0, 2.0 + 3 * d, 48.0 + d)),
    ]
    area = build_area(rows, pool_size=64, seed=1)
    cfg = SimulationConfig(
        area=area,
        days=7,
        seed=2,
        reports_per_day=300,
        outbreaks=1,
        dealing_points=1,
        occupied_halls=1,
        stations=1,
        outbreak_radius_m=(200.0, 300.0),
    )
    sim = simulate(cfg)
    stats = write_jsonl(sim, tmp_path / "r.jsonl", tmp_path / "t.jsonl")
    assert stats.messages > 1000
    counts = {"91001": 0, "91002": 0, "91003": 0}
    for raw, t in zip(
        (tmp_path / "r.jsonl").read_bytes().splitlines(),
        [
            x
            for x in map(orjson.loads, (tmp_path / "t.jsonl").read_bytes().splitlines())
            if x["type"] == "message"
        ],
        strict=True,
    ):
        if t["expected_reject_reason"] is not None:
            continue
        loc = orjson.loads(raw)["location"]
        if "lat" in loc:
            assert area.contains(loc["lat"], loc["lon"]), loc
            counts[
                "91001"
                if loc["lon"] < 2.0 + d
                else "91002"
                if loc["lon"] < 2.0 + 2 * d
                else "91003"
            ] += 1
        else:
            assert loc["insee"] in counts
    assert counts["91001"] > 3 * counts["91002"] > 3 * counts["91003"]
