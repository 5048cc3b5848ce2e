"""The live detector's threshold calibrations, computed in a child process.

A calibration (`agents.core.detection.run_calibration`) scans every day of the history and
simulates the null's days: seconds of CPU in pure Python and numpy, at the detector's first
ready run and then once a week (`DetectionConfig.recalibrate_every_s`). On the detector's
thread it held the interpreter lock in short turns for all that time, so the event loop that
serves reports waited (issue #22: in a stream-time soak at 200 reports/s the minute of the
first calibration had a p99 of 1.0 s against 0.4 s around it), and the memory it took stayed
with the worker (RSS +290 MiB at that minute, kept).

`ProcessCalibrator` is the worker's `Calibrator`: each calibration runs in a fresh child
process (the `spawn` start method: no copy of the worker's threads, locks or sockets), at a
lower CPU priority (`CHILD_NICENESS`) so that on a machine short of cores the worker's own
stages come first; the child exits when it is done, and its memory goes with it. The
detector's thread waits for the answer without holding the lock. The result is the one
`run_calibration` gives in the worker (same inputs, same seeds).

With `history_url` (a ClickHouse server's URL: the worker's store), the child also reads
the history's rows itself (`reads_history`): the detector, fitted from the store's totals,
hands over a job without them, and the worker neither reads nor copies the fit window's
hundreds of thousands of (cell, category, hour) rows (in a dense stream, half a second of
the interpreter and as many objects for its garbage collector). An embedded chDB store
cannot be opened by a second process: the worker reads the rows then.

Faults: an exception in the child comes back as `CalibrationFailed` with its type and text;
a child that dies without answering, or has not answered after `timeout_s`, is killed (by
its own PID: it is this process's child) and the calibration fails the same way. A failed
calibration fails the detector's run: the detector processor takes the stored state back
and the next run calibrates again (`agents.detect`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from agents.core.detection import Calibration, CalibrationJob, run_calibration
from agents.core.detection.counts import CountRow
from agents.detect import ClickHouseCountStore
from streams.storage import open_store

log = logging.getLogger(__name__)

# niceness added to the child: the worker's stages (ingest, correlation, delivery) first
CHILD_NICENESS = 10
# a calibration of 56 days of a dense history takes about a minute on one core: ten times
# that is a child that will not answer
DEFAULT_TIMEOUT_S = 600.0


class CalibrationFailed(RuntimeError):
    """The child process did not give a calibration (its error, its death, or a timeout)."""


def _child(conn: Connection, job: CalibrationJob, niceness: int, url: str | None) -> None:
    """The child's body: compute the calibration and send it back (or the error)."""
    try:
        if niceness:
            os.nice(niceness)
        if job.history is None and url is not None:
            job = replace(job, history=read_history(url, job))
        answer: tuple[str, Any] = ("ok", run_calibration(job))
    except BaseException as exc:  # everything goes back to the parent
        answer = ("error", f"{type(exc).__name__}: {exc}"[:500])
    try:
        conn.send(answer)
    finally:
        conn.close()


def read_history(url: str, job: CalibrationJob) -> list[CountRow]:
    """The rows of the job's fit window, read from the store at `url` (live counts)."""
    if job.stats is None:
        return []
    store = open_store(url)
    try:
        return ClickHouseCountStore(store).window_counts(job.stats.start_hour,
                                                         job.stats.end_hour)
    finally:
        store.close()


class ProcessCalibrator:
    """`Calibrator` computing each calibration in a fresh child process (module docstring);
    with `history_url`, the child reads the history's rows from that store."""

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 niceness: int = CHILD_NICENESS, history_url: str | None = None) -> None:
        self.timeout_s = timeout_s
        self.niceness = niceness
        self.history_url = history_url
        self._context = multiprocessing.get_context("spawn")

    @property
    def reads_history(self) -> bool:
        """The child reads the history's rows itself (`Calibrator`'s `reads_history`)."""
        return self.history_url is not None

    def __call__(self, job: CalibrationJob) -> Calibration:
        started = time.monotonic()
        receive, send = self._context.Pipe(duplex=False)
        child = self._context.Process(
            target=_child, args=(send, job, self.niceness, self.history_url),
            name="vigie-calibration",
            daemon=True,
        )
        child.start()
        send.close()  # the child holds its end: a dead child is an end of file here
        try:
            answer = self._wait(receive, child)
        finally:
            receive.close()
            self._stop(child)
        status, value = answer
        if status != "ok" or not isinstance(value, Calibration):
            raise CalibrationFailed(f"calibration failed in its process: {value}")
        log.info("calibration computed in a child process", extra={
            "threshold": value.threshold, "seconds": round(time.monotonic() - started, 2)})
        return value

    def _wait(self, receive: Connection, child: Any) -> tuple[str, Any]:
        if not receive.poll(self.timeout_s):
            raise CalibrationFailed(
                f"calibration process (pid {child.pid}) gave no answer in {self.timeout_s:g} s")
        try:
            answer = receive.recv()
        except EOFError:  # it died before it answered
            child.join(5.0)
            raise CalibrationFailed(
                f"calibration process (pid {child.pid}) ended without an answer"
                f" (exit code {child.exitcode})") from None
        if not (isinstance(answer, tuple) and len(answer) == 2):
            raise CalibrationFailed("calibration process gave an answer of another shape")
        return answer

    @staticmethod
    def _stop(child: Any) -> None:
        """Reap the child; kill it (our own child, by its PID) when it has not ended."""
        child.join(5.0)
        if child.is_alive():
            child.kill()
            child.join(5.0)
        child.close()
