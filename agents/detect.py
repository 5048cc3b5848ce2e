"""Live hotspot detection: on the leader only, every `detect_interval_seconds`.

The detector (`agents.core.detection`, the same code `vigie backtest` runs) reads its hourly
incident counts from ClickHouse (`agents.ports.sql.incident_hours.LIVE_COUNTS`: each incident
once, in the hour it was first seen, with the cell and category of its current version: what
the backtest counts), so a new leader after a rebalance starts from the shared state.
The detector's clock is the wall clock, or with `VIGIE_DETECTOR_CLOCK=data` the newest
first-seen time in the store (replays and simulations faster than real time, like `make run`).
Each alert lifecycle message is published on `vigie.alerts.v1` (delivery awaited) and
stored in ClickHouse (`alerts` = current state, `alert_events` = every version).

The alert lifecycle's state (open alerts, recent closures) is durable in `alerts`: before its
first run, after a rebalance (the only way the leader changes, so the only way another worker
may have run the detector meanwhile) and after a failed run, the processor takes it back from
there (`alerts.DETECTOR_STATE` -> `RestorableDetector.restore`), so that a hotspot goes on
under its alert id after a restart or a change of leader and an alert of a zone gone quiet
closes. No detection runs until that restore succeeded.

Its schedule (when it last fitted its baseline and calibrated its threshold, and that
threshold: `DetectorSchedule`) is stored in `detector_schedules` when it changes and taken back
with the alert state, so a restarted detector keeps the threshold an uninterrupted one has and
refits and recalibrates when that one would (a calibration depends on the history and the hour
it runs at: recalibrating at every start made the live alerts depend on when the worker died).

Catch-up: when its clock jumped by more than an hour since the last successful run (a
backlog read at once, runs failed through an outage, or a restart: the last run time is
stored in `detector_runs` once per hour of the clock), the detector also runs at the end of
every hour it skipped (`run_times`), so what it alerts does not depend on how fast the data
arrived.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from agents.core.detection import AlertState, Detector, DetectorSchedule, RestorableDetector
from agents.core.detection.counts import CellTotal, CountRow, HourTotal
from agents.core.detection.output import alert_json
from agents.ingest import SendFn
from agents.ports import metrics
from agents.ports.blocking import BlockingRunner
from agents.ports.health import Health
from agents.ports.retry import RetryPolicy
from agents.ports.sql import alerts, detector_runs, incident_hours, incidents
from agents.ports.store import Store
from agents.sink import insert_confirmed

log = logging.getLogger(__name__)


def alert_row(message: Mapping[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in message.items() if k != "center"}
    row["center_lat"] = message["center"]["lat"]
    row["center_lon"] = message["center"]["lon"]
    return row


def alert_state(row: Mapping[str, Any]) -> AlertState:
    """An `alerts.DETECTOR_STATE` row as the lifecycle takes it back; ValueError (or KeyError,
    TypeError) naming what is wrong with a row that is not an alert state."""
    return AlertState(
        alert_id=str(row["alert_id"]),
        version=int(row["version"]),
        status=str(row["status"]),
        kind=str(row["kind"]),
        category=str(row["category"]),
        center_lat=float(row["center_lat"]),
        center_lon=float(row["center_lon"]),
        radius_m=float(row["radius_m"]),
        cells=tuple(str(c) for c in row["cells"]),
        insee=tuple(str(i) for i in row["insee"]),
        window_start=float(row["window_start"]),
        window_end=float(row["window_end"]),
        observed=float(row["observed"]),
        expected=float(row["expected"]),
        score=float(row["score"]),
        severity=int(row["severity"]),
        emitted_at=float(row["emitted_at"]),
        detector=str(row["detector"]),
    )


def stored_alert_states(store: Store, since: float) -> list[AlertState]:
    """The stored current version of every alert not closed and of every alert closed since
    `since`; a row that is not an alert state is logged (with its id) and left out."""
    query = alerts.DETECTOR_STATE
    states: list[AlertState] = []
    for row in store.query(query.sql, query.bind(since=int(since))):
        try:
            states.append(alert_state(row))
        except (KeyError, TypeError, ValueError) as exc:
            log.error("stored alert state left out",
                      extra={"alert_id": str(row.get("alert_id")), "error": str(exc)})
    return states


class ClickHouseCountStore:
    """`CountStore` over the `incidents` table (`first_seen_at` column): read-only. It cannot
    tell what changed, so outside a snapshot every read is a new revision: the detector
    re-reads its windows at each run.

    `snapshot()`: for the `with` block, the counts as read once. Reads of a window that an
    earlier read of the block covers are served from it, the span is read once, the
    revision stands still and `changes_since` it is empty (a read past the span's last hour
    covers every later hour). A catch-up (`run_times`: one
    detector run for each skipped hour, all in one block) then reads its windows once and
    moves them on by the hour, instead of re-reading a day of counts for each hour (in a
    replay of 12 dense days, 11 runs took 0.93 s of the detector's time in those reads, the
    scan itself a few hundredths)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._revision = 0
        self._snapshot: _Snapshot | None = None

    def add(self, cell: str, category: str, hour: int, n: int = 1) -> None:
        raise NotImplementedError("live counts come from the incidents table")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """The counts as read once, for the block (see the class)."""
        self._revision += 1
        self._snapshot = _Snapshot(self._revision)
        try:
            yield
        finally:
            self._snapshot = None

    def window_counts(self, start_hour: int, end_hour: int) -> list[CountRow]:
        snap = self._snapshot
        if snap is not None:
            for (lo, hi), read in snap.reads:
                if lo <= start_hour and end_hour <= hi:
                    return rows_within(read, start_hour, end_hour)
        query = incident_hours.LIVE_COUNTS
        rows = self.store.query(query.sql, query.bind(start=start_hour * 3600,
                                                      end=end_hour * 3600))
        out: list[CountRow] = [
            (str(r["h3_r8"]), str(r["category"]), int(r["hour"]), int(r["n"])) for r in rows
        ]
        if snap is not None:
            # a read past the snapshot's last hour holds every later hour there is
            last = snap.span[1] if snap.span is not None else None
            covers = (start_hour, _FOREVER if last is not None and end_hour > last else end_hour)
            snap.reads = [*snap.reads[-(_SNAPSHOT_READS - 1):], (covers, out)]
        return out

    def window_totals(
        self, start_hour: int, end_hour: int
    ) -> tuple[list[CellTotal], list[HourTotal]]:
        bounds = {"start": start_hour * 3600, "end": end_hour * 3600}
        by_cell, by_hour = incident_hours.LIVE_CELL_TOTALS, incident_hours.LIVE_HOUR_TOTALS
        cells: list[CellTotal] = [
            (str(r["h3_r8"]), str(r["category"]), int(r["n"]))
            for r in self.store.query(by_cell.sql, by_cell.bind(**bounds))
        ]
        hours: list[HourTotal] = [
            (str(r["category"]), int(r["hour"]), int(r["n"]))
            for r in self.store.query(by_hour.sql, by_hour.bind(**bounds))
        ]
        return cells, hours

    def _span_s(self) -> tuple[int, int] | None:
        """First and last first-seen times (epoch seconds), None when empty."""
        rows = self.store.query(incidents.LIVE_SPAN.sql)
        if not rows or not rows[0]["n"]:
            return None
        return int(rows[0]["lo"]), int(rows[0]["hi"])

    def span(self) -> tuple[int, int] | None:
        snap = self._snapshot
        if snap is not None and snap.span_read:
            return snap.span
        span_s = self._span_s()
        span = None if span_s is None else (span_s[0] // 3600, span_s[1] // 3600)
        if snap is not None:
            snap.span, snap.span_read = span, True
        return span

    def latest(self) -> float | None:
        """The newest first-seen time in the store (epoch seconds), None when empty."""
        span = self._span_s()
        return None if span is None else float(span[1])

    def revision(self) -> int:
        if self._snapshot is not None:
            return self._snapshot.revision
        self._revision += 1  # cannot tell what changed: the detector re-reads every run
        return self._revision

    def changes_since(self, revision: int) -> list[CountRow] | None:
        """Nothing since the snapshot's revision; else unknown (None: re-read)."""
        snap = self._snapshot
        return [] if snap is not None and revision == snap.revision else None


# reads a snapshot keeps (the scan's windows, and the fit window a calibration reads)
_SNAPSHOT_READS = 2
_FOREVER = 1 << 62


@dataclass(slots=True)
class _Snapshot:
    revision: int
    # ((start hour, end hour), rows ordered by hour) of the block's reads, latest last
    reads: list[tuple[tuple[int, int], list[CountRow]]] = field(default_factory=list)
    span_read: bool = False
    span: tuple[int, int] | None = None  # once read: (first, last) hour, None when empty


def rows_within(rows: list[CountRow], start_hour: int, end_hour: int) -> list[CountRow]:
    """The rows (ordered by hour, as LIVE_COUNTS returns them) of hours in [start, end)."""
    lo = bisect_left(rows, start_hour, key=itemgetter(2))
    hi = bisect_left(rows, end_hour, lo, key=itemgetter(2))
    return rows[lo:hi]


# Catch-up step (module docstring): the scan's counts are hourly, so a run at the end of
# each skipped hour sees what every run of that hour would have seen.
CATCH_UP_STEP_S = 3600.0
# at most a week of hourly runs in one go: a longer jump (a replay of old data, a clock far
# ahead) catches up on its last week only
MAX_CATCH_UP_STEPS = 168


def run_times(last: float, now: float) -> list[float]:
    """The times the detector runs at when its clock went from `last` (the previous
    successful run) to `now`: the end of every hour strictly between them (at most
    `MAX_CATCH_UP_STEPS`, the latest ones), then `now`."""
    if not last < now - CATCH_UP_STEP_S:  # also a first run (last = -inf)
        return [now]
    step = CATCH_UP_STEP_S
    t = (last // step) * step + step - 1.0  # the last second of `last`'s hour
    if t <= last:
        t += step
    t = max(t, (now // step - MAX_CATCH_UP_STEPS) * step + step - 1.0)
    times = []
    while t < now:  # every hour that ended before `now`
        times.append(t)
        t += step
    return [*times, now]


class DetectProcessor:
    def __init__(self, *, detector: Detector, store: Store, send: SendFn, alerts_topic: str,
                 retry: RetryPolicy, run_blocking: BlockingRunner,
                 clock: Callable[[], float] = time.time,
                 health: Health | None = None,
                 snapshot: Callable[[], AbstractContextManager[object]] = nullcontext) -> None:
        self.detector = detector
        # the detector's counts as read once for all the run times of a run
        # (`ClickHouseCountStore.snapshot`)
        self.snapshot = snapshot
        self.clock = clock
        self._last_now = float("-inf")
        self._last_run = float("-inf")  # the clock of the last successful run
        self._stored_run = float("-inf")  # the last one written to `detector_runs`
        self._stored_schedule: DetectorSchedule | None = None  # in `detector_schedules`
        self.store = store
        self.send = send
        self.alerts_topic = alerts_topic
        self.retry = retry
        self.run_blocking = run_blocking
        self.health = health
        self._restore_due = True

    def _run_at(self, times: list[float]) -> list[dict[str, Any]]:
        """The detector's messages of a run at each of `times`, in order."""
        out: list[dict[str, Any]] = []
        with self.snapshot():
            for t in times:
                out.extend(self.detector.run(t))
        return out

    def rebalanced(self) -> None:
        """A rebalance happened: the leader may have changed, and another worker may have
        run the detector meanwhile; the next run restores the alert state first."""
        self._restore_due = True

    def _stored_last_run(self) -> float | None:
        """The stored time of this detector's last run (any process's), None when none."""
        query = detector_runs.LAST_RUN
        rows = self.store.query(query.sql, query.bind(detector=self.detector.name))
        if not rows or not int(rows[0]["n"]):
            return None
        return float(rows[0]["last"])

    def _stored_schedule_row(self) -> DetectorSchedule | None:
        """The stored schedule of this detector (any process's), None when none."""
        query = detector_runs.SCHEDULE
        rows = self.store.query(query.sql, query.bind(detector=self.detector.name))
        if not rows:
            return None
        row = rows[0]
        return DetectorSchedule(float(row["fit_at"]), float(row["calibrated_at"]),
                                float(row["threshold"]))

    async def _restore(self, now: float) -> None:
        detector = self.detector
        if not isinstance(detector, RestorableDetector):
            self._restore_due = False
            return
        since = now - detector.cooldown_s
        states = await self.run_blocking(stored_alert_states, self.store, since)
        schedule = await self.run_blocking(self._stored_schedule_row)
        await self.run_blocking(detector.restore, states, now)
        own = detector.schedule()
        if schedule is not None and (own is None or (schedule.fit_at, schedule.calibrated_at)
                                     > (own.fit_at, own.calibrated_at)):
            # a new process, or a leader back after another one ran the detector: a leader
            # that kept the lead has its own schedule, the one stored
            await self.run_blocking(detector.restore_schedule, schedule)
        self._stored_schedule = schedule
        self._restore_due = False
        log.info("alert state restored", extra={
            "open": sum(s.status != "closed" for s in states),
            "closed": sum(s.status == "closed" for s in states),
            "schedule": None if schedule is None else {
                "fit_at": schedule.fit_at, "calibrated_at": schedule.calibrated_at,
                "threshold": schedule.threshold},
        })

    async def _store_schedule(self) -> None:
        """Write the detector's schedule when it changed (a fit or a calibration); a failure
        is logged and retried at the next run, never fatal. Its threshold and calibration
        time are exported at every run (`metrics.set_detector_calibration`)."""
        detector = self.detector
        if not isinstance(detector, RestorableDetector):
            return
        schedule = detector.schedule()
        if schedule is None:
            return
        metrics.set_detector_calibration(schedule.threshold, schedule.calibrated_at)
        if schedule == self._stored_schedule:
            return
        row = {"detector": detector.name, "fit_at": int(schedule.fit_at),
               "calibrated_at": int(schedule.calibrated_at), "threshold": schedule.threshold,
               "updated_at": int(max(schedule.fit_at, schedule.calibrated_at))}
        try:
            await self.run_blocking(self.store.insert, detector_runs.SCHEDULE_TABLE, [row])
        except Exception as exc:  # the next run writes it again
            log.warning("detector schedule not stored", extra={"error": repr(exc)[:300]})
            return
        self._stored_schedule = schedule

    async def _store_run(self, now: float) -> None:
        """Write the run's time once per hour of the detector's clock (what a restart
        catches up from); a failure is logged and retried at the next run, never fatal."""
        if now // CATCH_UP_STEP_S <= self._stored_run // CATCH_UP_STEP_S:
            return
        try:
            await self.run_blocking(self.store.insert, detector_runs.TABLE,
                                    [{"detector": self.detector.name, "run_at": int(now)}])
        except Exception as exc:  # the alerts are stored: the next run writes it again
            log.warning("detector run time not stored", extra={"error": repr(exc)[:300]})
            return
        self._stored_run = now

    async def run(self, now: float | None = None) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            if now is None:  # the clock never goes back (a data clock, read from the store,
                # may stall, or fail while ClickHouse is down: a failed run, not a crash)
                now = self._last_now = max(self._last_now, await self.run_blocking(self.clock))
            if self._restore_due:  # another process (a restart, a leader) may have run since
                stored = await self.run_blocking(self._stored_last_run)
                if stored is not None:
                    self._last_run = max(self._last_run, stored)
                    self._stored_run = max(self._stored_run, stored)
            times = run_times(self._last_run, now)
            if self._restore_due:
                await self._restore(times[0])
            messages: list[dict[str, Any]] = await self.run_blocking(self._run_at, times)
        except Exception:
            self._restore_due = True  # its state may be half-updated: take the stored one back
            metrics.observe_detector_run(time.perf_counter() - started, ok=False)
            log.exception("detector run failed")
            return []
        self._restore_due = True  # until these messages are stored: a failure restores
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
        self._restore_due = False
        self._last_run = max(self._last_run, now)
        await self._store_run(now)
        await self._store_schedule()
        if len(times) > 1:
            log.info("detector caught up", extra={"runs": len(times), "since": times[0],
                                                   "until": now})
        ready = getattr(self.detector, "ready", None)
        metrics.observe_detector_run(time.perf_counter() - started, ok=True, ready=ready)
        return messages
