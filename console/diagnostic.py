"""Territorial diagnostic: territories from the reference data, the store's aggregates into an
`agents.core.diagnostic.Diagnostic`, its JSON form, and the console's routes
(`GET /api/diagnostic` JSON, `GET /api/diagnostic/report` the HTML document of
`console.diagnostic_report`, the same as `vigie diagnostic` writes). Blocking functions
run through `run_blocking`."""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

import orjson
from aiohttp import web

from agents.core.correlation.config import ChronicPlaces
from agents.core.diagnostic import (
    DEFAULT_WEEKS,
    MAX_WEEKS,
    WEEK_S,
    AlertSummary,
    ChronicPlace,
    CommuneCount,
    Diagnostic,
    HourCount,
    SlotCount,
    SourceCount,
    Territory,
    TerritoryKind,
    WeekCount,
    build_diagnostic,
)
from agents.core.refdata import RefData
from agents.ports.sql import diagnostic as sql
from agents.ports.sql.query import Query
from agents.ports.store import Store
from console.access import access_of
from console.context import CTX
from console.diagnostic_report import render_html
from console.params import BadRequest

_INSEE = re.compile(r"^[0-9][0-9AB][0-9]{3}$")
_JURISDICTION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_COMMUNES = 200
CHRONIC_LIMIT = 15
ALERT_LIMIT = 30


class UnknownTerritory(ValueError):
    """The territory asked for does not exist (the message is French, for the user)."""


def population_source(refdata: RefData) -> str:
    """Where the populations come from (the reference data's sources and their versions)."""
    sources = refdata.meta.get("sources", {})
    version = sources.get("@etalab/decoupage-administratif", "?")
    return (
        f"population légale INSEE reprise par @etalab/decoupage-administratif {version},"
        " Licence Ouverte"
    )


def territory_of(
    refdata: RefData,
    jurisdictions: dict[str, tuple[str, list[str]]],
    *,
    commune: str | None = None,
    communes: list[str] | None = None,
    jurisdiction: str | None = None,
) -> Territory:
    """The territory of exactly one of `commune`, `communes`, `jurisdiction`
    (`jurisdictions`: id → (name, INSEE codes)). Raises UnknownTerritory."""
    given = [x for x in (commune, communes, jurisdiction) if x]
    if len(given) != 1:
        raise UnknownTerritory("indiquez une commune, une liste de communes ou une circonscription")
    if jurisdiction:
        if not _JURISDICTION.match(jurisdiction) or jurisdiction not in jurisdictions:
            raise UnknownTerritory(f"circonscription inconnue : {jurisdiction[:64]}")
        name, codes = jurisdictions[jurisdiction]
        return Territory(TerritoryKind.JURISDICTION, jurisdiction, name, tuple(sorted(codes)))
    codes = [commune] if commune else list(communes or [])
    if len(codes) > MAX_COMMUNES:
        raise UnknownTerritory(f"trop de communes ({len(codes)}, {MAX_COMMUNES} au plus)")
    resolved: list[str] = []
    for code in codes:
        current = refdata.resolve_insee(code) if _INSEE.match(code) else None
        if current is None:
            raise UnknownTerritory(f"commune inconnue : {code[:16]}")
        if current not in resolved:
            resolved.append(current)
    resolved.sort()
    if len(resolved) == 1:
        code = resolved[0]
        return Territory(TerritoryKind.COMMUNE, code, refdata.communes[code].name, (code,))
    names = [refdata.communes[c].name for c in resolved]
    label = ", ".join(names[:4]) + (f" et {len(names) - 4} autres" if len(names) > 4 else "")
    return Territory(TerritoryKind.GROUP, ",".join(resolved), label, tuple(resolved))


