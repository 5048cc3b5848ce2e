"""Feedback to reporters: the status transitions of a report, as deterministic messages.

One place for what a reporter is told (`schemas.feedback.Feedback`, topic
`vigie.reports.feedback.v1`): the French labels of the statuses and outcomes and the short
French message of each rejection reason a citizen app can show. Pure: the stages and the
console build `FeedbackEvent`s here and send / store them themselves.

Transitions and who makes them:
- `recu`: the ingest stage, for each report it takes in (`received`);
- `rejete`: the ingest stage, for a rejected message whose identity is readable and not
  already a report's (`rejected`): no identity, no one to tell;
- `rattache`: the correlate stage, when a report's incident first holds another report
  (`attached`): a report joining an incident at its join (others = the reports already
  there); an incident's founding report when the second report joins (others = 1). Sent
  once: later joins do not send it again (`pris_en_compte` and `clos` carry the count then);
- `pris_en_compte`, `clos`: the console, for every report of an incident an operator or a
  partner acknowledged or closed (`handled`).

Determinism (exactly-once per transition on top of at-least-once Kafka): an event is a
function of its inputs only (never the wall clock), so a replay makes the same bytes and the
same `feedback_id` (a hash of the report's identity, the status and what the transition is
unique to: the rejected message's position, the incident, the console action).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from agents.core.record import ReportKey, ReportRecord, member_keys
from agents.core.validation import Rejection
from schemas.enums import SOURCE_KINDS
from schemas.feedback import FeedbackStatus, Outcome
from schemas.rejection import RejectReason

RECU, REJETE = FeedbackStatus.RECU, FeedbackStatus.REJETE
RATTACHE, PRIS_EN_COMPTE, CLOS = (
    FeedbackStatus.RATTACHE,
    FeedbackStatus.PRIS_EN_COMPTE,
    FeedbackStatus.CLOS,
)

STATUS_LABELS: dict[FeedbackStatus, str] = {
    RECU: "Signalement reçu",
    REJETE: "Signalement refusé",
    RATTACHE: "Signalement rattaché à un incident",
    PRIS_EN_COMPTE: "Incident pris en compte",
    CLOS: "Incident clos",
}

OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.INTERVENTION: "Intervention effectuée",
    Outcome.INTERPELLATION: "Interpellation",
    Outcome.ORIENTATION_PARTENAIRE: "Transmis au partenaire compétent",
    Outcome.SANS_SUITE: "Classé sans suite",
    Outcome.FAUSSE_ALERTE: "Aucun incident constaté",
}

# What a citizen app shows for each rejection: short, never quoting the message.
REJECT_MESSAGES: dict[RejectReason, str] = {
    RejectReason.TOO_LARGE: "Votre signalement est trop volumineux.",
    RejectReason.NOT_UTF8: "Votre signalement n'a pas pu être lu.",
    RejectReason.NOT_JSON: "Votre signalement n'a pas pu être lu.",
    RejectReason.NOT_OBJECT: "Votre signalement n'a pas pu être lu.",
    RejectReason.MISSING_FIELD: "Il manque une information obligatoire à votre signalement.",
    RejectReason.INVALID_FIELD: "Une information de votre signalement n'est pas valide.",
    RejectReason.UNKNOWN_CATEGORY: "Le type de signalement n'est pas reconnu.",
    RejectReason.UNKNOWN_SOURCE_KIND: "L'origine du signalement n'est pas reconnue.",
    RejectReason.INVALID_COORDINATES: "La position indiquée n'est pas valide.",
    RejectReason.OUT_OF_AREA: "Le lieu indiqué est hors du territoire couvert.",
    RejectReason.UNKNOWN_INSEE: "La commune indiquée n'est pas reconnue.",
    RejectReason.TIMESTAMP_WITHOUT_OFFSET: "La date indiquée n'est pas valide.",
    RejectReason.INVALID_TIMESTAMP: "La date indiquée n'est pas valide.",
    RejectReason.OCCURRED_AFTER_REPORTED: "La date des faits est postérieure au signalement.",
    RejectReason.DESCRIPTION_TOO_LONG: "La description est trop longue.",
    RejectReason.TIMESTAMP_IN_FUTURE: "La date indiquée est dans le futur.",
    RejectReason.TIMESTAMP_TOO_OLD: "Les faits sont trop anciens pour être signalés ici.",
    RejectReason.SOURCE_NOT_ALLOWED_ON_TOPIC: (
        "Le signalement n'a pas été transmis par le bon canal."
    ),
    RejectReason.SOURCE_ORG_NOT_ALLOWED_ON_TOPIC: (
        "Le signalement n'a pas été transmis par le bon canal."
    ),
    RejectReason.ID_REUSED_WITH_DIFFERENT_CONTENT: (
        "Ce signalement a déjà été reçu avec un autre contenu : envoyez un nouveau signalement."
    ),
}

# Rejections that send no feedback: the identity belongs to a report already taken in, whose
# status stands (the message re-used its id with other content).
SILENT_REASONS = frozenset({RejectReason.ID_REUSED_WITH_DIFFERENT_CONTENT})


def _others(n: int) -> str:
    return f"{n} autre signalement" if n == 1 else f"{n} autres signalements"


def report_key_bytes(key: ReportKey) -> bytes:
    """The Kafka key of a report's feedback: its identity as a compact JSON array (one
    string per report, unambiguous whatever characters a source puts in its org or ids)."""
    return orjson.dumps([key.source_kind, key.source_org, key.report_id])


def _rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """One status transition of one report. `transition`: what makes it unique besides the
    report and the status (part of `feedback_id`, not of the message)."""

    key: ReportKey
    status: FeedbackStatus
    at: int  # UTC epoch seconds
    transition: str = ""
    reason: RejectReason | None = None
    incident_id: str | None = None
    other_reports: int | None = None
    outcome: Outcome | None = None

    @property
    def feedback_id(self) -> str:
        k = self.key
        text = orjson.dumps(
            [k.source_kind, k.source_org, k.report_id, self.status.value, self.transition]
        )
        return hashlib.blake2b(text, digest_size=16).hexdigest()

    def message_text(self) -> str:
        if self.status is REJETE and self.reason is not None:
            return REJECT_MESSAGES[self.reason]
        if self.status is RATTACHE:
            return (
                "Votre signalement a été rattaché à un incident déjà signalé"
                f" ({_others(self.other_reports or 0)})."
            )
        if self.status is PRIS_EN_COMPTE:
            return "L'incident que vous avez signalé est pris en compte."
        if self.status is CLOS:
            label = OUTCOME_LABELS[self.outcome] if self.outcome is not None else ""
            return f"L'incident que vous avez signalé est clos : {label.lower()}."
        return "Votre signalement a bien été reçu."

    def message(self) -> dict[str, Any]:
        """The contract form (`schemas.feedback.Feedback`), fields in a fixed order."""
        k = self.key
        return {
            "feedback_id": self.feedback_id,
            "report_id": k.report_id,
            "source_kind": k.source_kind,
            "source_org": k.source_org,
            "status": self.status.value,
            "at": _rfc3339(self.at),
            "label": STATUS_LABELS[self.status],
            "message": self.message_text(),
            "reason": None if self.reason is None else self.reason.value,
            "incident_id": self.incident_id,
            "other_reports": self.other_reports,
            "outcome": None if self.outcome is None else self.outcome.value,
            "outcome_label": None if self.outcome is None else OUTCOME_LABELS[self.outcome],
        }

    def encode(self) -> bytes:
        """The Kafka value: the same bytes for the same transition, replay after replay."""
        return orjson.dumps(self.message())

    def kafka_key(self) -> bytes:
        return report_key_bytes(self.key)

    def row(self, recorded_at: float) -> dict[str, Any]:
        """The `report_feedback` row (`recorded_at`: the wall clock when it was written)."""
        k = self.key
        return {
            "feedback_id": self.feedback_id,
            "source_kind": k.source_kind,
            "source_org": k.source_org,
            "report_id": k.report_id,
            "status": self.status.value,
            "at": self.at,
            "reason": "" if self.reason is None else self.reason.value,
            "incident_id": self.incident_id or "",
            "other_reports": -1 if self.other_reports is None else self.other_reports,
            "outcome": "" if self.outcome is None else self.outcome.value,
            "payload": self.encode().decode(),
            "recorded_at": recorded_at,
        }


def received(record: ReportRecord, message_time: float) -> FeedbackEvent:
    """`recu` for a report taken in (`message_time`: its Kafka timestamp)."""
    return FeedbackEvent(record.key, RECU, int(message_time))


def readable_key(rejection: Rejection) -> ReportKey | None:
    """The identity of a rejected message, when the contract could name it: a known source
    kind, an org of 1-64 characters and a report_id of 1-128 (else None: no feedback)."""
    kind, org, rid = rejection.source_kind, rejection.source_org, rejection.report_id
    if kind not in SOURCE_KINDS or not org or len(org) > 64 or not rid or len(rid) > 128:
        return None
    return ReportKey(kind, org, rid)


def rejected(rejection: Rejection, message_time: float, origin: str) -> FeedbackEvent | None:
    """`rejete` for a rejected message (`origin`: its topic/partition/offset, which makes
    the transition unique), or None when it has no readable identity or is `SILENT_REASONS`."""
    key = readable_key(rejection)
    if key is None or rejection.reason in SILENT_REASONS:
        return None
    return FeedbackEvent(key, REJETE, int(message_time), origin, reason=rejection.reason)


def attached(version: Mapping[str, Any], record: ReportKey) -> list[FeedbackEvent]:
    """`rattache` events of the version an incident took when `record` joined it: for the
    record (others = the reports already there) and, when it is the second report, for the
    founding one (others = 1). None when `record` is not the version's newest report (a
    version closing another incident) or the incident holds it alone."""
    keys = member_keys(version)
    if len(keys) < 2 or keys[-1] != record:
        return []
    iid = str(version["incident_id"])
    at = int(version.get("updated_at") or version["last_occurred_at"])
    # A report is told `rattache` once, whatever incident a replay puts it in (a correlator
    # restored after a crash may attach it elsewhere): the transition is the report's alone,
    # so a replay's event has the recorded `feedback_id` and is re-sent with its bytes.
    out = []
    if len(keys) == 2:
        out.append(FeedbackEvent(keys[0], RATTACHE, at, incident_id=iid, other_reports=1))
    out.append(FeedbackEvent(record, RATTACHE, at, incident_id=iid, other_reports=len(keys) - 1))
    return out


def handled(
    keys: Sequence[ReportKey],
    incident_id: str,
    status: FeedbackStatus,
    action_id: str,
    at: int,
    outcome: Outcome | None = None,
) -> list[FeedbackEvent]:
    """`pris_en_compte` or `clos` (with `outcome`) for every report of an incident, from one
    console action (`action_id`)."""
    if status not in (PRIS_EN_COMPTE, CLOS):
        raise ValueError(f"not a console transition: {status}")
    if status is CLOS and outcome is None:
        raise ValueError("a closure needs an outcome")
    others = max(0, len(keys) - 1)
    return [
        FeedbackEvent(
            key,
            status,
            at,
            action_id,
            incident_id=incident_id,
            other_reports=others,
            outcome=outcome if status is CLOS else None,
        )
        for key in keys
    ]
