"""Correlation parameters estimated from the stream itself (online, deterministic, bounded).

What the engine learns, per partition, from the reports it reads (`StreamEstimates`):

- spatial dispersion per source kind and per "accuracy stated or not" (`DispersionKey`):
  the scale `s` such that the per-axis standard deviation of a report's position around the
  true place is `s * report accuracy` (around its incident's centre, that variance plus the
  centre's own, `centre_var`, from its members' learnt scales). The contract
  (docs/contract-v1.md) defines `accuracy_m` as the radius of the 95 % confidence circle,
  so an honest source has `s = 1 / 2.448` (`PRIOR_SCALE`); a source whose accuracy is a
  68 % radius (Android's convention) or understated shows a larger `s`, one that
  overstates a smaller one, and reports without `accuracy_m` (default accuracy) get their
  own key. The gate (`Correlator._cost`) uses the learnt `s`, so it follows each source's
  real convention instead of trusting the stated number.
- reporting lag per source kind (`reported_at - occurred_at`: log-normal moments);
- time spread per category class and per category (how far after an incident's first
  report the reports that join it occurred), a gamma law by its first two moments: its
  mean and its shape, mean^2 / variance (1: the exponential; under 1, a heavier tail, as
  where situations last from hours to days and are reported at any time of them; over 1,
  reports bunched around a typical delay); a category's own mean and shape are shrunk
  towards its class's, so a rare category borrows its class's until its own joins speak:
  a burglary's victims guess the hour, a noise complaint is filed on the spot;
- category confusion (how often a report joins an incident of another category);
- join share per category class and per category, shrunk alike (how many further reports
  an incident receives).

The match posterior (`Correlator._by_posterior`) reads the dispersion, the time spread,
the join share and the confusions; the gate reads the dispersion.

Dispersion model (Fellegi-Sunter style two-class mixture, estimated by online EM): for a
located report, the candidate pair is the nearest located incident of the same category
within the time window and the search radius `R`, whatever the gate then decides (so the
estimate does not only see the pairs the gate already accepted). Its centre distance `d`
is drawn from a mixture of
  match:     Rayleigh(sigma), sigma^2 = s^2 * v + c, v = report acc^2, c the per-axis
             variance of the centre (`Incident.centre_acc`: its members' accuracies
             corrected by their own sources' learnt scales)
  non-match: another incident, uniform over the disc of radius R: density 2 d / R^2.
Each observation updates, with the current parameters, the responsibility `w` of the match
class (E step) and the discounted sufficient statistics sum(w), sum(w h), sum(w h (d^2/2 -
c) / v) and the pair count (M step, weighted moments: E[d^2 / 2] = s^2 v + c, so `s^2 =
sum(w h (d^2/2 - c)/v) / sum(w h)`; match share = sum(w) / pairs), h = (a / (a + c))^2,
a = s^2 v under the current scale: the share of the pair's variance that is the report's,
squared (the information a pair carries about `s`: a pair whose spread is mostly the
centre's says little about the report's source). Separating the centre's variance
matters: a precise partner report joining a centre made of coarse citizen positions would
otherwise be blamed for the citizens' scatter. Starting
from prior pseudo-counts (`PRIOR_PAIRS` pairs at the prior), so a cold engine behaves as the
contract says and the data take over as pairs arrive. Statistics are discounted by
`FORGET` per observation of their key (exponential forgetting: bounded memory, and the
estimate follows a source that changes its behaviour).

Determinism: every update is a function of the records in the order the engine reads them
(no wall clock, no randomness), so a replay computes the same estimates; the state is
exported with the partition's correlation state (`to_dict` / `from_dict`).

Why not splink: splink implements the same model (Fellegi-Sunter weights fitted by EM) but
as a batch linker over DuckDB/Spark tables: it re-reads every candidate pair to train and
then scores a whole table. The engine decides for one report at a time, in a few
microseconds, on a partition's state that must survive restarts in the changelog; a batch
job per report, or a DuckDB dependency in the pure core, fits neither. The model is kept,
on streaming sufficient statistics instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# accuracy_m is the radius of the 95 % confidence circle (contract v1): for a circular
# Gaussian, that radius is sigma * sqrt(-2 ln 0.05) = 2.448 sigma
CONTRACT_CONFIDENCE = 0.95


def rayleigh_quantile(p: float) -> float:
    """The radius (in sigmas) holding a share `p` of a circular 2-D Gaussian (the square
    root of the chi-square quantile with 2 degrees of freedom)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"confidence {p} must be in (0, 1)")
    return math.sqrt(-2.0 * math.log(1.0 - p))


