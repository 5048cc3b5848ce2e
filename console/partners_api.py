"""The partner registry in the console: operators list, add and change partners.

Routes (role `operator` only, enforced here; viewers and partners get 403):
- `GET /api/partners`: every partner's current entry (never its secrets);
- `POST /api/partners`: register one (body: the entry's JSON form); the answer carries its
  console token and webhook secret, shown this once;
- `GET /api/partners/{org}`: one entry and its history (newest first, at most 50);
- `PATCH /api/partners/{org}`: change fields (a new version); `version` in the body, when
  given, must be the current one (409 otherwise: someone changed it meanwhile);
- `POST /api/partners/{org}/secrets`: new console token and/or webhook secret
  (`{"token": true, "webhook_secret": true}`), shown this once.

Invalid entries get 400 with every problem (`details`); every change is audited (kind
`partner`, never a secret) and takes effect at once on this console, within a few seconds on
the others (`console.partners.PartnerDirectory`).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from agents.core.partners import PartnerError
from agents.ports import partner_registry
from agents.ports.partner_registry import Issued
from console.audit import AuditEvent
from console.auth import Principal
from console.context import CTX, PRINCIPAL, ConsoleContext
from console.params import BadRequest

MAX_HISTORY = 50


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _audit(request: web.Request, outcome: str, status: int, action: str, org: str = "") -> None:
    ctx: ConsoleContext = request.app[CTX]
    who: Principal = request[PRINCIPAL]
    route = request.match_info.route.resource
    ctx.audit.record(
        AuditEvent(
            kind="partner",
            outcome=outcome,
            status=status,
            client=ctx.audit.client(request.remote),
            method=request.method,
            route=route.canonical if route else "",
            principal=who.name,
            role=who.role,
            action=action,
            detail=org[:64],
        )
    )


def _refused(request: web.Request, action: str) -> web.Response | None:
    who: Principal = request[PRINCIPAL]
    if who.role == "operator":
        return None
    _audit(request, "forbidden", 403, action)
    message = "rôle « operator » requis pour consulter ou modifier les partenaires"
    return _json({"error": "forbidden", "message": message}, 403)


def _invalid(exc: PartnerError) -> web.Response:
    details = [{"field": "partenaire", "error": p} for p in exc.problems]
    message = "partenaire invalide — " + "; ".join(exc.problems)
    return _json({"error": "bad_request", "message": message, "details": details}, 400)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("corps JSON invalide") from None
    if not isinstance(payload, dict):
        raise BadRequest("le corps doit être un objet JSON")
    return payload


def _org(request: web.Request) -> str:
    org = request.match_info["org"]
    if not (1 <= len(org) <= 64) or not all(c.isalnum() or c == "-" for c in org):
        raise BadRequest("org : identifiant invalide")
    return org


def _issued(issued: Issued) -> dict[str, Any]:
    out: dict[str, Any] = {"partner": issued.partner.public()}
    if issued.token:
        out["console_token"] = issued.token
    if issued.webhook_secret:
        out["webhook_secret"] = issued.webhook_secret
    return out


async def _refresh(ctx: ConsoleContext) -> None:
    if ctx.partners is not None:
        await ctx.partners.refresh(force=True)


async def list_partners(request: web.Request) -> web.Response:
    refused = _refused(request, "list")
    if refused is not None:
        return refused
    ctx: ConsoleContext = request.app[CTX]
    snapshot = await ctx.run_blocking(partner_registry.load, ctx.store)
    return _json(
        {
            "items": [p.public() for p in snapshot.partners.values()],
            "unreadable": sorted(snapshot.unreadable),
        }
    )


async def add_partner(request: web.Request) -> web.Response:
    refused = _refused(request, "add")
    if refused is not None:
        return refused
    ctx: ConsoleContext = request.app[CTX]
    who: Principal = request[PRINCIPAL]
    body = await _body(request)
    juris = ctx.partners.jurisdictions if ctx.partners is not None else None
    try:
        issued = await ctx.run_blocking(
            partner_registry.add, ctx.store, body, ctx.refdata, juris, who.name
        )
    except PartnerError as exc:
        _audit(request, "invalid", 400, "add", str(body.get("org", "")))
        return _invalid(exc)
    _audit(request, "recorded", 201, "add", issued.partner.org)
    await _refresh(ctx)
    return _json(_issued(issued), 201)


async def get_partner(request: web.Request) -> web.Response:
    refused = _refused(request, "show")
    if refused is not None:
        return refused
    ctx: ConsoleContext = request.app[CTX]
    org = _org(request)
    versions = await ctx.run_blocking(partner_registry.history, ctx.store, org, MAX_HISTORY)
    if not versions:
        return _json({"error": "not_found", "message": f"partenaire {org} inconnu"}, 404)
    return _json({"partner": versions[0].public(), "history": [p.public() for p in versions]})


async def update_partner(request: web.Request) -> web.Response:
    refused = _refused(request, "update")
    if refused is not None:
        return refused
    ctx: ConsoleContext = request.app[CTX]
    who: Principal = request[PRINCIPAL]
    org = _org(request)
    body = await _body(request)
    expected = body.pop("version", None)
    if expected is not None and not isinstance(expected, int):
        raise BadRequest("version : entier attendu")
    juris = ctx.partners.jurisdictions if ctx.partners is not None else None
    try:
        partner = await ctx.run_blocking(
            lambda: partner_registry.update(
                ctx.store, org, body, ctx.refdata, juris, who.name, expected_version=expected
            )
        )
    except PartnerError as exc:
        if any(p == "unknown partner" for p in exc.problems):
            return _json({"error": "not_found", "message": f"partenaire {org} inconnu"}, 404)
        if any(p.startswith("changed meanwhile") for p in exc.problems):
            _audit(request, "conflict", 409, "update", org)
            message = "partenaire modifié entre-temps : rechargez puis recommencez"
            return _json({"error": "conflict", "message": message}, 409)
        _audit(request, "invalid", 400, "update", org)
        return _invalid(exc)
    _audit(request, "recorded", 200, "update", org)
    await _refresh(ctx)
    return _json({"partner": partner.public()})


async def rotate_secrets(request: web.Request) -> web.Response:
    refused = _refused(request, "rotate")
    if refused is not None:
        return refused
    ctx: ConsoleContext = request.app[CTX]
    who: Principal = request[PRINCIPAL]
    org = _org(request)
    body = await _body(request)
    token, secret = body.get("token", False), body.get("webhook_secret", False)
    if set(body) - {"token", "webhook_secret"} or not isinstance(token, bool):
        raise BadRequest('corps attendu : {"token": bool, "webhook_secret": bool}')
    if not isinstance(secret, bool) or not (token or secret):
        raise BadRequest("indiquez token et/ou webhook_secret à true")
    try:
        issued = await ctx.run_blocking(
            lambda: partner_registry.rotate(
                ctx.store, org, who.name, token=token, webhook_secret=secret
            )
        )
    except PartnerError:
        return _json({"error": "not_found", "message": f"partenaire {org} inconnu"}, 404)
    _audit(request, "recorded", 200, "rotate", org)
    await _refresh(ctx)
    return _json(_issued(issued))


# (method, path, handler, auth), added to `console.api.ROUTES`
PARTNER_ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/partners", list_partners, "bearer"),
    ("POST", "/api/partners", add_partner, "bearer"),
    ("GET", "/api/partners/{org}", get_partner, "bearer"),
    ("PATCH", "/api/partners/{org}", update_partner, "bearer"),
    ("POST", "/api/partners/{org}/secrets", rotate_secrets, "bearer"),
]


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI entries of `PARTNER_ROUTES` (merged into `console.openapi`)."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    def op(
        summary: str, ok: str, *codes: int, body: bool = False, path: bool = False
    ) -> dict[str, Any]:
        responses: dict[str, Any] = {
            "200" if "201" not in ok else "201": {
                "description": ok.replace("201 ", ""),
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        }
        texts = {
            400: "Entrée invalide (chaque problème dans details)",
            401: "Jeton manquant ou invalide",
            403: "Rôle « operator » requis",
            404: "Partenaire inconnu",
            409: "Modifié entre-temps",
        }
        responses.update({str(c): {"description": texts[c], **error} for c in (401, 403, *codes)})
        out: dict[str, Any] = {"summary": summary, "responses": responses}
        if path:
            out["parameters"] = [
                {"name": "org", "in": "path", "required": True, "schema": {"type": "string"}}
            ]
        if body:
            out["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        return out

    return {
        "/api/partners": {
            "get": op("Partenaires (entrée courante, sans secrets) — opérateur", "Liste"),
            "post": op(
                "Enregistrer un partenaire ; jeton et secret montrés une seule fois",
                "201 Enregistré",
                400,
                body=True,
            ),
        },
        "/api/partners/{org}": {
            "get": op("Un partenaire et son historique de versions", "Partenaire", 404, path=True),
            "patch": op(
                "Modifier un partenaire (nouvelle version)",
                "Modifié",
                400,
                404,
                409,
                body=True,
                path=True,
            ),
        },
        "/api/partners/{org}/secrets": {
            "post": op(
                "Nouveau jeton console et/ou secret webhook (montrés une fois)",
                "Secrets",
                400,
                404,
                body=True,
                path=True,
            ),
        },
    }
