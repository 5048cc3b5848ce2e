"""Every named query of the SQL catalogue (`agents.ports.sql`) runs on both backends (real
ClickHouse 18.16 server and chDB 26.x) with the parameters it needs, and returns the columns
it declares. A query added to the catalogue without a case here fails
`test_every_named_query_has_a_case`."""

from __future__ import annotations

import inspect
import itertools
import json
import os
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import agents.ports.sql as catalogue
from agents.ports.sql import (
    actions,
    alerts,
    audit,
    changes,
    detector_runs,
    diagnostic,
    feedback,
    incident_hours,
    incidents,
    late,
    merges,
    partners,
    rejected,
    reports,
    schema,
    webhooks,
)
from agents.ports.sql import store as statements
from agents.ports.sql.query import Query
from agents.ports.sql.scope import Scope
from streams.storage import Store, open_store
from streams.storage.bench import make_report_rows

T = 1_780_000_000  # the seeded rows' time (epoch s)
H = T // 3600 * 3600  # its hour
FLOOR = T - 400 * 86_400
DAY_AGO = T - 86_400
DATABASE = "<database>"  # a parameter value replaced by the store's database

# Modules of the package that build queries without being queries themselves.
BUILDING_BLOCKS = {"query", "scope"}
QUERY_MODULES: list[ModuleType] = [
    actions,
    alerts,
    audit,
    changes,
    detector_runs,
    diagnostic,
    feedback,
    incident_hours,
    incidents,
    late,
    merges,
    partners,
    rejected,
    reports,
    schema,
    statements,
    webhooks,
]
# Catalogue entries run otherwise than by `store.query` with the seeded data: by every
# store of this module (DDL, database, inserts) or by a test of their own below.
RUN_BY_THE_STORES = {
    "schema.ensure_schema",  # `seeded`: open_store(...).ensure_schema()
    "store.create_database",  # both stores, when opened
    "store.use",  # the chDB store, when opened
    "store.insert_values",  # the server store's inserts (`seed`)
    "store.insert_sync",  # the chDB store's inserts (`seed`)
}
OWN_TESTS = {
    "reports.TRUNCATE",
    "schema.add_column",
    "schema.drop_view",
    "schema.migrate_reports_key",  # tests/storage/test_report_identity_migration.py
    "merges.FLUSH_LOGS",  # tests/storage/test_part_log.py (the server's own tables)
    "merges.PARTS_SINCE",
    "merges.QUERIES_SINCE",
}

WIDE = Scope("vol", "91228", "csp-evry", ["91228"])  # every filter, matching the seeded rows
# a partner's perimeter (access control) holding the seeded rows' commune and category
PERIMETER = Scope(perimeter_insee=("91174", "91228"), perimeter_categories=("rodeo", "vol"))
SCOPES = {"any": Scope(), "scoped": WIDE, "perimeter": PERIMETER}
WINDOW = {"since": T - 3600, "until": T + 3600}


@dataclass(frozen=True)
class Case:
    """A query with the parameters of one run; `grafana`: its text takes the Grafana macro
    `$__timeFilter(column)`, expanded as the Grafana ClickHouse plugin does."""

    id: str
    query: Query
    params: dict[str, Any] = field(default_factory=dict)
    grafana: bool = False


