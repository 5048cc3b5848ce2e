"""The chronic-place memory is persisted as per-day records (`PlaceMemory.export_changes`):
a change writes only the days it touched, and `from_records` reads them back, merged with
the older whole-memory record."""

from __future__ import annotations

import json
from typing import Any

from agents.core.correlation.config import ChronicPlaces
from agents.core.correlation.places import DAYS_RECORD, PlaceMemory, PlaceRecord, from_records


def memory() -> PlaceMemory:
    return PlaceMemory(ChronicPlaces(min_days=3, lookback_days=10))


def apply(table: dict[str, Any], records: dict[str, PlaceRecord]) -> None:
    """What the changelog table does with them (None deletes), through JSON."""
    for name, value in json.loads(json.dumps(records)).items():
        if value is None:
            table.pop(name, None)
        else:
            table[name] = value


def test_a_change_writes_only_the_days_it_touched() -> None:
    m = memory()
    for day in range(100, 130):  # a month of history at 50 places
        for p in range(50):
            m.observe(f"place{p}", day)
    first = m.export_changes()
    assert len(first) == 31 and first[DAYS_RECORD] == list(range(100, 130))
    assert not m.changed
    m.observe("place0", 129)  # known: nothing to write
    assert not m.changed and m.export_changes() == {}
    m.observe("new", 129)
    assert m.export_changes() == {"129": sorted(["new", *(f"place{p}" for p in range(50))])}
    m.observe("new", 130)  # a new day: its record and the list of days
    assert m.export_changes() == {"130": ["new"], DAYS_RECORD: list(range(100, 131))}


def test_pruned_days_are_deleted_and_the_memory_reads_back_the_same() -> None:
    m, table = memory(), dict[str, Any]()
    for day, place in [(1, "a"), (2, "a"), (2, "b"), (20, "b"), (21, "c")]:
        m.observe(place, day)
    apply(table, m.export_changes())
    m.prune(today=21, keep_days=2)  # forgets days before 9
    changes = m.export_changes()
    assert changes == {"1": None, "2": None, DAYS_RECORD: [20, 21]}
    apply(table, changes)
    assert sorted(table) == ["20", "21", DAYS_RECORD]
    assert from_records(table.get) == m.export() == {"b": [20], "c": [21]}
    rebuilt = memory()
    rebuilt.restore(from_records(table.get) or {})
    assert rebuilt.export() == m.export()
    assert rebuilt.is_chronic("b", 22) == m.is_chronic("b", 22)


def test_the_older_whole_record_is_merged_and_rewritten_per_day() -> None:
    whole = {"a": [1, 2], "b": [2]}  # `export`'s form: what older versions persisted
    empty = dict[str, Any]()
    assert from_records(empty.get) is None
    assert from_records(empty.get, whole) == whole
    table = {DAYS_RECORD: [3], "3": ["a"]}
    merged = from_records(table.get, whole)
    assert merged == {"a": [1, 2, 3], "b": [2]}
    m = memory()
    m.restore(merged or {})
    # restored: every day is written again, so the per-day records then hold it all
    assert m.export_changes() == {"1": ["a"], "2": ["a", "b"], "3": ["a"], DAYS_RECORD: [1, 2, 3]}


def test_is_chronic_counts_the_lookback_days_only() -> None:
    m = memory()
    for day in (1, 5, 9):
        m.observe("a", day)
    assert m.is_chronic("a", 10)
    assert not m.is_chronic("a", 9)  # the day itself does not count
    assert not m.is_chronic("a", 12)  # day 1 is past the 10-day lookback
    m.prune(today=30, keep_days=0)
    assert len(m) == 0 and not m.is_chronic("a", 10)
