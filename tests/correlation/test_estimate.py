"""Online estimators of the correlation parameters (`agents.core.correlation.estimate`):
they recover known parameters from simulated pairs, survive a JSON round trip, and the
engine's gate follows them."""

from __future__ import annotations

import json
import math
import random
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.core.correlation import Correlator
from agents.core.correlation.config import CorrelationConfig
from agents.core.correlation.estimate import (
    PRIOR_SCALE,
    DispersionStats,
    StreamEstimates,
    pooled_scales,
    rayleigh_quantile,
)
from tests.correlation.test_engine import rec


def simulated_pairs(
    rnd: random.Random, scale: float, match_share: float, radius: float, n: int
) -> list[tuple[float, float]]:
    """(distance, variance unit) of candidate pairs: a match is a 2-D Gaussian difference of
    per-axis sigma `scale * sqrt(v)`, a non-match uniform over the search disc; pairs
    beyond the disc are not candidates (as in the engine)."""
    out: list[tuple[float, float]] = []
    while len(out) < n:
        acc_a, acc_b = rnd.uniform(10.0, 60.0), rnd.uniform(10.0, 60.0)
        v = acc_a * acc_a + acc_b * acc_b
        if rnd.random() < match_share:
            sigma = scale * math.sqrt(v)
            d = math.hypot(rnd.gauss(0.0, sigma), rnd.gauss(0.0, sigma))
        else:
            d = radius * math.sqrt(rnd.random())
        if d <= radius:
            out.append((d, v))
    return out


@pytest.mark.parametrize("true_scale", [0.25, PRIOR_SCALE, 0.8, 1.5])
def test_dispersion_scale_is_recovered_from_mixed_pairs(true_scale: float) -> None:
    rnd = random.Random(7)
    stats = DispersionStats()
    for d, v in simulated_pairs(rnd, true_scale, 0.7, 1000.0, 6000):
        stats.observe(d, v, 1000.0)
    assert stats.scale() == pytest.approx(true_scale, rel=0.08)
    assert stats.match_share() == pytest.approx(0.7, abs=0.06)


def test_a_cold_estimator_holds_the_contract_prior() -> None:
    est = StreamEstimates()
    assert est.scale(("citizen", True)) == PRIOR_SCALE
    # accuracy_m is a 95 % radius: z(0.95) * prior scale = 1 radius
    assert rayleigh_quantile(0.95) * PRIOR_SCALE == pytest.approx(1.0)
    # a few wide pairs move it only a little (the prior weighs as 50 pairs)
    stats = DispersionStats()
    for _ in range(5):
        stats.observe(80.0, 50.0**2 * 2, 1000.0)  # 2.8 prior sigmas
    assert PRIOR_SCALE < stats.scale() < 1.2 * PRIOR_SCALE
    # a pair far out in the tail is taken for another incident: nothing learnt from it
    far = DispersionStats()
    far.observe(300.0, 50.0**2 * 2, 1000.0)  # 10 prior sigmas
    assert far.weight < 1e-3
    assert far.scale() == pytest.approx(PRIOR_SCALE, rel=0.01)


def test_the_estimate_follows_a_source_that_changes() -> None:
    """Exponential forgetting: after a source starts understating its accuracy, the estimate
    moves to the new dispersion instead of averaging all history."""
    rnd = random.Random(3)
    stats = DispersionStats()
    for d, v in simulated_pairs(rnd, 0.4, 0.8, 1000.0, 4000):
        stats.observe(d, v, 1000.0)
    assert stats.scale() == pytest.approx(0.4, rel=0.1)
    for d, v in simulated_pairs(rnd, 1.2, 0.8, 1000.0, 6000):
        stats.observe(d, v, 1000.0)
    assert stats.scale() == pytest.approx(1.2, rel=0.1)


