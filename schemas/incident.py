"""Incident (output) on `vigie.incidents.v1`, key = incident_id; one message per version."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    # The identity of each report of `report_ids` (report_id is unique per source system
    # only): `(report_source_kinds[i], report_source_orgs[i], report_ids[i])`; empty in
    # versions published before they were added.
    report_source_kinds: list[SourceKind] = Field(default_factory=list)
    report_source_orgs: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sources_match_reports(self) -> Incident:
        n = len(self.report_ids)
        if (self.report_source_kinds or self.report_source_orgs) and not (
            len(self.report_source_kinds) == len(self.report_source_orgs) == n
        ):
            raise ValueError("report_source_kinds and report_source_orgs must match report_ids")
        return self
