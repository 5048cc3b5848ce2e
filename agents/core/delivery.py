"""Webhook delivery to partners: signature, idempotency key, payload projection, matching,
backoff and the delivery state folded from its logged events. Pure: no I/O.

Wire scheme (docs/webhooks.md):

- body: `{"kind": "incident"|"alert", "delivery_id": ..., "data": {...}}`, UTF-8 JSON, the
  same bytes at every attempt of a delivery;
- `Vigie-Delivery-Id`: the idempotency key, a stable hash of (partner, kind, object id,
  object version): a retry, a replay or a re-delivery after a crash carries the same key;
- `Vigie-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`: the
  partner recomputes the HMAC with its secret and refuses a stale `t` (replay protection).

What a partner receives is an allow-list of fields per kind (`INCIDENT_FIELDS`,
`ALERT_FIELDS`): never a report's contact or free text, pseudonymised or not, nor the ids
or organisations of the reports behind an incident.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from agents.core.jurisdictions import Jurisdictions
from agents.core.partners import Partner

SIGNATURE_HEADER = "Vigie-Signature"
DELIVERY_ID_HEADER = "Vigie-Delivery-Id"
KIND_HEADER = "Vigie-Event"
SIGNATURE_TOLERANCE_SECONDS = 300  # what docs/webhooks.md tells partners to accept


class ObjectKind(StrEnum):
    INCIDENT = "incident"
    ALERT = "alert"


# --- data minimisation ------------------------------------------------------------------
# Fields of an incident version (schemas.incident.Incident) a partner receives. Left out:
# report_ids, report_source_kinds, report_source_orgs (which reports and which
# organisations are behind the incident: other partners' data, and a path back to a citizen).
INCIDENT_FIELDS: tuple[str, ...] = (
    "incident_id",
    "version",
    "status",
    "category",
    "categories",
    "report_count",
    "source_kinds",
    "first_occurred_at",
    "last_occurred_at",
    "first_seen_at",
    "updated_at",
    "lat",
    "lon",
    "precision",
    "insee",
    "commune",
    "h3",
    "jurisdiction",
    "confidence",
)
INCIDENT_EXCLUDED: frozenset[str] = frozenset(
    {"report_ids", "report_source_kinds", "report_source_orgs"}
)
# Fields of an alert message (schemas.alert.Alert). Left out: detector (an internal name).
ALERT_FIELDS: tuple[str, ...] = (
    "alert_id",
    "version",
    "status",
    "kind",
    "category",
    "center",
    "radius_m",
    "cells",
    "insee",
    "window_start",
    "window_end",
    "observed",
    "expected",
    "score",
    "severity",
    "emitted_at",
)
ALERT_EXCLUDED: frozenset[str] = frozenset({"detector"})
FIELDS: Mapping[ObjectKind, tuple[str, ...]] = {
    ObjectKind.INCIDENT: INCIDENT_FIELDS,
    ObjectKind.ALERT: ALERT_FIELDS,
}


def project(kind: ObjectKind, message: Mapping[str, Any]) -> dict[str, Any]:
    """The allow-listed fields of a validated message (JSON values), in the documented
    order; a field the message lacks is left out."""
    return {name: message[name] for name in FIELDS[kind] if name in message}


# --- the object a delivery is about -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeliveryObject:
    """One published incident version or alert step, reduced to what matching needs and
    what a partner receives (`data`, already projected)."""

    kind: ObjectKind
    object_id: str
    version: int
    category: str
    insee: frozenset[str]  # an incident's commune; the communes an alert covers
    data: Mapping[str, Any]


def incident_object(message: Mapping[str, Any]) -> DeliveryObject:
    """From a validated incident (`Incident.model_dump(mode="json")`)."""
    return DeliveryObject(
        ObjectKind.INCIDENT,
        str(message["incident_id"]),
        int(message["version"]),
        str(message["category"]),
        frozenset({str(message["insee"])}),
        project(ObjectKind.INCIDENT, message),
    )


def alert_object(message: Mapping[str, Any]) -> DeliveryObject:
    """From a validated alert (`Alert.model_dump(mode="json")`)."""
    return DeliveryObject(
        ObjectKind.ALERT,
        str(message["alert_id"]),
        int(message["version"]),
        str(message["category"]),
        frozenset(str(i) for i in message["insee"]),
        project(ObjectKind.ALERT, message),
    )


# --- subscriptions ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    """A partner's webhook: what it wants (kinds, categories; empty: all) in its perimeter
    (INSEE codes of communes), and where it goes. `secret` never appears in a repr."""

    org: str
    url: str
    secret: bytes = field(repr=False)
    kinds: frozenset[ObjectKind] = frozenset(ObjectKind)
    categories: frozenset[str] = frozenset()
    insee: frozenset[str] = frozenset()

    def matches(self, obj: DeliveryObject) -> bool:
        return (
            obj.kind in self.kinds
            and (not self.categories or obj.category in self.categories)
            and bool(self.insee & obj.insee)
        )


def matching(
    subscriptions: Iterable[WebhookSubscription], obj: DeliveryObject
) -> list[WebhookSubscription]:
    """The subscriptions `obj` goes to, one per partner (a partner with two matching
    webhooks gets it at the first: one delivery id per partner and object version)."""
    seen: set[str] = set()
    out = []
    for sub in subscriptions:
        if sub.org not in seen and sub.matches(obj):
            seen.add(sub.org)
            out.append(sub)
    return out


LOOPBACK_NAMES = frozenset({"localhost"})


def url_problem(url: str, *, allow_loopback_http: bool) -> str | None:
    """Why `url` cannot receive deliveries, or None: HTTPS only; plain HTTP only to a
    loopback host and only when allowed (local development); no credentials in the URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises on a bad port
    except ValueError:
        return "not a valid URL"
    if not host:
        return "no host"
    if parts.username or parts.password:
        return "credentials in the URL"
    if parts.scheme == "https":
        return None
    if parts.scheme != "http":
        return "scheme must be https"
    if not allow_loopback_http:
        return "plain http refused (https only)"
    if host in LOOPBACK_NAMES:
        return None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return None if loopback else "plain http is allowed to a loopback host only"


