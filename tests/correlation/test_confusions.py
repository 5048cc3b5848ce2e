"""The categories reporters confuse are defined once (`agents.core.confusions`) and every
user agrees with that definition: correlation, detection quality, the simulator."""

from __future__ import annotations

import itertools

import pytest

from agents.core.confusions import CONFUSED_PAIRS, CONFUSED_WITH, confused
from agents.core.correlation.config import DEFAULT_COMPATIBLE, CorrelationConfig
from agents.core.detection.quality import compatible
from offline.simulator.sources import MISLABELS, check_mislabels
from schemas.enums import CATEGORIES

ALL_PAIRS = list(itertools.product(CATEGORIES, repeat=2))


def test_pairs_are_distinct_known_categories() -> None:
    unordered = [frozenset(p) for p in CONFUSED_PAIRS]
    assert all(len(p) == 2 and p <= set(CATEGORIES) for p in unordered)
    assert len(set(unordered)) == len(unordered)  # no pair twice, in either order
    assert confused("rodeo", "nuisance") and confused("nuisance", "rodeo")
    assert confused("vol", "vol") and not confused("vol", "rodeo")
    assert CONFUSED_WITH["autre"] == {"trafic_stupefiants", "violence", "campement_illicite"}


def test_correlation_merges_exactly_the_confused_pairs() -> None:
    cfg = CorrelationConfig()
    assert cfg.compatible_pairs == DEFAULT_COMPATIBLE == CONFUSED_PAIRS
    assert [p for p in ALL_PAIRS if cfg.compatible(*p)] == [p for p in ALL_PAIRS if confused(*p)]


def test_detection_quality_matches_alerts_of_confused_categories() -> None:
    assert [p for p in ALL_PAIRS if compatible(*p)] == [p for p in ALL_PAIRS if confused(*p)]


def test_the_simulator_mislabels_only_confused_pairs_and_draws_each() -> None:
    drawn = {frozenset((true, alt)) for true, opts in MISLABELS.items() for alt, _ in opts}
    assert drawn == {frozenset(p) for p in CONFUSED_PAIRS}


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ({"rodeo": (("vol", 0.1),)}, "rodeo -> vol is not a pair"),
        ({"rodeo": (("rodeo", 0.1),)}, "rodeo -> rodeo is not a pair"),
        ({"rodeo": (("nuisance", 1.5),)}, "probability 1.5 not in"),
    ],
)
def test_the_simulator_refuses_a_mislabel_outside_the_domain(
    table: dict[str, tuple[tuple[str, float], ...]], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        check_mislabels(table)
    check_mislabels(MISLABELS)  # the simulator's own table passes (it is checked at import)
