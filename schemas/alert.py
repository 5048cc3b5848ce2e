"""Alert (output) on `vigie.alerts.v1`, key = alert_id; one message per lifecycle step."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.enums import Category


class AlertStatus(StrEnum):
    OPEN = "open"
    UPDATE = "update"
    CLOSED = "closed"


class AlertCenter(BaseModel):
    model_config = ConfigDict(frozen=True)
    lat: float
    lon: float


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    alert_id: str
    status: AlertStatus
    kind: Literal["hotspot"] = "hotspot"
    category: Category
    center: AlertCenter
    radius_m: float = Field(ge=0.0)
    cells: list[str]
    insee: list[str]
    window_start: datetime
    window_end: datetime
    observed: float = Field(ge=0.0)
    expected: float = Field(ge=0.0)
    score: float
    severity: int = Field(ge=1, le=5)
    emitted_at: datetime
    # Additions.
    version: int = Field(default=1, ge=1)
    detector: str = "poisson_scan"
