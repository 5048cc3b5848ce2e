"""Live hotspot detection: on the leader only, every `detect_interval_seconds`.

The detector (`agents.core.detection`, the same code `vigie backtest` runs) reads its hourly
incident counts from ClickHouse (`agents.ports.sql.incident_hours.LIVE_COUNTS`: each incident
once, in the hour it was first seen, with the cell and category of its current version: what
the backtest counts), so a new leader after a rebalance starts from the shared state.
The detector's clock is the wall clock, or with `VIGIE_DETECTOR_CLOCK=data` the newest
first-seen time in the store (replays and simulations faster than real time, like `make run`).
Each alert lifecycle message is published on `vigie.alerts.v1` (delivery awaited) and
stored in ClickHouse (`alerts` = current state, `alert_events` = every version).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agents.core.detection import Detector
from agents.core.detection.counts import CountRow
from agents.core.detection.output import alert_json
from agents.ingest import SendFn
from agents.ports.blocking import BlockingRunner
from agents.sink import insert_confirmed
from agents.ports import metrics
from agents.ports.health import Health
from agents.ports.retry import RetryPolicy
from agents.ports.sql import incident_hours, incidents
from agents.ports.store import Store

log = logging.getLogger(__name__)


def alert_row(message: Mapping[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in message.items() if k != "center"}
    row["center_lat"] = message["center"]["lat"]
    row["center_lon"] = message["center"]["lon"]
    return row


class ClickHouseCountStore:
    """`CountStore` over the `incidents` table (`first_seen_at` column): read-only, re-read
    on every run."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._revision = 0

    def add(self, cell: str, category: str, hour: int, n: int = 1) -> None:
        raise NotImplementedError("live counts come from the incidents table")

    def window_counts(self, start_hour: int, end_hour: int) -> list[CountRow]:
        query = incident_hours.LIVE_COUNTS
        rows = self.store.query(query.sql, query.bind(start=start_hour * 3600,
                                                      end=end_hour * 3600))
        return [(r["h3_r8"], r["category"], int(r["hour"]), int(r["n"])) for r in rows]

    def _span_s(self) -> tuple[int, int] | None:
        """First and last first-seen times (epoch seconds), None when empty."""
        rows = self.store.query(incidents.LIVE_SPAN.sql)
        if not rows or not rows[0]["n"]:
            return None
        return int(rows[0]["lo"]), int(rows[0]["hi"])

    def span(self) -> tuple[int, int] | None:
        span = self._span_s()
        return None if span is None else (span[0] // 3600, span[1] // 3600)

    def latest(self) -> float | None:
        """The newest first-seen time in the store (epoch seconds), None when empty."""
        span = self._span_s()
        return None if span is None else float(span[1])

    def revision(self) -> int:
        self._revision += 1  # cannot tell what changed: the detector re-reads every run
        return self._revision


class DetectProcessor:
    def __init__(self, *, detector: Detector, store: Store, send: SendFn, alerts_topic: str,
                 retry: RetryPolicy, run_blocking: BlockingRunner,
                 clock: Callable[[], float] = time.time,
                 health: Health | None = None) -> None:
        self.detector = detector
        self.clock = clock
        self._last_now = float("-inf")
        self.store = store
        self.send = send
        self.alerts_topic = alerts_topic
        self.retry = retry
        self.run_blocking = run_blocking
        self.health = health

    async def run(self, now: float | None = None) -> list[dict[str, Any]]:
        started = time.perf_counter()
        if now is None:  # the clock never goes back (a data clock may stall)
            now = self._last_now = max(self._last_now, await self.run_blocking(self.clock))
        try:
            messages: list[dict[str, Any]] = await self.run_blocking(self.detector.run, now)
        except Exception:
            metrics.observe_detector_run(time.perf_counter() - started, ok=False)
            log.exception("detector run failed")
            return []
        if messages:
            deliveries: list[Awaitable[Any]] = [
                await self.send(self.alerts_topic, m["alert_id"].encode(), alert_json(m))
                for m in messages
            ]
            await asyncio.gather(*deliveries)
            rows = [alert_row(m) for m in messages]
            for table in ("alert_events", "alerts"):
                await insert_confirmed(
                    self.store, table, rows, retry=self.retry, run_blocking=self.run_blocking,
                    health=self.health,
                )
            for m in messages:
                metrics.count_alert(m["status"], time.time() - float(m["window_end"]))
                log.info("alert", extra={"alert_id": m["alert_id"], "status": m["status"]})
        ready = getattr(self.detector, "ready", None)
        metrics.observe_detector_run(time.perf_counter() - started, ok=True, ready=ready)
        return messages
