"""Fast RFC 3339 formatting and local-hour lookup (Europe/Paris), cached per UTC hour.

Paris offsets are whole hours, so minutes and seconds are the same in local time and
UTC: one zoneinfo conversion per hour instead of one per timestamp (DST-correct).
"""

from __future__ import annotations

from datetime import UTC, datetime

from offline.simulator.config import PARIS


class Clock:
    def __init__(self) -> None:
        self._hours: dict[int, tuple[str, str, str, int]] = {}

    def _entry(self, hour: int) -> tuple[str, str, str, int]:
        e = self._hours.get(hour)
        if e is None:
            local = datetime.fromtimestamp(hour * 3600, PARIS)
            utc = datetime.fromtimestamp(hour * 3600, UTC)
            off = local.isoformat()[-6:]
            e = (local.strftime("%Y-%m-%dT%H:"), off, utc.strftime("%Y-%m-%dT%H:"), local.hour)
            self._hours[hour] = e
        return e

    def iso(self, ts: float, utc: bool = False) -> str:
        """`2024-03-18T14:05:09+01:00` (local offset) or `2024-03-18T13:05:09Z`."""
        s = int(ts // 1)
        hour, rest = divmod(s, 3600)
        e = self._entry(hour)
        m, sec = divmod(rest, 60)
        if utc:
            return f"{e[2]}{m:02d}:{sec:02d}Z"
        return f"{e[0]}{m:02d}:{sec:02d}{e[1]}"

    def local_hour(self, ts: float) -> int:
        return self._entry(int(ts // 3600))[3]
