"""Which places are chronic: the days on which each place had located reports of the
categories of `ChronicPlaces` (dealing points, occupied halls), over a short lookback.

A place is an H3 r9 cell; a day runs from noon to noon UTC (`day_of`), so that one night's
activity, which crosses midnight, counts once. The memory is part of the correlation state
(one small dict per engine), exported and restored with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agents.core.correlation.config import ChronicPlaces

DAY_S = 86400
DAY_START_S = 12 * 3600  # days start at 12:00 UTC (13:00 or 14:00 in Paris)


def day_of(t: float) -> int:
    """The number of the noon-to-noon (UTC) day holding an epoch-second time. Noon, not
    midnight: one night's reports count as one day, so a one-off occupation of two nights
    does not make its own place chronic (with midnight days it counted for up to four)."""
    return int((t - DAY_START_S) // DAY_S)


class PlaceMemory:
    """Days with reports per place; `is_chronic` asks about the days before a given one."""

    def __init__(self, params: ChronicPlaces) -> None:
        self.params = params
        self._days: dict[str, set[int]] = {}
        self.changed = False  # since the last `export` (persist it then)

    def __len__(self) -> int:
        return len(self._days)

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
            self.changed = True

    def prune(self, today: int, keep_days: int) -> None:
        """Forget days older than `today - lookback_days - keep_days` (`keep_days`: how late
        a report may still arrive and ask about its own day)."""
        oldest = today - self.params.lookback_days - keep_days
        for place in [p for p, days in self._days.items() if min(days) < oldest]:
            kept = {d for d in self._days[place] if d >= oldest}
            if kept:
                self._days[place] = kept
            else:
                del self._days[place]
            self.changed = True

    def export(self) -> dict[str, list[int]]:
        """A JSON-serialisable copy (sorted days per place); clears `changed`."""
        self.changed = False
        return {place: sorted(days) for place, days in sorted(self._days.items())}

    def restore(self, exported: Mapping[str, Sequence[int]]) -> None:
        for place, days in exported.items():
            self._days.setdefault(place, set()).update(int(d) for d in days)
