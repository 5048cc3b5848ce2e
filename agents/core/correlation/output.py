"""Contract v1 JSON of an incident version (RFC 3339 UTC times), validated by the schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from agents.core.record import rfc3339
from schemas.incident import Incident

_TIME_KEYS = ("first_occurred_at", "last_occurred_at", "updated_at", "first_seen_at")


def incident_model(version: Mapping[str, Any]) -> Incident:
    """Validate a version dict (epoch-second times) against `schemas.incident.Incident`."""
    data = dict(version)
    for key in _TIME_KEYS:
        if data.get(key) is not None:
            data[key] = rfc3339(float(data[key]))
    return Incident.model_validate(data)


def incident_json(version: Mapping[str, Any]) -> bytes:
    """The bytes published on `vigie.incidents.v1` for one version dict."""
    data = dict(version)
    incident_model(data)  # raises pydantic.ValidationError on a contract violation
    for key in _TIME_KEYS:
        if data.get(key) is not None:
            data[key] = rfc3339(float(data[key]))
    return orjson.dumps(data)
