"""Feedback to reporters on `vigie.reports.feedback.v1` (key = the report's identity).

One message per transition of a report's status: `recu` (taken in), `rejete` (refused, with
the reason code and a short French message a citizen app can show), `rattache` (merged into
an incident with other reports), `pris_en_compte` (a partner or operator acknowledged the
incident), `clos` (closed, with an outcome from a short list). A message carries no personal
data: the report's identity (which the contract already asks to hold none), codes, counts,
French texts chosen by Vigie (never a producer's or an operator's free text) and times.

Messages are deterministic: the same transition gives the same bytes and the same
`feedback_id` on every replay, so a consumer drops duplicates by `feedback_id`
(`docs/contract-v1.md`, *Feedback*).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.enums import SourceKind
from schemas.rejection import RejectReason


class FeedbackStatus(StrEnum):
    RECU = "recu"
    REJETE = "rejete"
    RATTACHE = "rattache"
    PRIS_EN_COMPTE = "pris_en_compte"
    CLOS = "clos"


class Outcome(StrEnum):
    """How an incident was handled (chosen by the operator or partner who closes it)."""

    INTERVENTION = "intervention"
    INTERPELLATION = "interpellation"
    ORIENTATION_PARTENAIRE = "orientation_partenaire"
    SANS_SUITE = "sans_suite"
    FAUSSE_ALERTE = "fausse_alerte"


class Feedback(BaseModel):
    """What a subscriber of the feedback topic receives (one status transition of a report).

    `report_id`, `source_kind`, `source_org`: the report's identity (the Kafka key is the
    same three strings as a compact JSON array). `at`: when the transition happened (taken
    in / rejected: the report message's Kafka timestamp; attached: the incident's stream
    clock at the merge; acknowledged / closed: the console action's time). `label` and
    `message`: French texts for a citizen app. `reason`: the rejection's code (`rejete`).
    `incident_id`, `other_reports`: the incident and how many other reports it held then
    (`rattache`, `pris_en_compte`, `clos`). `outcome`, `outcome_label`: how it ended (`clos`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    feedback_id: str = Field(min_length=32, max_length=32, pattern="^[0-9a-f]{32}$")
    report_id: str = Field(min_length=1, max_length=128)
    source_kind: SourceKind
    source_org: str = Field(min_length=1, max_length=64)
    status: FeedbackStatus
    at: datetime
    label: str
    message: str
    reason: RejectReason | None = None
    incident_id: str | None = None
    other_reports: int | None = Field(default=None, ge=0)
    outcome: Outcome | None = None
    outcome_label: str | None = None


# Every field a feedback message may carry (the personal-data allow-list tests check).
FEEDBACK_FIELDS: frozenset[str] = frozenset(Feedback.model_fields)
