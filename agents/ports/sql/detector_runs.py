"""Queries on the live detector's own state, so that a restarted detector or a new leader goes
on as an uninterrupted one would:

- `detector_runs`: the time (the detector's clock) of its last successful run, written at
  most once per hour of that clock: it runs the hours it skipped (`agents.detect.run_times`)
  instead of jumping to its first clock reading;
- `detector_schedules`: when it last fitted its baseline and calibrated its threshold, and
  that threshold (`agents.core.detection.DetectorSchedule`), written when they change: it
  refits and recalibrates at the same times, with the same threshold meanwhile."""

from __future__ import annotations

from agents.ports.sql.query import Query

TABLE = "detector_runs"

# The last stored run time (epoch seconds) of detector `detector`; `n` = 0 when none.
LAST_RUN = Query(
    "detector_runs.LAST_RUN",
    "SELECT count() AS n, toUInt32(max(run_at)) AS last FROM detector_runs"
    " WHERE detector = %(detector)s",
    ("n", "last"),
    TABLE,
)

SCHEDULE_TABLE = "detector_schedules"

# The latest stored schedule of detector `detector` (times in epoch seconds); no row when none.
SCHEDULE = Query(
    "detector_runs.SCHEDULE",
    "SELECT toUInt32(fit_at) AS fit_at, toUInt32(calibrated_at) AS calibrated_at, threshold"
    " FROM detector_schedules WHERE detector = %(detector)s"
    " ORDER BY updated_at DESC, calibrated_at DESC LIMIT 1",
    ("fit_at", "calibrated_at", "threshold"),
    SCHEDULE_TABLE,
)
