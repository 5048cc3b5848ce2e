"""`vigie params`: the parameters the engine learns from a report file, as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigie.cli import main


def test_params_prints_what_the_engine_learnt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = tmp_path / "reports.jsonl"
    assert main(["simulate", "--days", "2", "--seed", "4", "--out", str(stream)]) == 0
    capsys.readouterr()
    assert main(["params", "--input", str(stream)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reports"] > 1000
    citizen = out["dispersion"]["citizen|stated"]
    assert citizen["pairs"] > 50
    assert 0.2 < citizen["scale"] < 1.0
    assert 0.0 < citizen["stated_radius_confidence"] < 1.0
    assert set(out) >= {"median_lag_s", "mean_spread_s", "spread_shape", "confusion_rate"}
    assert out["median_lag_s"]["citizen"] > 0


def test_params_on_a_missing_file_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["params", "--input", str(tmp_path / "none.jsonl")]) == 1
    assert "cannot read" in capsys.readouterr().err
