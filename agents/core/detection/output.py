"""Contract v1 bytes of an alert message (RFC 3339 UTC times), validated by the schema."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.alert import Alert

_TIME_KEYS = ("window_start", "window_end", "emitted_at")


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def alert_json(message: Mapping[str, Any]) -> bytes:
    """The bytes published on `vigie.alerts.v1` (and written by `vigie backtest`)."""
    data = dict(message)
    for key in _TIME_KEYS:
        data[key] = _rfc3339(float(data[key]))
    Alert.model_validate(data)  # raises pydantic.ValidationError on a contract violation
    return orjson.dumps(data)
