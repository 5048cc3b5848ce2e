"""BENCHMARKS.md's generated tables: the latest run of each command, rewritten in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import history, reference
from benchmarks.history import Measurement
from benchmarks.reference import BLOCKS, ReferenceError

ROOT = Path(__file__).resolve().parents[2]
GEO = BLOCKS["geo"].commands[0]


def geo_run(date: str, rate: int, **extra: Any) -> list[Measurement]:
    return history.measurements_from_run(
        [{"bench": "geo", "points": 200000, "commune_h3_per_s": [rate, rate - 10],
          "grid_build_s": 0.6, "bench_wall_s": 6.0}],
        benchmark="geo", date=date, commit=f"c{date[8:10]}", machine="box", command=GEO,
        via="make bench", **extra)


def skeleton() -> str:
    return "# B\n\n" + "\n".join(
        f"<!-- generated:{n} -->\nold\n<!-- end generated:{n} -->\n" for n in BLOCKS)


def test_the_table_shows_the_latest_run_with_its_provenance_and_target() -> None:
    ms = geo_run("2026-12-01T10:00Z", 700_000) + geo_run("2026-12-02T11:30Z", 650_000)
    out = reference.render("geo", ms)
    assert "2026-12-02 11:30 UTC; commit c02; via `make bench`; box." in out
    assert f"`{GEO}`" in out
    assert "| 200,000 points | 650,000 | 649,990 |" in out
    assert "700,000" not in out
    assert "| target | ≥ 200,000 |" in out
    assert "bare consumer" not in out and "H3 only" not in out  # columns not measured


def test_trials_and_aggregates_never_replace_the_latest_plain_run() -> None:
    plain = geo_run("2026-12-01T10:00Z", 700_000)
    trial = [history.Measurement(**{**m.as_dict(), "variant": "trial, not kept"})
             for m in geo_run("2026-12-03T10:00Z", 999_000)]
    summary = [history.Measurement(**{**m.as_dict(), "stat": "approx"})
               for m in geo_run("2026-12-04T10:00Z", 888_000)]
    out = reference.render("geo", plain + trial + summary)
    assert "700,000" in out and "999,000" not in out and "888,000" not in out


def test_a_failed_latest_attempt_is_named_above_the_previous_run() -> None:
    ok = geo_run("2026-12-01T10:00Z", 700_000)
    failed = history.measurements_from_run(
        [{"bench": "geo", "error": "exit 1", "stderr_tail": "OSError: no refdata\n"}],
        benchmark="geo", date="2026-12-02T10:00Z", commit="bad", machine="box", command=GEO)
    out = reference.render("geo", ok + failed)
    assert ("the latest attempt failed, 2026-12-02 10:00 UTC, commit bad: exit 1 "
            "(OSError: no refdata)") in out
    assert "700,000" in out
    only_failed = reference.render("geo", failed)
    assert "no recorded run" in only_failed


def test_commands_of_one_block_share_a_table() -> None:
    server, chdb = BLOCKS["pipeline"].commands
    ms = []
    for command, store, rate in ((server, "server", 6098), (chdb, "chdb", 4869)):
        ms += history.measurements_from_run(
            [{"bench": "pipeline", "store": store, "messages": 150000,
              "pipeline_reports_per_s": rate, "ratio": 0.064}],
            benchmark="pipeline", date="2026-12-01T10:00Z", commit="c1", machine="box",
            command=command)
    out = reference.render("pipeline", ms)
    assert out.count("2026-12-01 10:00 UTC") == 1  # one provenance line for both
    assert "| server | 6,098 | 6.4 % |" in out and "| chdb | 4,869 | 6.4 % |" in out


def test_commands_with_the_same_params_keep_a_row_each() -> None:
    """The latency runs at 100/s and 1,000/s both say only store and mode: each command's
    row keeps its own label instead of the later one replacing the earlier."""
    block = BLOCKS["latency"]
    ms = []
    for command, p99 in ((block.commands[1], 0.5), (block.commands[3], 28.6)):
        ms += history.measurements_from_run(
            [{"bench": "latency", "store": "server", "mode": "steady", "latency_p99_s": p99}],
            benchmark="latency", date="2026-12-01T10:00Z", commit="c1", machine="box",
            command=command)
    out = reference.render("latency", ms)
    assert "| server, 100/s | 0.50 s |" in out
    assert "| server, 1,000/s | 28.60 s |" in out


def test_every_block_labels_all_its_commands_or_none() -> None:
    for name, block in BLOCKS.items():
        assert len(block.command_labels) in (0, len(block.commands)), name
        assert len(set(block.command_labels)) == len(block.command_labels), name


def test_the_restart_rows_name_history_store_and_case() -> None:
    cmd = BLOCKS["restart"].commands[0]
    ms = history.measurements_from_run(
        [{"bench": "restart", "store": "server", "days": 28.0, "reports": 42000,
          "table_store": "rocksdb", "case": "sigkill", "ready_s": 6.21, "recovery_s": 0.4,
          "replayed": 120, "changelog": 90000, "store_bytes": 12 * 2**20}],
        benchmark="restart", date="2026-12-01T10:00Z", commit="c1", machine="box",
        command=cmd)
    out = reference.render("restart", ms)
    assert "| 28 days, rocksdb, sigkill | 42,000 | 6.2 s | 0.4 s | 120 | 90,000 | 12.0 MiB |" \
        in out


def test_a_transposed_block_has_one_column_per_seed() -> None:
    cmd = BLOCKS["detection-physics"].commands[0]
    ms = [m for seed, h in ((1, 1.89), (2, 2.33)) for m in history.measurements_from_result(
        {"bench": "detection_physics", "seed": seed,
         "median_first_report_h": {"incident_3": h}},
        date="2026-12-01", commit=None, machine="box", command=cmd)]
    out = reference.render("detection-physics", ms)
    assert "|  | seed 1 | seed 2 |" in out
    assert "| 3rd incident first reported | 1.89 h | 2.33 h |" in out
    assert "commit not recorded" in out


def test_the_anatomy_block_summarises_the_outbreak_lines() -> None:
    cmd = BLOCKS["detection-anatomy"].commands[0]
    rows = [("ob-1", "rodeo", 1.0, 1.1, 2.0), ("ob-2", "rodeo", 2.0, 2.5, None),
            ("ob-3", "vol", None, 4.0, 5.0), ("ob-4", "vol", 3.0, None, None)]
    ms = [m for ob, cat, third, truth, pipe in rows for m in history.measurements_from_result(
        {"bench": "detection_anatomy", "seed": 1, "outbreak": ob, "category": cat,
         "incident_3_reported_h": third, "alert_truth_h": truth, "alert_pipeline_h": pipe},
        date="2026-12-01T10:00Z", commit="c1", machine="box", command=cmd)]
    out = reference.render("detection-anatomy", ms)
    # alerted: ob-1..3; with a 3rd report and an alert: ob-1 (0.1 h), ob-2 (0.5 h)
    assert "4 evaluated outbreaks (seeds 1)" in out
    assert "alerts on 3 of them; on the 2 with a 3rd reported incident, a median 0.30 h " \
           "(max 0.50 h)" in out
    assert "| rodeo | 2 | 1.50 h | 1.80 h | 2.00 h |" in out
    assert "| vol | 2 | 3.00 h | 4.00 h | 5.00 h |" in out


def test_fill_rewrites_every_block_and_keeps_the_text_around() -> None:
    ms = geo_run("2026-12-01T10:00Z", 700_000)
    text = "intro\n\n" + skeleton() + "\nnotes stay\n"
    out = reference.fill(text, ms)
    assert out.startswith("intro\n\n# B") and out.endswith("\nnotes stay\n")
    assert "\nold\n" not in out
    assert "700,000" in out
    assert reference.fill(out, ms) == out  # idempotent


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda t: t.replace("<!-- end generated:geo -->\n", ""), "not closed"),
    (lambda t: t.replace("generated:geo ", "generated:geography "), "unknown \\['geography'\\]"),
    (lambda t: t.replace("<!-- generated:backtest -->\nold\n<!-- end generated:backtest -->",
                         ""), "missing \\['backtest'\\]"),
    (lambda t: t + "<!-- generated:geo -->\n<!-- end generated:geo -->\n", "repeated"),
])
def test_a_reference_whose_blocks_do_not_match_is_refused(edit: Any, reason: str) -> None:
    with pytest.raises(ReferenceError, match=reason):
        reference.fill(edit(skeleton()), [])


def test_rewrite_and_check(tmp_path: Path) -> None:
    results, doc = tmp_path / "results", tmp_path / "B.md"
    history.append(results, geo_run("2026-12-01T10:00Z", 700_000))
    doc.write_text(skeleton())
    assert reference.main(["--file", str(doc), "--results", str(results), "--check"]) == 1
    assert reference.main(["--file", str(doc), "--results", str(results)]) == 0
    assert "700,000" in doc.read_text()
    assert reference.main(["--file", str(doc), "--results", str(results), "--check"]) == 0
    doc.write_text("no blocks\n")
    assert reference.main(["--file", str(doc), "--results", str(results)]) == 2


def test_benchmarks_md_is_what_the_history_gives() -> None:
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert reference.fill(text, history.load()) == text, (
        "BENCHMARKS.md is stale: run python -m benchmarks.reference")
