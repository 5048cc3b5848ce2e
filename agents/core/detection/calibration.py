"""Threshold calibration: the null distribution of the scan's daily maximum score.

The threshold is the exp(-R) quantile of the daily maximum score on days without outbreak,
R being the target false-alert rate for the whole served area: if alert openings are roughly
a Poisson process of rate R per day, P(no exceedance in a day) = exp(-R). Two sources tell
that distribution:

* the *observed* daily maxima (`observed_daily_max`): the stream's own history, the incidents
  the pipeline actually emitted (with whatever residual splitting of one event into several
  incidents its correlation leaves, clustered reports, chronic spots), scanned day by day with
  the live schedule. Each day is scored against a baseline fitted without it (cross-fitting:
  the detector leaves a fold of days out of the fit), because a baseline that has seen a
  cluster expects it and would score the history too low, hence a threshold too low;
* the *simulated* null (`null_daily_max`): Poisson draws from the fitted baseline with
  uniform arrival times within each hour, plus a share of near-coincident twins, run through
  the same incremental scan (full scan at the top of each hour, zones around new incidents
  at every run in between: `daymax.DayMaxScanner`). It is the prior of a cold start, when the
  history holds few days.

`calibrate` takes the quantile of their blend: the simulated days weigh `prior_days` days in
all, each observed day one (the posterior mean of the distribution under a Dirichlet-process
prior centred on the simulated null), so the observed days take over as the history grows.
History days that held real outbreaks raise their daily maxima; the exp(-R) quantile (the
37th percentile for R = 1) is a low quantile, which a minority of such days barely moves.

The daily-maximum quantile counts a day with several unusual clusters as one exceedance: it
holds R only if such clusters are rare and independent. On streams where they come together
(a reporting backlog, a batch of late uploads, one situation split into several incidents in
several places) a day brings several alerts. So the same history days are also read as their
distinct clusters, collapsed as the alert lifecycle collapses overlapping zones
(`DayMaxScanner.day_clusters`), and the threshold is raised, if need be, to the least one at
which they open at most R clusters a day (`cluster_rate_threshold`): what operators count,
alerts opened a day. Real outbreaks of the history are kept out of that count by their
scores, far above a null cluster's (see `cluster_rate_threshold`), and so are the weaker
clusters of their event around them, the same day or the day before or after
(`event_scores`).

Operators read the configured rate as a promise ("at most 1 false alert a day"), not as a
long-run mean: a threshold whose mean is exactly 1 a day opens more than 7 in 40 % of weeks,
and the mean itself is known only from the history's few days. So the cluster count the
history may hold at the threshold has a margin for both (`allowed_history_clusters`): the
rate's posterior given the history's count (Jeffreys prior) and the Poisson scatter of the
period until the next calibration, whose count must stay within the configured rate with
probability `promise` (`predictive_excess`, a negative binomial). The threshold reaches
that count along the exponential tail of the null clusters' scores, its slope read between
the floor and the mean-rate threshold where null clusters dominate (`promise_margin`): the
history's weaker real outbreaks, counted as null clusters higher up, would otherwise lift
it above them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from agents.core.detection.baseline import hour_of_week
from agents.core.detection.counts import CountRow
from agents.core.detection.daymax import DayMaxScanner
from agents.core.detection.scan import FloatArray, IntArray
from agents.core.distributions import gamma_tail, last_holding, negative_binomial_cdf
from schemas.enums import CATEGORIES

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from agents.core.detection.baseline import Baseline
    from agents.core.detection.cells import CellIndex


@dataclass(frozen=True, slots=True)
class Calibration:
    threshold: float
    daily_max: tuple[float, ...]  # simulated null days (the prior)
    false_alerts_per_day: float
    quantile: float
    observed_daily_max: tuple[float, ...] = ()  # the stream's own history days
    prior_days: float = 0.0  # weight of all the simulated days together, in days
    # the least threshold at which the history's days open at most `false_alerts_per_day`
    # distinct clusters a day (`cluster_rate_threshold`); None when not computed
    cluster_threshold: float | None = None
    # the probability with which `cluster_threshold` holds `false_alerts_per_day` over the
    # period until the next calibration (0: as a mean), see `allowed_history_clusters`
    promise: float = 0.0

    @property
    def observed_share(self) -> float:
        """The weight of the observed days in the blend (0 on a cold start)."""
        n = len(self.observed_daily_max)
        return n / (n + self.prior_days) if n else 0.0


def blended_threshold(
    simulated: Sequence[float] | FloatArray,
    observed: Sequence[float] | FloatArray,
    prior_days: float,
    q: float,
    low_share: float = 0.5,
) -> tuple[float, float | None]:
    """The q quantile of the null daily maximum from the simulated days, corrected by the
    observed ones: (threshold before `min_threshold`, the observed days' own estimate or
    None without observed days).

    Some observed days held real outbreaks, whose daily maxima are far above any null day's:
    the observed days' upper quantiles are not the null's. Their lower quantile, at
    `low_share * q`, is far less touched (a share e of outbreak days moves it to the null's
    quantile at low_share * q / (1 - e)); the observed estimate is that quantile plus the
    simulated null's rise from low_share * q to q. The threshold is the mean of the
    simulated quantile, worth `prior_days` days, and the observed estimate, worth one day per
    observed day (the simulated null on a cold start, the stream's own days as they add up),
    never below the simulated quantile.
    """
    sim, obs = np.asarray(simulated, dtype=np.float64), np.asarray(observed, dtype=np.float64)
    sim_q = float(np.quantile(sim, q)) if sim.shape[0] else 0.0
    if not obs.shape[0]:
        return sim_q, None
    low = low_share * q
    rise = sim_q - float(np.quantile(sim, low)) if sim.shape[0] else 0.0
    from_obs = float(np.quantile(obs, low)) + rise
    n = float(obs.shape[0])
    w = prior_days if sim.shape[0] else 0.0
    # the observed days only ever raise the threshold: what they add to the simulated null
    # (split incidents, clustered reports) makes false alerts; a quieter estimate is more
    # likely a short or lucky history than a stream with fewer clusters than Poisson draws
    return max(sim_q, (w * sim_q + n * from_obs) / (w + n)), from_obs


def predictive_excess(count: int, days: float, horizon_days: float, allowed: float) -> float:
    """The probability that more than `allowed` alerts open in the next `horizon_days` when
    `count` opened in `days` of history, alerts being a Poisson process of unknown rate:
    the rate's posterior under the Jeffreys prior is Gamma(count + 1/2, days), the horizon's
    count is then negative binomial (r = count + 1/2, p = days / (days + horizon_days)).

    It holds both margins a finite history needs: the rate is estimated from a few days
    (the posterior's spread), and the promise is about the days to come, whose count
    scatters around the rate (a stream whose mean is exactly 1 a day has more than 7 in
    40 % of its weeks).

    The negative binomial's distribution function is read in closed form
    (`distributions.negative_binomial_cdf`), whose cost does not grow with the count as a
    sum of its terms does (minutes for a horizon of years: a detector configured never to
    recalibrate). Past `_LIMIT_DAYS` the horizon's own scatter is nothing against the
    rate's: the excess is its limit, the posterior probability that the rate exceeds
    `allowed` / `horizon_days` a day (`distributions.gamma_tail`)."""
    if not (math.isfinite(horizon_days) and math.isfinite(allowed)):
        raise ValueError(f"horizon {horizon_days} days, {allowed} allowed: must be finite")
    if days <= 0:
        return 1.0
    if horizon_days <= 0:
        return 0.0
    r = count + 0.5
    if horizon_days > _LIMIT_DAYS:
        return gamma_tail(r, allowed / horizon_days * days)
    p = days / (days + horizon_days)
    return max(0.0, 1.0 - negative_binomial_cdf(math.floor(allowed), r, p))


# a horizon past this (about 2,700 years) is its limit: a count of mean 10^6 scatters by 0.1 %
_LIMIT_DAYS = 1e6


def allowed_history_clusters(
    days: float, false_alerts_per_day: float, horizon_days: float, promise: float
) -> float:
    """How many null clusters `days` of history may hold at a threshold: `false_alerts_per_day`
    a day on average with `promise` 0; with `promise` in (0, 1), the most such that the next
    `horizon_days` bring at most `false_alerts_per_day` a day with that probability
    (`predictive_excess`); -1 when even none would not (a history too short to promise it)."""
    if promise <= 0 or horizon_days <= 0:
        return false_alerts_per_day * days
    allowed = false_alerts_per_day * horizon_days

    def ok(count: int) -> bool:
        return predictive_excess(count, days, horizon_days, allowed) <= 1.0 - promise

    if not ok(0):
        return -1.0
    # the excess grows with the count: the last count whose excess is small enough
    return float(last_holding(ok, 0))


def cluster_rate_threshold(
    days: Sequence[Sequence[float] | FloatArray],
    false_alerts_per_day: float,
    floor: float,
    reach: float = 2.0,
    *,
    horizon_days: float = 0.0,
    promise: float = 0.0,
    events: Sequence[Sequence[float] | FloatArray] | None = None,
) -> float:
    """The least threshold t >= `floor` at which the history's days (each the scores of its
    distinct clusters, `DayMaxScanner.day_clusters`) open at most `false_alerts_per_day`
    null clusters a day on average: what operators count, alerts opened a day, whether the
    unusual clusters of a day come alone or several together (the daily-maximum quantile
    assumes them rare and independent, which clumped streams are not).

    Real outbreaks of the history are clusters too. They stand far above the threshold
    within hours (their counts grow, and a cluster's score with them), while a null
    cluster's score has a short tail: a cluster scoring `reach` times t or more is not
    counted as a null one at t, nor, with `events` (each day's event scores, in the order
    of its clusters: `DayMaxScanner.day_clusters`), a cluster whose event scores that much,
    one of the weaker clusters around a real outbreak (its incidents split into several
    zones by the correlation, or placed off its zone). Returns `floor` without history
    days.

    With `promise` > 0 the threshold then rises by `promise_margin`, until the history's
    count leaves that probability that the next `horizon_days` (the period until the next
    calibration) open at most `false_alerts_per_day` a day: the configured rate as a bound,
    not as a mean."""
    if not days:
        return floor
    raw = np.concatenate([np.asarray(d, dtype=np.float64) for d in days])
    order = np.argsort(raw, kind="stable")
    scores = raw[order]
    event = (
        None
        if events is None
        else np.concatenate([np.asarray(d, dtype=np.float64) for d in events])[order]
    )
    t0 = _least_allowed(scores, false_alerts_per_day * len(days), floor, reach, event)
    if promise <= 0 or horizon_days <= 0:
        return t0
    allowed = allowed_history_clusters(
        float(len(days)), false_alerts_per_day, horizon_days, promise
    )
    return t0 + promise_margin(scores, t0, floor, reach, allowed, event)


def _null_count(
    ordered: FloatArray, t: float, reach: float, event: FloatArray | None = None
) -> int:
    """The clusters of sorted scores `ordered` (their event scores `event`, in the same
    order; None: their own) counted as null ones at t: t <= score, and score and event
    score < reach * t."""
    lo, hi = int(np.searchsorted(ordered, t)), int(np.searchsorted(ordered, reach * t))
    if event is None:
        return hi - lo
    return int(np.count_nonzero(event[lo:hi] < reach * t))


def _least_allowed(
    ordered: FloatArray,
    allowed: float,
    floor: float,
    reach: float,
    event: FloatArray | None = None,
) -> float:
    """The least t >= floor at which at most `allowed` null clusters open (see
    `cluster_rate_threshold`)."""
    # floor, else just above a cluster's score (the threshold that no longer opens it)
    above = np.nextafter(ordered[ordered >= floor], np.inf)
    for t in np.unique(np.concatenate([[floor], above])):
        if _null_count(ordered, float(t), reach, event) <= allowed:
            return float(t)
    return floor  # not reached: the last candidate is above every score


def promise_margin(
    ordered: FloatArray,
    t0: float,
    floor: float,
    reach: float,
    allowed: float,
    event: FloatArray | None = None,
) -> float:
    """How far above t0 the threshold must go for the history's null clusters at t0 (sorted
    scores `ordered`, their event scores `event`, counted as in `cluster_rate_threshold`)
    to fall to `allowed`, along
    the exponential tail of the null clusters' scores: slope * ln(count at t0 / allowed).

    Read along the tail, not by counting the history's clusters at ever higher thresholds:
    up there the counted clusters are mostly the history's weaker real outbreaks (a
    cluster scoring under `reach` times t is counted as a null one), and the count would
    push the threshold above them all. The slope is read where null clusters dominate:
    the median excess over the floor of the clusters counted as null ones there, over
    ln 2 (an exponential's median excess is its mean times ln 2; the median leaves out the
    history's few real outbreaks). Every such cluster speaks, where the count's fall
    between the floor and t0 rests on the gap between two neighbouring scores when t0 is
    just above the floor (a history whose 13th and 12th scores were 0.02 apart gave a
    slope of 0.25 and a margin of 0.17, where its clusters' excesses showed about 3).
    0 when the count at t0 already meets `allowed`, or is 0; an `allowed` under 1/2 (a
    history too short to promise anything) counts as 1/2."""
    n0 = _null_count(ordered, t0, reach, event)
    if n0 <= allowed or n0 == 0:  # none to bring down (`allowed` is -1 on a short history)
        return 0.0
    strong = ordered if event is None else event
    near = ordered[(ordered >= floor) & (ordered < reach * floor) & (strong < reach * floor)]
    slope = float(np.median(near - floor)) / math.log(2.0) if near.shape[0] else 0.0
    return slope * math.log(n0 / max(allowed, 0.5))


def observed_daily_max(
    baseline: Baseline,
    index: CellIndex,
    rows: Iterable[CountRow],
    *,
    day_starts: Sequence[int],
    windows: Sequence[int],
    ks: Sequence[int],
    min_observed: float,
    period_s: float = 300.0,
    seed: int = 0,
    episode_cap: int = 0,
) -> FloatArray:
    """Daily maximum scan score of the history days starting at the hours `day_starts`
    (each with the `max(windows) - 1` hours before it), from the stored counts `rows`.

    The counts tell each incident's hour, not its minute: the incidents of one (cell,
    category, hour) bucket arrive together at one uniform time in the hour (the most
    clustered reading: several incidents in one bucket are mostly one event's), so the
    live schedule's scores are not underestimated."""
    scanner, days = _history_days(
        baseline, index, rows, day_starts, windows, ks, min_observed, seed, episode_cap
    )
    out = np.zeros(len(day_starts))
    for d, (day_start, cats, cells, times) in enumerate(days):
        out[d] = scanner.day_max(day_start, cats, cells, times, period_s)
    return out


def observed_day_clusters(
    baseline: Baseline,
    index: CellIndex,
    rows: Iterable[CountRow],
    *,
    day_starts: Sequence[int],
    windows: Sequence[int],
    ks: Sequence[int],
    min_observed: float,
    floor: float,
    period_s: float = 300.0,
    seed: int = 0,
    episode_cap: int = 0,
) -> tuple[FloatArray, list[FloatArray], list[IntArray]]:
    """`observed_daily_max` (the same values) and its days, each as the scores of its
    distinct clusters scoring at least `floor` (`DayMaxScanner.day_clusters`), in
    decreasing order, and as their places, in the same order."""
    scanner, days = _history_days(
        baseline, index, rows, day_starts, windows, ks, min_observed, seed, episode_cap
    )
    maxima = np.zeros(len(day_starts))
    clusters: list[FloatArray] = []
    places: list[IntArray] = []
    for d, (day_start, cats, cells, times) in enumerate(days):
        maxima[d], scores, at = scanner.day_clusters(
            day_start, cats, cells, times, period_s, floor
        )
        clusters.append(scores)
        places.append(at)
    return maxima, clusters, places


def event_scores(
    days: Sequence[FloatArray], places: Sequence[IntArray], ring: IntArray
) -> list[FloatArray]:
    """Each cluster's event score, for consecutive history days (their clusters' scores
    and places, `DayMaxScanner.day_clusters`; `ring` `CellIndex.rings(max(ks))`): the
    greatest score among its own and those of the clusters of its category, that day, the
    day before or the day after, within whose largest zone (the scan's largest k around
    their centre) its centre lies. A real outbreak's weaker clusters (the start or the tail
    of one that spans midnight, its incidents split by the correlation into another zone
    close by) then share its score, and `cluster_rate_threshold` keeps them out of the null
    clusters with it."""
    if len(days) != len(places):
        raise ValueError(f"{len(days)} days of scores, {len(places)} of places")
    base = ring.shape[0] + 1
    out = [np.asarray(d, dtype=np.float64).copy() for d in days]
    # each cluster as (score, category, centre, the cells of its largest zone), built once
    clusters = [
        [
            (float(score), category, centre, frozenset(ring[centre].tolist()))
            for score, place in zip(scores, at, strict=True)
            for category, centre in (divmod(int(place), base),)
        ]
        for scores, at in zip(days, places, strict=True)
    ]
    for d, mine in enumerate(clusters):
        for j in range(max(0, d - 1), min(len(days), d + 2)):
            for score_j, category_j, _, zone_j in clusters[j]:
                for i, (_, category, centre, _) in enumerate(mine):
                    if score_j > out[d][i] and category == category_j and centre in zone_j:
                        out[d][i] = score_j
    return out


def _history_days(
    baseline: Baseline,
    index: CellIndex,
    rows: Iterable[CountRow],
    day_starts: Sequence[int],
    windows: Sequence[int],
    ks: Sequence[int],
    min_observed: float,
    seed: int,
    episode_cap: int,
) -> tuple[DayMaxScanner, Iterator[tuple[int, IntArray, IntArray, FloatArray]]]:
    """The live schedule's scanner and, for each of `day_starts`, the (category, cell,
    arrival time) of the counted incidents it reads (the day and the `max(windows) - 1`
    hours before it): the one history reading of `observed_daily_max` and
    `observed_day_clusters`."""
    rng = np.random.default_rng(seed)
    lead = max(windows) - 1
    scanner = DayMaxScanner(
        baseline.zone_rates(index, ks),
        baseline.profile,
        index.rings(max(ks)),
        ks=ks,
        windows=windows,
        min_observed=min_observed,
    )
    cat_a, cell_a, t_a = _incidents_of_rows(rows, index, baseline.n_cells, rng, episode_cap)
    hours = (t_a // 3600).astype(np.int64)

    def days() -> Iterator[tuple[int, IntArray, IntArray, FloatArray]]:
        for day_start in day_starts:
            lo, hi = np.searchsorted(hours, [day_start - lead, day_start + 24])
            yield day_start, cat_a[lo:hi], cell_a[lo:hi], t_a[lo:hi]

    return scanner, days()


def _incidents_of_rows(
    rows: Iterable[CountRow],
    index: CellIndex,
    n_cells: int,
    rng: np.random.Generator,
    episode_cap: int = 0,
) -> tuple[IntArray, IntArray, FloatArray]:
    """(category, cell, arrival time) of every counted incident of the fitted cells, sorted
    by time; a bucket's incidents share one uniform time in its hour."""
    cat_pos = {c: i for i, c in enumerate(CATEGORIES)}
    cats: list[int] = []
    cells: list[int] = []
    hours: list[int] = []
    counts: list[int] = []
    for cell, category, hour, n in rows:
        p, c = index.position(cell), cat_pos.get(category)
        if p is None or p >= n_cells or c is None or n <= 0:
            continue
        n = episodes(n, episode_cap)
        cats.append(c)
        cells.append(p)
        hours.append(hour)
        counts.append(n)
    if not cats:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    n_a = np.asarray(counts, dtype=np.int64)
    order = np.lexsort((np.asarray(cells), np.asarray(cats), np.asarray(hours)))
    n_a = n_a[order]
    at = (np.asarray(hours, dtype=np.float64)[order] + rng.random(n_a.shape[0])) * 3600.0
    t_a = np.repeat(at, n_a)
    cat_a = np.repeat(np.asarray(cats, dtype=np.int64)[order], n_a)
    cell_a = np.repeat(np.asarray(cells, dtype=np.int64)[order], n_a)
    by_time = np.argsort(t_a, kind="stable")
    return cat_a[by_time], cell_a[by_time], np.asarray(t_a[by_time], dtype=np.float64)


def null_daily_max(
    baseline: Baseline,
    index: CellIndex,
    *,
    start_hour: int,
    days: int,
    windows: Sequence[int],
    ks: Sequence[int],
    min_observed: float,
    period_s: float = 300.0,
    clumping: float = 0.0,
    seed: int = 0,
    posterior: bool = True,
    episode_cap: int = 0,
) -> FloatArray:
    """Daily maximum scan score over `days` simulated null days starting at `start_hour`.

    With `posterior`, each day's cell rates are drawn from their gamma posterior (posterior
    predictive null), so that the uncertainty of the fitted baseline is part of the null.
    `clumping` is the share of incidents that come with a near-coincident twin (same cell,
    same category, within two hours: two burglaries in one street), the commonest departure
    of real streams from a Poisson process, which makes small clusters far likelier.
    """
    rng = np.random.default_rng(seed)
    lead = max(windows) - 1
    scanner = DayMaxScanner(
        baseline.zone_rates(index, ks),
        baseline.profile,
        index.rings(max(ks)),
        ks=ks,
        windows=windows,
        min_observed=min_observed,
    )
    out = np.zeros(days)
    for d in range(days):
        day_start = start_hour + 24 * d
        rate = rng.gamma(baseline.shape, 1.0 / baseline.inv_scale) if posterior else baseline.rate
        cat_a, cell_a, t_a = _draw(baseline, rate, day_start - lead, day_start + 24, rng)
        if clumping > 0:
            cat_a, cell_a, t_a = _add_twins(cat_a, cell_a, t_a, clumping, rng)
        if episode_cap:
            cat_a, cell_a, t_a = _cap_buckets(cat_a, cell_a, t_a, episode_cap)
        out[d] = scanner.day_max(day_start, cat_a, cell_a, t_a, period_s)
    return out


def calibrate(
    baseline: Baseline,
    index: CellIndex,
    *,
    false_alerts_per_day: float,
    start_hour: int,
    days: int,
    windows: Sequence[int],
    ks: Sequence[int],
    min_observed: float,
    min_threshold: float,
    period_s: float = 300.0,
    clumping: float = 0.0,
    seed: int = 0,
    observed: Sequence[float] = (),
    prior_days: float = 2.0,
    low_share: float = 0.5,
    episode_cap: int = 0,
    observed_clusters: Sequence[Sequence[float] | FloatArray] = (),
    cluster_reach: float = 0.0,
    horizon_days: float = 0.0,
    promise: float = 0.0,
    observed_events: Sequence[Sequence[float] | FloatArray] | None = None,
) -> Calibration:
    """The threshold of `false_alerts_per_day` from `days` simulated null days blended with
    the `observed` daily maxima of the stream's history (see the module docstring), raised
    with `cluster_reach` > 0 to where the history's days, each the scores of its distinct
    clusters (`observed_clusters`, their event scores `observed_events`), open at most
    `false_alerts_per_day` clusters a day (`cluster_rate_threshold`), with probability
    `promise` over the next `horizon_days` when `promise` > 0."""
    daily = null_daily_max(
        baseline,
        index,
        start_hour=start_hour,
        days=days,
        windows=windows,
        ks=ks,
        min_observed=min_observed,
        period_s=period_s,
        clumping=clumping,
        seed=seed,
        episode_cap=episode_cap,
    )
    q = math.exp(-false_alerts_per_day)
    blended, _ = blended_threshold(daily, observed, prior_days, q, low_share)
    threshold = max(min_threshold, blended)
    by_clusters = None
    if cluster_reach > 0 and observed_clusters:
        by_clusters = cluster_rate_threshold(
            observed_clusters,
            false_alerts_per_day,
            threshold,
            cluster_reach,
            horizon_days=horizon_days,
            promise=promise,
            events=observed_events,
        )
        threshold = max(threshold, by_clusters)
    return Calibration(
        threshold,
        tuple(float(x) for x in daily),
        false_alerts_per_day,
        q,
        tuple(float(x) for x in observed),
        prior_days if len(observed) else 0.0,
        by_clusters,
        promise if by_clusters is not None else 0.0,
    )


def episodes(n: int, cap: int) -> int:
    """How many of the `n` incidents of one (cell, category, hour) bucket the scan counts:
    at most `cap` (all with cap 0). The incidents the correlation made of one event's
    reports (reports it could not tell were one event's) share a category, a cell and
    mostly an hour: capped, they count as one episode instead of a cluster of their own."""
    if n <= 0:
        return 0
    return min(n, cap) if cap > 0 else n


def _cap_buckets(
    cat_a: IntArray, cell_a: IntArray, t_a: FloatArray, cap: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The incidents (sorted by time) less those beyond the `cap` first of their (category,
    cell, hour) bucket."""
    if not t_a.shape[0]:
        return cat_a, cell_a, t_a
    hour = (t_a // 3600).astype(np.int64)
    key = np.stack([cat_a, cell_a, hour], axis=1)
    _, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")  # by bucket, then time
    sorted_inv = inverse[order]
    first = np.concatenate([[0], np.flatnonzero(np.diff(sorted_inv)) + 1])
    rank_sorted = np.arange(order.shape[0]) - np.repeat(
        first, np.diff(np.append(first, order.shape[0]))
    )
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    keep = rank < cap
    return cat_a[keep], cell_a[keep], t_a[keep]


def _draw(
    baseline: Baseline, rate: FloatArray, start: int, end: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray, FloatArray]:
    """Null incidents (category, cell, arrival time in epoch seconds) over hours
    [start, end), sorted by time."""
    hours = np.arange(start, end)
    hows = np.array([hour_of_week(int(h)) for h in hours])
    totals = rate.sum(axis=1)
    cats: list[IntArray] = []
    cells: list[IntArray] = []
    hrs: list[IntArray] = []
    for c in range(rate.shape[0]):
        if totals[c] <= 0:
            continue
        per_hour = rng.poisson(totals[c] * baseline.profile[c, hows])
        total = int(per_hour.sum())
        cells.append(rng.choice(rate.shape[1], size=total, p=rate[c] / totals[c]))
        hrs.append(np.repeat(hours, per_hour))
        cats.append(np.full(total, c, dtype=np.int64))
    if not cats:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    cat_a, cell_a = np.concatenate(cats), np.concatenate(cells)
    t_a = np.asarray((np.concatenate(hrs) + rng.random(cat_a.shape[0])) * 3600.0, dtype=np.float64)
    order = np.argsort(t_a, kind="stable")
    return cat_a[order], cell_a[order], t_a[order]


def _add_twins(
    cat_a: IntArray, cell_a: IntArray, t_a: FloatArray, share: float, rng: np.random.Generator
) -> tuple[IntArray, IntArray, FloatArray]:
    twin = np.asarray(rng.random(t_a.shape[0]) < share)
    t2 = t_a[twin] + rng.random(int(twin.sum())) * 7200.0
    cat_b = np.concatenate([cat_a, cat_a[twin]])
    cell_b = np.concatenate([cell_a, cell_a[twin]])
    t_b = np.concatenate([t_a, t2])
    order = np.argsort(t_b, kind="stable")
    return cat_b[order], cell_b[order], t_b[order]
