"""Two robustness runs compared world by world (`benchmarks.compare_worlds`): worlds pair by
(scenario, seed), each figure's per-world differences are counted and sign-tested, a world
drawn differently in the two runs is left out."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from benchmarks import compare_worlds as cw
from benchmarks.history import measurements_from_result

WORLD = {"citizen_error_m": 80.0, "confusion": 0.1}


def world_line(seed: int, f1: float, delay: float | None, scenario: str = "outbreaks",
               world: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"bench": "robustness", "scenario": scenario, "seed": seed, "days": 7.0,
            "pair_f1": f1, "median_delay_h": delay,
            "pairs": {"point": {"true": 10, "missed": 2, "false": 1}},
            "world": world if world is not None else WORLD}


def write_run(path: Path, rows: list[dict[str, Any]]) -> str:
    summary = {"bench": "robustness", "scenario": "summary", "worlds": len(rows)}
    text = "\n".join(["simulating...", *(json.dumps(r) for r in rows), json.dumps(summary),
                      "figure | worlds | min", "{not json"])
    path.write_text(text + "\n", encoding="utf-8")
    return str(path)


def test_sign_test_is_exact_and_two_sided() -> None:
    assert cw.sign_test_p(0, 0) == 1.0
    assert cw.sign_test_p(3, 3) == 1.0
    assert cw.sign_test_p(5, 0) == cw.sign_test_p(0, 5) == 2 / 32
    # 14 up, 4 down: 2 * P(X <= 4), X ~ Binomial(18, 1/2)
    expected = 2 * sum(math.comb(18, i) for i in range(5)) / 2**18
    assert math.isclose(cw.sign_test_p(14, 4), expected)
    assert 0.03 < expected < 0.031


def test_a_runs_output_gives_its_worlds_figures_as_recorded(tmp_path: Path) -> None:
    path = write_run(tmp_path / "a.txt", [world_line(1, 0.8, 3.0), world_line(2, 0.9, None)])
    with open(path, encoding="utf-8") as f:
        worlds = cw.worlds_of_output(f)
    assert set(worlds) == {("outbreaks", 1), ("outbreaks", 2)}  # summary and text skipped
    figures = worlds[("outbreaks", 1)]
    assert figures["pair_f1"] == 0.8
    assert figures["pairs.point.false"] == 1  # nested, as the results files name them
    assert figures["world.citizen_error_m"] == 80.0
    assert worlds[("outbreaks", 2)]["median_delay_h"] is None


def test_a_commits_records_give_the_same_worlds() -> None:
    meta: dict[str, Any] = {"date": "2026-12-01T10:00Z", "machine": "box", "command": "x"}
    records = [
        *measurements_from_result(world_line(1, 0.8, 3.0), commit="abc1234", **meta),
        *measurements_from_result(world_line(1, 0.7, 3.5), commit="def5678", **meta),
    ]
    worlds = cw.worlds_of_commit(records, "abc1")
    assert worlds == {("outbreaks", 1): worlds[("outbreaks", 1)]}
    assert worlds[("outbreaks", 1)]["pair_f1"] == 0.8
    assert cw.worlds_of_commit(records, "0000") == {}


def test_each_world_counts_once_better_worse_or_equal_lower_delay_being_better() -> None:
    a = {("outbreaks", s): {"pair_f1": f, "median_delay_h": d}
         for s, f, d in ((1, 0.80, 3.0), (2, 0.85, 2.0), (3, 0.90, 4.0), (4, 0.70, 5.0))}
    b = {("outbreaks", s): {"pair_f1": f, "median_delay_h": d}
         for s, f, d in ((1, 0.82, 2.5), (2, 0.85, 2.5), (3, 0.91, 4.0), (4, 0.69, None))}
    f1, delay = cw.compare(a, b, (cw.Figure("pair_f1", +1), cw.Figure("median_delay_h", -1)))
    assert (f1.worlds, f1.better, f1.worse, f1.tied) == (4, 2, 1, 1)
    assert f1.median_a is not None and math.isclose(f1.median_a, 0.825)
    assert f1.median_diff is not None and math.isclose(f1.median_diff, 0.005)
    assert math.isclose(f1.p_value, cw.sign_test_p(2, 1))
    # world 4 has no delay in B: left out of that figure only
    assert (delay.worlds, delay.better, delay.worse, delay.tied) == (3, 1, 1, 1)
    assert (delay.up, delay.down) == (1, 1)


def test_a_world_drawn_differently_is_left_out(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.txt", [world_line(1, 0.8, 3.0), world_line(2, 0.8, 3.0)])
    moved = {**WORLD, "confusion": 0.2}
    b = write_run(tmp_path / "b.txt",
                  [world_line(1, 0.9, 2.0), world_line(2, 0.1, 9.0, world=moved)])
    out = io.StringIO()
    assert cw.main([a, b, "--metric", "pair_f1"], out=out) == 0
    text = out.getvalue()
    assert "left out, drawn differently" in text and "outbreaks 2" in text
    row = next(line for line in text.splitlines() if line.startswith("| pair_f1 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "1"  # world 2 left out: 0.8 -> 0.1 is the simulator's, not counted
    assert cells[5:8] == ["1", "0", "0"]


def test_no_world_in_common_or_no_file_is_an_error(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a.txt", [world_line(1, 0.8, 3.0)])
    b = write_run(tmp_path / "b.txt", [world_line(2, 0.8, 3.0, scenario="null")])
    assert cw.main([a, b], out=io.StringIO()) == 1
    assert cw.main([a, str(tmp_path / "missing.txt")], out=io.StringIO()) == 2
