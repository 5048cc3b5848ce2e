"""Queries on `detector_runs`: the time (the detector's clock) of the live detector's last
successful run, written at most once per hour of that clock, so that a restarted detector or
a new leader runs the hours it skipped (`agents.detect.run_times`) instead of jumping to its
first clock reading."""

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