PRIOR_SCALE = 1.0 / rayleigh_quantile(CONTRACT_CONFIDENCE)
PRIOR_PAIRS = 50.0  # weight of the prior, in pairs
PRIOR_MATCH_SHARE = 0.5
FORGET = 0.999  # per observation of a key: a half-life of ~700 observations
# lag and time spread: log-normal / gamma moments with the same forgetting
PRIOR_LAG_S = 600.0
PRIOR_SPREAD_S = 1800.0
PRIOR_CONFUSION = 0.1  # share of the joins into an incident of another category
PRIOR_JOIN_SHARE = 0.5  # a report joins an incident as often as it founds one
PRIOR_OBSERVATIONS = 5.0  # weight of the lag, spread, join-share and confusion priors
# the time spread's gamma shape: prior 1 (the exponential); bounded, so that a few odd
# joins cannot make the density a spike at 0 or a needle at one delay
PRIOR_SPREAD_SHAPE = 1.0
MIN_SPREAD_SHAPE, MAX_SPREAD_SHAPE = 0.2, 5.0
# times are stated to the minute at best: the density is read at least this far from the
# start (a gamma of shape under 1 is unbounded at 0)
SPREAD_FLOOR_S = 60.0
MIN_SCALE, MAX_SCALE = 0.05, 20.0
_FLOOR_V = 1.0  # m^2: a pair of exact positions still has some variance


@dataclass(slots=True)
class DispersionStats:
    """Discounted online-EM statistics of one dispersion key."""

    weight: float = 0.0  # sum of match responsibilities
    scaled: float = 0.0  # sum of w * h * (d^2 / 2 - c) / v (see the module docstring)
    pairs: float = 0.0  # number of candidate pairs
    info: float = 0.0  # sum of w * h

    def scale(self) -> float:
        """The estimated `s` (see the module docstring), the prior mixed in."""
        s2 = (PRIOR_PAIRS * PRIOR_SCALE**2 + self.scaled) / (PRIOR_PAIRS + self.info)
        return min(max(math.sqrt(max(s2, 0.0)), MIN_SCALE), MAX_SCALE)

    def match_share(self) -> float:
        return (PRIOR_PAIRS * PRIOR_MATCH_SHARE + self.weight) / (PRIOR_PAIRS + self.pairs)

    def observe(self, d: float, v: float, radius: float, c: float = 0.0) -> float:
        """One candidate pair at distance `d` (m) between a report of variance unit `v`
        (its accuracy^2, m^2) and a centre of per-axis variance `c` (m^2), in a search disc
        of `radius` m; returns its match responsibility."""
        v = max(v, _FLOOR_V)
        c = max(c, 0.0)
        # tempered E step: while few pairs are in, responsibilities are taken under a wider
        # match law (up to twice the scale), so a source scattering several times more than
        # its prior is not explained away as background and the estimate can climb to it
        s = self.scale() * (1.0 + PRIOR_PAIRS / (PRIOR_PAIRS + self.pairs))
        sigma2 = s * s * v + c
        pi = self.match_share()
        # ratio of the match density to the non-match density at d (the d factors cancel)
        ratio = radius * radius / (2.0 * sigma2) * math.exp(-d * d / (2.0 * sigma2))
        w = pi * ratio / (pi * ratio + (1.0 - pi)) if pi < 1.0 else 1.0
        self.weight = FORGET * self.weight + w
        a = self.scale() ** 2 * v  # the report's own variance under the current scale
        h = w * (a / (a + c)) ** 2
        self.scaled = FORGET * self.scaled + h * (d * d / 2.0 - c) / v
        self.info = FORGET * self.info + h
        self.pairs = FORGET * self.pairs + 1.0
        return w


