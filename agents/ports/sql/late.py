"""Queries of the correlator's late path (`agents.late`): the stored incidents a report that
arrives past the allowed lateness may belong to, and what it takes to put them back in state.
"""

from __future__ import annotations

from agents.ports.sql.query import Query

# Incidents with a version whose time span reaches [`lo`, `hi`] (epoch s) and whose centre
# lies in the box [`south`, `north`] x [`west`, `east`] (degrees); at most `limit` ids.
NEAR_INCIDENTS = Query(
    "late.NEAR_INCIDENTS",
    "SELECT DISTINCT incident_id FROM incidents"
    " WHERE first_occurred_at <= toDateTime(%(hi)s) AND last_occurred_at >= toDateTime(%(lo)s)"
    " AND lat >= %(south)s AND lat <= %(north)s AND lon >= %(west)s AND lon <= %(east)s"
    " ORDER BY incident_id LIMIT %(limit)s",
    ("incident_id",),
    "incidents",
)

# The current (highest) version of incidents `ids`: what a state needs besides its members.
_CURRENT_COLUMNS = (
    "incident_id",
    "version",
    "status",
    "report_ids",
    "report_source_kinds",
    "report_source_orgs",
    "updated_at",
    "first_seen_at",
)
CURRENT_VERSIONS = Query(
    "late.CURRENT_VERSIONS",
    f"SELECT {', '.join(_CURRENT_COLUMNS)} FROM incidents FINAL"
    " WHERE incident_id IN %(ids)s ORDER BY incident_id",
    _CURRENT_COLUMNS,
    "incidents",
)

# The enriched reports `ids` (report ids; a report of another source with the same id comes
# too: the caller keeps the identities its incident lists).
_MEMBER_COLUMNS = (
    "report_id",
    "source_kind",
    "source_org",
    "source_channel",
    "category",
    "occurred_at",
    "reported_at",
    "lat",
    "lon",
    "accuracy_m",
    "insee",
    "severity",
    "contact_hash",
    "description_hash",
    "description_len",
    "commune",
    "jurisdiction",
    "precision",
    "h3_r7",
    "h3_r8",
    "h3_r9",
)
MEMBERS = Query(
    "late.MEMBERS",
    f"SELECT {', '.join(_MEMBER_COLUMNS)} FROM reports FINAL"
    " WHERE report_id IN %(ids)s ORDER BY report_id, source_kind, source_org",
    _MEMBER_COLUMNS,
    "reports",
)
