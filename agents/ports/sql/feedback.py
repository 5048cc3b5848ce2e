"""Tables and queries of the feedback to reporters (`agents.core.feedback`): `report_feedback`
(one row per report and status transition) and `incident_actions` (operators' and
partners' acknowledgements and closures of incidents, append-only).

`report_feedback` is a ReplacingMergeTree keyed by the report's identity and the status: a
replay writes the same row again (same `feedback_id`, same `payload`), which `FINAL` folds,
so the table holds exactly one row per transition. `recorded_at` is the wall clock of the
write (a replay's row may carry a later one: `SHARE` takes the earliest of them).
"""

from __future__ import annotations

from agents.ports.sql.query import LOOKUP_SETTINGS, Query

TABLE = "report_feedback"
ACTIONS_TABLE = "incident_actions"

STATEMENTS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS {db}.report_feedback (
        feedback_id String,
        source_kind String,
        source_org String,
        report_id String,
        status String,
        at DateTime('UTC'),
        reason String,
        incident_id String,
        other_reports Int32,
        outcome String,
        payload String,
        recorded_at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree()
    ORDER BY (report_id, source_kind, source_org, status)
    """
    + LOOKUP_SETTINGS,
    # action: 'pris_en_compte' | 'clos' (with `outcome`); `org`: a partner's organisation
    # ('' for an operator); `comment`: the operator's note, never sent to reporters.
    """
    CREATE TABLE IF NOT EXISTS {db}.incident_actions (
        action_id String,
        incident_id String,
        action String,
        outcome String,
        comment String,
        operator String,
        role String,
        org String,
        at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree()
    ORDER BY action_id
    """,
]

_COLUMNS = (
    "feedback_id",
    "source_kind",
    "source_org",
    "report_id",
    "status",
    "at",
    "reason",
    "incident_id",
    "other_reports",
    "outcome",
    "payload",
    "recorded_at",
)

# Every transition of the reports with id `id` (any source), oldest first.
OF_REPORT = Query(
    "feedback.OF_REPORT",
    f"SELECT {', '.join(_COLUMNS)} FROM report_feedback FINAL WHERE report_id = %(id)s"
    " ORDER BY at, status LIMIT 100",
    _COLUMNS,
    TABLE,
)

# The transitions already recorded with status in `statuses` (a tuple) of the reports with
# an id in `ids` (a tuple; the caller keeps the identities it asked about).
RECORDED = Query(
    "feedback.RECORDED",
    "SELECT DISTINCT source_kind, source_org, report_id, status FROM report_feedback"
    " WHERE report_id IN %(ids)s AND status IN %(statuses)s",
    ("source_kind", "source_org", "report_id", "status"),
    TABLE,
)

# The transitions already recorded, by `feedback_id`, with status in `statuses` (a tuple) of
# the reports with an id in `ids` (a tuple): the narrow first step of a payload look-up.
STORED_IDS = Query(
    "feedback.STORED_IDS",
    "SELECT DISTINCT feedback_id FROM report_feedback"
    " WHERE report_id IN %(ids)s AND status IN %(statuses)s",
    ("feedback_id",),
    TABLE,
)

# The stored payload of the transitions `fids` (a tuple of `feedback_id`, found by
# `STORED_IDS`) of the reports with an id in `ids` (a tuple): a transition sent again is
# sent as first recorded. The payload is the widest column and ClickHouse reads the whole
# granules a look-up by id touches (`LOOKUP_SETTINGS`): asked for every batch, it was the
# server's largest read, growing with the table (about 1.3 to 3.9 GB a minute over an
# 8-minute soak at the département's density), for transitions that were nearly all new.
PAYLOADS = Query(
    "feedback.PAYLOADS",
    "SELECT DISTINCT feedback_id, payload FROM report_feedback"
    " WHERE report_id IN %(ids)s AND feedback_id IN %(fids)s",
    ("feedback_id", "payload"),
    TABLE,
)

# Of the reports taken in (`recu`) since `since` (epoch s), how many had the window behind
# them (`n_1h`: taken in before `upper_1h`; `n_24h`: before `upper_24h`) and how many of
# those got a feedback beyond `recu` (attached, acknowledged or closed) within 1 h / 24 h
# of being taken in (wall clock of the writes, the earliest row of each).
SHARE = Query(
    "feedback.SHARE",
    "SELECT countIf(r <= %(upper_1h)s) AS n_1h,"
    " countIf(r <= %(upper_1h)s AND f > 0 AND f - r <= 3600) AS within_1h,"
    " countIf(r <= %(upper_24h)s) AS n_24h,"
    " countIf(r <= %(upper_24h)s AND f > 0 AND f - r <= 86400) AS within_24h"
    " FROM (SELECT source_kind, source_org, report_id,"
    " minIf(toUInt32(recorded_at), status = 'recu') AS r,"
    " minIf(toUInt32(recorded_at), status IN ('rattache', 'pris_en_compte', 'clos')) AS f,"
    " countIf(status = 'recu') AS has_r"
    " FROM report_feedback WHERE recorded_at >= toDateTime(%(since)s)"
    " GROUP BY source_kind, source_org, report_id)"
    " WHERE has_r > 0 AND r >= %(since)s",
    ("n_1h", "within_1h", "n_24h", "within_24h"),
    TABLE,
)

_ACTION_COLUMNS = (
    "action_id",
    "incident_id",
    "action",
    "outcome",
    "comment",
    "operator",
    "role",
    "org",
    "at",
)

# The actions on incident `id`, oldest first (at most 100).
ACTIONS_OF_INCIDENT = Query(
    "feedback.ACTIONS_OF_INCIDENT",
    f"SELECT {', '.join(_ACTION_COLUMNS)} FROM incident_actions FINAL"
    " WHERE incident_id = %(id)s ORDER BY at, action_id LIMIT 100",
    _ACTION_COLUMNS,
    ACTIONS_TABLE,
)

# The action recorded under `action_id` (none or one row).
ACTION = Query(
    "feedback.ACTION",
    f"SELECT {', '.join(_ACTION_COLUMNS)} FROM incident_actions FINAL"
    " WHERE action_id = %(action_id)s",
    _ACTION_COLUMNS,
    ACTIONS_TABLE,
)
