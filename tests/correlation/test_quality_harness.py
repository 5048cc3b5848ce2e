"""`vigie eval` harness end to end: simulated stream -> validate -> enrich -> correlate -> scores.

Floors sit a little under what the engine reaches (seed 1 and seed 2, 7 days); the target of
the project (pairwise F1 >= 0.90 with precision >= 0.95) is NOT met yet (see the report of
`python -m streams.evaluation --seeds 1 2 -v`). A regression of the merge rules fails here.
"""

from __future__ import annotations

import pytest

from streams.evaluation import EvalSetup, evaluate

# measured (7 days): seed 1 P 0.918 R 0.868 F1 0.893 B3 0.962; seed 2 P 0.909 R 0.859
# F1 0.884 B3 0.958; over-merge 2.4 % / 2.6 %
FLOORS = {
    "pairwise_precision": 0.895,
    "pairwise_recall": 0.845,
    "pairwise_f1": 0.87,
    "bcubed_f1": 0.95,
}


@pytest.mark.parametrize("seed", [1, 2])
def test_quality_floors_on_two_seeds(seed: int) -> None:
    r = evaluate(EvalSetup(seed=seed, days=7.0))
    assert r["valid_reports"] > 8000
    for key, floor in FLOORS.items():
        assert r[key] >= floor, (key, r[key])
    assert r["over_merge_rate"] <= 0.035
    assert r["correlation_reports_per_s"] > 500  # generous: shared 2-core CI machines
    border = r["border_split_pair_share"]
    assert border["r4"] <= border["r5"] <= border["r6"] <= border["r7"]
    assert border["r5"] < 0.05


def test_cli_exit_code_follows_the_floors(capsys: pytest.CaptureFixture[str]) -> None:
    from streams.cli import main

    assert main(["eval", "--seeds", "3", "--days", "2", "--min-f1", "0.5"]) == 0
    assert '"pairwise_f1"' in capsys.readouterr().out
    assert main(["eval", "--seeds", "3", "--days", "2", "--min-precision", "1.01"]) == 1
