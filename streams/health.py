"""Liveness and readiness of a worker: pure logic, no web framework, injectable clock.

- Liveness (`/healthz`): the event loop still runs its heartbeat. A timer calls `tick()`
  every second or so; if no tick arrived for `liveness_timeout_seconds`, the loop is stuck
  (or starved) and the orchestrator should restart the process.
- Readiness (`/readyz`): the worker has started, is not recovering its tables (Faust
  changelog recovery after a rebalance), is not stopping, and ClickHouse has not been
  unreachable for longer than `clickhouse_unready_seconds`.

Handlers just return `health.liveness()` / `health.readiness()`: `(status_code, body)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Clock = Callable[[], float]
Body = dict[str, Any]


class Health:
    def __init__(
        self,
        *,
        clickhouse_unready_seconds: float,
        liveness_timeout_seconds: float = 30.0,
        clock: Clock = time.monotonic,
        recovery_probe: Callable[[], bool] | None = None,
    ) -> None:
        """`recovery_probe` (optional) is asked at each check whether table recovery runs,
        e.g. `lambda: bool(app.in_recovery or app.rebalancing)` for a Faust app."""
        self._clock = clock
        self._unready_after = clickhouse_unready_seconds
        self._liveness_timeout = liveness_timeout_seconds
        self._recovery_probe = recovery_probe
        self._last_tick = clock()
        self._started = False
        self._stopping = False
        self._recovering = False
        self._clickhouse_down_since: float | None = None
        self._clickhouse_error: str | None = None

    # ---- events ------------------------------------------------------------------------
    def tick(self) -> None:
        """Heartbeat from the event loop."""
        self._last_tick = self._clock()

    def mark_started(self) -> None:
        self._started = True

    def mark_stopping(self) -> None:
        self._stopping = True

    def set_recovering(self, recovering: bool) -> None:
        """Table recovery started (True) or finished (False)."""
        self._recovering = recovering

    def clickhouse_ok(self) -> None:
        self._clickhouse_down_since = None
        self._clickhouse_error = None

    def clickhouse_failed(self, error: BaseException | str | None = None) -> None:
        """A ClickHouse call failed; the outage starts at the first failure after success."""
        if self._clickhouse_down_since is None:
            self._clickhouse_down_since = self._clock()
        if error is not None:
            # Exception type only: messages may quote query parameters.
            self._clickhouse_error = error if isinstance(error, str) else type(error).__name__

    # ---- checks ------------------------------------------------------------------------
    def is_alive(self) -> bool:
        return self._clock() - self._last_tick <= self._liveness_timeout

    def is_recovering(self) -> bool:
        probe = self._recovery_probe() if self._recovery_probe is not None else False
        return self._recovering or probe

    def clickhouse_down_seconds(self) -> float:
        if self._clickhouse_down_since is None:
            return 0.0
        return max(0.0, self._clock() - self._clickhouse_down_since)

    def is_ready(self) -> bool:
        return not self._reasons()

    def _reasons(self) -> list[str]:
        reasons: list[str] = []
        if not self.is_alive():
            reasons.append("event_loop_stalled")
        if not self._started:
            reasons.append("starting")
        if self._stopping:
            reasons.append("stopping")
        if self.is_recovering():
            reasons.append("recovering_tables")
        if self.clickhouse_down_seconds() > self._unready_after:
            reasons.append("clickhouse_unreachable")
        return reasons

    def liveness(self) -> tuple[int, Body]:
        since = round(self._clock() - self._last_tick, 3)
        alive = self.is_alive()
        body: Body = {"status": "ok" if alive else "fail", "last_tick_seconds_ago": since}
        return (200 if alive else 503), body

    def readiness(self) -> tuple[int, Body]:
        reasons = self._reasons()
        body: Body = {
            "status": "ok" if not reasons else "unavailable",
            "reasons": reasons,
            "checks": {
                "started": self._started,
                "stopping": self._stopping,
                "recovering_tables": self.is_recovering(),
                "clickhouse_down_seconds": round(self.clickhouse_down_seconds(), 3),
                "clickhouse_error": self._clickhouse_error,
            },
        }
        return (200 if not reasons else 503), body
