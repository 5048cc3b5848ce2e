"""Which places are chronic: the days on which each place had located reports of the
categories of `ChronicPlaces` (dealing points, occupied halls), over a short lookback.

A place is an H3 r9 cell; a day runs from noon to noon UTC (`day_of`), so that one night's
activity, which crosses midnight, counts once. The memory is part of the correlation state,
exported and restored with it.

It is persisted incrementally, as records of one day each (`PlaceMemory.export_changes`):
record `str(day)` lists the places with reports that day, record `DAYS_RECORD` lists the
days held. A batch rewrites only the days it changed (today's, a late report's), so the
cost of persisting does not grow with the memory; exporting the whole memory after every
change cost a batch tens of ms on a month of state. `from_records` reads them back into
the whole form that `PlaceMemory.restore` takes, also merging the older format (the whole
memory in one record, `export`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents.core.correlation.config import ChronicPlaces

DAY_S = 86400
DAY_START_S = 12 * 3600  # days start at 12:00 UTC (13:00 or 14:00 in Paris)
DAYS_RECORD = "days"  # the record listing the days held (the others are named by their day)

# One changelog record of the memory: a day's sorted places, the sorted days held, or None
# (a day forgotten: delete its record).
PlaceRecord = list[str] | list[int] | None


def day_of(t: float) -> int:
    """The number of the noon-to-noon (UTC) day holding an epoch-second time. Noon, not
    midnight: one night's reports count as one day, so a one-off occupation of two nights
    does not make its own place chronic (with midnight days it counted for up to four)."""
    return int((t - DAY_START_S) // DAY_S)


class PlaceMemory:
    """Days with reports per place; `is_chronic` asks about the days before a given one.

    Indexed both ways (place -> days for `is_chronic`, day -> places for the per-day
    records), with the days changed since the last export (`changed`)."""

    def __init__(self, params: ChronicPlaces) -> None:
        self.params = params
        self._days: dict[str, set[int]] = {}
        self._places: dict[int, set[str]] = {}  # day -> places with reports that day
        self._dirty: set[int] = set()  # days whose record changed since the last export
        self._days_dirty = False  # the set of days held changed since the last export

    def __len__(self) -> int:
        return len(self._days)

    @property
    def changed(self) -> bool:
        """Changed since the last `export` or `export_changes` (persist it then)."""
        return bool(self._dirty) or self._days_dirty

    def is_chronic(self, place: str, day: int) -> bool:
        """At least `min_days` days with reports among the `lookback_days` before `day`."""
        days = self._days.get(place)
        if days is None or len(days) < self.params.min_days:
            return False
        first = day - self.params.lookback_days
        return sum(1 for d in days if first <= d < day) >= self.params.min_days

    def observe(self, place: str, day: int) -> None:
        days = self._days.setdefault(place, set())
        if day not in days:
            days.add(day)
            self._add(place, day)

    def _add(self, place: str, day: int) -> None:
        places = self._places.get(day)
        if places is None:
            places = self._places[day] = set()
            self._days_dirty = True
        places.add(place)
        self._dirty.add(day)

    def prune(self, today: int, keep_days: int) -> None:
        """Forget days older than `today - lookback_days - keep_days` (`keep_days`: how late
        a report may still arrive and ask about its own day). Walks the forgotten days'
        places only."""
        oldest = today - self.params.lookback_days - keep_days
        for day in [d for d in self._places if d < oldest]:
            for place in self._places.pop(day):
                days = self._days[place]
                days.discard(day)
                if not days:
                    del self._days[place]
            self._dirty.add(day)
            self._days_dirty = True

    def export(self) -> dict[str, list[int]]:
        """The whole memory, JSON-serialisable (sorted days per place); clears `changed`."""
        self._dirty.clear()
        self._days_dirty = False
        return {place: sorted(days) for place, days in sorted(self._days.items())}

    def export_changes(self) -> dict[str, PlaceRecord]:
        """The records changed since the last export, by name (see the module's doc): a
        changed day's sorted places (None: the day was forgotten) and, when days came or
        went, `DAYS_RECORD`. JSON-serialisable; clears `changed`."""
        out: dict[str, PlaceRecord] = {}
        for day in sorted(self._dirty):
            places = self._places.get(day)
            out[str(day)] = sorted(places) if places else None
        if self._days_dirty:
            out[DAYS_RECORD] = sorted(self._places)
        self._dirty.clear()
        self._days_dirty = False
        return out

    def restore(self, exported: Mapping[str, Sequence[int]]) -> None:
        """Merge a whole memory (`export`'s form, or `from_records`'). Every day is then
        `changed`: the next `export_changes` writes all of them again, so a memory read from
        an older format is persisted in the per-day records once."""
        for place, days in exported.items():
            for d in days:
                self.observe(place, int(d))
        self._dirty.update(self._places)
        self._days_dirty = True


def from_records(
    read: Callable[[str], Any], whole: Mapping[str, Sequence[int]] | None = None
) -> dict[str, list[int]] | None:
    """The memory in `export`'s form from its per-day records (`read(name)`: a record's
    value, None when absent) merged with `whole`, the memory saved in one record by older
    versions (None: none). None when there is neither."""
    listed = read(DAYS_RECORD)
    if not isinstance(listed, list) and whole is None:
        return None
    out: dict[str, list[int]] = {
        place: [int(d) for d in days] for place, days in (whole or {}).items()
    }
    for day in listed if isinstance(listed, list) else ():
        for place in read(str(day)) or ():
            out.setdefault(str(place), []).append(int(day))
    return out
