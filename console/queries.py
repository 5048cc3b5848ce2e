"""The console's reads of ClickHouse: every query has a time bound and a LIMIT.

The SQL is in `agents.ports.sql` (the named queries per table); this module computes their
parameters (time bounds, pages) and shapes the rows. User values only ever travel as
`%(name)s` parameters (escaped by the store). Blocking: call through `run_blocking`.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agents.ports.sql import actions, alerts, changes, feedback, incidents, reports
from agents.ports.sql.scope import Scope
from agents.ports.store import Store
from console.params import Window

PARIS = ZoneInfo("Europe/Paris")
TREND_DAYS = 7
LOOKUP_FLOOR_SECONDS = 400 * 86_400  # point lookups by id still carry a time bound
BREAKDOWN_LIMIT = 30

__all__ = ["Scope"]  # the filters of every query (re-exported for the API)


def paris_midnight(epoch: float, days_back: int = 0) -> int:
    local = datetime.fromtimestamp(epoch, PARIS).date() - timedelta(days=days_back)
    return int(datetime(local.year, local.month, local.day, tzinfo=PARIS).timestamp())


# ---- counters ----------------------------------------------------------------------------
def summary(store: Store, scope: Scope, window: Window, now: float | None = None) -> dict[str, Any]:
    """Counters by occurred_at: last hour, today (Paris), 7-day trend, breakdowns in window."""
    now = now if now is not None else time.time()
    upper = int(now) + 1
    today = paris_midnight(now)
    query = reports.summary(scope)
    rows = store.query(
        query.sql,
        query.bind(hour=upper - 3600, week=paris_midnight(now, TREND_DAYS - 1), upper=upper),
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
        "by_category": _breakdown(store, scope, window, "category"),
        "by_commune": _breakdown(store, scope, window, "insee", "commune"),
        "by_jurisdiction": _breakdown(store, scope, window, "jurisdiction"),
        "open_incidents": count_incidents(store, scope, window, "open"),
        "open_alerts": count_open_alerts(store, scope, window),
        "feedback": feedback_share(store, now),
    }


def feedback_share(store: Store, now: float) -> dict[str, Any]:
    """Of the reports taken in over the last `TREND_DAYS` days whose first hour (day) is
    over, the share that got a feedback beyond `recu` (attached, acknowledged, closed)
    within 1 h (24 h); None when there is none yet (`agents.ports.sql.feedback.SHARE`)."""
    query = feedback.SHARE
    upper = int(now)
    rows = store.query(
        query.sql,
        query.bind(since=upper - TREND_DAYS * 86_400, upper_1h=upper - 3600,
                   upper_24h=upper - 86_400),
    )
    row = rows[0] if rows else {"n_1h": 0, "within_1h": 0, "n_24h": 0, "within_24h": 0}
    n1, n24 = int(row["n_1h"]), int(row["n_24h"])
    return {
        "days": TREND_DAYS,
        "reports_1h": n1,
        "within_1h": round(int(row["within_1h"]) / n1, 4) if n1 else None,
        "reports_24h": n24,
        "within_24h": round(int(row["within_24h"]) / n24, 4) if n24 else None,
    }


def count_reports(store: Store, scope: Scope, window: Window) -> int:
    query = reports.count_in_window(scope)
    rows = store.query(query.sql, query.bind(since=window.since, until=window.until))
    return int(rows[0]["n"]) if rows else 0


def _breakdown(
    store: Store, scope: Scope, window: Window, key: str, label: str | None = None
) -> list[dict[str, Any]]:
    query = reports.breakdown(scope, key, label, BREAKDOWN_LIMIT)
    rows = store.query(query.sql, query.bind(since=window.since, until=window.until))
    return [
        {key: str(r["key"]), **({label: str(r["label"])} if label else {}), "n": int(r["n"])}
        for r in rows
    ]


# ---- incidents ---------------------------------------------------------------------------
def count_incidents(store: Store, scope: Scope, window: Window, status: str) -> int:
    query = incidents.count_in_window(scope, status)
    rows = store.query(query.sql, query.bind(since=window.since, until=window.until))
    return int(rows[0]["n"]) if rows else 0


def list_incidents(
    store: Store, scope: Scope, window: Window, status: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    query = incidents.list_in_window(scope, status)
    return store.query(
        query.sql,
        query.bind(since=window.since, until=window.until, limit=limit, offset=offset),
    )


def map_incidents(
    store: Store, scope: Scope, window: Window, status: str, limit: int
) -> list[dict[str, Any]]:
    query = incidents.map_in_window(scope, status)
    return store.query(query.sql, query.bind(since=window.since, until=window.until, limit=limit))


def get_incident(store: Store, incident_id: str, now: float) -> dict[str, Any] | None:
    query = incidents.GET
    rows = store.query(query.sql, query.bind(id=incident_id, floor=int(now - LOOKUP_FLOOR_SECONDS)))
    return rows[0] if rows else None


def incident_reports(
    store: Store,
    report_ids: list[str],
    kinds: list[str],
    orgs: list[str],
    first: int,
    last: int,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The merged reports (no personal data: neither hashes nor free text), looked up by
    their identities: `report_ids` with their sources `kinds` and `orgs` (same order). An
    incident version stored before versions listed the sources has none: its reports are
    then looked up by id alone."""
    if not report_ids:
        return []
    ids = report_ids[:limit]
    window = {"lo": first - 86_400, "hi": last + 86_400, "limit": limit}
    if kinds and orgs and len(kinds) == len(orgs) == len(report_ids):
        keys = tuple(zip(kinds[:limit], orgs[:limit], ids, strict=True))
        query = reports.OF_INCIDENT
        return store.query(query.sql, query.bind(ids=tuple(set(ids)), keys=keys, **window))
    query = reports.OF_INCIDENT_IDS
    return store.query(query.sql, query.bind(ids=tuple(ids), **window))