def test_lag_spread_and_confusion_are_recovered() -> None:
    rnd = random.Random(11)
    est = StreamEstimates()
    for _ in range(5000):
        est.observe_lag("citizen", 300.0 * math.exp(rnd.gauss(0.0, 0.8)))
        est.observe_lag("bailleur_social", 8 * 3600.0 * math.exp(rnd.gauss(0.0, 0.3)))
        other = "nuisance" if rnd.random() < 0.2 else "rodeo"
        est.observe_join("mobile", "rodeo", other, rnd.expovariate(1.0 / 900.0))
    assert est.median_lag_s("citizen") == pytest.approx(300.0, rel=0.1)
    assert est.median_lag_s("bailleur_social") == pytest.approx(8 * 3600.0, rel=0.05)
    assert est.mean_spread_s("mobile") == pytest.approx(900.0, rel=0.1)
    assert est.confusion_rate("rodeo") == pytest.approx(0.2, abs=0.04)
    assert est.confusion_rate("vol") == 0.0  # never seen


def test_the_time_spread_s_shape_is_recovered() -> None:
    """The spread's gamma shape (mean^2 / variance) is learnt from the joins: situations
    reported at any time of a span of hours to days (shape under 1), reports at an
    exponential delay (1), reports bunched around a typical delay (over 1). With the heavy
    tail, a report a day after the start stays plausible, where the exponential law of the
    same mean all but rules it out."""
    rnd = random.Random(3)
    est = StreamEstimates()
    hour = 3600.0
    for _ in range(6000):
        est.observe_join(
            "persistent",
            "trafic_stupefiants",
            "trafic_stupefiants",
            rnd.gammavariate(0.5, 12 * hour),
        )
        est.observe_join("mobile", "rodeo", "rodeo", rnd.expovariate(1.0 / 900.0))
        est.observe_join("point", "vol", "vol", rnd.gammavariate(4.0, 450.0))
    assert est.spread_shape("persistent") == pytest.approx(0.5, rel=0.2)
    assert est.spread_shape("mobile") == pytest.approx(1.0, rel=0.2)
    assert est.spread_shape("point") == pytest.approx(4.0, rel=0.25)
    assert est.mean_spread_s("persistent") == pytest.approx(6 * hour, rel=0.15)
    # same mean, exponential law: a fresh estimate fed exponential delays of 6 h
    exponential = StreamEstimates()
    for _ in range(6000):
        exponential.observe_join(
            "persistent",
            "trafic_stupefiants",
            "trafic_stupefiants",
            rnd.expovariate(1 / (6 * hour)),
        )
    assert exponential.spread_shape("persistent") == pytest.approx(1.0, rel=0.2)
    assert est.time_density("persistent", 36 * hour) > 3 * exponential.time_density(
        "persistent", 36 * hour
    )
    # each law still integrates to about 1 (log-spaced steps: the heavy tail reaches days)
    for e, klass in ((est, "persistent"), (est, "point"), (exponential, "persistent")):
        edges = [60.0 * 1.01**k for k in range(1300)]  # 1 min to ~7 months
        mass = 2 * e.time_density(klass, 60.0) * 60.0
        mass += sum(2 * e.time_density(klass, (a + b) / 2) * (b - a) for a, b in pairwise(edges))
        assert mass == pytest.approx(1.0, abs=0.03)
    # the category's shape is shrunk towards its class's, and a category never seen reads it
    assert est.spread_shape("persistent", "occupation_hall") == est.spread_shape("persistent")
    assert est.spread_shape("persistent", "trafic_stupefiants") == pytest.approx(0.5, rel=0.2)
    # before any join: the exponential (shape 1), i.e. the Laplace law around the start
    assert StreamEstimates().spread_shape("point") == 1.0
    back = StreamEstimates.from_dict(json.loads(json.dumps(est.to_dict())))
    assert back.spread_shape("persistent") == est.spread_shape("persistent")


