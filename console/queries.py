"""The console's reads of ClickHouse: every query has a time bound and a LIMIT.

User values only ever travel as `%(name)s` parameters (escaped by the store); identifiers
are constants of this module. Current state of versioned tables (incidents, alerts) is
selected with `(id, version) IN (SELECT id, max(version) ...)`, correct on ClickHouse 18.16
(which applies WHERE before FINAL) and chDB alike. Blocking: call through `run_blocking`.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from console.params import Window
from streams.storage.base import Store

PARIS = ZoneInfo("Europe/Paris")
TREND_DAYS = 7
LOOKUP_FLOOR_SECONDS = 400 * 86_400  # point lookups by id still carry a time bound
BREAKDOWN_LIMIT = 30
INCIDENT_COLUMNS = (
    "incident_id, version, status, category, categories, report_count, source_kinds,"
    " first_occurred_at, last_occurred_at, lat, lon, insee, commune, jurisdiction, h3,"
    " precision, confidence, updated_at"
)
ALERT_COLUMNS = (
    "alert_id, version, status, kind, category, center_lat, center_lon, radius_m, cells,"
    " insee, window_start, window_end, observed, expected, score, severity, emitted_at"
)


class Scope:
    """Category / commune / jurisdiction filters rendered for one table."""

    def __init__(
        self,
        category: str | None = None,
        insee: str | None = None,
        jurisdiction: str | None = None,
        jurisdiction_codes: list[str] | None = None,
    ) -> None:
        self.category = category
        self.insee = insee
        self.jurisdiction = jurisdiction
        # communes of the jurisdiction (alerts carry communes, not jurisdictions)
        self.jurisdiction_codes = jurisdiction_codes or []

    def conditions(self, table: str, params: dict[str, Any]) -> list[str]:
        out: list[str] = []
        if self.category:
            out.append("category = %(f_category)s")
            params["f_category"] = self.category
        if self.insee:
            if table == "alerts":
                out.append("has(insee, %(f_insee)s)")
            else:
                out.append("insee = %(f_insee)s")
            params["f_insee"] = self.insee
        if self.jurisdiction:
            if table == "alerts":
                out.append("hasAny(insee, %(f_jur_codes)s)")
                params["f_jur_codes"] = self.jurisdiction_codes or [""]
            else:
                out.append("jurisdiction = %(f_jurisdiction)s")
                params["f_jurisdiction"] = self.jurisdiction
        return out


def _where(conditions: list[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def paris_midnight(epoch: float, days_back: int = 0) -> int:
    local = datetime.fromtimestamp(epoch, PARIS).date() - timedelta(days=days_back)
    return int(datetime(local.year, local.month, local.day, tzinfo=PARIS).timestamp())


# ---- counters ----------------------------------------------------------------------------
def summary(store: Store, scope: Scope, window: Window, now: float | None = None) -> dict[str, Any]:
    """Counters by occurred_at: last hour, today (Paris), 7-day trend, breakdowns in window."""
    now = now if now is not None else time.time()
    upper = int(now) + 1
    today = paris_midnight(now)
    params: dict[str, Any] = {
        "hour": upper - 3600,
        "week": paris_midnight(now, TREND_DAYS - 1),
        "upper": upper,
    }
    conds = [
        "occurred_at >= toDateTime(%(week)s)",
        "occurred_at < toDateTime(%(upper)s)",
        *scope.conditions("reports", params),
    ]
    rows = store.query(
        "SELECT toUInt32(toStartOfDay(occurred_at, 'Europe/Paris')) AS day, count() AS n,"
        " countIf(occurred_at >= toDateTime(%(hour)s)) AS last_hour"
        f" FROM reports FINAL{_where(conds)} GROUP BY day ORDER BY day LIMIT 10",
        params,
    )
    by_day = {int(r["day"]): int(r["n"]) for r in rows}
    trend = []
    for back in range(TREND_DAYS - 1, -1, -1):
        day = paris_midnight(now, back)
        label = datetime.fromtimestamp(day, PARIS).date().isoformat()
        trend.append({"day": label, "n": by_day.get(day, 0)})
    return {
        "now": int(now),
        "last_hour": sum(int(r["last_hour"]) for r in rows),
        "today": by_day.get(today, 0),
        "trend": trend,
        "window": {"since": window.since, "until": window.until},
        "in_window": count_reports(store, scope, window),
        "by_category": _breakdown(store, scope, window, "category", "category"),
        "by_commune": _breakdown(store, scope, window, "ifNull(insee, '')", "insee", "commune"),
        "by_jurisdiction": _breakdown(store, scope, window, "jurisdiction", "jurisdiction"),
        "open_incidents": count_incidents(store, scope, window, "open"),
        "open_alerts": count_open_alerts(store, scope, window),
    }


def _report_conditions(scope: Scope, window: Window, params: dict[str, Any]) -> list[str]:
    params["since"], params["until"] = window.since, window.until
    return [
        "occurred_at >= toDateTime(%(since)s)",
        "occurred_at < toDateTime(%(until)s)",
        *scope.conditions("reports", params),
    ]


def count_reports(store: Store, scope: Scope, window: Window) -> int:
    params: dict[str, Any] = {}
    conds = _report_conditions(scope, window, params)
    rows = store.query(f"SELECT count() AS n FROM reports FINAL{_where(conds)} LIMIT 1", params)
    return int(rows[0]["n"]) if rows else 0


def _breakdown(
    store: Store, scope: Scope, window: Window, expr: str, key: str, label: str | None = None
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {}
    conds = _report_conditions(scope, window, params)
    extra = f", any({label}) AS label" if label else ""
    rows = store.query(
        f"SELECT {expr} AS key{extra}, count() AS n FROM reports FINAL{_where(conds)}"
        f" GROUP BY key ORDER BY n DESC, key LIMIT {BREAKDOWN_LIMIT}",
        params,
    )
    return [
        {key: str(r["key"]), **({label: str(r["label"])} if label else {}), "n": int(r["n"])}
        for r in rows
    ]


# ---- incidents ---------------------------------------------------------------------------
def _incident_conditions(
    scope: Scope, window: Window, status: str, params: dict[str, Any]
) -> list[str]:
    # last_occurred_at never decreases with version: the max version of an incident active
    # in the window is the max version among its rows in the window.
    params["since"], params["until"] = window.since, window.until
    conds = [
        "(incident_id, version) IN (SELECT incident_id, max(version) FROM incidents"
        " WHERE last_occurred_at >= toDateTime(%(since)s)"
        " AND last_occurred_at < toDateTime(%(until)s) GROUP BY incident_id)",
        *scope.conditions("incidents", params),
    ]
    if status != "all":
        conds.append("status = %(status)s")
        params["status"] = status
    return conds


def count_incidents(store: Store, scope: Scope, window: Window, status: str) -> int:
    params: dict[str, Any] = {}
    conds = _incident_conditions(scope, window, status, params)
    rows = store.query(f"SELECT count() AS n FROM incidents FINAL{_where(conds)} LIMIT 1", params)
    return int(rows[0]["n"]) if rows else 0


def list_incidents(
    store: Store, scope: Scope, window: Window, status: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    conds = _incident_conditions(scope, window, status, params)
    return store.query(
        f"SELECT {INCIDENT_COLUMNS} FROM incidents FINAL{_where(conds)}"
        " ORDER BY last_occurred_at DESC, incident_id LIMIT %(offset)s, %(limit)s",
        params,
    )


def map_incidents(
    store: Store, scope: Scope, window: Window, status: str, limit: int
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": limit}
    conds = _incident_conditions(scope, window, status, params)
    return store.query(
        "SELECT incident_id, status, category, report_count, lat, lon, commune, confidence,"
        f" last_occurred_at FROM incidents FINAL{_where(conds)}"
        " ORDER BY last_occurred_at DESC, incident_id LIMIT %(limit)s",
        params,
    )


def get_incident(store: Store, incident_id: str, now: float) -> dict[str, Any] | None:
    rows = store.query(
        f"SELECT {INCIDENT_COLUMNS}, report_ids FROM incidents"
        " WHERE incident_id = %(id)s AND last_occurred_at >= toDateTime(%(floor)s)"
        " ORDER BY version DESC LIMIT 1",
        {"id": incident_id, "floor": int(now - LOOKUP_FLOOR_SECONDS)},
    )
    return rows[0] if rows else None


def incident_reports(
    store: Store, report_ids: list[str], first: int, last: int, limit: int = 100
) -> list[dict[str, Any]]:
    """The merged reports (no personal data: neither hashes nor free text)."""
    if not report_ids:
        return []
    return store.query(
        "SELECT report_id, source_kind, source_org, category, occurred_at, precision, commune"
        " FROM reports FINAL WHERE report_id IN %(ids)s"
        " AND occurred_at >= toDateTime(%(lo)s) AND occurred_at <= toDateTime(%(hi)s)"
        " ORDER BY occurred_at, report_id LIMIT %(limit)s",
        {
            "ids": tuple(report_ids[:limit]),
            "lo": first - 86_400,
            "hi": last + 86_400,
            "limit": limit,
        },
    )


# ---- alerts ------------------------------------------------------------------------------
def _alert_conditions(
    scope: Scope, window: Window, status: str, params: dict[str, Any]
) -> list[str]:
    params["since"], params["until"] = window.since, window.until
    conds = [
        "(alert_id, version) IN (SELECT alert_id, max(version) FROM alerts"
        " WHERE emitted_at >= toDateTime(%(since)s) AND emitted_at < toDateTime(%(until)s)"
        " GROUP BY alert_id)",
        *scope.conditions("alerts", params),
    ]
    if status == "open":
        conds.append("status != 'closed'")
    elif status == "closed":
        conds.append("status = 'closed'")
    return conds


def list_alerts(
    store: Store, scope: Scope, window: Window, status: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    conds = _alert_conditions(scope, window, status, params)
    alerts = store.query(
        f"SELECT {ALERT_COLUMNS} FROM alerts FINAL{_where(conds)}"
        " ORDER BY emitted_at DESC, alert_id LIMIT %(offset)s, %(limit)s",
        params,
    )
    return attach_actions(store, alerts, window.since)


def count_open_alerts(store: Store, scope: Scope, window: Window) -> int:
    params: dict[str, Any] = {}
    conds = _alert_conditions(scope, window, "open", params)
    rows = store.query(f"SELECT count() AS n FROM alerts FINAL{_where(conds)} LIMIT 1", params)
    return int(rows[0]["n"]) if rows else 0


def get_alert(store: Store, alert_id: str, now: float) -> dict[str, Any] | None:
    floor = int(now - LOOKUP_FLOOR_SECONDS)
    rows = store.query(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE alert_id = %(id)s"
        " AND emitted_at >= toDateTime(%(floor)s) ORDER BY version DESC LIMIT 1",
        {"id": alert_id, "floor": floor},
    )
    if not rows:
        return None
    alert = attach_actions(store, rows, floor)[0]
    alert["actions"] = store.query(
        "SELECT action_id, action, comment, operator, role, at FROM alert_actions FINAL"
        " WHERE alert_id = %(id)s AND at >= toDateTime(%(floor)s)"
        " ORDER BY at, action_id LIMIT 100",
        {"id": alert_id, "floor": floor},
    )
    return alert


# Latest action first by time, then (same second) a closure wins over an acknowledgement.
_ACTION_ORDER = "toUInt64(toUInt32(at)) * 2 + (action = 'close')"


def attach_actions(store: Store, alerts: list[dict[str, Any]], since: int) -> list[dict[str, Any]]:
    """Add the operator state (last action, by whom, when) to each alert."""
    if not alerts:
        return alerts
    rows = store.query(
        "SELECT alert_id, argMax(action, k) AS last_action, argMax(operator, k) AS last_operator,"
        " argMax(comment, k) AS last_comment, max(at) AS last_at FROM"
        f" (SELECT *, {_ACTION_ORDER} AS k FROM alert_actions FINAL"
        " WHERE alert_id IN %(ids)s AND at >= toDateTime(%(since)s)) GROUP BY alert_id"
        " LIMIT %(limit)s",
        {"ids": tuple(a["alert_id"] for a in alerts), "since": since, "limit": len(alerts)},
    )
    last = {r["alert_id"]: r for r in rows}
    for alert in alerts:
        action = last.get(alert["alert_id"])
        alert["operator_state"] = (
            {
                "action": action["last_action"],
                "operator": action["last_operator"],
                "comment": action["last_comment"],
                "at": action["last_at"],
            }
            if action
            else None
        )
    return alerts


def insert_action(store: Store, row: dict[str, Any]) -> None:
    store.insert("alert_actions", [row])


# ---- live change detection ---------------------------------------------------------------
def change_signature(store: Store, now: float) -> dict[str, Any]:
    """Cheap fingerprints of recent rows per table (no FINAL): any change → clients refresh."""
    rows = store.query(
        "SELECT"
        " (SELECT count() FROM reports WHERE occurred_at >= toDateTime(%(floor)s)) AS r_n,"
        " (SELECT toUInt32(max(ingested_at)) FROM reports"
        "  WHERE occurred_at >= toDateTime(%(floor)s)) AS r_at,"
        " (SELECT count() FROM incidents WHERE last_occurred_at >= toDateTime(%(floor)s)) AS i_n,"
        " (SELECT sum(version) FROM incidents"
        "  WHERE last_occurred_at >= toDateTime(%(floor)s)) AS i_v,"
        " (SELECT count() FROM alerts WHERE emitted_at >= toDateTime(%(floor)s)) AS a_n,"
        " (SELECT sum(version) FROM alerts WHERE emitted_at >= toDateTime(%(floor)s)) AS a_v,"
        " (SELECT count() FROM alert_actions WHERE at >= toDateTime(%(floor)s)) AS x_n",
        {"floor": paris_midnight(now, TREND_DAYS)},
    )
    row = rows[0]
    return {
        "reports": (int(row["r_n"]), int(row["r_at"])),
        "incidents": (int(row["i_n"]), int(row["i_v"])),
        "alerts": (int(row["a_n"]), int(row["a_v"])),
        "actions": (int(row["x_n"]),),
    }


def recent_alert_versions(store: Store, since: int, limit: int = 500) -> dict[str, int]:
    rows = store.query(
        "SELECT alert_id, max(version) AS v FROM alerts WHERE emitted_at >= toDateTime(%(since)s)"
        " GROUP BY alert_id ORDER BY alert_id LIMIT %(limit)s",
        {"since": since, "limit": limit},
    )
    return {str(r["alert_id"]): int(r["v"]) for r in rows}


def alerts_by_id(store: Store, ids: list[str], since: int) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = store.query(
        f"SELECT {ALERT_COLUMNS} FROM alerts FINAL WHERE"
        " (alert_id, version) IN (SELECT alert_id, max(version) FROM alerts"
        "  WHERE alert_id IN %(ids)s AND emitted_at >= toDateTime(%(since)s) GROUP BY alert_id)"
        " ORDER BY emitted_at DESC, alert_id LIMIT %(limit)s",
        {"ids": tuple(ids), "since": since, "limit": len(ids)},
    )
    return attach_actions(store, rows, since)
