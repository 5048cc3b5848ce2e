"""The worker's calibrations in a child process (`streams.calibration_process`): the same
threshold as in the worker's own thread, and every way the child can fail ends in a
`CalibrationFailed` with no child left behind."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import pytest

from agents.core.detection import (
    CalibrationJob,
    DetectionConfig,
    InThreadCalibrator,
    PoissonScanDetector,
    run_calibration,
)
from agents.core.detection.counts import CountRow
from agents.detect import ClickHouseCountStore
from agents.ports.store import Store
from streams.calibration_process import CalibrationFailed, ProcessCalibrator
from streams.storage import open_store
from tests.detection.synthetic import H0, background, universe
from tests.infra.clickhouse import ClickHouseServer


def _job() -> tuple[PoissonScanDetector, CalibrationJob]:
    index = universe(6)
    store = background(index, H0, 24 * 16, seed=3)
    det = PoissonScanDetector(store, index, DetectionConfig(calibration_days=4))
    now = (H0 + 24 * 14) * 3600.0
    det.refit(now)
    return det, det.calibration_job(now)


class _DiesWhenLoaded:
    """Unpickled in the child, ends it at once (as a kill or a crash would)."""

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (os._exit, (3,))


class _HangsWhenLoaded:
    """Unpickled in the child, keeps it busy far past the calibrator's timeout."""

    def __reduce__(self) -> tuple[Any, tuple[float]]:
        return (time.sleep, (60.0,))


def test_child_gives_the_threshold_the_worker_thread_gives() -> None:
    _, job = _job()
    here = run_calibration(job)
    there = ProcessCalibrator(timeout_s=120.0)(job)
    assert there == here
    assert there.observed_daily_max  # the history's days were read, not the null alone


def test_detector_with_process_calibrator_alerts_on_the_same_threshold() -> None:
    det, _ = _job()
    now = (H0 + 24 * 14) * 3600.0
    other = PoissonScanDetector(det.store, det.index, det.config,
                                calibrator=ProcessCalibrator(timeout_s=120.0))
    assert other.calibrate(now).threshold == det.calibrate(now).threshold
    assert other.threshold == det.threshold


def test_error_in_child_is_a_calibration_failure_naming_it() -> None:
    _, job = _job()
    broken = replace(job, config=replace(job.config, windows=()))  # max() of nothing
    with pytest.raises(CalibrationFailed, match="ValueError"):
        ProcessCalibrator(timeout_s=120.0)(broken)
    assert not multiprocessing.active_children()


def test_child_that_dies_is_a_calibration_failure() -> None:
    _, job = _job()
    dying = replace(job, stats=_DiesWhenLoaded())  # type: ignore[arg-type]
    with pytest.raises(CalibrationFailed, match=r"without an answer.*exit code 3"):
        ProcessCalibrator(timeout_s=120.0)(dying)
    assert not multiprocessing.active_children()


def test_child_that_does_not_answer_is_killed() -> None:
    _, job = _job()
    hanging = replace(job, stats=_HangsWhenLoaded())  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(CalibrationFailed, match="no answer in 2 s"):
        ProcessCalibrator(timeout_s=2.0)(hanging)
    assert time.monotonic() - started < 30.0
    assert not multiprocessing.active_children()  # killed and reaped


def test_failed_calibration_leaves_the_detector_to_calibrate_at_its_next_run() -> None:
    det, _ = _job()
    now = (H0 + 24 * 14) * 3600.0
    calls: list[int] = []

    def flaky(j: CalibrationJob) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise CalibrationFailed("first one lost")
        return run_calibration(j)

    other = PoissonScanDetector(det.store, det.index, det.config,
                                calibrator=InThreadCalibrator(flaky))
    with pytest.raises(CalibrationFailed):
        other.run(now)
    assert other.schedule() is None  # nothing calibrated, nothing to store
    other.run(now + 300.0)
    assert len(calls) == 2 and other.schedule() is not None
    assert other.threshold == run_calibration(other.calibration_job(now + 300.0)).threshold


def test_spawned_child_finds_the_package_where_the_worker_did(tmp_path: Any) -> None:
    """`vigie worker` finds the package through the editable install's import hook, not on
    sys.path. With the compiled build active, a `spawn` child given the worker's sys.path
    found `build/native/agents` first (no `__init__`: a namespace) and could not import the
    rest of the package: every calibration of `make run` failed. Run as the worker is: from
    another directory, no PYTHONPATH."""
    code = (
        "import importlib, multiprocessing\n"
        "import agents.core.correlation\n"
        "from agents.core import native\n"
        "ctx = multiprocessing.get_context('spawn')\n"
        "p = ctx.Process(target=importlib.import_module, args=('agents.core.detection',))\n"
        "p.start(); p.join(120)\n"
        "print(native.STATUS.mode.value, p.exitcode)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIGIE_NATIVE")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=180)
    if "No module named 'agents'" in out.stderr:
        pytest.skip("the package is not installed: importable from its tree only")
    assert out.returncode == 0, out.stderr[-2000:]
    mode, exitcode = out.stdout.split()
    if mode != "native":
        pytest.skip("no fresh compiled build: nothing in front of the package")
    assert exitcode == "0"


class _CountedReads(ClickHouseCountStore):
    """The live counts, recording the windows read by row in this process."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.row_reads: list[tuple[int, int]] = []

    def window_counts(self, start_hour: int, end_hour: int) -> list[CountRow]:
        self.row_reads.append((start_hour, end_hour))
        return super().window_counts(start_hour, end_hour)


def test_a_child_with_the_store_url_reads_the_history_rows_itself(
    clickhouse_server: ClickHouseServer,
) -> None:
    url = clickhouse_server.url_for(f"vigie_calibration_{os.getpid()}")
    store = open_store(url)
    store.ensure_schema()
    try:
        index = universe(6)
        counts = background(index, H0, 24 * 16, seed=3, daily_total=120.0)
        incidents = [
            {"incident_id": f"{cell}-{category}-{hour}-{i}", "version": 1, "status": "open",
             "category": category, "first_occurred_at": hour * 3600.0,
             "last_occurred_at": hour * 3600.0, "first_seen_at": hour * 3600.0 + 60,
             "h3_r8": cell, "precision": "point", "insee": "91228"}
            for cell, category, hour, n in counts.window_counts(H0, H0 + 24 * 16)
            for i in range(n)
        ]
        store.insert("incidents", incidents)
        config = DetectionConfig(calibration_days=4)
        now = (H0 + 24 * 14) * 3600.0
        in_thread = PoissonScanDetector(ClickHouseCountStore(store), index, config)
        reads = _CountedReads(store)
        in_child = PoissonScanDetector(
            reads, index, config,
            calibrator=ProcessCalibrator(timeout_s=120.0, history_url=url))
        want = in_thread.calibrate(now)
        got = in_child.calibrate(now)
        assert got == want and got.observed_daily_max  # the history's days, read there
        assert reads.row_reads == []  # fitted from totals, calibrated on rows read there
        assert in_child.calibration_job(now).history is None
        # without the URL, the worker reads the fit window's rows and hands them over
        worker_reads = _CountedReads(store)
        handing = PoissonScanDetector(worker_reads, index, config,
                                      calibrator=ProcessCalibrator(timeout_s=120.0))
        handing.refit(now)
        job = handing.calibration_job(now)
        assert job.stats is not None and job.history
        assert worker_reads.row_reads == [(job.stats.start_hour, job.stats.end_hour)]
        with pytest.raises(ValueError, match="no history rows"):
            run_calibration(replace(job, history=None))
    finally:
        store.close()
