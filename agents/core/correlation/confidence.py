"""Confidence of an incident from its independent reporters.

Formula (noisy-OR): each *independent reporter* i has a weight w_i in (0, 1), the
probability that a report from such a source alone is a real incident; the confidence is

    confidence = 1 - prod_i (1 - w_i)

Independent reporters: one per partner organisation (`source_org`, whatever its number of
records), one per citizen contact hash (the same citizen reporting twice counts once), and
one per anonymous citizen report (no contact: cannot be deduplicated, weighted lower).
Weights: police / gendarmerie 0.6 > municipal police 0.45 > other partners 0.4 > citizen
with a contact 0.25 > anonymous citizen 0.15. One police record gives 0.6, police and a
citizen 0.7, three distinct citizens with contacts 0.58. The result is in [0, 1), rounded
to 4 decimals, and never decreases when a report is added.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from schemas.enums import SourceKind

PARTNER_WEIGHTS: dict[str, float] = {
    SourceKind.POLICE_NATIONALE: 0.6,
    SourceKind.GENDARMERIE: 0.6,
    SourceKind.POLICE_MUNICIPALE: 0.45,
}
OTHER_PARTNER_WEIGHT = 0.4
CITIZEN_WEIGHT = 0.25
ANONYMOUS_CITIZEN_WEIGHT = 0.15
_CITIZEN = SourceKind.CITIZEN


class Reporter(Protocol):
    """Who sent a member report (`incident.Member` is one)."""

    @property
    def report_id(self) -> str: ...
    @property
    def source_kind(self) -> str: ...
    @property
    def source_org(self) -> str: ...
    @property
    def contact_hash(self) -> str | None: ...


def source_weight(source_kind: str, has_contact: bool = True) -> float:
    """Weight of one reporter of `source_kind` (also used to vote the incident category)."""
    if source_kind == _CITIZEN:
        return CITIZEN_WEIGHT if has_contact else ANONYMOUS_CITIZEN_WEIGHT
    return PARTNER_WEIGHTS.get(source_kind, OTHER_PARTNER_WEIGHT)


def reporter_key(member: Reporter) -> str:
    """Identity of the reporter of a member report (see the module docstring)."""
    if member.source_kind != _CITIZEN:
        return f"org:{member.source_org}"
    contact = member.contact_hash
    return f"contact:{contact}" if contact else f"anon:{member.report_id}"


def confidence(members: Iterable[Reporter]) -> float:
    weights: dict[str, float] = {}
    for m in members:
        key = reporter_key(m)
        w = source_weight(m.source_kind, bool(m.contact_hash))
        weights[key] = max(weights.get(key, 0.0), w)
    miss = 1.0
    for w in weights.values():
        miss *= 1.0 - w
    return round(1.0 - miss, 4)
