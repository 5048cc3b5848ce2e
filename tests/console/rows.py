"""Rows for the console tests (the columns of `agents.ports.sql.schema`)."""

from __future__ import annotations

from typing import Any

EVRY = ("91228", "Évry-Courcouronnes", 48.6290, 2.4410)
MASSY = ("91377", "Massy", 48.7309, 2.2713)


def report(
    report_id: str,
    at: float,
    category: str = "vol",
    place: tuple[Any, ...] = EVRY,
    jurisdiction: str = "csp-evry",
    kind: str = "police_nationale",
) -> dict[str, Any]:
    insee, commune, lat, lon = place
    return {
        "report_id": report_id,
        "source_kind": kind,
        "source_org": "csp-test",
        "source_channel": "api",
        "category": category,
        "occurred_at": int(at),
        "reported_at": int(at),
        "lat": lat,
        "lon": lon,
        "accuracy_m": 10.0,
        "insee": insee,
        "severity": None,
        "contact_hash": None,
        "description_hash": None,
        "description_len": 0,
        "origin_topic": "test",
        "origin_partition": 0,
        "origin_offset": 0,
        "commune": commune,
        "jurisdiction": jurisdiction,
        "precision": "point",
        "h3_r7": "",
        "h3_r8": "",
        "h3_r9": "",
    }


def incident(
    incident_id: str,
    at: float,
    *,
    version: int = 1,
    status: str = "open",
    category: str = "vol",
    place: tuple[Any, ...] = EVRY,
    reports: list[str] | None = None,
    jurisdiction: str = "csp-evry",
) -> dict[str, Any]:
    insee, commune, lat, lon = place
    ids = reports or [f"{incident_id}-r1"]
    return {
        "incident_id": incident_id,
        "version": version,
        "status": status,
        "category": category,
        "categories": [category],
        "report_ids": ids,
        "report_count": len(ids),
        "source_kinds": ["police_nationale", "citizen"],
        "first_occurred_at": int(at) - 600,
        "last_occurred_at": int(at),
        "lat": lat,
        "lon": lon,
        "insee": insee,
        "commune": commune,
        "jurisdiction": jurisdiction,
        "h3": "",
        "h3_r7": "",
        "h3_r8": "",
        "precision": "point",
        "confidence": 0.75,
        "updated_at": int(at),
    }


def alert(
    alert_id: str,
    at: float,
    *,
    version: int = 1,
    status: str = "open",
    category: str = "vol",
    insee: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "version": version,
        "status": status,
        "kind": "hotspot",
        "category": category,
        "center_lat": EVRY[2],
        "center_lon": EVRY[3],
        "radius_m": 900.0,
        "cells": ["881fb0d619fffff", "881fb0d657fffff"],
        "insee": insee or [EVRY[0]],
        "window_start": int(at) - 3600,
        "window_end": int(at),
        "observed": 9.0,
        "expected": 1.4,
        "score": 11.2,
        "severity": 3,
        "emitted_at": int(at),
        "detector": "test",
    }
