"""Queries on `incident_hours` (one row per incident version, kept from `incidents` by a
materialized view, ReplacingMergeTree(version)): each incident once, in the hour it was
first reported, with the category and place of its latest version. Read by the live
detector and by Grafana."""

from __future__ import annotations

from agents.ports.sql.query import Query

TABLE = "incident_hours"

# The live detector's counts for a window (what `IncidentCounter` counts in a backtest): each
# incident once, in the hour it was first seen (`first_seen_at`, the founding report's
# reported_at, the same in every version), with the cell and category of its latest
# version, located incidents only (not `precision` "commune", see `incident_cell`).
# Unmerged versions are resolved with argMax. Parameters `start`, `end`: UTC epoch seconds,
# hour-aligned, start inclusive, end exclusive. `hour` is the hour bucket
# `floor(epoch_seconds / 3600)`.
_LIVE_INCIDENTS = """
(
    SELECT
        incident_id,
        any(hour) AS seen,
        argMax(category, version) AS category,
        argMax(h3_r8, version) AS h3_r8,
        argMax(precision, version) AS precision
    FROM incident_hours
    WHERE hour >= toDateTime(%(start)s) AND hour < toDateTime(%(end)s)
    GROUP BY incident_id
)
WHERE h3_r8 != '' AND precision != 'commune'
"""

LIVE_COUNTS = Query(
    "incident_hours.LIVE_COUNTS",
    f"""
SELECT h3_r8, category, intDiv(toUInt32(seen), 3600) AS hour, count() AS n
FROM {_LIVE_INCIDENTS}
GROUP BY h3_r8, category, hour
ORDER BY hour, h3_r8, category
""",
    ("h3_r8", "category", "hour", "n"),
    TABLE,
)

# The same counts summed over the window's hours per (cell, category), and over its cells per
# (category, hour): what the detector's baseline fit reads (`HistoryStats.from_totals`), a
# few rows per cell and per hour where LIVE_COUNTS gives one per (cell, category, hour) of
# weeks of history. Same parameters.
def _live_totals(name: str, keys: tuple[str, str], order: str) -> Query:
    """The live counts summed over everything but `keys` (columns of `_LIVE_INCIDENTS`;
    "hour" is the first-seen hour bucket)."""
    select = ", ".join("intDiv(toUInt32(seen), 3600) AS hour" if k == "hour" else k for k in keys)
    return Query(
        f"incident_hours.{name}",
        f"SELECT {select}, count() AS n\nFROM {_LIVE_INCIDENTS}"
        f"GROUP BY {', '.join(keys)}\nORDER BY {order}\n",
        (*keys, "n"),
        TABLE,
    )


LIVE_CELL_TOTALS = _live_totals("LIVE_CELL_TOTALS", ("h3_r8", "category"), "h3_r8, category")
LIVE_HOUR_TOTALS = _live_totals("LIVE_HOUR_TOTALS", ("category", "hour"), "hour, category")

# The Grafana panels (operations dashboard, "Incidents by place"). They take the Grafana
# ClickHouse plugin's macro `$__timeFilter(hour)` (the dashboard's time range) instead of
# parameters; FINAL keeps the latest version of each incident.
GRAFANA_NEW_PER_HOUR = Query(
    "incident_hours.GRAFANA_NEW_PER_HOUR",
    """
        SELECT hour AS time, category, count() AS incidents
        FROM incident_hours FINAL
        WHERE $__timeFilter(hour)
        GROUP BY time, category
        ORDER BY time, category
        """,
    ("time", "category", "incidents"),
    TABLE,
)

GRAFANA_NEW_BY_COMMUNE = Query(
    "incident_hours.GRAFANA_NEW_BY_COMMUNE",
    """
        SELECT commune, insee, count() AS incidents
        FROM incident_hours FINAL
        WHERE $__timeFilter(hour)
        GROUP BY commune, insee
        ORDER BY incidents DESC, insee
        LIMIT 30
        """,
    ("commune", "insee", "incidents"),
    TABLE,
)

GRAFANA_NEW_BY_JURISDICTION = Query(
    "incident_hours.GRAFANA_NEW_BY_JURISDICTION",
    """
        SELECT if(jurisdiction = '', '(none)', jurisdiction) AS jurisdiction,
            count() AS incidents
        FROM incident_hours FINAL
        WHERE $__timeFilter(hour)
        GROUP BY jurisdiction
        ORDER BY incidents DESC, jurisdiction
        LIMIT 30
        """,
    ("jurisdiction", "incidents"),
    TABLE,
)

# Cells of the detector; incidents known only by their commune are left out, as by it.
GRAFANA_BUSIEST_CELLS = Query(
    "incident_hours.GRAFANA_BUSIEST_CELLS",
    """
        SELECT h3_r8 AS cell, category, any(commune) AS commune, count() AS incidents
        FROM incident_hours FINAL
        WHERE $__timeFilter(hour) AND h3_r8 != '' AND precision != 'commune'
        GROUP BY cell, category
        ORDER BY incidents DESC, cell, category
        LIMIT 30
        """,
    ("cell", "category", "commune", "incidents"),
    TABLE,
)
