"""Queries of the territorial diagnostic (`agents.core.diagnostic`): aggregates of
`incident_hours` (each incident once, in the hour it was first reported, with the category
and commune of its latest version), `reports` (who reports, chronic places) and `alerts`.

Parameters: `codes` (a tuple of INSEE codes: the territory), `start` (the start of the
previous period, UTC epoch s), `mid` (the start of the period), `end` (its end, exclusive).
Weeks are 7-day blocks counted from `start`. Paris local time for hours of week and slots.
"""

from __future__ import annotations

from agents.ports.sql.query import Query

# `incident_hours` is read with FINAL: its versions of an incident share their sorting key
# (hour, incident_id), so FINAL keeps the latest one. Only conditions on that key go to WHERE
# (ClickHouse 18.16 applies WHERE before FINAL, see `query.latest`; a filter on the key keeps
# or drops every version of an incident alike); conditions on what a version may change
# (commune, category, place) are inside the aggregates (`countIf`), evaluated after FINAL.
_WINDOW = "hour >= toDateTime(%(start)s) AND hour < toDateTime(%(end)s)"
# Incidents with some version in the territory (the others cannot count for it).
_CANDIDATES = (
    f"incident_id IN (SELECT incident_id FROM incident_hours WHERE {_WINDOW}"
    " AND insee IN %(codes)s)"
)
_INSIDE = "insee IN %(codes)s"
# Incidents of the period per commune (every commune: the comparisons with the département
# and the communes of the same size) and category.
BY_COMMUNE = Query(
    "diagnostic.BY_COMMUNE",
    "SELECT insee, category, count() AS n FROM incident_hours FINAL"
    " WHERE hour >= toDateTime(%(mid)s) AND hour < toDateTime(%(end)s)"
    " GROUP BY insee, category ORDER BY insee, category",
    ("insee", "category", "n"),
    "incident_hours",
)

# Paris local time of the first-seen hour, its weekday (0 = Monday) and hour.
_LOCAL = "toTimeZone(hour, 'Europe/Paris')"
_WEEKDAY = f"(toDayOfWeek({_LOCAL}) - 1)"
_HOUR = f"toHour({_LOCAL})"

# Territory incidents per category and week (0 = the week starting at `start`).
WEEKLY = Query(
    "diagnostic.WEEKLY",
    "SELECT category, intDiv(toUInt32(hour) - %(start)s, 604800) AS week,"
    f" countIf({_INSIDE}) AS n"
    f" FROM incident_hours FINAL WHERE {_WINDOW} AND {_CANDIDATES}"
    " GROUP BY category, week HAVING n > 0 ORDER BY category, week",
    ("category", "week", "n"),
    "incident_hours",
)

# Territory incidents of the period per category and Paris hour of week (Monday 0 h = 0).
HOUR_OF_WEEK = Query(
    "diagnostic.HOUR_OF_WEEK",
    f"SELECT category, {_WEEKDAY} * 24 + {_HOUR} AS how, countIf({_INSIDE}) AS n"
    f" FROM incident_hours FINAL WHERE {_WINDOW} AND {_CANDIDATES}"
    " AND hour >= toDateTime(%(mid)s)"
    " GROUP BY category, how HAVING n > 0 ORDER BY category, how",
    ("category", "how", "n"),
    "incident_hours",
)

# Located territory incidents of the period (with a place of their own, not only their
# commune's) per place (H3 r8) and Paris time slot (weekday x 4-hour block), for the
# "présence dynamique".
_LOCATED = f"{_INSIDE} AND h3_r8 != '' AND precision != 'commune'"
SLOTS = Query(
    "diagnostic.SLOTS",
    f"SELECT h3_r8 AS cell, anyIf(commune, {_LOCATED}) AS commune,"
    f" {_WEEKDAY} * 6 + intDiv({_HOUR}, 4) AS slot, countIf({_LOCATED}) AS n"
    f" FROM incident_hours FINAL WHERE {_WINDOW} AND {_CANDIDATES}"
    " AND hour >= toDateTime(%(mid)s)"
    " GROUP BY cell, slot HAVING n > 0 ORDER BY cell, slot",
    ("cell", "commune", "slot", "n"),
    "incident_hours",
)

# `reports` is counted by identity (source, id: `uniqExact`) rather than read with FINAL:
# a re-delivered report is the same row again, and FINAL would merge the whole table.
# Territory reports of the period per source kind, with the number of distinct sources.
SOURCES = Query(
    "diagnostic.SOURCES",
    "SELECT source_kind AS kind, uniqExact(source_org, report_id) AS n,"
    " uniqExact(source_org) AS orgs FROM reports"
    " WHERE occurred_at >= toDateTime(%(mid)s) AND occurred_at < toDateTime(%(end)s)"
    " AND insee IN %(codes)s"
    " GROUP BY kind ORDER BY n DESC, kind",
    ("kind", "n", "orgs"),
    "reports",
)

# Places (H3 r9) of the territory with located reports of `categories` on at least
# `min_days` distinct days of the period (noon-to-noon UTC days, as the correlation's place
# memory counts them), most days first, at most `limit`.
CHRONIC_PLACES = Query(
    "diagnostic.CHRONIC_PLACES",
    "SELECT h3_r9 AS cell, any(commune) AS commune,"
    " uniqExact(intDiv(toUInt32(occurred_at) - 43200, 86400)) AS days,"
    " uniqExact(source_kind, source_org, report_id) AS reports,"
    " avg(ifNull(lat, 0)) AS lat, avg(ifNull(lon, 0)) AS lon"
    " FROM reports"
    " WHERE occurred_at >= toDateTime(%(mid)s) AND occurred_at < toDateTime(%(end)s)"
    " AND insee IN %(codes)s AND category IN %(categories)s AND precision != 'commune'"
    " AND h3_r9 != ''"
    " GROUP BY cell HAVING days >= %(min_days)s"
    " ORDER BY days DESC, reports DESC, cell LIMIT %(limit)s",
    ("cell", "commune", "days", "reports", "lat", "lon"),
    "reports",
)

# The current version of the alerts emitted in the period that touch the territory, last
# emitted first, at most `limit`.
ALERTS = Query(
    "diagnostic.ALERTS",
    "SELECT alert_id, category, status, severity, observed, expected,"
    " toUInt32(window_start) AS window_start, toUInt32(emitted_at) AS emitted_at"
    " FROM alerts FINAL WHERE (alert_id, version) IN (SELECT alert_id, max(version)"
    " FROM alerts WHERE emitted_at >= toDateTime(%(mid)s) AND emitted_at < toDateTime(%(end)s)"
    " GROUP BY alert_id) AND hasAny(insee, %(codes_list)s)"
    " ORDER BY emitted_at DESC, alert_id LIMIT %(limit)s",
    (
        "alert_id",
        "category",
        "status",
        "severity",
        "observed",
        "expected",
        "window_start",
        "emitted_at",
    ),
    "alerts",
)
