"""Scoped access: what the caller may see, applied server-side to every read and action.

The auth middleware sets `ACCESS` on each authenticated request (`AccessScope.ALL` for
viewers and operators, the partner's perimeter for a partner, `AccessScope.NOTHING` for a
partner the registry does not know or has disabled). Handlers never build a `Scope` for
the store themselves: `filter_scope` adds the perimeter to the user's filters; a row read by
id is shown only if `visible` (else 404, as an unknown id); `minimise_*` drop what a partner
must not receive (other principals' comments and names, other sources' report ids).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agents.core.partners import AccessScope, DeliveryKind
from agents.ports.sql.scope import Scope
from console.auth import Principal
from console.context import CTX, PRINCIPAL
from console.live import EventView
from console.params import Filters

ACCESS = web.RequestKey("console_access", AccessScope)


def access_for(request: web.Request, who: Principal) -> AccessScope:
    partners = request.app[CTX].partners
    if not who.is_partner:
        return AccessScope.ALL
    return partners.access(who) if partners is not None else AccessScope.NOTHING


def access_of(request: web.Request) -> AccessScope:
    """The caller's access scope (NOTHING if the middleware did not set one: fail closed)."""
    found = request.get(ACCESS)
    return found if isinstance(found, AccessScope) else AccessScope.NOTHING


def filter_scope(request: web.Request, f: Filters) -> Scope:
    """The store `Scope` of the user's filters `f`, restricted to the caller's perimeter."""
    ctx = request.app[CTX]
    codes = ctx.jurisdiction_codes.get(f.jurisdiction, []) if f.jurisdiction else None
    access = access_of(request)
    return Scope(
        f.category.value if f.category else None,
        f.insee,
        f.jurisdiction,
        codes,
        perimeter_insee=None if access.communes is None else tuple(sorted(access.communes)),
        perimeter_categories=tuple(sorted(access.categories)),
    )


def visible(request: web.Request, insee: Any, category: Any) -> bool:
    """Whether a row of commune(s) `insee` and `category` is inside the caller's scope."""
    codes = [str(c) for c in insee] if isinstance(insee, list | tuple) else insee
    return access_of(request).allows(codes, None if category is None else str(category))


def minimise_alert(request: web.Request, alert: dict[str, Any]) -> dict[str, Any]:
    """For a partner: the operator state and actions without other principals' names and
    comments (their own kept). Changes `alert` in place."""
    return _minimise_alert(request[PRINCIPAL], alert)


def _minimise_alert(who: Principal, alert: dict[str, Any]) -> dict[str, Any]:
    if not who.is_partner:
        return alert
    state = alert.get("operator_state")
    if isinstance(state, dict) and state.get("operator") != who.name:
        alert["operator_state"] = {**state, "operator": "", "comment": ""}
    actions = alert.get("actions")
    if isinstance(actions, list):
        alert["actions"] = [
            a if a.get("operator") == who.name else {**a, "operator": "", "comment": ""}
            for a in actions
        ]
    return alert


def stream_view(request: web.Request) -> EventView | None:
    """What the live stream of the caller lets through: everything for viewers and
    operators; for a partner, the alerts inside its perimeter as it is now (the registry may
    change while the stream is open), minimised. `change` and `status` events carry only
    booleans and times (the page then re-reads the API, scoped)."""
    who: Principal = request[PRINCIPAL]
    if not who.is_partner:
        return None
    partners = request.app[CTX].partners
    # `?feed=subscriptions`: only the alerts the partner subscribed to (kind alert, its
    # categories), the same selection as its webhook deliveries
    subscribed_only = request.query.get("feed") == "subscriptions"

    def view(event: str, data: Any) -> Any:
        if event != "alert":
            return data
        access = partners.access(who) if partners is not None else AccessScope.NOTHING
        if not isinstance(data, dict) or not access.allows(
            [str(c) for c in data.get("insee") or []], str(data.get("category"))
        ):
            return None
        if subscribed_only and not _subscribed(partners, who, str(data.get("category"))):
            return None
        return _minimise_alert(who, dict(data))

    return view


def _subscribed(partners: Any, who: Principal, category: str) -> bool:
    """Whether one of the partner's subscriptions pushes alerts of `category`."""
    partner = partners.partner(who.org) if partners is not None else None
    if partner is None:
        return False
    return any(
        DeliveryKind.ALERT in sub.kinds and (not sub.categories or category in sub.categories)
        for sub in partner.subscriptions
    )


def minimise_incident(request: web.Request, incident: dict[str, Any]) -> dict[str, Any]:
    """For a partner: report ids and orgs of its own organisation's reports only (another
    source's ids are that source's business)."""
    who: Principal = request[PRINCIPAL]
    if not who.is_partner:
        return incident
    orgs = list(incident.get("report_source_orgs") or [])
    ids = list(incident.get("report_ids") or [])
    if len(orgs) == len(ids):
        incident["report_ids"] = [i if o == who.org else "" for i, o in zip(ids, orgs, strict=True)]
        incident["report_source_orgs"] = [o if o == who.org else "" for o in orgs]
    else:  # versions without sources: no id can be attributed
        incident["report_ids"] = []
        incident["report_source_orgs"] = []
    for report in incident.get("reports") or []:
        if report.get("source_org") != who.org:
            report["report_id"] = ""
            report["source_org"] = ""
    return incident