def cases() -> list[Case]:
    out = [
        Case("COUNT_ROWS", reports.COUNT_ROWS),
        Case("STORED_KEYS", reports.STORED_KEYS, {"ids": (REPORT_IDS[0], "unknown")}),
        Case("STORED_ORIGINS", reports.STORED_ORIGINS, {"ids": (REPORT_IDS[0], "unknown")}),
        Case(
            "OF_INCIDENT",
            reports.OF_INCIDENT,
            {
                "ids": tuple(REPORT_IDS),
                "keys": tuple(REPORT_KEYS),
                "lo": DAY_AGO,
                "hi": T + 86_400,
                "limit": 10,
            },
        ),
        Case(
            "OF_INCIDENT_IDS",
            reports.OF_INCIDENT_IDS,
            {"ids": tuple(REPORT_IDS), "lo": DAY_AGO, "hi": T + 86_400, "limit": 10},
        ),
        Case(
            "NEAR_INCIDENTS",
            late.NEAR_INCIDENTS,
            {"lo": T, "hi": T + 3600, "south": 48.6, "north": 48.7, "west": 2.4, "east": 2.5,
             "limit": 10},
        ),
        Case("CURRENT_VERSIONS", late.CURRENT_VERSIONS, {"ids": ("i1", "i2", "unknown")}),
        Case("MEMBERS", late.MEMBERS, {"ids": (REPORT_IDS[0], "unknown")}),
        Case("INCIDENTS_COUNT_DISTINCT", incidents.COUNT_DISTINCT),
        Case("INCIDENTS_COUNT_WITH_STATUS", incidents.COUNT_WITH_STATUS, {"status": "open"}),
        Case("SUM_REPORT_COUNT", incidents.SUM_REPORT_COUNT),
        Case("LIVE_SPAN", incidents.LIVE_SPAN),
        Case("INCIDENTS_GET", incidents.GET, {"id": "i1", "floor": FLOOR}),
        Case("LIVE_COUNTS", incident_hours.LIVE_COUNTS, {"start": H, "end": H + 3600}),
        Case("LIVE_CELL_TOTALS", incident_hours.LIVE_CELL_TOTALS, {"start": H, "end": H + 3600}),
        Case("LIVE_HOUR_TOTALS", incident_hours.LIVE_HOUR_TOTALS, {"start": H, "end": H + 3600}),
        Case("ALERTS_GET", alerts.GET, {"id": "a1", "floor": FLOOR}),
        Case("RECENT_VERSIONS", alerts.RECENT_VERSIONS, {"since": DAY_AGO, "limit": 10}),
        Case("BY_IDS", alerts.BY_IDS, {"ids": ("a1", "a2"), "since": DAY_AGO, "limit": 2}),
        Case("DETECTOR_STATE", alerts.DETECTOR_STATE, {"since": DAY_AGO}),
        Case("DETECTOR_STATE-open", alerts.DETECTOR_STATE, {"since": T + 2}),
        Case("LAST_RUN", detector_runs.LAST_RUN, {"detector": "poisson_scan"}),
        Case("LAST_RUN-none", detector_runs.LAST_RUN, {"detector": "other"}),
        Case("SCHEDULE", detector_runs.SCHEDULE, {"detector": "poisson_scan"}),
        Case("OF_ALERT", actions.OF_ALERT, {"id": "a1", "floor": FLOOR}),
        Case(
            "LAST_PER_ALERT",
            actions.LAST_PER_ALERT,
            {"ids": ("a1", "a2"), "since": DAY_AGO, "limit": 2},
        ),
        Case("SIGNATURE", changes.SIGNATURE, {"floor": DAY_AGO}),
        Case("ACTION_BY_ID", audit.ACTION_BY_ID, {"id": "x1"}),
        Case("PARTNERS_CURRENT", partners.CURRENT, {"limit": 10}),
        Case("PARTNERS_HISTORY", partners.HISTORY, {"org": "csp-evry", "limit": 10}),
        Case("PARTNERS_FINGERPRINT", partners.FINGERPRINT),
        Case(
            "WEBHOOKS_DUE",
            webhooks.DUE,
            {"now": T + 10, "limit": 10, "owned": ("vigie.alerts.v1#0",)},
        ),
        Case("WEBHOOKS_EVENTS_OF", webhooks.EVENTS_OF, {"id": "w2"}),
        Case("WEBHOOKS_STATES", webhooks.STATES),
        Case("WEBHOOKS_PARKED", webhooks.PARKED, {"org": "", "limit": 10}),
        Case("PING", statements.PING),
        Case("FEEDBACK_OF_REPORT", feedback.OF_REPORT, {"id": "fb-1"}),
        Case(
            "FEEDBACK_RECORDED",
            feedback.RECORDED,
            {"ids": ("fb-1", "unknown"), "statuses": ("recu", "rejete")},
        ),
        Case(
            "FEEDBACK_STORED_IDS",
            feedback.STORED_IDS,
            {"ids": ("fb-1", "unknown"), "statuses": ("recu", "rattache")},
        ),
        Case(
            "FEEDBACK_PAYLOADS",
            feedback.PAYLOADS,
            {
                "ids": ("fb-1", "unknown"),
                "fids": ("fb-1-recu".ljust(32, "0"), "fb-1-rattache".ljust(32, "0"), "none"),
            },
        ),
        Case(
            "FEEDBACK_SHARE",
            feedback.SHARE,
            {"since": T - 7 * 86_400, "upper_1h": T + 7200, "upper_24h": T + 90_000},
        ),
        Case("FEEDBACK_ACTIONS_OF_INCIDENT", feedback.ACTIONS_OF_INCIDENT, {"id": "i1"}),
        Case("FEEDBACK_ACTION", feedback.ACTION, {"action_id": "ia1"}),
        Case("COLUMN_TYPES", statements.COLUMN_TYPES, {"db": DATABASE, "table": "reports"}),
    ]
    out += [
        Case(name, query, grafana=True)
        for name, query in vars(incident_hours).items()
        if name.startswith("GRAFANA_")
    ]
    for since in (False, True):
        at = {"since": DAY_AGO} if since else {}
        out.append(Case(f"count-since={since}", reports.count(since), at))
        out.append(Case(f"by_reason-since={since}", rejected.by_reason(since), at))
        out += [
            Case(f"counts_by-{column}-since={since}", reports.counts_by(column, since), at)
            for column in reports.COUNTABLE_COLUMNS
        ]
    out += [
        Case("incidents.current-none", incidents.current((), False), {"limit": 10}),
        Case(
            "incidents.current-all",
            incidents.current(("status", "insee", "category"), True),
            {"status": "open", "insee": "91228", "category": "vol", "since": DAY_AGO, "limit": 10},
        ),
        Case("alerts.current-none", alerts.current((), False), {"limit": 10}),
        Case(
            "alerts.current-all",
            alerts.current(("status", "category"), True),
            {"status": "update", "category": "vol", "since": DAY_AGO, "limit": 10},
        ),
    ]
    for scope_name, scope in SCOPES.items():
        summary = {"hour": T - 3600, "week": T - 7 * 86_400, "upper": T + 3600}
        out.append(Case(f"summary-{scope_name}", reports.summary(scope), summary))
        out.append(Case(f"count_in_window-{scope_name}", reports.count_in_window(scope), WINDOW))
        out += [
            Case(
                f"breakdown-{key}-{scope_name}",
                reports.breakdown(scope, key, label, 30),
                WINDOW,
            )
            for key, label in (("category", None), ("insee", "commune"), ("jurisdiction", None))
        ]
        for status in ("all", "open", "closed"):
            v = f"{scope_name}-{status}"
            page = {**WINDOW, "limit": 10, "offset": 0}
            out += [
                Case(f"incidents.count-{v}", incidents.count_in_window(scope, status), WINDOW),
                Case(f"incidents.list-{v}", incidents.list_in_window(scope, status), page),
                Case(
                    f"incidents.map-{v}",
                    incidents.map_in_window(scope, status),
                    {**WINDOW, "limit": 10},
                ),
                Case(f"alerts.count-{v}", alerts.count_in_window(scope, status), WINDOW),
                Case(f"alerts.list-{v}", alerts.list_in_window(scope, status), page),
            ]
    out += [
        Case("table_exists", schema.table_exists(DATABASE, "reports")),
        Case("column_exists", schema.column_exists(DATABASE, "incidents", "first_seen_at")),
        Case("sorting_key", schema.sorting_key(DATABASE, "reports")),
    ]
    out += diagnostic_cases()
    return out


def diagnostic_cases() -> list[Case]:
    """The territorial diagnostic's aggregates over the seeded rows (commune 91228)."""
    bounds = {"start": T - 14 * 86_400, "mid": T - 86_400, "end": T + 86_400}
    codes = {"codes": ("91228", "91377")}
    period = {"mid": bounds["mid"], "end": bounds["end"]}
    return [
        Case("diagnostic.BY_COMMUNE", diagnostic.BY_COMMUNE, period),
        Case(
            "diagnostic.WEEKLY",
            diagnostic.WEEKLY,
            {"start": bounds["start"], "end": bounds["end"], **codes},
        ),
        Case("diagnostic.HOUR_OF_WEEK", diagnostic.HOUR_OF_WEEK, {**bounds, **codes}),
        Case("diagnostic.SLOTS", diagnostic.SLOTS, {**bounds, **codes}),
        Case("diagnostic.SOURCES", diagnostic.SOURCES, {**period, **codes}),
        Case(
            "diagnostic.CHRONIC_PLACES",
            diagnostic.CHRONIC_PLACES,
            {**period, **codes, "categories": ("vol",), "min_days": 1, "limit": 5},
        ),
        Case(
            "diagnostic.ALERTS",
            diagnostic.ALERTS,
            {**period, "codes_list": ["91228"], "limit": 5},
        ),
    ]


# ---- the seeded store ------------------------------------------------------------------------
REPORT_IDS = [row["report_id"] for row in make_report_rows(3)]
REPORT_KEYS = [
    (row["source_kind"], row["source_org"], row["report_id"]) for row in make_report_rows(3)
]


def _incident(iid: str, version: int, status: str) -> dict[str, Any]:
    return {
        "incident_id": iid,
        "version": version,
        "status": status,
        "category": "vol",
        "categories": ["vol"],
        "report_ids": REPORT_IDS[: version + 1],
        "report_count": version + 1,
        "source_kinds": ["police_nationale"],
        "first_occurred_at": T - 600,
        "last_occurred_at": T + 60 * version,
        "lat": 48.63,
        "lon": 2.44,
        "insee": "91228",
        "commune": "Évry-Courcouronnes",
        "jurisdiction": "csp-evry",
        "h3": "891fb467003ffff",
        "h3_r7": "871fb4670ffffff",
        "h3_r8": "881fb46701fffff",
        "precision": "point",
        "confidence": 0.7,
        "updated_at": T + 60 * version,
        "first_seen_at": T,
    }


def _alert(aid: str, version: int, status: str) -> dict[str, Any]:
    return {
        "alert_id": aid,
        "version": version,
        "status": status,
        "kind": "hotspot",
        "category": "vol",
        "center_lat": 48.63,
        "center_lon": 2.44,
        "radius_m": 800.0,
        "cells": ["881fb46701fffff"],
        "insee": ["91228"],
        "window_start": H - 3600,
        "window_end": H,
        "observed": 9.0,
        "expected": 1.5,
        "score": 12.5,
        "severity": 3,
        "emitted_at": T + version,
        "detector": "poisson_scan",
    }


def _action(action_id: str, alert_id: str, action: str, at: int) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "alert_id": alert_id,
        "action": action,
        "comment": "vu",
        "operator": "op",
        "role": "operator",
        "at": at,
    }


def _partner(org: str, version: int) -> dict[str, Any]:
    return {
        "org": org,
        "version": version,
        "active": 1,
        "entry": json.dumps({"org": org}),
        "updated_at": T + version,
        "updated_by": "op",
    }


def seed(store: Store) -> None:
    """Rows every case finds something in (both statuses, within every scope)."""
    rows = make_report_rows(3)
    for row in rows:
        row.update(occurred_at=T + 10, insee="91228", category="vol")
    store.insert("reports", rows)
    store.insert(
        "rejected",
        [
            {
                "rejected_at": T,
                "origin_topic": "vigie.reports.partner.v1",
                "origin_partition": 0,
                "origin_offset": 7,
                "reason": "schema",
                "detail": "missing field",
                "report_id": "",
                "size_bytes": 12,
            }
        ],
    )
    for row in (
        _incident("i1", 1, "open"),
        _incident("i1", 2, "open"),
        _incident("i2", 1, "closed"),
    ):
        store.insert("incidents", [row])  # separate parts, unmerged
    for row in (_alert("a1", 1, "open"), _alert("a1", 2, "update"), _alert("a2", 1, "closed")):
        store.insert("alerts", [row])
    store.insert(
        "alert_actions", [_action("x1", "a1", "ack", T + 10), _action("x2", "a2", "close", T + 20)]
    )
    for at in (T - 3600, T):  # separate parts, unmerged
        store.insert("detector_runs", [{"detector": "poisson_scan", "run_at": at}])
    for fit_at in (T - 3600, T):  # separate parts, unmerged: the later refit is the one
        store.insert("detector_schedules", [{"detector": "poisson_scan", "fit_at": fit_at,
                                             "calibrated_at": T - 7200, "threshold": 7.5,
                                             "updated_at": fit_at}])
    for version in (1, 2):  # separate parts, unmerged
        store.insert("partners", [_partner("csp-evry", version)])
    store.insert("webhook_deliveries", [_webhook("w1", 0, "queued"), _webhook("w2", 0, "queued")])
    store.insert("webhook_deliveries", [_webhook("w2", 1, "failed"), _webhook("w2", 2, "parked")])
    for status, at in (("recu", T), ("rattache", T + 600), ("recu", T)):  # a replayed recu
        store.insert("report_feedback", [_feedback("fb-1", status, at)])
    store.insert("report_feedback", [_feedback("fb-2", "recu", T)])
    store.insert("report_feedback", [_feedback("fb-2", "rattache", T + 7200)])  # after 2 h
    store.insert(
        "incident_actions",
        [{"action_id": "ia1", "incident_id": "i1", "action": "clos", "outcome": "intervention",
          "comment": "vu", "operator": "op", "role": "operator", "org": "", "at": T + 30}],
    )


def _feedback(rid: str, status: str, at: int) -> dict[str, Any]:
    return {"feedback_id": f"{rid}-{status}".ljust(32, "0"), "source_kind": "citizen",
            "source_org": "citoyen", "report_id": rid, "status": status, "at": at, "reason": "",
            "incident_id": "i1" if status != "recu" else "", "other_reports": 1,
            "outcome": "", "payload": "{}", "recorded_at": at}


def _webhook(did: str, seq: int, event: str) -> dict[str, Any]:
    return {
        "delivery_id": did,
        "seq": seq,
        "event": event,
        "at": T,
        "next_at": T,
        "org": "csp-evry",
        "kind": "alert",
        "object_id": "a1",
        "object_version": 1,
        "source_topic": "vigie.alerts.v1",
        "source_partition": 0,
        "payload": "{}" if event == "queued" else "",
        "status": 500 * (event != "queued"),
        "latency_ms": 0,
        "error": "",
    }


_databases = itertools.count(1)