# ---- alerts ------------------------------------------------------------------------------
def list_alerts(
    store: Store, scope: Scope, window: Window, status: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    query = alerts.list_in_window(scope, status)
    found = store.query(
        query.sql,
        query.bind(since=window.since, until=window.until, limit=limit, offset=offset),
    )
    return attach_actions(store, found, window.since)


def count_open_alerts(store: Store, scope: Scope, window: Window) -> int:
    query = alerts.count_in_window(scope, "open")
    rows = store.query(query.sql, query.bind(since=window.since, until=window.until))
    return int(rows[0]["n"]) if rows else 0


def get_alert(store: Store, alert_id: str, now: float) -> dict[str, Any] | None:
    floor = int(now - LOOKUP_FLOOR_SECONDS)
    rows = store.query(alerts.GET.sql, alerts.GET.bind(id=alert_id, floor=floor))
    if not rows:
        return None
    alert = attach_actions(store, rows, floor)[0]
    alert["actions"] = store.query(
        actions.OF_ALERT.sql, actions.OF_ALERT.bind(id=alert_id, floor=floor)
    )
    return alert


def attach_actions(store: Store, found: list[dict[str, Any]], since: int) -> list[dict[str, Any]]:
    """Add the operator state (last action, by whom, when) to each alert."""
    if not found:
        return found
    query = actions.LAST_PER_ALERT
    rows = store.query(
        query.sql,
        query.bind(ids=tuple(a["alert_id"] for a in found), since=since, limit=len(found)),
    )
    last = {r["alert_id"]: r for r in rows}
    for alert in found:
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
    return found


def insert_action(store: Store, row: dict[str, Any]) -> None:
    store.insert(actions.TABLE, [row])


# ---- live change detection ---------------------------------------------------------------
def change_signature(store: Store, now: float) -> dict[str, Any]:
    """Cheap fingerprints of recent rows per table (no FINAL): any change → clients refresh."""
    query = changes.SIGNATURE
    rows = store.query(query.sql, query.bind(floor=paris_midnight(now, TREND_DAYS)))
    row = rows[0]
    return {
        "reports": (int(row["r_n"]), int(row["r_at"])),
        "incidents": (int(row["i_n"]), int(row["i_v"])),
        "alerts": (int(row["a_n"]), int(row["a_v"])),
        "actions": (int(row["x_n"]),),
    }


def recent_alert_versions(store: Store, since: int, limit: int = 500) -> dict[str, int]:
    query = alerts.RECENT_VERSIONS
    rows = store.query(query.sql, query.bind(since=since, limit=limit))
    return {str(r["alert_id"]): int(r["v"]) for r in rows}


def alerts_by_id(store: Store, ids: list[str], since: int) -> list[dict[str, Any]]:
    if not ids:
        return []
    query = alerts.BY_IDS
    rows = store.query(query.sql, query.bind(ids=tuple(ids), since=since, limit=len(ids)))
    return attach_actions(store, rows, since)
