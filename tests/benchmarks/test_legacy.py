"""The one-off import of the former BENCHMARKS.md log: run sections parsed as they were
written, prose figures copied by hand, the committed history holding both."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import history, legacy

SAMPLE = """# Vigie benchmarks

Prose with 1,234 reports/s that the parser must not take.

## Run of 2026-11-26 04:25 UTC (commit d34306b)

Machine: EPYC, 2 cores, Python 3.11.7, load average before the run 0.7, 1.0, 1.2.
Command: `make bench` (`python -m benchmarks.run_all`).

### pipeline

`python -m benchmarks.bench_pipeline -n 150000 --store server`

```json
{"bench": "pipeline", "error": "exit 1", "stderr_tail": "a\\nCalledProcessError: x\\n"}
```

The broker did not start; rerun at 04:30 below.

### detection

`python -m benchmarks.bench_detection`

```json
{"bench": "detection_quality", "seed": 1, "median_delay_h": 1.953, "bench_wall_s": 43.1}
{"bench": "backtest_throughput", "days": 28.0, "lines": 42587, "reports_per_s": 2516}
```

## Run of 2026-11-26 04:30 UTC (commit 81364fd)

Machine: EPYC, 2 cores, Python 3.11.7, load average before the run 0.6, 1.1, 1.2.
Command: `python -m benchmarks.run_all --only pipeline` (the rerun of 04:25).

### pipeline

`python -m benchmarks.bench_pipeline -n 150000 --store server`

```json
{"bench": "pipeline", "store": "server", "pipeline_reports_per_s": 3935}
```
"""


def test_run_sections_are_read_with_their_date_commit_machine_and_notes() -> None:
    runs = legacy.parse_runs(SAMPLE)
    assert [d for d, _ in runs] == ["2026-11-26T04:25Z", "2026-11-26T04:30Z"]
    first = runs[0][1]
    err = next(m for m in first if m.is_error)
    assert (err.benchmark, err.commit, err.via) == ("pipeline", "d34306b", "make bench")
    assert err.note == "CalledProcessError: x; The broker did not start; rerun at 04:30 below."
    assert err.machine == "EPYC, 2 cores, Python 3.11.7"
    assert err.load_avg == [0.7, 1.0, 1.2]
    delay = next(m for m in first if m.metric == "median_delay_h")
    assert delay.value == 1.953 and delay.command == "python -m benchmarks.bench_detection"
    bt = next(m for m in first if m.metric == "reports_per_s")
    assert bt.params == {"days": 28.0, "seed": 1, "lines": 42587}  # throughput(days, 1)
    assert [m.metric for m in first].count("bench_wall_s") == 1  # the command printing it
    rerun = runs[1][1]
    rate = next(m for m in rerun if m.metric == "pipeline_reports_per_s")
    assert (rate.value, rate.commit) == (3935, "81364fd")
    assert rate.via == "python -m benchmarks.run_all --only pipeline"
    assert rate.note == "the rerun of 04:25"


def test_a_section_that_does_not_read_is_an_error_not_a_gap() -> None:
    broken = SAMPLE.replace('"median_delay_h": 1.953,', '"median_delay_h": 1.953,,')
    with pytest.raises(legacy.LegacyError, match="not JSON"):
        legacy.parse_runs(broken)
    no_machine = SAMPLE.replace("Machine: EPYC, 2 cores, Python 3.11.7, load average before "
                                "the run 0.7, 1.0, 1.2.\n", "")
    with pytest.raises(legacy.LegacyError, match="without Machine"):
        legacy.parse_runs(no_machine)


def test_prose_figures_carry_their_source_and_follow_the_format() -> None:
    figures = legacy.prose()
    assert len(figures) > 100
    assert all(m.recorded_in in legacy.RECORDED_ORDER for m in figures)
    assert all(m.machine == legacy.VM for m in figures)
    seeds_1_8 = [m for m in figures if m.command == legacy.PIPE_SEEDS_1_8
                 and m.metric == "false_alerts_per_day" and m.variant is None]
    assert [m.value for m in seeds_1_8] == [0.43, 0.14, 0.14, 0.14, 0.29, 0.29, 0.29, 0.43]
    with pytest.raises(legacy.LegacyError, match="2 values for 3 seeds"):
        legacy.per_seed("x", "m", (1, 2), (1, 2, 3), "05a3891")


def test_records_go_out_in_the_order_the_log_received_them() -> None:
    records = legacy.convert(SAMPLE)
    rank = {c: i for i, c in enumerate(legacy.RECORDED_ORDER)}
    order = [rank[m.recorded_in or legacy.RUN_RECORDED_IN[m.date]] for m in records]
    assert order == sorted(order)
    # both sample runs were recorded in ae30cfd: before its prose, after 2c06853's
    first_run = next(i for i, m in enumerate(records) if m.commit == "d34306b")
    assert records[first_run - 1].recorded_in in ("2c06853", "b98eda4")
    assert records[first_run + 1].recorded_in is None


def test_the_committed_history_holds_every_prose_figure_in_order() -> None:
    stored = [m for m in history.load() if m.recorded_in is not None]
    rank = {c: i for i, c in enumerate(legacy.RECORDED_ORDER)}
    by_bench: dict[str, list[history.Measurement]] = {}
    for m in sorted(legacy.prose(), key=lambda m: rank[str(m.recorded_in)]):
        by_bench.setdefault(m.benchmark, []).append(m)
    for bench, figures in by_bench.items():
        assert [m for m in stored if m.benchmark == bench] == figures


def test_the_converter_does_not_write_over_a_history(tmp_path: Path) -> None:
    old = tmp_path / "old.md"
    old.write_text(SAMPLE)
    out = tmp_path / "results"
    assert legacy.main([str(old), "--out", str(out)]) == 0
    before = {p.name: p.read_text() for p in out.iterdir()}
    assert legacy.main([str(old), "--out", str(out)]) == 1
    assert {p.name: p.read_text() for p in out.iterdir()} == before
