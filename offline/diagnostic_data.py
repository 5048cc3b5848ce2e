"""Synthetic incidents and reports over the served area, for the diagnostic's tests and
benchmark: rows of the `incidents` and `reports` tables (`agents.ports.sql.schema`), spread
by population over the communes, uniformly in time, some incidents in two versions (the
second may change category or place, as the correlation does)."""

from __future__ import annotations

import random
from typing import Any

import h3

from agents.core.refdata import RefData
from schemas.enums import CATEGORIES, SOURCE_KINDS


def _places(
    refdata: RefData, rng: random.Random, per_commune: int
) -> dict[str, list[tuple[float, float, str, str, str]]]:
    """A few points per commune (lat, lon, r7, r8, r9), near its representative point."""
    out: dict[str, list[tuple[float, float, str, str, str]]] = {}
    for code, c in refdata.communes.items():
        points = []
        for _ in range(per_commune):
            lat = c.rep_lat + rng.uniform(-0.004, 0.004)
            lon = c.rep_lon + rng.uniform(-0.006, 0.006)
            r9 = h3.latlng_to_cell(lat, lon, 9)
            points.append((lat, lon, h3.cell_to_parent(r9, 7), h3.cell_to_parent(r9, 8), r9))
        out[code] = points
    return out


def synthetic_rows(
    refdata: RefData,
    n: int,
    start: int,
    end: int,
    *,
    seed: int = 1,
    jurisdiction_of: dict[str, str] | None = None,
    per_commune: int = 6,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(incident versions, reports): `n` incidents first seen in [start, end), one report each."""
    rng = random.Random(seed)
    codes = list(refdata.communes)
    weights = [refdata.communes[c].population for c in codes]
    places = _places(refdata, rng, per_commune)
    jur = jurisdiction_of or {}
    incidents: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    chosen = rng.choices(codes, weights, k=n)
    for i, code in enumerate(chosen):
        seen = rng.randrange(start, end)
        category = rng.choice(CATEGORIES)
        lat, lon, r7, r8, r9 = rng.choice(places[code])
        precision = "commune" if rng.random() < 0.05 else "point"
        kind = rng.choice(SOURCE_KINDS)
        base = {
            "incident_id": f"inc-{seed}-{i}",
            "version": 1,
            "status": "open",
            "category": category,
            "categories": [category],
            "report_ids": [f"r-{seed}-{i}"],
            "report_count": 1,
            "source_kinds": [kind],
            "first_occurred_at": seen,
            "last_occurred_at": seen,
            "lat": lat,
            "lon": lon,
            "insee": code,
            "commune": refdata.communes[code].name,
            "jurisdiction": jur.get(code, ""),
            "h3": r9,
            "h3_r7": r7,
            "h3_r8": r8,
            "precision": precision,
            "confidence": 0.5,
            "updated_at": seen,
            "first_seen_at": seen,
        }
        incidents.append(base)
        if rng.random() < 0.2:  # a second version: closed, maybe re-categorised or moved
            second = dict(base, version=2, status="closed", last_occurred_at=seen + 600)
            if rng.random() < 0.5:
                second["category"] = rng.choice(CATEGORIES)
            if rng.random() < 0.3:
                other = rng.choice(codes)
                lat2, lon2, r7b, r8b, r9b = rng.choice(places[other])
                second.update(
                    insee=other,
                    commune=refdata.communes[other].name,
                    lat=lat2,
                    lon=lon2,
                    h3=r9b,
                    h3_r7=r7b,
                    h3_r8=r8b,
                    jurisdiction=jur.get(other, ""),
                )
            incidents.append(second)
        reports.append(
            {
                "report_id": f"r-{seed}-{i}",
                "source_kind": kind,
                "source_org": f"{kind}-{rng.randrange(3)}",
                "source_channel": "api",
                "category": category,
                "occurred_at": seen,
                "reported_at": seen,
                "lat": lat,
                "lon": lon,
                "accuracy_m": 10.0,
                "insee": code,
                "severity": None,
                "contact_hash": None,
                "description_hash": None,
                "description_len": 0,
                "origin_topic": "synthetic",
                "origin_partition": 0,
                "origin_offset": i,
                "commune": refdata.communes[code].name,
                "jurisdiction": jur.get(code, ""),
                "precision": precision,
                "h3_r7": r7,
                "h3_r8": r8,
                "h3_r9": r9,
            }
        )
    return incidents, reports
