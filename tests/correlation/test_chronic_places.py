"""Chronic places: where dealing or hall reports recur day after day, each night is its own
incident (`ChronicPlaces`); elsewhere such a situation keeps its long window."""

from __future__ import annotations

import json

from agents.core.correlation import Correlator
from agents.core.correlation.config import ChronicPlaces, CorrelationConfig
from agents.core.correlation.places import PlaceMemory, day_of
from tests.correlation.test_engine import final, rec, run

DAY = 86400.0
HOUR = 3600.0
DEAL = "trafic_stupefiants"


def nights_before(days: int, *, east_m: float = 0.0, category: str = DEAL) -> list:
    """One police report per evening on each of the `days` days before day 0."""
    return [
        rec(category=category, kind="police_municipale", org="pm", east_m=east_m,
            t=-d * DAY + 20 * HOUR)
        for d in range(days, 0, -1)
    ]


def tonight(east_m: float = 0.0, category: str = DEAL) -> list:
    """Two citizens 3 h apart at the same spot on day 0."""
    return [
        rec(category=category, east_m=east_m, t=20 * HOUR, contact="c1"),
        rec(category=category, east_m=east_m + 10, t=23 * HOUR, contact="c2"),
    ]


def incidents_of(engine: Correlator, records: list) -> int:
    return len(final(run(engine, *records)))


def test_memory_counts_distinct_days_before_the_asked_day_within_the_lookback() -> None:
    m = PlaceMemory(ChronicPlaces(min_days=3, lookback_days=10))
    for d in (100, 100, 101):
        m.observe("p", d)
    assert not m.is_chronic("p", 102)  # 2 days
    m.observe("p", 102)
    assert not m.is_chronic("p", 102)  # the asked day itself does not count
    assert m.is_chronic("p", 103)
    assert m.is_chronic("p", 110)  # 100..102 all within the 10 days before 110
    assert not m.is_chronic("p", 111)  # 100 has left the lookback
    assert not m.is_chronic("q", 103)


def test_memory_prunes_old_days_and_round_trips_through_json() -> None:
    m = PlaceMemory(ChronicPlaces(min_days=1, lookback_days=5))
    m.observe("a", 10)
    m.observe("b", 10)
    m.observe("b", 20)
    assert m.changed
    exported = m.export()
    assert exported == {"a": [10], "b": [10, 20]} and not m.changed
    m.prune(today=20, keep_days=2)  # keeps days >= 13
    assert m.changed and m.export() == {"b": [20]}
    again = PlaceMemory(ChronicPlaces(min_days=1, lookback_days=5))
    again.restore(json.loads(json.dumps(exported)))
    assert again.export() == exported
    assert day_of(DAY * 3 + 5) == 2  # before noon: still the previous day
    assert day_of(DAY * 3 + 13 * HOUR) == 3


def test_at_a_chronic_place_a_report_after_a_quiet_hour_opens_a_new_incident() -> None:
    # before the place is known, the three evenings are one situation (36 h window)
    assert incidents_of(Correlator(), nights_before(3)) == 1
    # from the 4th day on, the place is chronic: tonight's reports, 3 h apart, are two
    # incidents, neither joined to yesterday's
    assert incidents_of(Correlator(), [*nights_before(3), *tonight()]) == 1 + 2
    # the same evening at a place without history: one situation
    assert incidents_of(Correlator(), [*nights_before(3), *tonight(east_m=3000)]) == 1 + 1


def test_two_days_of_history_are_not_yet_chronic() -> None:
    # the two earlier evenings merge (36 h window), tonight's first report joins them too
    assert incidents_of(Correlator(), [*nights_before(2), *tonight()]) == 1


def test_chronic_windows_only_apply_to_their_categories_and_can_be_turned_off() -> None:
    # nuisance history does not make the place chronic for dealing
    noisy = nights_before(3, category="nuisance")
    assert incidents_of(Correlator(), noisy) == 3
    assert incidents_of(Correlator(), [*nights_before(3, category="nuisance"), *tonight()]) == 3 + 1
    off = Correlator(CorrelationConfig(chronic=None))
    assert incidents_of(off, [*nights_before(3), *tonight()]) == 1
    assert Correlator(CorrelationConfig(chronic=None)).export_places() == {}


def test_the_place_memory_is_exported_and_restored_with_the_engine() -> None:
    history = nights_before(3)
    original = Correlator()
    run(original, *history)
    assert original.places_changed
    places = json.loads(json.dumps(original.export_places()))
    assert not original.places_changed
    states = [json.loads(json.dumps(original.export_incident(i))) for i in original.incident_ids()]
    evening = tonight()
    rebuilt = Correlator()
    rebuilt.restore(states, watermark=original.watermark, places=places)
    out = run(rebuilt, *evening)
    assert out == run(original, *evening)
    assert len(final(out)) == 2
    # control: restored without the memory, the engine no longer knows the place, and
    # tonight joins the earlier evenings' incident
    amnesic = Correlator()
    amnesic.restore(states, watermark=original.watermark)
    assert len(final(run(amnesic, *evening))) == 1
