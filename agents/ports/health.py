"""Liveness and readiness of a worker: pure logic, no web framework, injectable clock.

- Liveness (`/healthz`): the event loop still runs its heartbeat. A timer calls `tick()`
  every second or so; if no tick arrived for `liveness_timeout_seconds`, the loop is stuck
  (or starved) and the orchestrator should restart the process.
- Readiness (`/readyz`): the worker has started, is not recovering its tables (Faust
  changelog recovery after a rebalance), is not stopping, and none of its dependencies
  (`clickhouse`, `kafka`) has been unreachable for longer than `clickhouse_unready_seconds`.
  A dependency named in `confirm_at_start` makes the worker unready at once while it has
  never answered since the start (e.g. ClickHouse down when the worker starts: the schema
  cannot be checked, nothing can be written).

Reasons name the dependency (`clickhouse_unreachable`, `kafka_unreachable`), and
`dependency_up(name)` feeds `vigie_dependency_up`. A worker whose dependency is down stays
alive (it holds its batch and waits): only a stuck event loop fails liveness.

Handlers just return `health.liveness()` / `health.readiness()`: `(status_code, body)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]
Body = dict[str, Any]

CLICKHOUSE = "clickhouse"
KAFKA = "kafka"
DEPENDENCIES = (CLICKHOUSE, KAFKA)


@dataclass(slots=True)
class DependencyState:
    """What the worker last saw of one dependency."""

    down_since: float | None = None  # first failure after the last success
    error: str | None = None  # exception type of the last failure (never its message)
    answered: bool = False  # it answered at least once since the start


class Health:
    def __init__(
        self,
        *,
        clickhouse_unready_seconds: float,
        liveness_timeout_seconds: float = 30.0,
        clock: Clock = time.monotonic,
        recovery_probe: Callable[[], bool] | None = None,
        confirm_at_start: Iterable[str] = (),
    ) -> None:
        """`recovery_probe` (optional) is asked at each check whether table recovery runs,
        e.g. `lambda: bool(app.in_recovery or app.rebalancing)` for a Faust app.
        `clickhouse_unready_seconds` is the grace of every dependency outage (a blip does
        not flap readiness)."""
        self._clock = clock
        self._unready_after = clickhouse_unready_seconds
        self._liveness_timeout = liveness_timeout_seconds
        self._recovery_probe = recovery_probe
        self._last_tick = clock()
        self._started = False
        self._stopping = False
        self._recovering = False
        self._confirm_at_start = frozenset(confirm_at_start)
        self._deps = {name: DependencyState() for name in DEPENDENCIES}

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

    def dependency_ok(self, name: str) -> None:
        state = self._dep(name)
        state.down_since = None
        state.error = None
        state.answered = True

    def dependency_failed(self, name: str, error: BaseException | str | None = None) -> None:
        """A call to `name` failed; the outage starts at the first failure after success."""
        state = self._dep(name)
        if state.down_since is None:
            state.down_since = self._clock()
        if error is not None:
            # Exception type only: messages may quote query parameters.
            state.error = error if isinstance(error, str) else type(error).__name__

    def clickhouse_ok(self) -> None:
        self.dependency_ok(CLICKHOUSE)

    def clickhouse_failed(self, error: BaseException | str | None = None) -> None:
        self.dependency_failed(CLICKHOUSE, error)

    # ---- checks ------------------------------------------------------------------------
    def is_alive(self) -> bool:
        return self._clock() - self._last_tick <= self._liveness_timeout

    def is_recovering(self) -> bool:
        probe = self._recovery_probe() if self._recovery_probe is not None else False
        return self._recovering or probe

    def down_seconds(self, name: str) -> float:
        state = self._dep(name)
        if state.down_since is None:
            return 0.0
        return max(0.0, self._clock() - state.down_since)

    def clickhouse_down_seconds(self) -> float:
        return self.down_seconds(CLICKHOUSE)

    def dependency_up(self, name: str) -> bool:
        """False while calls to `name` fail (from the first failure to the next success)."""
        return self._dep(name).down_since is None

    def is_ready(self) -> bool:
        return not self._reasons()

    def _dep(self, name: str) -> DependencyState:
        try:
            return self._deps[name]
        except KeyError:
            raise ValueError(f"unknown dependency {name!r} (one of {DEPENDENCIES})") from None

    def _unreachable(self, name: str) -> bool:
        state = self._deps[name]
        if state.down_since is None:
            return False
        never_answered = name in self._confirm_at_start and not state.answered
        return never_answered or self.down_seconds(name) > self._unready_after

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
        reasons.extend(f"{name}_unreachable" for name in DEPENDENCIES if self._unreachable(name))
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
                "clickhouse_down_seconds": round(self.down_seconds(CLICKHOUSE), 3),
                "clickhouse_error": self._deps[CLICKHOUSE].error,
                "kafka_down_seconds": round(self.down_seconds(KAFKA), 3),
                "kafka_error": self._deps[KAFKA].error,
            },
        }
        return (200 if not reasons else 503), body
