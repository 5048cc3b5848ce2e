"""Operators and partners mark an incident handled: "pris en compte", then "clos" with an
outcome; every report of the incident gets the matching feedback (`agents.core.feedback`).

`POST /api/incidents/{incident_id}/actions` with `{"action": "pris_en_compte" | "clos",
"outcome": ... (clos only: `schemas.feedback.Outcome`), "comment": "...", "action_id":
uuid?}`. Allowed: role `operator`, and role `partner` for an incident inside its perimeter
(`console.access.visible`; outside: 404, as an unknown id). Viewers: 403.

1. The action is recorded, append-only, in `incident_actions` (a known `action_id` with the
   same content is answered again, with another content refused 409, as alert actions).
2. The feedback of every report of the incident's current version that has no transition of
   this status yet (`report_feedback`) is built deterministically from the action (same
   `action_id` -> same bytes), published on the feedback topic and confirmed, and only then
   written to `report_feedback`. A retry with the same `action_id` after a publication
   failure (502) sends what is missing. The comment never leaves the console: it is an
   operators' note, not a reporter's message.

Reports that join the incident after the action get no `pris_en_compte` / `clos` (a known
limit, docs/contract-v1.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import Field, ValidationError, field_validator, model_validator

from agents.core import feedback
from agents.core.feedback import FeedbackEvent
from agents.core.record import ReportKey, member_keys
from agents.ports import metrics
from agents.ports.sql import feedback as sql
from agents.ports.store import Store
from console import queries
from console.access import visible
from console.audit import AuditEvent
from console.auth import Principal
from console.context import CTX, PRINCIPAL
from console.params import BadRequest, _Strict, forbidden_character
from console.publisher import LazyKafkaProducer
from schemas.feedback import FeedbackStatus, Outcome

log = logging.getLogger(__name__)

# publish(records: (key, value) pairs) returns once Kafka confirmed every record, else raises
FeedbackPublisher = Callable[[Sequence[tuple[bytes, bytes]]], Awaitable[None]]
FEEDBACK_PUBLISHER = web.AppKey("feedback_publisher", object)
ACTIONS = {"pris_en_compte": FeedbackStatus.PRIS_EN_COMPTE, "clos": FeedbackStatus.CLOS}
ROUTE = "/api/incidents/{incident_id}/actions"


class IncidentActionBody(_Strict):
    action: Literal["pris_en_compte", "clos"]
    outcome: Outcome | None = Field(None, description="Issue (clos seulement)")
    comment: str = Field(min_length=1, max_length=500)
    action_id: uuid.UUID | None = Field(
        None,
        description="Client-chosen id: retrying with the same id and the same content records"
        " the action once; the same id with another content is refused (409)",
    )

    @field_validator("comment")
    @classmethod
    def _printable(cls, value: str) -> str:
        reason = forbidden_character(value)
        if reason is not None:
            raise ValueError(reason)
        return value

    @model_validator(mode="after")
    def _outcome_with_close(self) -> IncidentActionBody:
        if (self.action == "clos") != (self.outcome is not None):
            raise ValueError("une issue (outcome) est requise pour clore, et seulement pour clore")
        return self


class KafkaFeedbackPublisher(LazyKafkaProducer):
    """The console's publisher of the feedback topic."""

    async def __call__(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        producer = await self._started()
        sent = [await producer.send(self.topic, value=value, key=key) for key, value in records]
        await asyncio.gather(*sent)


def install_feedback_publisher(app: web.Application, publisher: FeedbackPublisher) -> None:
    """Give the console its feedback publisher (before it starts); closed with the app."""
    app[FEEDBACK_PUBLISHER] = publisher

    async def close(_app: web.Application) -> None:
        closer = getattr(publisher, "close", None)
        if closer is not None:
            await closer()

    app.on_cleanup.append(close)


def _json(data: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _incident_id(request: web.Request) -> str:
    value = request.match_info["incident_id"]
    if not (1 <= len(value) <= 128) or not all(c.isalnum() or c in "_.:-" for c in value):
        raise BadRequest("incident_id : identifiant invalide")
    return value


def _body(payload: object) -> IncidentActionBody:
    if not isinstance(payload, dict):
        raise BadRequest("le corps doit être un objet JSON")
    try:
        return IncidentActionBody.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        details = [
            {
                "field": ".".join(str(p) for p in e["loc"]) or "corps",
                "error": e["msg"].removeprefix("Value error, "),
            }
            for e in errors
        ]
        raise BadRequest(
            "; ".join(f"{d['field']}: {d['error']}" for d in details), details
        ) from None


# ---- store calls (on the store's thread) --------------------------------------------------
def stored_action(store: Store, action_id: str) -> list[dict[str, Any]]:
    query = sql.ACTION
    return store.query(query.sql, query.bind(action_id=action_id))


def insert_action(store: Store, row: dict[str, Any]) -> None:
    store.insert(sql.ACTIONS_TABLE, [row])


def recorded(store: Store, keys: Sequence[ReportKey], status: str) -> set[ReportKey]:
    """The identities among `keys` that already have a transition `status`."""
    asked, found = set(keys), set()
    query = sql.RECORDED
    ids = sorted({k.report_id for k in keys})
    for i in range(0, len(ids), 200):  # bounded query size (ids up to 128 characters)
        rows = store.query(query.sql, query.bind(ids=tuple(ids[i : i + 200]), statuses=(status,)))
        for row in rows:
            key = ReportKey(row["source_kind"], row["source_org"], row["report_id"])
            if key in asked:
                found.add(key)
    return found


def insert_feedback(store: Store, events: Sequence[FeedbackEvent], now: float) -> None:
    store.insert(sql.TABLE, [event.row(now) for event in events])


def actions_of(store: Store, incident_id: str) -> list[dict[str, Any]]:
    query = sql.ACTIONS_OF_INCIDENT
    return store.query(query.sql, query.bind(id=incident_id))


def _same(stored: dict[str, Any], row: dict[str, Any]) -> bool:
    keys = ("incident_id", "action", "outcome", "comment", "operator")
    return all(stored[key] == row[key] for key in keys)


def _audit(
    request: web.Request,
    who: Principal,
    outcome: str,
    status: int,
    row: dict[str, Any] | None = None,
    detail: str = "",
) -> AuditEvent:
    ctx = request.app[CTX]
    route = request.match_info.route.resource
    return AuditEvent(
        kind="action",
        outcome=outcome,
        status=status,
        client=ctx.audit.client(request.remote),
        method=request.method,
        route=route.canonical if route else ROUTE,
        principal=who.name,
        role=who.role,
        action_id=str(row["action_id"]) if row else "",
        action=str(row["action"]) if row else "",
        detail=(detail + " " if detail else "")
        + f"incident {request.match_info.get('incident_id', '')[:128]}",
    )


# ---- the handler ---------------------------------------------------------------------------
async def incident_action(request: web.Request) -> web.Response:
    """Record a "pris en compte" / "clos" action on an incident, then tell its reporters."""
    ctx = request.app[CTX]
    who: Principal = request[PRINCIPAL]
    if who.role not in ("operator", "partner"):
        ctx.audit.record(_audit(request, who, "forbidden", 403))
        message = "rôle « operator » ou « partner » requis pour traiter un incident"
        return _json({"error": "forbidden", "message": message}, 403)
    incident_id = _incident_id(request)
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("corps JSON invalide") from None
    body = _body(payload)
    now = int(time.time())
    found = await ctx.run_blocking(queries.get_incident, ctx.store, incident_id, now)
    if found is None or not visible(request, found["insee"], found["category"]):
        return _json({"error": "not_found", "message": f"incident {incident_id} inconnu"}, 404)
    row: dict[str, Any] = {
        "action_id": str(body.action_id or uuid.uuid4()),
        "incident_id": incident_id,
        "action": body.action,
        "outcome": body.outcome.value if body.outcome is not None else "",
        "comment": body.comment,
        "operator": who.name,
        "role": who.role,
        "org": getattr(who, "org", ""),
        "at": now,
    }
    status = ACTIONS[body.action]
    keys = member_keys(found)
    async with ctx.action_lock:  # check then insert, one at a time
        stored: list[dict[str, Any]] = []
        if body.action_id is not None:
            stored = await ctx.run_blocking(stored_action, ctx.store, row["action_id"])
        if any(not _same(s, row) for s in stored):
            ctx.audit.record(_audit(request, who, "conflict", 409, row, "action_id already used"))
            message = (
                f"action_id {row['action_id']} déjà enregistré pour une autre action :"
                " l'historique des actions ne se réécrit pas, envoyez un nouvel action_id"
            )
            return _json(
                {"error": "conflict", "message": message, "action_id": row["action_id"]}, 409
            )
        if stored:
            row = {key: stored[0][key] for key in row}  # the action as first recorded
        else:
            await ctx.run_blocking(insert_action, ctx.store, row)
        told = await ctx.run_blocking(recorded, ctx.store, keys, status.value)
        events = feedback.handled(
            [k for k in keys if k not in told],
            incident_id,
            status,
            str(row["action_id"]),
            int(row["at"]),
            body.outcome,
        )
        ctx.audit.record(_audit(request, who, "replayed" if stored else "recorded", 201, row))
        publisher = request.app.get(FEEDBACK_PUBLISHER)
        if events and callable(publisher):
            try:
                await publisher([(e.kafka_key(), e.encode()) for e in events])
            except Exception as exc:
                log.warning("incident action %s: feedback not published: %s", row["action_id"], exc)
                message = (
                    "action enregistrée mais retour aux signalants non publié :"
                    " réessayez avec le même action_id"
                )
                return _json(
                    {"error": "publish_failed", "message": message, "action_id": row["action_id"]},
                    502,
                )
        if events:
            await ctx.run_blocking(insert_feedback, ctx.store, events, time.time())
            for event in events:
                metrics.count_feedback(event.status.value, None)
    if not stored:
        ctx.hub.publish("change", {"incident_actions": True, "at": now})
    return _json(
        {
            "action_id": row["action_id"],
            "incident_id": incident_id,
            "action": row["action"],
            "outcome": row["outcome"] or None,
            "at": int(row["at"]),
            "reports_notified": len(events),
            "reports": len(keys),
            "published": callable(publisher),
        },
        201,
    )
