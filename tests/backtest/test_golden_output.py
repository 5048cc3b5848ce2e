"""The backtest's output on a fixed simulated stream, byte for byte.

A refactoring must not change what Vigie computes: the simulator's stream (seed 11, 10 days,
3 outbreaks) and the backtest's incidents, alerts and rejections are pinned by their SHA-256.
A change that *means* to alter results updates `golden.json` in the same commit, with the
reason in the commit message (`python -m tests.backtest.test_golden_output` prints the new
hashes).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from vigie.cli import main

GOLDEN = Path(__file__).with_name("golden.json")
SIMULATE = ["simulate", "--days", "10", "--seed", "11", "--outbreaks", "3"]
OUTPUTS = ("incidents.jsonl", "alerts.jsonl", "rejected.jsonl")


def digests(workdir: Path) -> dict[str, str]:
    stream = workdir / "reports.jsonl"
    assert main([*SIMULATE, "--out", str(stream)]) == 0
    out = workdir / "out"
    assert main(["backtest", "--input", str(stream), "--out", str(out), "--warmup-days", "7"]) == 0
    files = {"reports.jsonl": stream} | {name: out / name for name in OUTPUTS}
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}


@pytest.mark.slow
def test_backtest_output_is_unchanged(tmp_path: Path) -> None:
    expected = json.loads(GOLDEN.read_text())
    assert digests(tmp_path) == expected


if __name__ == "__main__":  # print the hashes of the current code
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        json.dump(digests(Path(tmp)), sys.stdout, indent=2, sort_keys=True)
        print()
