"""Clustering scores of the harness, against hand-computed values."""

from __future__ import annotations

import pytest

from agents.core.correlation.quality import score, split_pair_share

TRUTH = {"a": "T1", "b": "T1", "c": "T1", "d": "T2", "e": "T2", "f": "T3"}


def test_perfect_clustering() -> None:
    s = score(dict(TRUTH), TRUTH)
    assert s.pairwise_precision == s.pairwise_recall == s.pairwise_f1 == 1.0
    assert s.bcubed_f1 == 1.0 and s.over_merge_rate == 0.0
    assert (s.reports, s.true_incidents, s.predicted_incidents) == (6, 3, 3)


def test_all_singletons_have_full_precision_no_recall() -> None:
    s = score({r: r for r in TRUTH}, TRUTH)
    assert s.pairwise_precision == 1.0 and s.pairwise_recall == 0.0 and s.pairwise_f1 == 0.0
    assert s.bcubed_precision == 1.0
    assert s.bcubed_recall == pytest.approx((3 * (1 / 3) + 2 * (1 / 2) + 1) / 6)


def test_hand_computed_mixed_case() -> None:
    # P1 = {a, b, d}: one true pair (a, b), two false; P2 = {c}; P3 = {e, f}: one false pair
    predicted = {"a": "P1", "b": "P1", "d": "P1", "c": "P2", "e": "P3", "f": "P3"}
    s = score(predicted, TRUTH)
    assert s.pairwise_precision == pytest.approx(1 / 4)  # 1 true of 3 + 1 predicted pairs
    assert s.pairwise_recall == pytest.approx(1 / 4)  # (a,b) of (a,b),(a,c),(b,c),(d,e)
    assert s.pairwise_f1 == pytest.approx(1 / 4)
    bp = (2 / 3 + 2 / 3 + 1 / 3 + 1 + 1 / 2 + 1 / 2) / 6
    br = (2 / 3 + 2 / 3 + 1 / 2 + 1 / 3 + 1 / 2 + 1) / 6
    assert s.bcubed_precision == pytest.approx(bp)
    assert s.bcubed_recall == pytest.approx(br)
    assert s.over_merge_rate == pytest.approx(2 / 3)  # P1 and P3 mix true incidents
    assert s.over_merge_rate_multi == pytest.approx(1.0)


def test_reports_missing_from_the_prediction_are_ignored() -> None:
    s = score({"a": "P", "b": "P"}, TRUTH)
    assert s.reports == 2 and s.pairwise_f1 == 1.0


def test_split_pair_share() -> None:
    keys = {"a": "k1", "b": "k1", "c": "k2", "d": "k1", "e": "k1", "f": "k9"}
    # true pairs: (a,b) (a,c) (b,c) (d,e); split: (a,c) (b,c)
    assert split_pair_share(TRUTH, keys) == pytest.approx(2 / 4)
    assert split_pair_share(TRUTH, {r: "k" for r in TRUTH}) == 0.0