@dataclass(slots=True)
class Moments:
    """Discounted count, sum and sum of squares of one quantity."""

    n: float = 0.0
    total: float = 0.0
    squares: float = 0.0

    def observe(self, x: float) -> None:
        self.n = FORGET * self.n + 1.0
        self.total = FORGET * self.total + x
        self.squares = FORGET * self.squares + x * x

    def mean(self, prior: float) -> float:
        return (PRIOR_OBSERVATIONS * prior + self.total) / (PRIOR_OBSERVATIONS + self.n)

    def variance(self) -> float:
        """The discounted variance (0 below two observations)."""
        if self.n < 2.0:
            return 0.0
        m = self.total / self.n
        return max(self.squares / self.n - m * m, 0.0)


def _shrunk_mean(
    table: Mapping[str, Moments], category_class: str, category: str | None, prior: float
) -> float:
    """The class's mean of `table` (towards `prior` while its observations are few) or,
    with `category`, that category's, shrunk towards its class's alike."""
    m = table.get(category_class)
    mean = m.mean(prior) if m is not None else prior
    own = table.get(category) if category is not None else None
    return own.mean(mean) if own is not None else mean


def _shrunk_shape(m: Moments | None, prior: float) -> float:
    """The gamma shape (mean^2 / variance) of the quantity `m` holds, towards `prior` while
    its observations are few (`PRIOR_OBSERVATIONS` pseudo-observations at the prior), within
    [`MIN_SPREAD_SHAPE`, `MAX_SPREAD_SHAPE`]."""
    if m is None or m.n < 2.0:
        return prior
    mean = m.total / m.n
    variance = max(m.variance(), 1.0)
    shape = (PRIOR_OBSERVATIONS * prior + m.n * mean * mean / variance) / (PRIOR_OBSERVATIONS + m.n)
    return min(max(shape, MIN_SPREAD_SHAPE), MAX_SPREAD_SHAPE)


# (source kind, accuracy stated)
DispersionKey = tuple[str, bool]


def _key_text(key: DispersionKey) -> str:
    return f"{key[0]}|{'stated' if key[1] else 'default'}"


def _key_of(text: str) -> DispersionKey:
    kind, _, stated = text.partition("|")
    if not kind or stated not in ("stated", "default"):
        raise ValueError(f"estimates: bad dispersion key {text!r}")
    return kind, stated == "stated"