def period_end(now: float) -> int:
    """The default end of a period: the end of the current hour (incidents count in the hour
    they were first seen: the current hour's so far are in)."""
    return (int(now) // 3600 + 1) * 3600


def compute(
    store: Store,
    refdata: RefData,
    territory: Territory,
    weeks: int = DEFAULT_WEEKS,
    until: int | None = None,
) -> Diagnostic:
    """The diagnostic of `territory` over the `weeks` weeks before `until` (blocking)."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise UnknownTerritory(f"nombre de semaines entre 1 et {MAX_WEEKS}")
    end = period_end(time.time()) if until is None else int(until)
    mid = end - weeks * WEEK_S
    start = mid - weeks * WEEK_S
    codes = tuple(territory.communes)
    window = {"start": start, "mid": mid, "end": end}

    def run(query: Query, **params: Any) -> list[dict[str, Any]]:
        # the period's bounds go to the queries that take them
        given = {k: v for k, v in params.items() if k in query.params or k not in window}
        return store.query(query.sql, query.bind(**given))

    chronic = ChronicPlaces()
    by_commune = run(sql.BY_COMMUNE, **window)
    weekly = run(sql.WEEKLY, codes=codes, **window)
    hours = run(sql.HOUR_OF_WEEK, codes=codes, **window)
    slots = run(sql.SLOTS, codes=codes, **window)
    sources = run(sql.SOURCES, codes=codes, mid=mid, end=end)
    places = run(
        sql.CHRONIC_PLACES,
        codes=codes,
        mid=mid,
        end=end,
        categories=tuple(str(c) for c in chronic.categories),
        min_days=chronic.min_days,
        limit=CHRONIC_LIMIT,
    )
    alerts = run(sql.ALERTS, codes_list=list(codes), mid=mid, end=end, limit=ALERT_LIMIT)
    return build_diagnostic(
        territory,
        weeks=weeks,
        until=end,
        populations={c.insee: c.population for c in refdata.communes.values()},
        population_source=population_source(refdata),
        commune_counts=[CommuneCount(r["insee"], r["category"], int(r["n"])) for r in by_commune],
        weekly=[WeekCount(r["category"], int(r["week"]), int(r["n"])) for r in weekly],
        hours=[HourCount(r["category"], int(r["how"]), int(r["n"])) for r in hours],
        sources=[SourceCount(r["kind"], int(r["n"]), int(r["orgs"])) for r in sources],
        chronic=[
            ChronicPlace(
                r["cell"],
                r["commune"],
                int(r["days"]),
                int(r["reports"]),
                float(r["lat"]),
                float(r["lon"]),
            )
            for r in places
        ],
        alerts=[
            AlertSummary(
                r["alert_id"],
                r["category"],
                r["status"],
                int(r["severity"]),
                float(r["observed"]),
                float(r["expected"]),
                int(r["window_start"]),
                int(r["emitted_at"]),
            )
            for r in alerts
        ],
        slots=[SlotCount(r["cell"], r["commune"], int(r["slot"]), int(r["n"])) for r in slots],
    )


def _finite(value: Any) -> Any:
    """JSON has no infinities nor NaN: they become None."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_json(diagnostic: Diagnostic) -> dict[str, Any]:
    """The diagnostic as JSON-ready data (the figures of the page, HTML and PDF)."""
    data = _finite(dataclasses.asdict(diagnostic))
    data["since"] = diagnostic.since
    data["territory"]["kind"] = diagnostic.territory.kind.value
    return dict(data)


# ---- routes ----------------------------------------------------------------------------------
def _territory_from_query(request: web.Request) -> tuple[Territory, int, int | None]:
    ctx = request.app[CTX]
    query = request.query
    allowed = {"commune", "communes", "jurisdiction", "weeks", "until"}
    unknown = sorted(set(query) - allowed)
    if unknown:
        raise BadRequest(f"paramètres inconnus : {', '.join(unknown)}")
    try:
        weeks = int(query.get("weeks", DEFAULT_WEEKS))
        until = int(query["until"]) if "until" in query else None
    except ValueError:
        raise BadRequest("weeks et until doivent être des entiers") from None
    if not 1 <= weeks <= MAX_WEEKS:
        raise BadRequest(f"weeks : entre 1 et {MAX_WEEKS}")
    jurisdictions = {
        jid: (name, ctx.jurisdiction_codes.get(jid, []))
        for jid, name in ctx.jurisdiction_names.items()
    }
    communes = [c.strip() for c in query.get("communes", "").split(",") if c.strip()]
    try:
        territory = territory_of(
            ctx.refdata,
            jurisdictions,
            commune=query.get("commune") or None,
            communes=communes or None,
            jurisdiction=query.get("jurisdiction") or None,
        )
    except UnknownTerritory as exc:
        raise BadRequest(str(exc)) from None
    return territory, weeks, until


def _refusal(request: web.Request, territory: Territory) -> str | None:
    """Why the caller may not see `territory` (None: it may). A partner sees the territories
    inside its perimeter only, and not at all when its perimeter is limited to some
    categories (the diagnostic covers every category); the comparisons with the département
    and the communes of the same size band are aggregates, shown to everyone."""
    access = access_of(request)
    if access.categories:
        return "diagnostic indisponible pour un périmètre limité à certaines catégories"
    if access.communes is not None and not set(territory.communes) <= access.communes:
        return "territoire hors de votre périmètre"
    return None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _forbidden(message: str) -> web.Response:
    return _json({"error": "forbidden", "message": message}, 403)


async def diagnostic_json(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    territory, weeks, until = _territory_from_query(request)
    refused = _refusal(request, territory)
    if refused is not None:
        return _forbidden(refused)
    diag = await ctx.run_blocking(compute, ctx.store, ctx.refdata, territory, weeks, until)
    return _json(to_json(diag))


async def diagnostic_report(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    territory, weeks, until = _territory_from_query(request)
    refused = _refusal(request, territory)
    if refused is not None:
        return _forbidden(refused)
    diag = await ctx.run_blocking(compute, ctx.store, ctx.refdata, territory, weeks, until)
    html = render_html(diag, ctx.refdata)
    return web.Response(text=html, content_type="text/html", charset="utf-8")