def test_each_category_learns_its_own_spread_and_join_share() -> None:
    """Categories of one class behave differently (a burglary's victims guess the hour, a
    noise complaint is filed on the spot; a dealing point is reported again and again):
    each category's spread and join share are recovered, shrunk towards its class's, and a
    category never seen reads its class's."""
    rnd = random.Random(5)
    est = StreamEstimates()
    for _ in range(4000):
        est.observe_join("point", "cambriolage", "cambriolage", rnd.expovariate(1 / 3600.0))
        est.observe_join("point", "nuisance", "nuisance", rnd.expovariate(1 / 300.0))
        est.observe_outcome("point", rnd.random() < 0.75, "cambriolage")
        est.observe_outcome("point", rnd.random() < 0.2, "nuisance")
    assert est.mean_spread_s("point", "cambriolage") == pytest.approx(3600.0, rel=0.1)
    assert est.mean_spread_s("point", "nuisance") == pytest.approx(300.0, rel=0.1)
    assert est.further_reports("point", "cambriolage") == pytest.approx(3.0, rel=0.2)
    assert est.further_reports("point", "nuisance") == pytest.approx(0.25, rel=0.2)
    # unseen category: its class's figures (between the two)
    assert est.mean_spread_s("point", "vol") == est.mean_spread_s("point")
    assert est.further_reports("point", "vol") == est.further_reports("point")
    assert 300.0 < est.mean_spread_s("point") < 3600.0
    # the time density follows the category's spread: an hour away is likely for a burglary,
    # not for a noise complaint
    hour = 3600.0
    assert est.time_density("point", hour, "cambriolage") > 50 * est.time_density(
        "point", hour, "nuisance"
    )
    # the per-category figures survive the state's round trip
    back = StreamEstimates.from_dict(json.loads(json.dumps(est.to_dict())))
    assert back.mean_spread_s("point", "nuisance") == est.mean_spread_s("point", "nuisance")


def test_state_round_trip_is_exact_and_deterministic() -> None:
    def learn() -> StreamEstimates:
        rnd = random.Random(5)
        est = StreamEstimates()
        for d, v in simulated_pairs(rnd, 0.6, 0.7, 800.0, 500):
            est.observe_pair(("citizen", True), d, v, 800.0)
            est.observe_lag("police_nationale", rnd.uniform(0, 3600))
            est.observe_join("point", "vol", "cambriolage", rnd.uniform(0, 3600))
        return est

    a, b = learn(), learn()
    assert a.changed
    exported = a.to_dict()
    assert not a.changed
    assert exported == b.to_dict()  # same stream, same state
    back = StreamEstimates.from_dict(json.loads(json.dumps(exported)))
    assert back.to_dict() == exported
    assert back.summary() == a.summary()


@pytest.mark.parametrize(
    "bad",
    [
        {"dispersion": {"citizen": [1.0, 1.0, 1.0]}},  # no stated/default part
        {"dispersion": {"citizen|stated": [1.0, "x", 1.0]}},
        {"dispersion": {"citizen|stated": [1.0, 1.0]}},
        {"dispersion": {"citizen|stated": [-1.0, 1.0, 1.0]}},
        {"dispersion": {"citizen|stated": [math.nan, 1.0, 1.0]}},
        {"lag": {"citizen": "many"}},
        {"joins": {"vol": [1.0]}},
    ],
)
def test_a_malformed_state_is_refused_with_a_reason(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="estimates state"):
        StreamEstimates.from_dict(bad)


def test_pooled_scales_weigh_engines_by_their_pairs() -> None:
    a, b = StreamEstimates(), StreamEstimates()
    rnd = random.Random(2)
    for d, v in simulated_pairs(rnd, 1.0, 1.0, 1000.0, 3000):
        a.observe_pair(("citizen", True), d, v, 1000.0)
    for d, v in simulated_pairs(rnd, 0.5, 1.0, 1000.0, 30):
        b.observe_pair(("citizen", True), d, v, 1000.0)
    pooled = pooled_scales([a, b])[("citizen", True)]
    assert b.scale(("citizen", True)) < pooled < a.scale(("citizen", True)) * 1.01
    assert pooled == pytest.approx(a.scale(("citizen", True)), rel=0.05)


# ---- the engine ----------------------------------------------------------------------------


