"""Incident (output) on `vigie.incidents.v1`, key = incident_id; one message per version."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.enums import Category, IncidentStatus, SourceKind

__all__ = ["Incident", "IncidentStatus"]


class Incident(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    incident_id: str
    version: int = Field(ge=1)
    status: IncidentStatus
    category: Category
    report_ids: list[str]
    report_count: int = Field(ge=1)
    source_kinds: list[SourceKind]
    first_occurred_at: datetime
    last_occurred_at: datetime
    lat: float
    lon: float
    insee: str
    commune: str
    h3: str
    confidence: float = Field(ge=0.0, le=1.0)
    # Additions (allowed by the contract: fields may be added).
    categories: list[Category] = Field(default_factory=list)
    jurisdiction: str | None = None
    precision: str = "point"
    updated_at: datetime | None = None
    first_seen_at: datetime | None = None  # reported_at of the founding report