@dataclass(slots=True)
class StreamEstimates:
    """Everything one engine learns from its stream (see the module docstring).

    Keys are source kinds, category classes and categories: enumerations, so the state is
    bounded whatever the stream."""

    dispersion: dict[DispersionKey, DispersionStats] = field(default_factory=dict)
    lag: dict[str, Moments] = field(default_factory=dict)  # source kind -> log(1 + lag s)
    spread: dict[str, Moments] = field(default_factory=dict)  # class -> seconds after start
    joins: dict[str, dict[str, float]] = field(default_factory=dict)  # report cat -> inc cat
    # class -> 1 per report that joins an incident, 0 per report that founds one
    outcome: dict[str, Moments] = field(default_factory=dict)
    changed: bool = False  # since the last `to_dict` (persist it then)

    # ---- reading ----
    def scale(self, key: DispersionKey) -> float:
        stats = self.dispersion.get(key)
        return stats.scale() if stats is not None else PRIOR_SCALE

    def match_share(self, key: DispersionKey) -> float:
        stats = self.dispersion.get(key)
        return stats.match_share() if stats is not None else PRIOR_MATCH_SHARE

    def median_lag_s(self, kind: str) -> float:
        m = self.lag.get(kind)
        prior = math.log1p(PRIOR_LAG_S)
        return math.expm1(m.mean(prior) if m is not None else prior)

    def mean_spread_s(self, category_class: str, category: str | None = None) -> float:
        """Mean time after an incident's first report at which its further reports
        occurred: of the class, or with `category`, of that category's incidents, shrunk
        towards its class's (`PRIOR_OBSERVATIONS` pseudo-observations at the class mean)."""
        return _shrunk_mean(self.spread, category_class, category, PRIOR_SPREAD_S)

    def spread_shape(self, category_class: str, category: str | None = None) -> float:
        """The gamma shape of the time spread (`mean_spread_s`): of the class (towards 1,
        the exponential, while its joins are few) or, with `category`, of that category's
        incidents, shrunk towards its class's alike."""
        shape = _shrunk_shape(self.spread.get(category_class), PRIOR_SPREAD_SHAPE)
        if category is not None:
            shape = _shrunk_shape(self.spread.get(category), shape)
        return shape

    def further_reports(self, category_class: str, category: str | None = None) -> float:
        """Expected reports an incident of the class (with `category`: of that category,
        shrunk towards its class) receives after its first: j / (1 - j), j the share of
        reports that join an incident (prior: one further report)."""
        share = _shrunk_mean(self.outcome, category_class, category, PRIOR_JOIN_SHARE)
        return share / max(1.0 - share, 1e-3)

    def time_density(self, category_class: str, dt_s: float, category: str | None = None) -> float:
        """Density (per second) of a further report of an incident occurring `dt_s` away
        from its first: the gamma law of the learnt mean spread and shape of its class or
        category (`mean_spread_s`, `spread_shape`), halved on each side of the start
        (victims may also guess a time before the first report's), read at least
        `SPREAD_FLOOR_S` from it. Shape 1 is the Laplace law: an exponential tail, where a
        heavier one (shape under 1) keeps a report a day after the start plausible for a
        situation that lasts days."""
        mean = max(self.mean_spread_s(category_class, category), SPREAD_FLOOR_S)
        shape = self.spread_shape(category_class, category)
        theta = mean / shape
        x = max(abs(dt_s), SPREAD_FLOOR_S) / theta
        return math.exp((shape - 1.0) * math.log(x) - x - math.lgamma(shape)) / (2.0 * theta)

    def category_likelihood(
        self, report_category: str, incident_category: str, compatible: int
    ) -> float:
        """P(a report filed as `report_category` belongs to an incident of
        `incident_category`), from the learnt joins of `report_category`, with
        `PRIOR_OBSERVATIONS` prior joins: a share `PRIOR_CONFUSION` of them spread over the
        `compatible` - 1 other categories it may be confused with, the rest on itself."""
        row = self.joins.get(report_category, {})
        if incident_category == report_category:
            prior = PRIOR_OBSERVATIONS * (1.0 - PRIOR_CONFUSION)
        else:
            prior = PRIOR_OBSERVATIONS * PRIOR_CONFUSION / max(compatible - 1, 1)
        return (row.get(incident_category, 0.0) + prior) / (sum(row.values()) + PRIOR_OBSERVATIONS)

    def confusion_rate(self, category: str) -> float:
        """Share of the joins of reports of `category` into an incident of another one."""
        row = self.joins.get(category)
        if not row:
            return 0.0
        total = sum(row.values())
        return (total - row.get(category, 0.0)) / total if total > 0 else 0.0

    # ---- learning ----
    def observe_pair(
        self, key: DispersionKey, d: float, v: float, radius: float, c: float = 0.0
    ) -> float:
        stats = self.dispersion.get(key)
        if stats is None:
            stats = self.dispersion[key] = DispersionStats()
        self.changed = True
        return stats.observe(d, v, radius, c)

    def observe_lag(self, kind: str, lag_s: float) -> None:
        m = self.lag.get(kind)
        if m is None:
            m = self.lag[kind] = Moments()
        m.observe(math.log1p(max(lag_s, 0.0)))
        self.changed = True

    def observe_outcome(
        self, category_class: str, joined: bool, category: str | None = None
    ) -> None:
        """One report joined an incident or founded one: counted for its category's class
        and, with `category`, for that category (its own share, shrunk to the class's)."""
        for key in (category_class, category):
            if key is None:
                continue
            m = self.outcome.get(key)
            if m is None:
                m = self.outcome[key] = Moments()
            m.observe(1.0 if joined else 0.0)
        self.changed = True

    def observe_join(
        self,
        category_class: str,
        report_category: str,
        incident_category: str,
        after_start_s: float,
    ) -> None:
        # the class's and the incident category's spread (class values and category
        # values are disjoint names: one map holds both)
        for key in (category_class, incident_category):
            m = self.spread.get(key)
            if m is None:
                m = self.spread[key] = Moments()
            m.observe(max(after_start_s, 0.0))
        row = self.joins.setdefault(report_category, {})
        for k in row:
            row[k] *= FORGET
        row[incident_category] = row.get(incident_category, 0.0) + 1.0
        self.changed = True

    # ---- state ----
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (sorted keys: replays write the same bytes); clears
        `changed`."""
        self.changed = False
        return {
            "dispersion": {
                _key_text(k): [s.weight, s.scaled, s.pairs, s.info]
                for k, s in sorted(self.dispersion.items())
            },
            "lag": {k: [m.n, m.total, m.squares] for k, m in sorted(self.lag.items())},
            "spread": {k: [m.n, m.total, m.squares] for k, m in sorted(self.spread.items())},
            "joins": {k: dict(sorted(row.items())) for k, row in sorted(self.joins.items())},
            "outcome": {k: [m.n, m.total, m.squares] for k, m in sorted(self.outcome.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StreamEstimates:
        """Read `to_dict`'s form back; a malformed state raises ValueError."""
        try:
            out = cls()
            for text, values in dict(data.get("dispersion", {})).items():
                w, sc, n, *rest = (float(x) for x in values)
                if len(rest) > 1:
                    raise ValueError(f"dispersion {text!r}: 3 or 4 statistics")
                # a state saved without `info` (every pair counted whole): info = weight
                out.dispersion[_key_of(str(text))] = DispersionStats(w, sc, n, *(rest or [w]))
            for name, target in (
                ("lag", out.lag),
                ("spread", out.spread),
                ("outcome", out.outcome),
            ):
                for k, (n, total, sq) in dict(data.get(name, {})).items():
                    target[str(k)] = Moments(float(n), float(total), float(sq))
            for k, row in dict(data.get("joins", {})).items():
                out.joins[str(k)] = {str(c): float(x) for c, x in dict(row).items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"estimates state: {exc}") from exc
        for s in out.dispersion.values():
            # `scaled` may be < 0 (the centre's variance is subtracted), never the counts
            counts = (s.weight, s.pairs, s.info)
            if not all(math.isfinite(x) for x in (*counts, s.scaled)) or min(counts) < 0.0:
                raise ValueError("estimates state: dispersion statistics must be finite")
        return out

    def summary(self) -> dict[str, Any]:
        """What the engine believes, in readable units (for `vigie params`, the metrics)."""
        return {
            "dispersion": {
                _key_text(k): {
                    "scale": round(s.scale(), 4),
                    # the confidence of a stated accuracy_m under the learnt scale
                    "stated_radius_confidence": round(
                        1.0 - math.exp(-0.5 / max(s.scale(), MIN_SCALE) ** 2), 4
                    ),
                    "match_share": round(s.match_share(), 4),
                    "pairs": round(s.pairs, 1),
                }
                for k, s in sorted(self.dispersion.items())
            },
            "median_lag_s": {k: round(self.median_lag_s(k), 1) for k in sorted(self.lag)},
            "mean_spread_s": {k: round(self.mean_spread_s(k), 1) for k in sorted(self.spread)},
            "spread_shape": {k: round(self.spread_shape(k), 3) for k in sorted(self.spread)},
            "confusion_rate": {k: round(self.confusion_rate(k), 4) for k in sorted(self.joins)},
        }


def pooled_scales(engines: Iterable[StreamEstimates]) -> dict[DispersionKey, float]:
    """Per dispersion key, the scale of the statistics of several engines pooled (their
    sufficient statistics summed: what one engine reading all their pairs would learn)."""
    pooled: dict[DispersionKey, DispersionStats] = {}
    for est in engines:
        for key, s in est.dispersion.items():
            p = pooled.setdefault(key, DispersionStats())
            p.weight += s.weight
            p.scaled += s.scaled
            p.pairs += s.pairs
            p.info += s.info
    return {key: s.scale() for key, s in sorted(pooled.items())}
