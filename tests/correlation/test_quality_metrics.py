"""Clustering scores of the harness, against hand-computed values."""

from __future__ import annotations

import pytest

from agents.core.correlation.quality import (
    merges_undone,
    score,
    split_pair_share,
    splits_healed,
    unlocated_placed,
)

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


def test_what_if_assignments_bound_each_kind_of_error() -> None:
    truth = {"a1": "A", "a2": "A", "a3": "A", "a4": "A", "b1": "B", "b2": "B", "c1": "C",
             "c2": "C"}
    predicted = {"a1": "p1", "a2": "p1", "a3": "p2", "a4": "p3", "b1": "p3", "b2": "p4",
                 "c1": "p5", "c2": "p6"}
    # p2 (a3) is a pure fragment of A: healed into p1, A's largest; p3 mixes A and B: kept
    healed = splits_healed(predicted, truth)
    assert healed["a3"] == "p1" and healed["a4"] == "p3" and healed["b1"] == "p3"
    assert healed["b2"] == "p4"  # B's only pure fragment
    assert score(healed, truth).pairwise_recall > score(predicted, truth).pairwise_recall
    assert score(healed, truth).pairwise_precision < 1.0  # p3's wrong pair stays
    # a3 had no position: placed with most of A's located reports (p1); C has no located
    # report: its two reports without a position go together, apart from every other
    placed = unlocated_placed(predicted, truth, {"a3", "c1", "c2"})
    assert placed["a3"] == "p1" and placed["c1"] == placed["c2"]
    assert placed["c1"] not in {placed[r] for r in truth if r not in ("c1", "c2")}
    # of the 8 true pairs: A's 3 within p1 and C's; a4's 3 and B's stay split
    assert score(placed, truth).pairwise_recall == 4 / 8
    assert {placed[r] for r in ("a1", "a2", "a4", "b1", "b2")} == {"p1", "p3", "p4"}
    undone = merges_undone(predicted, truth)
    s = score(undone, truth)
    assert s.pairwise_precision == 1.0
    assert s.pairwise_recall == score(predicted, truth).pairwise_recall
