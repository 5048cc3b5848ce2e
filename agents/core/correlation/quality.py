"""Clustering quality of a correlation run against ground truth (pure functions).

Inputs: `predicted` and `truth`, each mapping report_id -> cluster id, over the same reports.
- pairwise: a pair of reports is positive when both are in one cluster; precision = pairs
  together in both / pairs together in predicted, recall = ... / pairs together in truth.
- B-cubed: per report, precision = |pred cluster ∩ true cluster| / |pred cluster| (recall
  with |true cluster|), averaged over reports.
- over-merge rate: share of predicted incidents mixing >= 2 true incidents.
- border split: share of true same-incident pairs whose reports have different keys.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from agents.core.correlation.spatial import distance_m


@dataclass(frozen=True, slots=True)
class ClusterScores:
    reports: int
    true_incidents: int
    predicted_incidents: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    over_merge_rate: float  # over all predicted incidents
    over_merge_rate_multi: float  # over predicted incidents of >= 2 reports

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _joint(predicted: Mapping[str, str], truth: Mapping[str, str]) -> Counter[tuple[str, str]]:
    """Reports by (predicted incident, true incident); reports without a prediction are
    left out."""
    return Counter((predicted[r], truth[r]) for r in truth if r in predicted)


def score(predicted: Mapping[str, str], truth: Mapping[str, str]) -> ClusterScores:
    joint = _joint(predicted, truth)
    pred_size: Counter[str] = Counter()
    true_size: Counter[str] = Counter()
    for (pc, tc), n in joint.items():
        pred_size[pc] += n
        true_size[tc] += n
    tp = sum(_pairs(n) for n in joint.values())
    pred_pairs = sum(_pairs(n) for n in pred_size.values())
    true_pairs = sum(_pairs(n) for n in true_size.values())
    p = tp / pred_pairs if pred_pairs else 1.0
    r = tp / true_pairs if true_pairs else 1.0
    bp = br = 0.0
    for (pc, tc), n in joint.items():  # each of the n reports scores n/|pc| and n/|tc|
        bp += n * n / pred_size[pc]
        br += n * n / true_size[tc]
    reports = sum(joint.values())
    total = reports or 1
    mixes: dict[str, int] = defaultdict(int)
    for pc, _ in joint:
        mixes[pc] += 1
    mixed = sum(1 for v in mixes.values() if v >= 2)
    multi = sum(1 for v in pred_size.values() if v >= 2)
    return ClusterScores(
        reports=reports,
        true_incidents=len(true_size),
        predicted_incidents=len(pred_size),
        pairwise_precision=p,
        pairwise_recall=r,
        pairwise_f1=_f1(p, r),
        bcubed_precision=bp / total,
        bcubed_recall=br / total,
        bcubed_f1=_f1(bp / total, br / total),
        over_merge_rate=mixed / len(pred_size) if pred_size else 0.0,
        over_merge_rate_multi=mixed / multi if multi else 0.0,
    )


def split_pair_share(truth: Mapping[str, str], key: Mapping[str, str]) -> float:
    """Share of true same-incident report pairs whose two reports have different keys."""
    by_incident: dict[str, Counter[str]] = defaultdict(Counter)
    for rid, inc in truth.items():
        by_incident[inc][key[rid]] += 1
    total = split = 0
    for keys in by_incident.values():
        n = sum(keys.values())
        pairs = _pairs(n)
        total += pairs
        split += pairs - sum(_pairs(k) for k in keys.values())
    return split / total if total else 0.0


def splits_healed(predicted: Mapping[str, str], truth: Mapping[str, str]) -> dict[str, str]:
    """`predicted` with every pure fragment (a predicted incident all of whose reports
    belong to one true incident) merged into the largest pure fragment of its true incident
    (ties: the smallest id); incidents mixing true incidents stay as they are. Its pair
    scores bound what a step merging split incidents, and never merging wrongly, would
    gain."""
    ids = [r for r in truth if r in predicted]
    members: dict[str, set[str]] = defaultdict(set)
    sizes: Counter[str] = Counter()
    for r in ids:
        members[predicted[r]].add(truth[r])
        sizes[predicted[r]] += 1
    target: dict[str, str] = {}  # true incident -> its largest pure fragment
    for pc in sorted(members):
        if len(members[pc]) == 1:
            (tc,) = members[pc]
            best = target.get(tc)
            if best is None or sizes[pc] > sizes[best]:
                target[tc] = pc
    return {
        r: target[truth[r]] if len(members[predicted[r]]) == 1 else predicted[r] for r in ids
    }


def unlocated_placed(
    predicted: Mapping[str, str], truth: Mapping[str, str], unlocated: set[str]
) -> dict[str, str]:
    """`predicted` with each report of `unlocated` (no position: a commune-only report)
    moved to the predicted incident holding most of its located true mates (ties: the
    smallest id); the reports of a true incident none of whose reports has a position go
    together, apart from the rest (where a right placement puts them: with one another).
    Its pair scores bound what placing the reports without a position better would gain."""
    ids = [r for r in truth if r in predicted]
    located_by_true: dict[str, Counter[str]] = defaultdict(Counter)
    for r in ids:
        if r not in unlocated:
            located_by_true[truth[r]][predicted[r]] += 1
    out = {r: predicted[r] for r in ids}
    for r in ids:
        if r in unlocated:
            where = located_by_true.get(truth[r])
            if where:
                out[r] = min(where, key=lambda pc: (-where[pc], pc))
            else:
                out[r] = f"unlocated:{truth[r]}"
    return out


def merges_undone(predicted: Mapping[str, str], truth: Mapping[str, str]) -> dict[str, str]:
    """`predicted` with each incident cut by true incident (every pair it makes right)."""
    return {r: f"{predicted[r]}|{truth[r]}" for r in truth if r in predicted}


@dataclass(frozen=True, slots=True)
class PairErrors:
    """Pairs of one label (`pair_errors_by`): true pairs, true pairs split apart (missed),
    and pairs of two true incidents merged into one predicted incident (false)."""

    true_pairs: int
    missed: int
    false: int


def pair_errors_by(
    predicted: Mapping[str, str], truth: Mapping[str, str], label: Mapping[str, str]
) -> dict[str, PairErrors]:
    """Where the pair errors are, by a label of each true incident (e.g. its category's
    class): for each label, its true pairs and how many of them no predicted incident holds,
    and the false pairs between two true incidents of that label; a false pair between
    two labels counts under "mixed". Every label of a true incident with a predicted
    report is in the result (with no pairs, zeros). Reports without a prediction are left
    out, as in `score`."""
    true_size: Counter[str] = Counter()
    kept: Counter[str] = Counter()  # true pairs of the label a predicted incident holds
    cells: dict[str, Counter[str]] = defaultdict(Counter)  # predicted -> label -> reports
    for (pc, tc), n in _joint(predicted, truth).items():
        true_size[tc] += n
        kept[label[tc]] += _pairs(n)
        cells[pc][label[tc]] += n
    true_pairs: Counter[str] = Counter()
    for tc, n in true_size.items():
        true_pairs[label[tc]] += _pairs(n)
    same: Counter[str] = Counter()  # pairs of one label held by one predicted incident
    mixed = 0
    for by_label in cells.values():
        for lab, n in by_label.items():
            same[lab] += _pairs(n)
        mixed += _pairs(sum(by_label.values())) - sum(_pairs(n) for n in by_label.values())
    false = {lab: same[lab] - kept[lab] for lab in true_pairs}
    if mixed:
        false["mixed"] = mixed
    labels = sorted(false)
    return {
        lab: PairErrors(true_pairs[lab], true_pairs[lab] - kept[lab], false[lab])
        for lab in labels
    }


# Why a true pair was split apart (`missed_pairs_by_cause`), in the order the causes are tried
NO_POSITION = "no_position"
CATEGORY = "category"
TIME = "time"
DISTANCE = "distance"
WITHIN_BOUNDS = "within_bounds"
MISSED_CAUSES = (NO_POSITION, TIME, DISTANCE, CATEGORY, WITHIN_BOUNDS)


@dataclass(frozen=True, slots=True)
class ReportFacts:
    """What `missed_pairs_by_cause` reads of a report: the category it states, when it says
    it occurred (epoch s) and its position (None: a commune-only report)."""

    category: str
    occurred_at: float
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class IncidentLimits:
    """How far apart two reports of an incident's category may be and still match directly
    (`ClassParams` of its category): in time, its window (`window_s`); in space, its gate's
    cap or, for a moving one, its link if longer (`max(max_radius_m, link_m)`, before any
    widening for a coarse source). Two reports further apart end in one incident only
    through reports between them."""

    window_s: float
    reach_m: float


def missed_pairs_by_cause(
    predicted: Mapping[str, str],
    truth: Mapping[str, str],
    facts: Mapping[str, ReportFacts],
    limits: Mapping[str, IncidentLimits],
) -> dict[str, int]:
    """The true pairs split apart (two reports of one true incident in two predicted ones),
    counted by the first of these that holds for the pair:
    - `no_position`: one of the two has no position (commune-only): only its commune and its
      time can place it;
    - `time`: their times lie further apart than the true incident's category's window
      (`limits`): neither matches the other directly, only through reports between them;
    - `distance`: their positions lie further apart than its gate's reach (likewise);
    - `category`: close enough, but they state different categories (a reporter's
      confusion: the match then weighs the learnt confusion rate);
    - `within_bounds`: none of these: close enough to match directly, and the decisions
      (the gates at the stated accuracies, the posterior, what other reports were around,
      the order they came in) kept them apart.
    Every cause is in the result (zeros included). Reports without a prediction are left
    out, as in `score`; `facts` and `limits` (by true incident) must cover the others."""
    by_true: dict[str, list[str]] = defaultdict(list)
    for r in truth:
        if r in predicted:
            by_true[truth[r]].append(r)
    out = dict.fromkeys(MISSED_CAUSES, 0)
    for true_id, reports in by_true.items():
        if len(reports) < 2:
            continue
        limit = limits[true_id]
        for i, a in enumerate(reports):
            fa, pa = facts[a], predicted[a]
            for b in reports[i + 1 :]:
                if predicted[b] != pa:
                    out[_missed_cause(fa, facts[b], limit)] += 1
    return out


def _missed_cause(a: ReportFacts, b: ReportFacts, limit: IncidentLimits) -> str:
    if a.lat is None or a.lon is None or b.lat is None or b.lon is None:
        return NO_POSITION
    if abs(a.occurred_at - b.occurred_at) > limit.window_s:
        return TIME
    if distance_m(a.lat, a.lon, b.lat, b.lon) > limit.reach_m:
        return DISTANCE
    if a.category != b.category:
        return CATEGORY
    return WITHIN_BOUNDS
