"""The benchmark history format: a benchmark's JSON lines -> one record per measurement,
appended to and read back from `<benchmark>.jsonl`, shown as markdown tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import history
from benchmarks.history import HistoryError, Measurement

META: dict[str, Any] = {"date": "2026-12-01T10:00Z", "commit": "abc1234",
                        "machine": "test box", "command": "python -m benchmarks.bench_x"}


def by_metric(ms: list[Measurement]) -> dict[str, Measurement]:
    return {m.metric: m for m in ms}


def test_a_pipeline_line_gives_one_record_per_metric_with_params_and_units() -> None:
    line = {"bench": "pipeline", "store": "server", "messages": 150000,
            "reports_stored": 145796, "pipeline_reports_per_s": 6098, "ratio": 0.064,
            "bare_consumer_msgs_per_s": 97908, "bench_wall_s": 169.7}
    ms = by_metric(history.measurements_from_result(line, **META))
    assert set(ms) == {"reports_stored", "pipeline_reports_per_s", "ratio",
                       "bare_consumer_msgs_per_s"}  # bench_wall_s is kept once per run
    rate = ms["pipeline_reports_per_s"]
    assert (rate.value, rate.unit) == (6098, "reports/s")
    assert rate.params == {"store": "server", "messages": 150000}
    assert (rate.date, rate.commit, rate.command) == (META["date"], "abc1234", META["command"])
    assert ms["ratio"].unit == "share"
    assert ms["bare_consumer_msgs_per_s"].unit == "msgs/s"
    assert ms["reports_stored"].unit == "count"


def test_cpu_wall_pairs_and_nested_scores_become_named_metrics() -> None:
    geo = {"bench": "geo", "points": 200000, "rates": "per second of CPU / of wall time",
           "commune_h3_per_s": [723383, 723371], "target_per_s": 200000,
           "meets_target": True}
    ms = by_metric(history.measurements_from_result(geo, **META))
    assert set(ms) == {"commune_h3_per_s.cpu", "commune_h3_per_s.wall"}
    assert ms["commune_h3_per_s.cpu"].value == 723383
    assert ms["commune_h3_per_s.wall"].value == 723371
    assert ms["commune_h3_per_s.cpu"].unit == "points/s (CPU time, one core)"
    corr = {"bench": "correlation", "seed": 2, "days": 14.0, "pairwise_f1": 0.8944,
            "border_split_pair_share": {"r5": 0.0188},
            "steady_state": {"warmup_days": 7.0, "reports": 9943, "pairwise_f1": 0.9046},
            "steady_meets_target": True}
    ms = by_metric(history.measurements_from_result(corr, **META))
    assert set(ms) == {"pairwise_f1", "border_split_pair_share.r5", "steady_state.reports",
                       "steady_state.pairwise_f1"}
    assert ms["steady_state.pairwise_f1"].params == {"seed": 2, "days": 14.0,
                                                      "warmup_days": 7.0}
    assert ms["pairwise_f1"].params == {"seed": 2, "days": 14.0}
    assert ms["border_split_pair_share.r5"].unit == "share"
    assert ms["steady_state.pairwise_f1"].unit == "score"
    # a dict of dicts (bench_latency's merges per table): one metric per leaf
    latency = {"bench": "latency", "rate_per_s": 100.0,
               "merges_by_table": {"reports": {"new_parts": 41, "rows_merged": 27735}}}
    ms = by_metric(history.measurements_from_result(latency, **META))
    assert {m for m in ms if m.startswith("merges")} == {
        "merges_by_table.reports.new_parts", "merges_by_table.reports.rows_merged"}
    assert ms["merges_by_table.reports.rows_merged"].value == 27735


def test_a_failed_command_gives_an_error_record_with_the_last_stderr_line() -> None:
    failed = {"bench": "pipeline-chdb", "error": "exit 1",
              "stderr_tail": "Traceback ...\n  File x\nRuntimeError: broker did not start\n",
              "bench_wall_s": 10.1}
    ms = history.measurements_from_run([failed], benchmark="pipeline", **META)
    err, wall = ms
    assert (err.benchmark, err.metric, err.value) == ("pipeline", "error", "exit 1")
    assert err.note == "RuntimeError: broker did not start"
    assert err.is_error
    assert (wall.benchmark, wall.metric, wall.value, wall.params) == (
        "pipeline", "bench_wall_s", 10.1, {})


def test_a_run_keeps_the_commands_wall_time_once() -> None:
    lines = [{"bench": "detection_sweep", "seed": s, "median_delay_h": 1.0,
              "bench_wall_s": 22.0} for s in (1, 2)]
    ms = history.measurements_from_run(lines, benchmark="detection_sweep", **META)
    assert [m.metric for m in ms].count("bench_wall_s") == 1
    assert [m.params.get("seed") for m in ms if m.metric == "median_delay_h"] == [1, 2]


@pytest.mark.parametrize(("change", "reason"), [
    ({"benchmark": "../pipeline"}, "lower-case letters"),
    ({"date": "26/11/2026"}, "is not YYYY-MM-DD"),
    ({"stat": "min-max", "value": 3}, "min-max value is"),
    ({"stat": "median of sorts"}, "is not one of"),
    ({"params": {"seed": [1, 2]}}, "params must map"),
    ({"value": {"a": 1}}, "value must be"),
    ({"runs": 0}, "runs must be"),
])
def test_a_bad_record_is_refused_with_its_reason(change: dict[str, Any], reason: str) -> None:
    good = {"benchmark": "geo", "metric": "m", "value": 1, "unit": None, "params": {},
            **META}
    with pytest.raises(HistoryError, match=reason):
        Measurement.from_dict({**good, **change})


def test_a_record_with_missing_or_unknown_keys_is_refused() -> None:
    d = {"benchmark": "geo", "metric": "m", "value": 1, "unit": None, "params": {}, **META}
    with pytest.raises(HistoryError, match=r"missing keys \['unit'\]"):
        Measurement.from_dict({k: v for k, v in d.items() if k != "unit"})
    with pytest.raises(HistoryError, match=r"unknown keys \['colour'\]"):
        Measurement.from_dict({**d, "colour": "red"})


def test_appends_keep_file_order_and_read_back_equal(tmp_path: Path) -> None:
    first = history.measurements_from_result(
        {"bench": "geo", "points": 10, "grid_build_s": 0.6}, **META)
    second = history.measurements_from_result(
        {"bench": "geo", "points": 10, "grid_build_s": 0.5},
        **{**META, "date": "2026-12-02T09:00Z"}, via="make bench", load_avg=[0.1, 0.2, 0.3])
    other = history.measurements_from_result({"bench": "correlation", "seed": 1,
                                              "pairwise_f1": 0.9}, **META)
    assert history.append(tmp_path, first + other) == {"geo": 1, "correlation": 1}
    history.append(tmp_path, second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["correlation.jsonl", "geo.jsonl"]
    back = history.load(tmp_path)
    assert back == other + first + second  # files sorted by name, lines in append order
    line = json.loads((tmp_path / "geo.jsonl").read_text().splitlines()[1])
    assert line["via"] == "make bench" and line["load_avg"] == [0.1, 0.2, 0.3]
    assert "stat" not in line  # optional keys only when set


def test_a_malformed_line_stops_the_load_naming_file_and_line(tmp_path: Path) -> None:
    history.append(tmp_path, history.measurements_from_result(
        {"bench": "geo", "grid_build_s": 0.6}, **META))
    with open(tmp_path / "geo.jsonl", "a") as fh:
        fh.write('{"benchmark": "geo", "metric": "x"\n')
    with pytest.raises(HistoryError, match=r"geo.jsonl:2: "):
        history.load(tmp_path)


def test_a_record_in_another_benchmarks_file_is_refused(tmp_path: Path) -> None:
    m = history.measurements_from_result({"bench": "geo", "grid_build_s": 0.6}, **META)[0]
    (tmp_path / "pipeline.jsonl").write_text(m.to_json() + "\n")
    with pytest.raises(HistoryError, match="benchmark 'geo' in the file of 'pipeline'"):
        history.load(tmp_path)


def test_history_tables_filter_by_benchmark_metric_and_params() -> None:
    ms = [m for s, f in ((1, 0.898), (2, 0.894)) for m in history.measurements_from_result(
        {"bench": "correlation", "seed": s, "pairwise_f1": f, "over_merge_rate": 0.02}, **META)]
    out = history.history_markdown(ms, metrics=["pairwise_f1"], params={"seed": "2"})
    assert "## correlation" in out
    rows = [r for r in out.splitlines() if r.startswith("| 2026")]
    assert len(rows) == 1 and "0.894" in rows[0] and "seed=2" in rows[0]
    assert "bench_x" in rows[0]  # the command, without `python -m benchmarks.`
    assert history.history_markdown(ms, benchmarks=["geo"]) == "No measurement matches.\n"


def test_history_cli_prints_the_stored_table(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    history.append(tmp_path, history.measurements_from_result(
        {"bench": "geo", "points": 10, "grid_build_s": 0.64}, **META))
    assert history.main(["--results", str(tmp_path), "--metric", "grid_build_s"]) == 0
    assert "| grid_build_s | 0.64 | s |" in capsys.readouterr().out
    (tmp_path / "geo.jsonl").write_text("not json\n")
    assert history.main(["--results", str(tmp_path)]) == 2
    assert "geo.jsonl:1" in capsys.readouterr().err


def test_the_stored_history_loads() -> None:
    ms = history.load()
    assert ms, "benchmarks/results is empty"
    assert {m.benchmark for m in ms} >= {"pipeline", "geo", "correlation",
                                         "detection_quality", "backtest_throughput"}
