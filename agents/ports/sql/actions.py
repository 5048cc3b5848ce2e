"""Queries on `alert_actions` (operator acknowledgements and closures of alerts)."""

from __future__ import annotations

from agents.ports.sql.query import Query

TABLE = "alert_actions"

# The actions on alert `id` since `floor`, oldest first (at most 100).
OF_ALERT = Query(
    "actions.OF_ALERT",
    "SELECT action_id, action, comment, operator, role, at FROM alert_actions FINAL"
    " WHERE alert_id = %(id)s AND at >= toDateTime(%(floor)s)"
    " ORDER BY at, action_id LIMIT 100",
    ("action_id", "action", "comment", "operator", "role", "at"),
    TABLE,
)

# Latest action first by time, then (same second) a closure wins over an acknowledgement.
_ACTION_ORDER = "toUInt64(toUInt32(at)) * 2 + (action = 'close')"

# The last action (what, by whom, comment, when) on each alert of `ids` (a tuple) since
# `since`, at most `limit` alerts.
LAST_PER_ALERT = Query(
    "actions.LAST_PER_ALERT",
    "SELECT alert_id, argMax(action, k) AS last_action, argMax(operator, k) AS last_operator,"
    " argMax(comment, k) AS last_comment, max(at) AS last_at FROM"
    f" (SELECT *, {_ACTION_ORDER} AS k FROM alert_actions FINAL"
    " WHERE alert_id IN %(ids)s AND at >= toDateTime(%(since)s)) GROUP BY alert_id"
    " LIMIT %(limit)s",
    ("alert_id", "last_action", "last_operator", "last_comment", "last_at"),
    TABLE,
)
