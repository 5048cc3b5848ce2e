"""`pair_errors_by`: missed and false pairs by a label of the true incidents, counted pair
by pair on small clusterings."""

from __future__ import annotations

import itertools
import random

from agents.core.correlation.quality import PairErrors, pair_errors_by, score


def brute(predicted: dict[str, str], truth: dict[str, str], label: dict[str, str]
          ) -> dict[str, PairErrors]:
    ids = [r for r in truth if r in predicted]
    true_pairs: dict[str, int] = {}
    missed: dict[str, int] = {}
    false: dict[str, int] = {}
    for a, b in itertools.combinations(ids, 2):
        la, lb = label[truth[a]], label[truth[b]]
        if truth[a] == truth[b]:
            true_pairs[la] = true_pairs.get(la, 0) + 1
            if predicted[a] != predicted[b]:
                missed[la] = missed.get(la, 0) + 1
        elif predicted[a] == predicted[b]:
            key = la if la == lb else "mixed"
            false[key] = false.get(key, 0) + 1
    labels = sorted({label[truth[r]] for r in ids} | set(false))
    return {k: PairErrors(true_pairs.get(k, 0), missed.get(k, 0), false.get(k, 0))
            for k in labels}


def test_a_split_and_a_merge_are_counted_under_their_labels() -> None:
    truth = {"a1": "A", "a2": "A", "a3": "A", "b1": "B", "c1": "C", "c2": "C"}
    label = {"A": "point", "B": "mobile", "C": "point"}
    # A split in two (a1 | a2 a3), B merged with a2 a3 (mixed), C merged with a1 (point)
    predicted = {"a1": "x", "c1": "x", "c2": "x", "a2": "y", "a3": "y", "b1": "y"}
    out = pair_errors_by(predicted, truth, label)
    assert out["point"] == PairErrors(true_pairs=4, missed=2, false=2)
    assert out["mixed"] == PairErrors(true_pairs=0, missed=0, false=2)
    assert out["mobile"] == PairErrors(true_pairs=0, missed=0, false=0)


def test_it_agrees_with_pair_by_pair_counts_and_with_the_scores() -> None:
    rnd = random.Random(16)
    for _ in range(200):
        n = rnd.randint(1, 30)
        truth = {f"r{i}": f"t{rnd.randint(0, 8)}" for i in range(n)}
        predicted = {r: f"p{rnd.randint(0, 8)}" for r in truth if rnd.random() < 0.9}
        label = {f"t{i}": rnd.choice(("point", "mobile", "persistent")) for i in range(9)}
        out = pair_errors_by(predicted, truth, label)
        assert out == brute(predicted, truth, label)
        s = score(predicted, truth)
        true_pairs = sum(e.true_pairs for e in out.values())
        if true_pairs:
            recall = (true_pairs - sum(e.missed for e in out.values())) / true_pairs
            assert abs(recall - s.pairwise_recall) < 1e-9
