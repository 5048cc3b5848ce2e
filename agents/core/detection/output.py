"""Contract v1 bytes of an alert message (RFC 3339 UTC times), validated by the schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from agents.core.record import rfc3339
from schemas.alert import Alert

_TIME_KEYS = ("window_start", "window_end", "emitted_at")


def alert_json(message: Mapping[str, Any]) -> bytes:
    """The bytes published on `vigie.alerts.v1` (and written by `vigie backtest`)."""
    data = dict(message)
    for key in _TIME_KEYS:
        data[key] = rfc3339(float(data[key]))
    Alert.model_validate(data)  # raises pydantic.ValidationError on a contract violation
    return orjson.dumps(data)
