"""Wire contract v1 of Vigie (see docs/contract-v1.md): pydantic models and JSON Schema export."""

from schemas.alert import Alert, AlertCenter, AlertStatus
from schemas.enums import CATEGORIES, SOURCE_KINDS, Category, SourceKind
from schemas.incident import Incident, IncidentStatus
from schemas.rejection import RejectedReport, RejectReason
from schemas.report import CommuneLocation, PointLocation, Report, Reporter, Source

__all__ = [
    "CATEGORIES",
    "SOURCE_KINDS",
    "Alert",
    "AlertCenter",
    "AlertStatus",
    "Category",
    "CommuneLocation",
    "Incident",
    "IncidentStatus",
    "PointLocation",
    "RejectReason",
    "RejectedReport",
    "Report",
    "Reporter",
    "Source",
    "SourceKind",
]
