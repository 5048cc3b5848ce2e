"""The diagnostic's pure core: rates per 1,000 with known populations, size bands, the trend
test on series with and without a change, the forecast's interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.core.diagnostic import (
    SIZE_BANDS,
    CommuneCount,
    Diagnostic,
    HourCount,
    SlotCount,
    SourceCount,
    Territory,
    TerritoryKind,
    WeekCount,
    build_diagnostic,
    dispersion,
    forecast,
    holm,
    size_band,
    trend_test,
)

POPULATIONS = {"A": 10_000, "B": 4_000, "C": 16_000, "D": 1_000, "E": 12_000}


def _diagnostic(
    territory: Territory,
    counts: list[CommuneCount],
    weekly: list[WeekCount],
    weeks: int = 2,
) -> Diagnostic:
    return build_diagnostic(
        territory,
        weeks=weeks,
        until=1_000_000,
        populations=POPULATIONS,
        population_source="test",
        commune_counts=counts,
        weekly=weekly,
        hours=[HourCount("vol", 5, 2), HourCount("rodeo", 5, 1), HourCount("vol", 200, 9)],
        sources=[SourceCount("citizen", 3, 1), SourceCount("police_municipale", 9, 2)],
        chronic=[],
        alerts=[],
        slots=[],
    )


def test_rates_per_thousand_and_ratios_with_known_populations() -> None:
    counts = [  # the period, every commune
        CommuneCount("A", "vol", 30),  # 3 per 1,000
        CommuneCount("B", "vol", 4),  # 1 per 1,000
        CommuneCount("C", "vol", 16),  # 1 per 1,000, same band as A and E
        CommuneCount("E", "vol", 36),  # 3 per 1,000
        CommuneCount("D", "rodeo", 2),
    ]
    # A's own weeks: 20 before (weeks 0-1), 30 in the period (weeks 2-3); a rodeo before
    weekly = [
        WeekCount("vol", 0, 12),
        WeekCount("vol", 1, 8),
        WeekCount("vol", 2, 30),
        WeekCount("rodeo", 1, 1),
        WeekCount("vol", 9, 100),  # outside the 2 x 2 weeks: ignored
    ]
    d = _diagnostic(Territory(TerritoryKind.COMMUNE, "A", "A", ("A",)), counts, weekly)
    (vol,) = [p for p in d.categories if p.category == "vol"]
    assert vol.current == 30 and vol.previous == 20
    assert vol.rate == pytest.approx(3.0)
    # département: (30 + 4 + 16 + 36) / 43,000 inhabitants
    assert vol.dept_rate == pytest.approx(1000 * 86 / 43_000)
    assert vol.ratio_dept == pytest.approx(3.0 / (1000 * 86 / 43_000))
    # communes of the 10,000-20,000 band other than A: C and E, (16 + 36) / 28,000
    assert d.band == size_band(10_000) == 3
    assert d.band_communes == 2
    assert vol.band_rate == pytest.approx(1000 * 52 / 28_000)
    total = d.total
    assert total.current == 30 and total.previous == 21 and total.rate == pytest.approx(3.0)
    assert total.dept_rate == pytest.approx(1000 * 88 / 43_000)
    assert d.population == 10_000
    assert vol.weekly == (12, 8, 30, 0)
    assert total.weekly == (12, 9, 30, 0)
    (rodeo,) = [p for p in d.categories if p.category == "rodeo"]
    assert (rodeo.current, rodeo.previous, rodeo.rate) == (0, 1, 0.0)
    # hour of week: out-of-range hours are dropped, totals summed over categories
    assert d.hour_of_week["total"][5] == 3
    assert sum(d.hour_of_week["total"]) == 3
    assert d.citizen_share == pytest.approx(3 / 12)


def test_a_group_counts_its_communes_together() -> None:
    counts = [CommuneCount("A", "vol", 30), CommuneCount("B", "vol", 4)]
    weekly = [WeekCount("vol", 2, 30), WeekCount("vol", 3, 4)]  # the group's own series
    d = _diagnostic(Territory(TerritoryKind.GROUP, "A,B", "A, B", ("A", "B")), counts, weekly)
    assert d.population == 14_000
    assert d.total.current == 34
    assert d.total.rate == pytest.approx(1000 * 34 / 14_000)
    # a group of 14,000 inhabitants is compared with the communes of that band but its own
    assert d.band == 3 and d.band_communes == 2


def test_size_bands() -> None:
    assert [size_band(p) for p in (0, 1_999, 2_000, 9_999, 10_000, 49_999, 50_000, 10**6)] == [
        0,
        0,
        1,
        2,
        3,
        4,
        5,
        5,
    ]
    assert len(SIZE_BANDS) == 6
    with pytest.raises(ValueError, match="at least one commune"):
        Territory(TerritoryKind.GROUP, "", "", ())


def test_the_trend_test_keeps_its_level_without_a_change() -> None:
    """Series without a change (overdispersed: gamma-Poisson weeks): about 5 % flagged."""
    rng = np.random.default_rng(11)
    flagged = 0
    runs = 2000
    for _ in range(runs):
        rates = rng.gamma(5.0, 20.0 / 5.0, size=24)  # mean 20 a week, overdispersed
        weeks = rng.poisson(rates)
        flagged += trend_test(list(weeks[12:]), list(weeks[:12])).significant
    assert flagged / runs < 0.08
    # a plain Poisson test (phi = 1) would flag far more of the same series
    naive = 0
    for _ in range(runs):
        weeks = rng.poisson(rng.gamma(5.0, 4.0, size=24))
        a, b = weeks[12:].sum(), weeks[:12].sum()
        z = math.log((a + 0.5) / (b + 0.5)) / math.sqrt(1 / (a + 0.5) + 1 / (b + 0.5))
        naive += abs(z) > 1.96
    assert naive / runs > 0.25


def test_the_trend_test_finds_a_real_change() -> None:
    rng = np.random.default_rng(12)
    found = 0
    for _ in range(500):
        before = rng.poisson(rng.gamma(5.0, 4.0, size=12))  # mean 20
        after = rng.poisson(rng.gamma(5.0, 8.0, size=12))  # mean 40: doubled
        t = trend_test(list(after), list(before))
        found += t.significant and t.direction == "hausse"
    assert found / 500 > 0.9
    t = trend_test([40] * 12, [20] * 12)
    assert t.significant and t.direction == "hausse" and t.dispersion == 1.0
    assert t.change_pct == pytest.approx(100.0)
    t = trend_test([10] * 12, [20] * 12)
    assert t.significant and t.direction == "baisse"


def test_small_counts_are_not_called_a_change() -> None:
    """+50 % on a handful of incidents is within the usual variation."""
    t = trend_test([0] * 10 + [3, 3], [0] * 10 + [2, 2])
    assert t.change_pct == pytest.approx(50.0)
    assert not t.significant and t.direction == "stable"
    assert trend_test([0] * 12, [0] * 12).z == 0.0
    assert math.isinf(trend_test([1] + [0] * 11, [0] * 12).change_pct)


def test_dispersion_is_pearson_around_each_period_mean() -> None:
    assert dispersion([5, 5, 5], [5, 5, 5]) == 1.0  # under-dispersed: floored at Poisson
    # means 10 and 20: chi2 = (25+25)/10 + (100+100)/20 = 15 over 4 - 2 dof
    assert dispersion([5, 15], [10, 30]) == pytest.approx(15 / 2)


def test_the_forecast_ranks_places_and_slots_with_intervals() -> None:
    slots = [SlotCount("c1", "A", 9, 24), SlotCount("c1", "A", 10, 2), SlotCount("c2", "B", 3, 1)]
    out = forecast(slots, weeks=12, top=3)
    assert [(f.cell, f.slot) for f in out][:1] == [("c1", 9)]
    best = out[0]
    assert 1.5 < best.expected < 2.0  # 24 in 12 weeks, shrunk a little toward the place level
    assert best.low <= round(best.expected) <= best.high
    assert forecast([], weeks=12) == ()


def test_categories_are_decided_together() -> None:
    """Holm: a lone p = 0.03 among twelve categories is not called a change; a strong one is."""
    weak = trend_test([30] * 12, [24] * 12)  # z ~ 2.6 on its own
    strong = trend_test([60] * 12, [20] * 12)
    null = trend_test([20] * 12, [20] * 12)
    assert weak.significant and 0.001 < weak.p_value < 0.05
    decided = holm([weak, strong, *[null] * 10])
    assert decided[1].significant and decided[1].direction == "hausse"
    assert not decided[0].significant and decided[0].direction == "stable"
    assert holm([weak])[0].significant  # alone, its own level
    # family-wise: twelve categories without a change, at most ~5 % of diagnostics flag one
    rng = np.random.default_rng(5)
    flagged = 0
    for _ in range(400):
        tests = [
            trend_test(list(rng.poisson(15, 12)), list(rng.poisson(15, 12))) for _ in range(12)
        ]
        flagged += any(t.significant for t in holm(tests))
    assert flagged / 400 < 0.08