def subscriptions_of(
    partners: Iterable[Partner], jurisdictions: Jurisdictions | None
) -> list[WebhookSubscription]:
    """The webhooks of the partner registry's current entries: one per subscription of an
    active partner that has a webhook URL and a signing secret, inside its perimeter (its
    jurisdictions expanded to communes) and of its categories (the subscription's, else the
    perimeter's; empty: all)."""
    out = []
    for partner in partners:
        url, secret = partner.contact.webhook_url, partner.credentials.webhook_secret
        if not partner.active or not url or not secret:
            continue
        insee = partner.perimeter.expand(jurisdictions)
        for sub in partner.subscriptions:
            categories = sub.categories or partner.perimeter.categories
            if partner.perimeter.categories:
                categories = categories & partner.perimeter.categories
                if not categories:  # none left: nothing to deliver (empty would mean all)
                    continue
            kinds = frozenset(ObjectKind(k.value) for k in sub.kinds)
            out.append(
                WebhookSubscription(
                    partner.org, url, secret.encode(), kinds, frozenset(categories), insee
                )
            )
    return out


# --- signature and idempotency --------------------------------------------------------------
def delivery_id(org: str, kind: ObjectKind, object_id: str, version: int) -> str:
    """The idempotency key: the same for every attempt, replay or re-delivery of one object
    version to one partner."""
    material = "\x1f".join((org, kind.value, object_id, str(version))).encode()
    return "whd_" + hashlib.sha256(material).hexdigest()[:32]


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>." + body`."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(
    secret: bytes,
    header: str,
    body: bytes,
    now: float,
    tolerance_s: float = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: a `v1` signature of this body under `secret`, stamped within
    `tolerance_s` of `now` (constant-time comparison)."""
    items = [part.partition("=") for part in header.split(",")]
    stamps = [v for k, _, v in items if k.strip() == "t"]
    sigs = [v.strip() for k, _, v in items if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not sigs:
        return False
    t = int(stamps[0])
    if abs(now - t) > tolerance_s:
        return False
    expected = signature(secret, t, body)
    return any(hmac.compare_digest(expected, s) for s in sigs)


def body_of(kind: ObjectKind, did: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The document a delivery POSTs (serialised once, when queued)."""
    return {"kind": kind.value, "delivery_id": did, "data": dict(data)}


# --- retries ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, capped; after `max_attempts` failed attempts a
    delivery is parked (dead-lettered) until an operator replays it."""

    max_attempts: int = 8
    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Pause after the `failures`-th failed attempt (1-based): uniform in
        [0, min(max, base * 2**(failures-1))]."""
        cap = min(self.max_seconds, self.base_seconds * 2 ** min(max(failures - 1, 0), 32))
        return (rng or random).uniform(0.0, cap)

    def parks(self, failures: int) -> bool:
        return failures >= self.max_attempts


# --- delivery state, folded from its events -----------------------------------------------
class DeliveryEvent(StrEnum):
    QUEUED = "queued"  # written with the payload before the consumer commits its offsets
    FAILED = "failed"  # an attempt that got no 2xx (status, error, next attempt time)
    DELIVERED = "delivered"  # an attempt that got a 2xx: final
    PARKED = "parked"  # the last allowed attempt failed: waits for an operator
    REPLAYED = "replayed"  # an operator replayed a parked delivery: a fresh attempt budget


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    PARKED = "parked"


PENDING_EVENTS = (DeliveryEvent.QUEUED, DeliveryEvent.FAILED, DeliveryEvent.REPLAYED)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One logged event of a delivery (a row of the outbox)."""

    delivery_id: str
    seq: int  # order of the events of one delivery (0: queued)
    event: DeliveryEvent
    at: float
    next_at: float = 0.0
    payload: str = ""  # on the queued event only


@dataclass(frozen=True, slots=True)
class Fold:
    """A delivery's state: where it stands, attempts since it was queued or replayed, the
    next event's sequence number, when it is due and its body."""

    delivery_id: str
    state: DeliveryState
    failures: int
    next_seq: int
    due_at: float
    payload: str


def fold(events: Sequence[EventRow]) -> Fold:
    """The state of one delivery from its events (any order; re-queued copies after a
    Kafka replay change nothing). Delivered is final."""
    ordered = sorted(events, key=lambda e: e.seq)
    if not ordered:
        raise ValueError("a delivery has at least its queued event")
    state, failures, due, payload = DeliveryState.PENDING, 0, 0.0, ""
    for e in ordered:
        if e.payload:
            payload = e.payload
        if state is DeliveryState.DELIVERED:
            continue
        if e.event is DeliveryEvent.QUEUED:
            due = due or e.at
        elif e.event is DeliveryEvent.FAILED:
            failures += 1
            due = e.next_at
        elif e.event is DeliveryEvent.DELIVERED:
            state = DeliveryState.DELIVERED
        elif e.event is DeliveryEvent.PARKED:
            state = DeliveryState.PARKED
        elif e.event is DeliveryEvent.REPLAYED:
            state, failures, due = DeliveryState.PENDING, 0, e.at
    return Fold(ordered[0].delivery_id, state, failures, ordered[-1].seq + 1, due, payload)
