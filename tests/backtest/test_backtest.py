"""`vigie backtest` end to end on a small simulated file (needs enrichment and correlation)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas import Alert, Incident

pytest.importorskip("agents.core.correlation")

from offline.simulator.config import SimulationConfig
from offline.simulator.engine import simulate
from vigie.cli import main


def test_backtest_writes_contract_files_deterministically(tmp_path: Path) -> None:
    path = tmp_path / "reports.jsonl"
    truths = []
    with open(path, "wb") as fh:
        for m in simulate(SimulationConfig(days=4, seed=3, outbreaks=2)):
            fh.write(m.value.replace(b"\n", b" ") + b"\n")
            truths.append(m.truth)
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert (
            main(["backtest", "--input", str(path), "--out", str(out), "--warmup-days", "2"]) == 0
        )
        outs.append(out)
    for name in ("incidents.jsonl", "alerts.jsonl", "rejected.jsonl", "summary.json"):
        assert (outs[0] / name).exists()
    for name in ("incidents.jsonl", "alerts.jsonl", "rejected.jsonl"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()  # deterministic
    rejected = [orjson.loads(x) for x in (outs[0] / "rejected.jsonl").read_bytes().splitlines()]
    expected = {i + 1 for i, t in enumerate(truths) if t.get("expected_reject_reason")}
    assert {r["line"] for r in rejected} == expected
    summary = orjson.loads((outs[0] / "summary.json").read_bytes())
    dups = sum(1 for t in truths if t.get("is_redelivery") and not t.get("expected_reject_reason"))
    assert summary["duplicates"] == dups
    assert summary["lines"] == len(truths) and summary["reports_per_second"] > 0
    # Files hold the contract's messages (RFC 3339 times), as the live topics do.
    for line in (outs[0] / "incidents.jsonl").read_bytes().splitlines():
        Incident.model_validate_json(line)
    # emitted_at is the stream clock: never before the window it reports on
    for line in (outs[0] / "alerts.jsonl").read_bytes().splitlines():
        alert = Alert.model_validate_json(line)
        assert alert.emitted_at >= alert.window_end


def test_backtest_restores_the_garbage_collector_settings() -> None:
    """The replay runs with fewer collections; the caller's settings come back after it,
    also when the replay raises."""
    import gc

    from offline.replay import run_backtest

    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    lines = [m.value.replace(b"\n", b" ") for m in simulate(SimulationConfig(days=1, seed=4))]
    run_backtest(lines[:200])
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen
    with pytest.raises(AttributeError):  # not bytes
        run_backtest([object()])  # type: ignore[list-item]
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen
