"""The Grafana panels that query ClickHouse (operations dashboard, "Incidents by place") run on
both backends (ClickHouse 18.16 server and chDB 26.x) and count what they say: each incident
once, in the hour it was first reported, with the category and place of its latest version."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from agents.ports.sql import incident_hours
from streams.storage import Store

DASHBOARD = (
    Path(__file__).resolve().parents[2]
    / "deploy"
    / "grafana"
    / "dashboards"
    / "vigie-operations.json"
)
H = 1_780_002_000 // 3600 * 3600  # an hour boundary
FROM, TO = H - 3600, H + 2 * 3600  # the dashboard's time range in the test


def clickhouse_panels() -> dict[str, str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {
        p["title"]: p["targets"][0]["rawSql"]
        for p in panels
        if p.get("datasource", {}).get("type") == "grafana-clickhouse-datasource"
    }


def expand(sql: str) -> str:
    """What the Grafana ClickHouse plugin sends for `$__timeFilter(column)`."""
    assert "$__" not in re.sub(r"\$__timeFilter\(\w+\)", "", sql), sql
    return re.sub(
        r"\$__timeFilter\((\w+)\)",
        rf"\1 >= toDateTime({FROM}) AND \1 <= toDateTime({TO})",
        sql,
    )


def version(iid: str, v: int, seen: int, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "incident_id": iid,
        "version": v,
        "status": "open",
        "category": "vol",
        "report_count": v,
        "first_occurred_at": seen - 600,
        "last_occurred_at": seen,
        "insee": "91228",
        "commune": "Évry-Courcouronnes",
        "jurisdiction": "csp-evry",
        "h3_r8": "cellA",
        "first_seen_at": seen,
        "updated_at": seen + 60 * v,
    }
    row.update(extra)
    return row


ROWS = [
    # a: first reported in hour H, re-categorised and moved by version 2
    version("a", 1, H + 100),
    version("a", 2, H + 100, category="cambriolage", h3_r8="cellB"),
    # b: hour H, re-delivered version 1
    version("b", 1, H + 200),
    version("b", 1, H + 200),
    # c: hour H + 1, another commune, no jurisdiction
    version("c", 1, H + 3700, insee="91377", commune="Massy", jurisdiction=None),
    # d: before the time range: never counted
    version("d", 1, FROM - 10),
    version("d", 2, FROM - 10),
]


def test_the_dashboard_has_its_clickhouse_panels() -> None:
    assert set(clickhouse_panels()) == {
        "New incidents per hour by category",
        "New incidents by commune",
        "New incidents by jurisdiction",
        "Busiest H3 r8 cells",
    }


def test_the_panels_run_the_named_queries_of_the_catalogue() -> None:
    named = {
        " ".join(query.sql.split())
        for name, query in vars(incident_hours).items()
        if name.startswith("GRAFANA_")
    }
    assert set(clickhouse_panels().values()) == named


def test_clickhouse_panels_count_each_incident_once(store: Store) -> None:
    for row in ROWS:  # separate inserts: separate parts, unmerged
        store.insert("incidents", [row])
    sql = {title: expand(text) for title, text in clickhouse_panels().items()}

    series = store.query(sql["New incidents per hour by category"])
    assert [(int(r["time"]), r["category"], r["incidents"]) for r in series] == [
        (H, "cambriolage", 1),
        (H, "vol", 1),
        (H + 3600, "vol", 1),
    ]
    communes = store.query(sql["New incidents by commune"])
    assert [(r["insee"], r["commune"], r["incidents"]) for r in communes] == [
        ("91228", "Évry-Courcouronnes", 2),
        ("91377", "Massy", 1),
    ]
    jurisdictions = store.query(sql["New incidents by jurisdiction"])
    assert [(r["jurisdiction"], r["incidents"]) for r in jurisdictions] == [
        ("csp-evry", 2),
        ("(none)", 1),
    ]
    cells = store.query(sql["Busiest H3 r8 cells"])
    assert [(r["cell"], r["category"], r["incidents"]) for r in cells] == [
        ("cellA", "vol", 2),
        ("cellB", "cambriolage", 1),
    ]