@pytest.fixture(
    scope="module", params=[pytest.param("server", marks=pytest.mark.clickhouse), "chdb"]
)
def seeded(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A store with the schema and `seed`'s rows, shared by the (read-only) cases of a backend."""
    database = f"vigie_catalogue_{os.getpid()}_{next(_databases)}"
    if request.param == "server":
        url = request.getfixturevalue("clickhouse_server").url_for(database)
    else:
        path: Path = request.getfixturevalue("chdb_path")
        url = f"chdb://{path}?database={database}"
    store = open_store(url)
    try:
        store.ensure_schema()
        seed(store)
        yield store
    finally:
        store.close()


def expand(sql: str) -> str:
    """What the Grafana ClickHouse plugin sends for `$__timeFilter(column)`."""
    return re.sub(
        r"\$__timeFilter\((\w+)\)",
        rf"\1 >= toDateTime({H - 3600}) AND \1 <= toDateTime({H + 7200})",
        sql,
    )


def run(store: Store, case: Case) -> list[dict[str, Any]]:
    database = store.database  # type: ignore[attr-defined]
    query = case.query
    sql = query.sql.replace(DATABASE, database)
    if case.grafana:
        sql = expand(sql)
        assert "$__" not in sql
    params = {k: database if v == DATABASE else v for k, v in case.params.items()}
    bound = query.bind(**params)
    return store.query(sql, bound if bound else None)


def table_columns(store: Store, table: str) -> list[str]:
    query = statements.COLUMN_TYPES
    rows = store.query(query.sql, query.bind(db=store.database, table=table))  # type: ignore[attr-defined]
    return [row["name"] for row in rows]


@pytest.mark.parametrize("case", cases(), ids=lambda c: f"{c.query.name}[{c.id}]")
def test_the_query_runs_and_returns_its_columns(seeded: Store, case: Case) -> None:
    rows = run(seeded, case)
    assert rows, "the seeded rows should give every case a result"
    expected = case.query.columns
    if expected is None:  # SELECT *
        expected = tuple(table_columns(seeded, case.query.table))
    assert all(tuple(row) == expected for row in rows)


def test_the_cases_find_the_seeded_rows(seeded: Store) -> None:
    """A few results checked in full: the filters and the current-version selection work."""
    by_id = {case.id: case for case in cases()}
    kind, org, rid = REPORT_KEYS[0]
    assert run(seeded, by_id["STORED_KEYS"]) == [
        {"source_kind": kind, "source_org": org, "report_id": rid, "content_hash": ""}
    ]
    assert run(seeded, by_id["sorting_key"]) == [
        {"engine": "ReplacingMergeTree", "key": "report_id, source_kind, source_org"}
    ]
    assert run(seeded, by_id["incidents.count-scoped-open"]) == [{"n": 1}]
    assert run(seeded, by_id["incidents.count-scoped-closed"]) == [{"n": 1}]
    assert run(seeded, by_id["alerts.count-scoped-open"]) == [{"n": 1}]
    # the detector's state: the current version of the open alerts and of the recent closures
    rows = run(seeded, by_id["DETECTOR_STATE"])
    state = [(r["alert_id"], r["version"], r["status"]) for r in rows]
    assert state == [("a1", 2, "update"), ("a2", 1, "closed")]
    assert [r["alert_id"] for r in run(seeded, by_id["DETECTOR_STATE-open"])] == ["a1"]
    assert run(seeded, by_id["LAST_RUN"]) == [{"n": 2, "last": T}]
    assert run(seeded, by_id["LAST_RUN-none"])[0]["n"] == 0
    assert run(seeded, by_id["SCHEDULE"]) == [
        {"fit_at": T, "calibrated_at": T - 7200, "threshold": 7.5}]
    none = detector_runs.SCHEDULE
    assert seeded.query(none.sql, none.bind(detector="other")) == []
    listed = run(seeded, by_id["alerts.list-any-all"])  # current versions, last emitted first
    assert [(r["alert_id"], r["version"]) for r in listed] == [("a1", 2), ("a2", 1)]
    assert run(seeded, by_id["LIVE_COUNTS"]) == [
        {"h3_r8": "881fb46701fffff", "category": "vol", "hour": H // 3600, "n": 2}
    ]
    assert run(seeded, by_id["LIVE_CELL_TOTALS"]) == [
        {"h3_r8": "881fb46701fffff", "category": "vol", "n": 2}
    ]
    assert run(seeded, by_id["LIVE_HOUR_TOTALS"]) == [
        {"category": "vol", "hour": H // 3600, "n": 2}
    ]
    assert run(seeded, by_id["table_exists"]) == [{"n": 1}]
    # the late path: incidents reaching the time span in the box, their current version
    assert run(seeded, by_id["NEAR_INCIDENTS"]) == [{"incident_id": "i1"}, {"incident_id": "i2"}]
    current = run(seeded, by_id["CURRENT_VERSIONS"])
    assert [(r["incident_id"], r["version"], r["status"]) for r in current] == [
        ("i1", 2, "open"), ("i2", 1, "closed")]
    assert current[0]["report_ids"] == REPORT_IDS[:3]
    assert [r["report_id"] for r in run(seeded, by_id["MEMBERS"])] == [REPORT_IDS[0]]
    assert run(seeded, by_id["column_exists"]) == [{"n": 1}]
    last = {r["alert_id"]: r["last_action"] for r in run(seeded, by_id["LAST_PER_ALERT"])}
    assert last == {"a1": "ack", "a2": "close"}
    current = run(seeded, by_id["PARTNERS_CURRENT"])
    assert [(r["org"], r["version"]) for r in current] == [("csp-evry", 2)]
    assert [r["version"] for r in run(seeded, by_id["PARTNERS_HISTORY"])] == [2, 1]
    assert run(seeded, by_id["PARTNERS_FINGERPRINT"]) == [{"n": 2, "v": 3}]
    # one row per (report, status) however often written; fb-1 attached 10 min after recu,
    # fb-2 after 2 h
    assert [r["status"] for r in run(seeded, by_id["FEEDBACK_OF_REPORT"])] == ["recu", "rattache"]
    stored = sorted(r["feedback_id"] for r in run(seeded, by_id["FEEDBACK_STORED_IDS"]))
    assert stored == ["fb-1-rattache".ljust(32, "0"), "fb-1-recu".ljust(32, "0")]
    payloads = sorted(r["feedback_id"] for r in run(seeded, by_id["FEEDBACK_PAYLOADS"]))
    assert payloads == ["fb-1-rattache".ljust(32, "0"), "fb-1-recu".ljust(32, "0")]
    assert run(seeded, by_id["FEEDBACK_SHARE"]) == [
        {"n_1h": 2, "within_1h": 1, "n_24h": 2, "within_24h": 2}
    ]


@pytest.mark.parametrize(
    "outside",
    [
        Scope(perimeter_insee=("91174",)),  # another commune
        Scope(perimeter_insee=()),  # an empty perimeter
        Scope(perimeter_insee=("91228",), perimeter_categories=("rodeo",)),  # another category
    ],
    ids=["other-commune", "empty", "other-category"],
)
def test_a_perimeter_without_the_rows_finds_nothing(seeded: Store, outside: Scope) -> None:
    """The perimeter conditions filter every windowed query (the partners' scoped access)."""
    page = {**WINDOW, "limit": 10, "offset": 0}
    built = [
        (incidents.list_in_window(outside, "all"), page),
        (incidents.map_in_window(outside, "all"), {**WINDOW, "limit": 10}),
        (alerts.list_in_window(outside, "all"), page),
        (reports.breakdown(outside, "insee", "commune", 30), WINDOW),
    ]
    for query, params in built:
        assert seeded.query(query.sql, query.bind(**params)) == [], query.name
    for query in (
        incidents.count_in_window(outside, "all"),
        alerts.count_in_window(outside, "all"),
        reports.count_in_window(outside),
    ):
        assert seeded.query(query.sql, query.bind(**WINDOW)) == [{"n": 0}], query.name


def test_the_schema_creates_every_table_and_view(seeded: Store) -> None:
    created = {
        name
        for stmt in schema.STATEMENTS + schema.VIEW_STATEMENTS
        for name in re.findall(r"\{db\}\.(\w+) ", stmt.replace("{{db}}", "{db}"))
    }
    assert {"reports", "incidents", "incident_hours", "incident_hours_mv2"} <= created
    for name in created:
        query = schema.table_exists(seeded.database, name)  # type: ignore[attr-defined]
        assert seeded.query(query.sql) == [{"n": 1}], name


def test_truncate_empties_reports(store: Store) -> None:
    store.insert("reports", make_report_rows(2))
    assert store.query(reports.COUNT_ROWS.sql) == [{"n": 2}]
    assert store.query(reports.TRUNCATE.sql) == []
    assert store.query(reports.COUNT_ROWS.sql) == [{"n": 0}]


def test_the_migration_statements_run(store: Store) -> None:
    db = store.database  # type: ignore[attr-defined]
    store.query(schema.add_column(db, "rejected", "extra_test", "String DEFAULT 'x'"))
    assert store.query(schema.column_exists(db, "rejected", "extra_test").sql) == [{"n": 1}]
    store.query(schema.drop_view(db, "incident_hours_mv2"))
    assert store.query(schema.table_exists(db, "incident_hours_mv2").sql) == [{"n": 0}]


# ---- the catalogue itself (no store) ---------------------------------------------------------
def catalogue_entries() -> dict[str, object]:
    """Every named query of the catalogue: `Query` constants and builder functions, by
    `<module>.<name>`."""
    entries: dict[str, object] = {}
    for module in QUERY_MODULES:
        short = module.__name__.rsplit(".", 1)[1]
        for name, value in vars(module).items():
            if name.startswith("_"):
                continue
            if isinstance(value, Query) or (
                inspect.isfunction(value) and value.__module__ == module.__name__
            ):
                entries[f"{short}.{name}"] = value
    return entries


def test_every_module_of_the_catalogue_is_checked() -> None:
    modules = {info.name for info in pkgutil.iter_modules(catalogue.__path__)}
    assert modules == {m.__name__.rsplit(".", 1)[1] for m in QUERY_MODULES} | BUILDING_BLOCKS


def test_every_named_query_has_a_case() -> None:
    entries = catalogue_entries()
    run_here = {case.query.name for case in cases()}
    assert set(entries) == run_here | RUN_BY_THE_STORES | OWN_TESTS
    for name, value in entries.items():  # a constant's name is where it lives
        if isinstance(value, Query):
            assert value.name == name


def test_bind_names_a_missing_or_unknown_parameter() -> None:
    query = alerts.GET
    assert query.params == {"id", "floor"}
    assert query.bind(id="a1", floor=3) == {"id": "a1", "floor": 3}
    with pytest.raises(ValueError, match=r"alerts.GET: missing parameters \['floor'\]"):
        query.bind(id="a1")
    with pytest.raises(ValueError, match=r"unknown parameters \['flor'\]"):
        query.bind(id="a1", floor=3, flor=3)


def test_builders_bind_the_filters_they_render() -> None:
    query = alerts.count_in_window(WIDE, "open")
    assert query.bound == {"f_category": "vol", "f_insee": "91228", "f_jur_codes": ["91228"]}
    assert "hasAny(insee, %(f_jur_codes)s)" in query.sql
    assert query.bind(since=1, until=2) == {**query.bound, "since": 1, "until": 2}
    # a jurisdiction without communes matches no alert rather than every alert
    assert alerts.count_in_window(Scope(jurisdiction="x"), "all").bound == {"f_jur_codes": [""]}
    assert incidents.count_in_window(Scope(jurisdiction="x"), "open").bound == {
        "f_jurisdiction": "x",
        "status": "open",
    }


def test_builders_refuse_identifiers_they_do_not_know() -> None:
    with pytest.raises(ValueError, match="cannot count by 'contact_hash'"):
        reports.counts_by("contact_hash", False)
    with pytest.raises(ValueError, match="cannot break down by 'report_id'"):
        reports.breakdown(Scope(), "report_id", None, 30)
    with pytest.raises(ValueError, match="cannot label by 'description_hash'"):
        reports.breakdown(Scope(), "insee", "description_hash", 30)
    with pytest.raises(ValueError, match="cannot filter incidents by"):
        incidents.current(("contact_hash",), False)
    with pytest.raises(ValueError, match="cannot filter alerts by"):
        alerts.current(("insee",), False)