def trained_engine(scale: float, pairs: int = 300, seed: int = 1) -> Correlator:
    """An engine that read `pairs` incidents of two citizen reports each (accuracy 30 m),
    whose positions scatter with per-axis sigma `scale` * 30 m around the incident: the
    incidents lie 5 km apart, so each report's nearest candidate is its own incident's."""
    rnd = random.Random(seed)
    engine = Correlator()
    sigma = scale * 30.0
    for i in range(pairs):
        x0 = (i % 20) * 5000.0
        y0 = (i // 20) * 5000.0
        t = i * 120.0
        for k in range(2):
            engine.process(
                rec(
                    east_m=x0 + rnd.gauss(0.0, sigma),
                    north_m=y0 + rnd.gauss(0.0, sigma),
                    t=t + 60.0 * k,
                    accuracy=30.0,
                    category="vol",
                )
            )
    return engine


def joins(engine: Correlator, distance_m: float) -> bool:
    """Whether a citizen report `distance_m` from a fresh citizen report (both accuracy
    30 m), a minute later, joins its incident."""
    far = 1e6  # away from the training incidents
    t = 400 * 120.0
    first = engine.process(rec(east_m=far, t=t, accuracy=30.0, category="vol"))
    second = engine.process(rec(east_m=far + distance_m, t=t + 60.0, accuracy=30.0, category="vol"))
    return bool(first and second) and (second[-1]["incident_id"] == first[-1]["incident_id"])


@settings(max_examples=8, deadline=None)
@given(low=st.floats(0.3, 0.6), factor=st.floats(1.6, 3.0))
def test_gates_widen_when_the_observed_dispersion_grows(low: float, factor: float) -> None:
    narrow, wide = trained_engine(low), trained_engine(low * factor)
    key = ("citizen", True)
    assert narrow.estimates.scale(key) < wide.estimates.scale(key)
    # a distance between the two learnt gates: joins only where the dispersion is wider
    z = rayleigh_quantile(narrow.config.gate_confidence)
    spread = math.hypot(30.0, 30.0)
    p = narrow.config.params("vol")
    gate_n = p.radius_m + z * narrow.estimates.scale(key) * spread
    gate_w = min(p.radius_m + z * wide.estimates.scale(key) * spread, p.max_radius_m)
    assert gate_n < gate_w
    probe = (gate_n + gate_w) / 2
    assert not joins(narrow, probe)
    assert joins(wide, probe)


def test_learning_off_keeps_the_contract_gate() -> None:
    engine = Correlator(CorrelationConfig(learn=False))
    for _ in range(3):
        engine.process(rec(east_m=0.0, accuracy=30.0))
    assert not engine.estimates.dispersion
    assert not engine.estimates_changed


def test_estimates_survive_export_and_restore() -> None:
    """A restarted engine resumes from its learnt parameters, not from the priors: the
    same future as the engine that never stopped."""
    original = trained_engine(1.5, pairs=200)
    exported = json.loads(json.dumps(original.export_estimates()))
    states = [json.loads(json.dumps(original.export_incident(i))) for i in original.incident_ids()]
    rebuilt = Correlator()
    rebuilt.restore(states, watermark=original.watermark, estimates=exported)
    cold = Correlator()
    cold.restore(states, watermark=original.watermark)
    key = ("citizen", True)
    assert rebuilt.estimates.scale(key) == original.estimates.scale(key)
    assert cold.estimates.scale(key) == PRIOR_SCALE
    probe = 200.0
    assert joins(original, probe) == joins(rebuilt, probe) is True
    assert joins(cold, probe) is False


def test_a_malformed_estimates_state_leaves_the_engine_unchanged() -> None:
    engine = Correlator()
    with pytest.raises(ValueError, match="estimates state"):
        engine.restore([], estimates={"dispersion": {"x": 1}})
    assert engine.estimates.dispersion == {}


def test_the_learnt_scales_are_exposed_as_a_gauge() -> None:
    from agents.ports import metrics

    est = StreamEstimates()
    rnd = random.Random(4)
    for d, v in simulated_pairs(rnd, 1.0, 1.0, 1000.0, 2000):
        est.observe_pair(("citizen", True), d, v, 1000.0)
    metrics.set_dispersion_scales(pooled_scales([est]))
    value = metrics.REGISTRY.get_sample_value(
        "vigie_correlation_dispersion_scale", {"source_kind": "citizen", "accuracy": "stated"}
    )
    assert value == pytest.approx(est.scale(("citizen", True)))
    assert value == pytest.approx(1.0, rel=0.1)
