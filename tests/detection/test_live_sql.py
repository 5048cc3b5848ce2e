"""The live counts (`incident_hours.LIVE_COUNTS` and `incidents.LIVE_SPAN` of `agents.ports.sql`
through `ClickHouseCountStore`) on the real schema, on both backends (ClickHouse 18.16 server
and chDB 26.x): each incident once, in the hour it was first seen (`first_seen_at`, the same
in every version of an incident), with the cell and category of its latest version, located
incidents only (not known only by their commune), before and after the ReplacingMergeTree
merges (`incident_hours`, kept from `incidents` by a materialized view)."""

from __future__ import annotations

import time
from typing import Any

from agents.core.detection import IncidentCounter, InMemoryCountStore
from agents.detect import ClickHouseCountStore
from streams.storage import Store

H = 475_000  # hour bucket
T = H * 3600


def _version(
    iid: str, v: int, cat: str, occurred: float, cell: str, updated: float
) -> dict[str, Any]:
    return {
        "incident_id": iid,
        "version": v,
        "status": "open",
        "category": cat,
        "first_occurred_at": occurred,
        "last_occurred_at": occurred,
        "h3_r8": cell,
        "insee": "91228",
        "updated_at": updated,
    }


VERSIONS = [
    # i1: first seen in hour H although it occurred an hour earlier (a late report); later
    # versions, seen hours later, move it to another cell: counted in H, in cellC
    _version("i1", 1, "rodeo", T - 1800, "cellA", T + 600),
    _version("i1", 2, "rodeo", T - 1800, "cellA", T + 2 * 3600),
    _version("i1", 3, "rodeo", T - 1800, "cellC", T + 3 * 3600),
    # i2: re-delivered identical version 1
    _version("i2", 1, "vol", T + 60, "cellB", T + 100),
    _version("i2", 1, "vol", T + 60, "cellB", T + 100),
    # i3: first seen before the window: not counted, whatever its later versions
    _version("i3", 1, "vol", T - 5000, "cellB", T - 4000),
    _version("i3", 2, "vol", T + 100, "cellB", T + 200),
    # i4: re-categorised by its version 2
    _version("i4", 1, "vol", T + 200, "cellB", T + 300),
    _version("i4", 2, "cambriolage", T + 200, "cellB", T + 400),
    # i5: first seen in the next hour (after the window's end)
    _version("i5", 1, "vol", T + 3000, "cellB", T + 3700),
    # i6: known only by its commune (its cell is the commune's representative point's):
    # not counted per cell
    {**_version("i6", 1, "incendie", T + 300, "cellD", T + 400), "precision": "commune"},
    # i7: commune-only first, located by its version 2: counted in its first-seen hour
    {**_version("i7", 1, "incendie", T + 500, "cellD", T + 600), "precision": "commune"},
    {**_version("i7", 2, "incendie", T + 500, "cellE", T + 9000), "precision": "point"},
]

# every version of an incident carries its first-seen time (here: its version 1's updated_at)
_SEEN = {r["incident_id"]: r["updated_at"] for r in VERSIONS if r["version"] == 1}
for _row in VERSIONS:
    _row["first_seen_at"] = _SEEN[_row["incident_id"]]

EXPECTED = [
    ("cellB", "cambriolage", H, 1),
    ("cellB", "vol", H, 1),
    ("cellC", "rodeo", H, 1),
    ("cellE", "incendie", H, 1),
]


def merged_rows(store: Store, table: str, want: int, tries: int = 50) -> int:
    """The row count of `table` after `OPTIMIZE ... FINAL`, repeated (at most `tries` times,
    0.2 s apart) until it reads `want`: ClickHouse 18.16 returns from OPTIMIZE without merging
    when it cannot schedule the merge now (a background merge of the same parts already
    running, as under CI load), where a later OPTIMIZE merges them."""
    n = -1
    for _ in range(tries):
        store.query(f"OPTIMIZE TABLE {table} FINAL")
        n = int(store.query(f"SELECT count() AS n FROM {table}")[0]["n"])
        if n == want:
            break
        time.sleep(0.2)
    return n


def test_live_counts_match_the_backtest_counter(store: Store) -> None:
    for row in VERSIONS:  # separate inserts: separate parts, unmerged
        store.insert("incidents", [row])
    live = ClickHouseCountStore(store)
    assert sorted(live.window_counts(H, H + 1)) == EXPECTED
    assert live.span() == (H - 2, H + 1)

    # the backtest's counter, fed the same versions, counts the same thing
    memory = InMemoryCountStore()
    counter = IncidentCounter(memory)
    for row in VERSIONS:
        counter.observe(row)
    assert sorted(memory.window_counts(H, H + 1)) == EXPECTED

    # merges keep only the latest version of each incident: the first-seen hour stays
    assert merged_rows(store, "incidents", 7) == 7
    assert merged_rows(store, "incident_hours", 7) == 7
    assert sorted(live.window_counts(H, H + 1)) == EXPECTED
    assert sorted(live.window_counts(H - 2, H + 2)) == sorted(
        [*EXPECTED, ("cellB", "vol", H - 2, 1), ("cellB", "vol", H + 1, 1)]
    )


def test_live_totals_are_the_sums_of_the_live_counts(store: Store) -> None:
    """`window_totals` (what the baseline's fit reads) sums what `window_counts` gives."""
    for row in VERSIONS:
        store.insert("incidents", [row])
    live = ClickHouseCountStore(store)
    for start, end in ((H, H + 1), (H - 2, H + 2), (H + 5, H + 9)):
        rows = live.window_counts(start, end)
        cells, hours = live.window_totals(start, end)
        by_cell: dict[tuple[str, str], int] = {}
        by_hour: dict[tuple[str, int], int] = {}
        for cell, category, hour, n in rows:
            by_cell[(cell, category)] = by_cell.get((cell, category), 0) + n
            by_hour[(category, hour)] = by_hour.get((category, hour), 0) + n
        assert sorted(cells) == sorted((c, k, n) for (c, k), n in by_cell.items())
        assert sorted(hours) == sorted((k, h, n) for (k, h), n in by_hour.items())
    assert live.window_totals(H - 2, H + 2)[0] == [
        ("cellB", "cambriolage", 1), ("cellB", "vol", 3), ("cellC", "rodeo", 1),
        ("cellE", "incendie", 1)]
