"""The console's audit trail: `audit_events` (refused authentications and operator actions)
and the look-up that keeps `alert_actions` append-only.

`alert_actions` is a ReplacingMergeTree ordered by `action_id`: a second row with the same
id would replace the first on merge, i.e. rewrite the history of an alert. The console
therefore reads every stored row of an action id (`ACTION_BY_ID`) before it inserts one, and
refuses a different content under a known id.
"""

from __future__ import annotations

from agents.ports.sql.query import Query

TABLE = "audit_events"
ACTIONS_TABLE = "alert_actions"

# Every stored row of action `id`, oldest first. No FINAL: rows a merge has not folded yet
# must all be seen. No time bound: `action_id` is the table's primary key (an index look-up),
# and an old action must stay protected however old it is.
ACTION_BY_ID = Query(
    "audit.ACTION_BY_ID",
    "SELECT action_id, alert_id, action, comment, operator, role, at FROM alert_actions"
    " WHERE action_id = %(id)s ORDER BY at LIMIT 10",
    ("action_id", "alert_id", "action", "comment", "operator", "role", "at"),
    ACTIONS_TABLE,
)
