"""`missed_pairs_by_cause`: the true pairs split apart, each counted once under the first
of its causes (no position, too far apart in time, in space, two categories, or none)."""

from __future__ import annotations

from agents.core.correlation.quality import (
    MISSED_CAUSES,
    IncidentLimits,
    ReportFacts,
    missed_pairs_by_cause,
    score,
)

LAT, LON = 48.6, 2.4
M_PER_DEG_LAT = 111_195.0  # `distance_m`'s sphere: 1 degree of latitude
LIMITS = IncidentLimits(window_s=3600.0, reach_m=350.0)


def at(category: str, t: float, north_m: float | None = 0.0) -> ReportFacts:
    if north_m is None:
        return ReportFacts(category, t)
    return ReportFacts(category, t, LAT + north_m / M_PER_DEG_LAT, LON)


def test_each_split_pair_counts_once_under_its_first_cause() -> None:
    facts = {
        "a": at("vol", 0.0),
        "b": at("vol", 60.0, None),  # commune-only
        "c": at("violence", 120.0),  # another category
        "d": at("vol", 7200.0),  # beyond the window from a
        "e": at("vol", 300.0, 500.0),  # beyond the reach from a
        "f": at("vol", 200.0, 100.0),  # close to a in every way
    }
    truth = dict.fromkeys(facts, "T")
    predicted = {r: r for r in facts}  # every report alone: all 15 pairs missed
    out = missed_pairs_by_cause(predicted, truth, facts, {"T": LIMITS})
    assert list(out) == list(MISSED_CAUSES)
    # b with each of the 5 others; d with a, c, e, f (time); e with a, c, f (distance: 500
    # m, 500 m and 400 m); c with a and f (category: close in time and space); a with f
    assert out == {"no_position": 5, "time": 4, "distance": 3, "category": 2,
                   "within_bounds": 1}
    assert sum(out.values()) == 15


def test_only_pairs_split_apart_count_and_they_are_the_missed_pairs() -> None:
    facts = {r: at("vol", 60.0 * i) for i, r in enumerate("abcdxy")}
    truth = {"a": "T", "b": "T", "c": "T", "d": "T", "x": "U", "y": "U"}
    predicted = {"a": "p", "b": "p", "c": "q", "d": "q", "x": "p", "y": "p"}
    out = missed_pairs_by_cause(predicted, truth, facts, {"T": LIMITS, "U": LIMITS})
    # T split 2 + 2: 4 of its 6 pairs missed; U whole (its pair with a and b is false, not
    # missed)
    assert out["within_bounds"] == 4 and sum(out.values()) == 4
    s = score(predicted, truth)
    true_pairs = 6 + 1
    assert round((1.0 - s.pairwise_recall) * true_pairs) == sum(out.values())


def test_reports_without_a_prediction_are_left_out() -> None:
    facts = {"a": at("vol", 0.0), "b": at("vol", 60.0, None), "c": at("vol", 120.0)}
    truth = dict.fromkeys(facts, "T")
    out = missed_pairs_by_cause({"a": "p", "c": "q"}, truth, facts, {"T": LIMITS})
    assert out == {"no_position": 0, "time": 0, "distance": 0, "category": 0,
                   "within_bounds": 1}
