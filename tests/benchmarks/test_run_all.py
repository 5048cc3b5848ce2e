"""`make bench` without the benchmarks: `run_all --record` appends every result to the
history and rewrites the reference tables (a fake runner stands for the subprocesses)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import pytest

from benchmarks import history, run_all
from benchmarks.reference import BLOCKS


def skeleton() -> str:
    return "# B\n\nhand-written\n\n" + "\n".join(
        f"<!-- generated:{n} -->\n<!-- end generated:{n} -->\n" for n in BLOCKS)


class FakeRunner:
    def __init__(self, outputs: dict[str, list[dict[str, Any]]]) -> None:
        self.outputs = outputs
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, name: str, argv: list[str]) -> list[dict[str, Any]]:
        self.calls.append((name, argv))
        return [dict(r, bench_wall_s=5.0) for r in self.outputs[name]]


GEO_LINE = {"bench": "geo", "points": 200000, "commune_h3_per_s": [650000, 649000],
            "grid_build_s": 0.6, "meets_target": True}


def test_record_appends_the_results_and_rewrites_the_reference(tmp_path: Path) -> None:
    results, doc = tmp_path / "results", tmp_path / "B.md"
    doc.write_text(skeleton())
    runner = FakeRunner({"geo": [GEO_LINE]})
    argv = ["--record", "--only", "geo", "--results", str(results), "--reference", str(doc)]
    assert run_all.main(argv, runner=runner) == 0
    assert runner.calls == [("geo", run_all.BENCHES["geo"])]
    ms = history.load(results)
    rate = next(m for m in ms if m.metric == "commune_h3_per_s.cpu")
    assert rate.value == 650000 and rate.params == {"points": 200000}
    assert rate.command == "python -m benchmarks.bench_geo --repeat 3"
    assert rate.via == "python -m benchmarks.run_all " + " ".join(argv)
    assert rate.machine == run_all.machine()
    assert rate.commit == run_all.git_rev()
    assert rate.load_avg is not None and len(rate.load_avg) == 3
    assert [m.metric for m in ms].count("bench_wall_s") == 1
    text = doc.read_text()
    assert "hand-written" in text
    assert "| 200,000 points | 650,000 | 649,000 |" in text
    # a second run appends after the first and becomes the reference
    runner.outputs["geo"] = [dict(GEO_LINE, commune_h3_per_s=[700000, 690000])]
    assert run_all.main(argv, runner=runner) == 0
    assert [m.value for m in history.load(results)
            if m.metric == "commune_h3_per_s.cpu"] == [650000, 700000]
    assert "| 200,000 points | 700,000 | 690,000 |" in doc.read_text()


def test_a_failed_command_is_recorded_and_named_in_the_reference(tmp_path: Path) -> None:
    results, doc = tmp_path / "results", tmp_path / "B.md"
    doc.write_text(skeleton())
    runner = FakeRunner({"pipeline-chdb": [
        {"bench": "pipeline-chdb", "error": "exit 1", "stderr_tail": "x\nbroker down\n"}]})
    assert run_all.main(["--record", "--only", "pipeline-chdb", "--results", str(results),
                         "--reference", str(doc)], runner=runner) == 0
    err = next(m for m in history.load(results) if m.is_error)
    assert (err.benchmark, err.value, err.note) == ("pipeline", "exit 1", "broker down")
    assert err.command == "python -m benchmarks.bench_pipeline -n 150000 --store chdb"
    assert "the latest attempt failed" in doc.read_text()


def test_without_record_nothing_is_written(tmp_path: Path) -> None:
    results, doc = tmp_path / "results", tmp_path / "B.md"
    doc.write_text(skeleton())
    assert run_all.main(["--only", "geo", "--results", str(results), "--reference", str(doc)],
                        runner=FakeRunner({"geo": [GEO_LINE]})) == 0
    assert not results.exists()
    assert doc.read_text() == skeleton()


def test_every_benchmark_command_has_a_results_file_for_its_failures() -> None:
    assert set(run_all.BENCHMARK_OF) == set(run_all.BENCHES)
    commands = {c for block in BLOCKS.values() for c in block.commands}
    assert {run_all.command_of(n) for n in run_all.BENCHES} <= commands


def test_only_json_object_lines_are_results() -> None:
    out = 'progress 10%\n{"bench": "geo", "x": 1}\n{broken\n[1, 2]\n  {"bench": "b"}  \n'
    assert run_all.parse_output(out) == [{"bench": "geo", "x": 1}, {"bench": "b"}]


def test_an_unknown_benchmark_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nope"], runner=FakeRunner({}))
    assert "invalid choice" in capsys.readouterr().err


def test_run_keeps_the_whole_output_of_the_command(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # a benchmark's tables (chaos prints faults x outcome) are not JSON lines: they go to a log
    monkeypatch.setattr(run_all, "LOG_DIR", tmp_path / "logs")
    monkeypatch.setattr(run_all, "ROOT", tmp_path)
    results = run_all.run("geo", ["platform"])
    assert results == []
    (log,) = (tmp_path / "logs").glob("geo-*.log")
    text = log.read_text(encoding="utf-8")
    assert text.startswith("$ python -m platform")
    assert platform.system() in text


def test_recording_does_not_make_the_tree_dirty(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "x.jsonl").write_text("{}\n")
    (tmp_path / "BENCHMARKS.md").write_text("# B\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "c")
    monkeypatch.setattr(run_all, "ROOT", tmp_path)
    rev = run_all.git_rev()
    assert rev is not None and not rev.endswith("-dirty")
    # a record appended and the reference rewritten: still the commit measured
    (tmp_path / "benchmarks" / "results" / "x.jsonl").write_text("{}\n{}\n")
    (tmp_path / "BENCHMARKS.md").write_text("# B\n\nnew table\n")
    assert run_all.git_rev() == rev
    (tmp_path / "code.py").write_text("x = 2\n")  # the code measured is not the commit's
    assert run_all.git_rev() == f"{rev}-dirty"
