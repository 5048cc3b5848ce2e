"""The published JSON Schema files match the pydantic models (the source of truth)."""

from __future__ import annotations

from schemas.export import MESSAGES, OUT, render


def test_committed_json_schemas_are_up_to_date() -> None:
    for name, model in MESSAGES.items():
        assert (OUT / name).read_text() == render(model), f"run python -m schemas.export ({name})"


def test_contract_fields_present() -> None:
    incident = MESSAGES["incident.v1.schema.json"].model_json_schema()["properties"]
    for field in ("incident_id", "version", "status", "category", "report_ids", "report_count",
                  "source_kinds", "first_occurred_at", "last_occurred_at", "lat", "lon",
                  "insee", "commune", "h3", "confidence"):
        assert field in incident
    alert = MESSAGES["alert.v1.schema.json"].model_json_schema()["properties"]
    for field in ("alert_id", "status", "kind", "category", "center", "radius_m", "cells",
                  "insee", "window_start", "window_end", "observed", "expected", "score",
                  "severity", "emitted_at"):
        assert field in alert
