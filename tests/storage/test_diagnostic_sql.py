"""The diagnostic's aggregates (`agents.ports.sql.diagnostic`, via `console.diagnostic.compute`)
against a brute-force computation in Python over a generated stream, on both backends (real
ClickHouse 18.16 server and chDB): incident versions (the latest wins, also when it moved to
another commune or category), each incident counted once in the hour it was first seen."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agents.core.correlation.config import ChronicPlaces
from agents.core.diagnostic import WEEK_S, SlotCount, Territory, TerritoryKind, forecast
from agents.core.refdata import RefData, load_refdata
from console.diagnostic import compute, territory_of
from offline.diagnostic_data import synthetic_rows
from streams.storage import Store

PARIS = ZoneInfo("Europe/Paris")
UNTIL = 1_780_000_000 // 3600 * 3600
WEEKS = 4
EVRY, MASSY = "91228", "91377"


@pytest.fixture(scope="module")
def refdata() -> RefData:
    return load_refdata()


def _latest(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for row in incidents:
        found = best.get(row["incident_id"])
        if found is None or row["version"] > found["version"]:
            best[row["incident_id"]] = row
    return list(best.values())


def _how(seen: int) -> int:
    local = datetime.fromtimestamp(seen, UTC).astimezone(PARIS)
    return local.weekday() * 24 + local.hour


def _seed(store: Store, refdata: RefData) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    start = UNTIL - 2 * WEEKS * WEEK_S
    incidents, reports = synthetic_rows(
        refdata, 6000, start - 86_400 * 3, UNTIL + 86_400 * 2, seed=5, per_commune=3
    )
    # a crowded chronic place in Évry: dealing reports on 5 distinct days of the period
    place = next(r for r in reports if r["insee"] == EVRY and r["precision"] == "point")
    for day in range(5):
        for k in range(2):
            at = UNTIL - (day + 1) * 86_400 - k * 3600
            reports.append(
                dict(
                    place,
                    report_id=f"chronic-{day}-{k}",
                    category="trafic_stupefiants",
                    occurred_at=at,
                    reported_at=at,
                )
            )
    half = len(incidents) // 2
    store.insert("incidents", incidents[:half])  # several parts, unmerged
    store.insert("incidents", incidents[half:])
    store.insert("reports", reports)
    store.insert("reports", reports[:50])  # re-deliveries: the same rows again
    return incidents, reports


def test_the_aggregates_match_a_brute_force_count(store: Store, refdata: RefData) -> None:
    incidents, reports = _seed(store, refdata)
    mid, start = UNTIL - WEEKS * WEEK_S, UNTIL - 2 * WEEKS * WEEK_S
    latest = [
        dict(r, seen=int(r["first_seen_at"]) // 3600 * 3600)
        for r in _latest(incidents)
        if start <= int(r["first_seen_at"]) // 3600 * 3600 < UNTIL
    ]
    for territory in (
        territory_of(refdata, {}, commune=EVRY),
        territory_of(refdata, {}, communes=[EVRY, MASSY, "91377"]),
    ):
        codes = set(territory.communes)
        d = compute(store, refdata, territory, WEEKS, UNTIL)
        inside = [r for r in latest if r["insee"] in codes]
        # per category, period and week
        expected = Counter((r["category"], r["seen"] >= mid) for r in inside)
        got = {p.category: (p.current, p.previous) for p in d.categories}
        assert got == {
            c: (expected[(c, True)], expected[(c, False)]) for c in {r["category"] for r in inside}
        }
        assert d.total.current == sum(1 for r in inside if r["seen"] >= mid)
        weekly = Counter((r["seen"] - start) // WEEK_S for r in inside)
        assert d.total.weekly == tuple(weekly[w] for w in range(2 * WEEKS))
        # département rate: every commune, the period
        dept = sum(1 for r in latest if r["seen"] >= mid)
        population = sum(c.population for c in refdata.communes.values())
        assert d.total.dept_rate == pytest.approx(1000 * dept / population)
        # hours of week (Paris), the period
        hours = Counter(_how(r["seen"]) for r in inside if r["seen"] >= mid)
        assert d.hour_of_week["total"] == tuple(hours[h] for h in range(168))
        # who reports: distinct reports of the period in the territory
        distinct = {(r["source_kind"], r["source_org"], r["report_id"]): r for r in reports}
        period = [
            r for r in distinct.values() if r["insee"] in codes and mid <= r["occurred_at"] < UNTIL
        ]
        assert {s.kind: s.n for s in d.sources} == dict(Counter(r["source_kind"] for r in period))
        # chronic places: days (noon to noon UTC) with dealing / hall reports per r9 cell
        chronic = ChronicPlaces()
        days: dict[str, set[int]] = {}
        for r in period:
            if r["category"] in chronic.categories and r["precision"] != "commune":
                days.setdefault(r["h3_r9"], set()).add((r["occurred_at"] - 43_200) // 86_400)
        wanted = {c: len(v) for c, v in days.items() if len(v) >= chronic.min_days}
        assert {p.cell: p.days for p in d.chronic_places} == dict(
            sorted(wanted.items(), key=lambda kv: -kv[1])[:15]
        )
        assert any(p.days >= 5 for p in d.chronic_places)
        # the slots of the "présence dynamique" count located incidents only
        expected_forecast = forecast(
            [
                SlotCount(cell, "", slot, n)
                for (cell, slot), n in Counter(
                    (r["h3_r8"], _how(r["seen"]) // 24 * 6 + _how(r["seen"]) % 24 // 4)
                    for r in inside
                    if r["seen"] >= mid and r["precision"] != "commune"
                ).items()
            ],
            WEEKS,
        )
        got_forecast = [(f.cell, f.slot, f.expected) for f in d.forecast]
        assert got_forecast == [(f.cell, f.slot, f.expected) for f in expected_forecast]
        assert all(f.commune for f in d.forecast)


def test_alerts_of_the_territory_in_the_period(store: Store, refdata: RefData) -> None:
    def alert(aid: str, version: int, status: str, insee: list[str], at: int) -> dict[str, Any]:
        return {
            "alert_id": aid,
            "version": version,
            "status": status,
            "kind": "hotspot",
            "category": "vol",
            "center_lat": 48.6,
            "center_lon": 2.4,
            "radius_m": 500.0,
            "cells": [],
            "insee": insee,
            "window_start": at - 3600,
            "window_end": at,
            "observed": 8.0,
            "expected": 1.0,
            "score": 9.0,
            "severity": 2,
            "emitted_at": at,
            "detector": "poisson_scan",
        }

    store.insert("alerts", [alert("a1", 1, "open", [EVRY], UNTIL - 86_400)])
    store.insert("alerts", [alert("a1", 2, "closed", [EVRY], UNTIL - 80_000)])
    store.insert("alerts", [alert("a2", 1, "open", [MASSY], UNTIL - 86_400)])
    store.insert("alerts", [alert("a3", 1, "open", [EVRY, MASSY], UNTIL - 60 * WEEK_S)])
    d = compute(store, refdata, Territory(TerritoryKind.COMMUNE, EVRY, "Évry", (EVRY,)), 4, UNTIL)
    assert [(a.alert_id, a.status) for a in d.alerts] == [("a1", "closed")]
