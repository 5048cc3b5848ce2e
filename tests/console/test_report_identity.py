"""The console finds an incident's reports by their identity (source kind, source org,
report_id): another source's report with the same id is not shown as one of them (chDB, and
ClickHouse 18.16 with the `clickhouse` marker)."""

from __future__ import annotations

from typing import Any

from streams.storage import Store
from tests.console import rows
from tests.console.support import NOW, get_json, run_blocking


async def test_an_incident_lists_its_own_reports_not_another_sources_with_one_id(
    client: Any, seeded: Store
) -> None:
    c, _ = client
    police = rows.report("dup-1", NOW - 600, "vol")
    squatter = {**rows.report("dup-1", NOW - 500, "autre", kind="citizen"),
                "source_org": "citoyen"}
    other_station = {**rows.report("dup-1", NOW - 400, "vol"), "source_org": "csp-massy"}
    await run_blocking(seeded.insert, "reports", [police, squatter, other_station])
    incident = {
        **rows.incident("iq", NOW - 400, reports=["dup-1", "dup-1"]),
        "report_source_kinds": ["police_nationale", "police_nationale"],
        "report_source_orgs": ["csp-test", "csp-massy"],
    }
    await run_blocking(seeded.insert, "incidents", [incident])

    detail = await get_json(c, "/api/incidents/iq")
    assert detail["report_ids"] == ["dup-1", "dup-1"]
    assert detail["report_source_kinds"] == ["police_nationale", "police_nationale"]
    assert detail["report_source_orgs"] == ["csp-test", "csp-massy"]
    assert [(r["source_kind"], r["source_org"], r["category"]) for r in detail["reports"]] == [
        ("police_nationale", "csp-test", "vol"),
        ("police_nationale", "csp-massy", "vol"),
    ]


async def test_an_incident_stored_before_the_sources_is_looked_up_by_id(
    client: Any, seeded: Store
) -> None:
    """A version stored before versions listed their reports' sources: its reports are found
    by id alone (as before), and the answer says no sources are known."""
    c, _ = client
    detail = await get_json(c, "/api/incidents/im")
    assert detail["report_source_kinds"] == [] and detail["report_source_orgs"] == []
    assert sorted(r["report_id"] for r in detail["reports"]) == ["m0", "m1", "m2"]
