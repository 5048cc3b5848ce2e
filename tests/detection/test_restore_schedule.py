"""A restarted detector takes back its schedule (`DetectorSchedule`: when it last fitted and
calibrated, and its threshold) and then alerts on the threshold an uninterrupted detector has,
refitting and recalibrating when that one does. Recalibrating at its own first run instead
gave another threshold (the calibration depends on the history and the hour it runs at), so
what was alerted live depended on when the worker was killed (`make chaos`)."""

from __future__ import annotations

import math

from agents.core.detection import (
    DetectionConfig,
    DetectorSchedule,
    InMemoryCountStore,
    PoissonScanDetector,
    RestorableDetector,
)
from agents.core.detection.cells import CellIndex
from tests.detection.synthetic import H0, background, universe

HOUR = 3600.0
# a short simulated null keeps the calibrations quick; a 2-day recalibration period puts
# one inside the run below
CONFIG = DetectionConfig(calibration_days=4, recalibrate_every_s=2 * 86400.0)
START = (H0 + 24 * 8) * HOUR  # the first run: 8 days of history (min_history_days 7)
RESTART = (H0 + 24 * 9 + 13) * HOUR + 1200.0  # mid-day, 20 min after a run
END = (H0 + 24 * 12) * HOUR


def world() -> tuple[InMemoryCountStore, CellIndex]:
    index = universe(6)
    return background(index, H0, 24 * 13, seed=11, daily_total=150.0), index


def run(det: PoissonScanDetector, start: float, end: float, step: float = 1800.0
        ) -> list[tuple[float, float, list[dict[str, object]]]]:
    """(time, threshold, messages) of each run from `start` to `end`."""
    out = []
    now = start
    while now < end:
        messages = det.run(now)
        out.append((now, det.threshold, messages))
        now += step
    return out


def test_a_restored_schedule_gives_the_uninterrupted_thresholds_and_alerts() -> None:
    counts, index = world()
    uninterrupted = PoissonScanDetector(counts, index, CONFIG)
    assert isinstance(uninterrupted, RestorableDetector)
    before = run(uninterrupted, START, RESTART)
    schedule = uninterrupted.schedule()
    assert schedule is not None and math.isfinite(schedule.threshold)
    after = run(uninterrupted, RESTART, END)
    calibrations = {t for _, t, _ in before + after}
    assert len(calibrations) >= 2, "no recalibration inside the run: the test shows nothing"

    restarted = PoissonScanDetector(counts, index, CONFIG)  # a new process, same store
    restarted.restore_schedule(schedule)
    assert restarted.schedule() == schedule  # not taken back yet: still the stored one
    resumed = run(restarted, RESTART, END)
    assert [(t, th) for t, th, _ in resumed] == [(t, th) for t, th, _ in after]
    assert [m for _, _, m in resumed] == [m for _, _, m in after]
    assert restarted.schedule() == uninterrupted.schedule()


def test_without_the_schedule_a_restart_recalibrates_to_another_threshold() -> None:
    """What the schedule is for: a detector started mid-week calibrates on its own start."""
    counts, index = world()
    uninterrupted = PoissonScanDetector(counts, index, CONFIG)
    run(uninterrupted, START, RESTART)
    fresh = PoissonScanDetector(counts, index, CONFIG)
    fresh.run(RESTART)
    assert fresh.threshold != uninterrupted.threshold


def test_a_schedule_that_cannot_be_this_stores_is_left_aside() -> None:
    counts, index = world()
    reference = PoissonScanDetector(counts, index, CONFIG)
    reference.run(RESTART)
    for bad in (
        DetectorSchedule(RESTART + 86400.0, RESTART - 60.0, 7.5),  # fitted in the future
        DetectorSchedule(RESTART - 600.0, RESTART + 86400.0, 7.5),  # calibrated in the future
        DetectorSchedule(RESTART - 600.0, RESTART - 600.0, float("nan")),
        DetectorSchedule(RESTART - 600.0, RESTART - 600.0, -1.0),
    ):
        det = PoissonScanDetector(counts, index, CONFIG)
        det.restore_schedule(bad)
        det.run(RESTART)
        assert det.threshold == reference.threshold, bad  # calibrated on its own, as before
        own = det.schedule()
        assert own is not None and own.calibrated_at == RESTART


def test_a_schedule_on_a_history_too_short_is_left_aside() -> None:
    """A fit that was not ready on this store's history (another store's schedule)."""
    counts, index = world()
    early = (H0 + 12) * HOUR  # half a day of history: still learning
    reference = PoissonScanDetector(counts, index, CONFIG)
    det = PoissonScanDetector(counts, index, CONFIG)
    det.restore_schedule(DetectorSchedule(early - 600.0, early - 600.0, 7.5))
    assert det.run(early) == reference.run(early) == []
    own = det.schedule()  # calibrated on its own, as without a stored schedule
    assert own is not None and own.calibrated_at == early and own.threshold != 7.5
    assert det.threshold == reference.threshold


def test_a_fixed_threshold_has_no_schedule() -> None:
    counts, index = world()
    det = PoissonScanDetector(counts, index, CONFIG, fixed_threshold=12.0)
    det.run(RESTART)
    assert det.schedule() is None
