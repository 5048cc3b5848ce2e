"""The partner registry's values: who a partner is, what it may see, where it is delivered.

A partner is an organisation that emits reports (`source.org` of contract v1: a
commissariat, a gendarmerie brigade, a municipal police, a transport operator...) and that
may receive, inside its *perimeter* only, the incidents and alerts Vigie derives.

- `Perimeter`: communes (INSEE codes) and/or jurisdictions (ids of the jurisdiction
  mapping, expanded to their communes), and the categories it handles (empty: all);
- `Subscription`: what is pushed to the partner (alerts and/or incidents, categories);
- `Contact`: where deliveries go (an https webhook) and a desk e-mail for the ops room;
- `Credentials`: the partner's secrets (webhook signing secret, SHA-256 of its console
  token). They are kept with the registry but never shown by the API or the CLI except when
  created or rotated (`Partner.public()` leaves them out);
- `Partner`: one version of a partner's entry (`version` grows at every change; the
  storage keeps every version);
- `AccessScope`: the communes and categories a principal may see (`AccessScope.ALL` for
  the ops room), derived from a partner's perimeter.

`validate_partner` returns every problem of an entry as a clear sentence (unknown commune,
unknown jurisdiction, empty perimeter, bad URL...); `partner_from_dict` parses the JSON
form (CLI import files, console API) and raises `PartnerError` with all of them.

Pure: no I/O (the storage is `agents/ports/sql/partners.py`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar
from urllib.parse import urlsplit

from agents.core.jurisdictions import Jurisdictions
from agents.core.refdata import RefData
from schemas.enums import CATEGORIES, SourceKind

ORG_PATTERN = re.compile(r"^[a-z0-9-]{1,64}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
NAME_MAX = 120
URL_MAX = 500


class PartnerKind(StrEnum):
    """The partner kinds of contract v1 (`source.kind` without `citizen`)."""

    POLICE_NATIONALE = SourceKind.POLICE_NATIONALE.value
    GENDARMERIE = SourceKind.GENDARMERIE.value
    POLICE_MUNICIPALE = SourceKind.POLICE_MUNICIPALE.value
    TRANSPORT = SourceKind.TRANSPORT.value
    BAILLEUR_SOCIAL = SourceKind.BAILLEUR_SOCIAL.value
    EDUCATION = SourceKind.EDUCATION.value
    SECURITE_PRIVEE = SourceKind.SECURITE_PRIVEE.value
    COLLECTIVITE = SourceKind.COLLECTIVITE.value


PARTNER_KINDS: tuple[str, ...] = tuple(k.value for k in PartnerKind)


class DeliveryKind(StrEnum):
    """What a subscription pushes."""

    ALERT = "alert"
    INCIDENT = "incident"


DELIVERY_KINDS: tuple[str, ...] = tuple(k.value for k in DeliveryKind)


class PartnerError(ValueError):
    """An invalid partner entry; `problems` lists every one (never a secret)."""

    def __init__(self, problems: list[str], org: str = "") -> None:
        self.problems = list(problems)
        self.org = org
        prefix = f"partner {org!r}: " if org else "partner: "
        super().__init__(prefix + "; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class Perimeter:
    """Where a partner acts: communes and jurisdictions (their union), categories (empty:
    every category)."""

    communes: frozenset[str] = frozenset()
    jurisdictions: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        return not self.communes and not self.jurisdictions

    def expand(self, jurisdictions: Jurisdictions | None) -> frozenset[str]:
        """The INSEE codes the perimeter covers (jurisdictions expanded to their communes;
        an unknown jurisdiction covers nothing)."""
        codes = set(self.communes)
        if self.jurisdictions and jurisdictions is not None:
            codes.update(
                insee for insee, j in jurisdictions.by_insee.items() if j.id in self.jurisdictions
            )
        return frozenset(codes)


@dataclass(frozen=True, slots=True)
class Subscription:
    """Pushed to the partner: `kinds` (alert, incident) of `categories` (empty: every
    category of the perimeter), always inside the perimeter."""

    kinds: frozenset[DeliveryKind]
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Contact:
    """Where deliveries go: an https webhook (loopback http allowed, for development), and a
    desk e-mail the ops room can reach (never sent to anyone by Vigie)."""

    webhook_url: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Credentials:
    """A partner's secrets: the webhook signing secret (HMAC-SHA256 of each delivery) and the
    SHA-256 hex digest of its console/API token. Never shown except at creation/rotation."""

    webhook_secret: str = field(default="", repr=False)
    token_sha256: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Partner:
    """One version of a partner's registry entry. `org` is its `source.org` (a slug
    `[a-z0-9-]{1,64}`) and its identity in the registry."""

    org: str
    name: str
    kind: PartnerKind
    perimeter: Perimeter
    contact: Contact = Contact()
    subscriptions: tuple[Subscription, ...] = ()
    active: bool = True
    version: int = 0
    updated_at: datetime | None = None
    updated_by: str = ""
    credentials: Credentials = Credentials()

    def scope(self, jurisdictions: Jurisdictions | None) -> AccessScope:
        """What the partner may see (nothing when disabled)."""
        if not self.active:
            return AccessScope.NOTHING
        return AccessScope(self.perimeter.expand(jurisdictions), self.perimeter.categories)

    def public(self) -> dict[str, Any]:
        """The JSON form without the credentials (API, CLI, audit)."""
        return partner_to_dict(self, with_credentials=False)

    def next_version(self, updated_at: datetime, updated_by: str, **changes: Any) -> Partner:
        """The entry's next version with `changes` applied."""
        return replace(
            self,
            **changes,
            version=self.version + 1,
            updated_at=updated_at,
            updated_by=updated_by,
        )


@dataclass(frozen=True, slots=True)
class AccessScope:
    """The communes and categories a principal may see. `communes` None: the whole area;
    `categories` empty: every category. Enforced by the server in every query."""

    communes: frozenset[str] | None
    categories: frozenset[str] = frozenset()

    ALL: ClassVar[AccessScope]  # the whole area (set below)
    NOTHING: ClassVar[AccessScope]  # no commune at all (a disabled partner)

    @property
    def unrestricted(self) -> bool:
        return self.communes is None and not self.categories

    def allows(self, insee: Iterable[str] | str | None, category: str | None) -> bool:
        """Whether a row of commune(s) `insee` and `category` is inside the scope (an alert
        carries several communes: one inside is enough)."""
        if self.categories and (category is None or category not in self.categories):
            return False
        if self.communes is None:
            return True
        if insee is None:
            return False
        codes = [insee] if isinstance(insee, str) else list(insee)
        return any(code in self.communes for code in codes)


AccessScope.ALL = AccessScope(None)
AccessScope.NOTHING = AccessScope(frozenset())


# ---------------------------------------------------------------- validation


def _url_problem(url: str) -> str | None:
    if len(url) > URL_MAX:
        return f"webhook URL longer than {URL_MAX} characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return f"webhook URL {url!r} is not a valid URL"
    if not host or parts.scheme not in ("https", "http"):
        return f"webhook URL {url!r} must be an https:// URL with a host"
    if parts.username or parts.password:
        return "webhook URL must not carry credentials (the signing secret authenticates)"
    if parts.scheme == "http" and not _is_loopback(host):
        return f"webhook URL {url!r} must use https (plain http only to a loopback host)"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_partner(
    partner: Partner, refdata: RefData, jurisdictions: Jurisdictions | None
) -> list[str]:
    """Every problem of `partner` against the served area, as clear sentences (empty: valid)."""
    problems: list[str] = []
    if not ORG_PATTERN.match(partner.org):
        problems.append(f"org {partner.org!r} must be a slug of 1-64 characters [a-z0-9-]")
    if not partner.name.strip() or len(partner.name) > NAME_MAX:
        problems.append(f"name must be 1-{NAME_MAX} characters")
    if not isinstance(partner.kind, PartnerKind):
        problems.append(f"kind must be one of {', '.join(PARTNER_KINDS)}")
    perimeter = partner.perimeter
    if perimeter.is_empty:
        problems.append("empty perimeter: give at least one commune or jurisdiction")
    unknown = sorted(c for c in perimeter.communes if c not in refdata.communes)
    if unknown:
        hints = [
            f"{c} (now {refdata.resolve_insee(c)})" if refdata.resolve_insee(c) else c
            for c in unknown
        ]
        problems.append(f"unknown communes (INSEE codes of the served area): {', '.join(hints)}")
    known_jurisdictions = (
        {j.id for j in jurisdictions.by_insee.values()} if jurisdictions is not None else set()
    )
    unknown_j = sorted(j for j in perimeter.jurisdictions if j not in known_jurisdictions)
    if unknown_j:
        problems.append(f"unknown jurisdictions: {', '.join(unknown_j)}")
    bad_categories = sorted(c for c in perimeter.categories if c not in CATEGORIES)
    if bad_categories:
        problems.append(f"unknown categories: {', '.join(bad_categories)}")
    covered = perimeter.expand(jurisdictions)
    if not perimeter.is_empty and not unknown and not unknown_j and not covered:
        problems.append("empty perimeter: its jurisdictions cover no commune")
    for index, sub in enumerate(partner.subscriptions, 1):
        if not sub.kinds:
            problems.append(f"subscription #{index}: no kind (alert and/or incident)")
        bad = sorted(c for c in sub.categories if c not in CATEGORIES)
        if bad:
            problems.append(f"subscription #{index}: unknown categories: {', '.join(bad)}")
        outside = sorted(
            c
            for c in sub.categories
            if perimeter.categories and c in CATEGORIES and c not in perimeter.categories
        )
        if outside:
            problems.append(
                f"subscription #{index}: categories outside the perimeter: {', '.join(outside)}"
            )
    if partner.subscriptions and not partner.contact.webhook_url:
        problems.append("subscriptions need a webhook URL to deliver to")
    if partner.contact.webhook_url:
        url_problem = _url_problem(partner.contact.webhook_url)
        if url_problem:
            problems.append(url_problem)
    if partner.contact.email and not EMAIL_PATTERN.match(partner.contact.email):
        problems.append("contact e-mail is not a valid address")
    return problems


# ---------------------------------------------------------------- JSON form


def partner_to_dict(partner: Partner, *, with_credentials: bool = False) -> dict[str, Any]:
    """The JSON form (sorted sets; credentials only when asked, for the storage)."""
    out: dict[str, Any] = {
        "org": partner.org,
        "name": partner.name,
        "kind": partner.kind.value,
        "perimeter": {
            "communes": sorted(partner.perimeter.communes),
            "jurisdictions": sorted(partner.perimeter.jurisdictions),
            "categories": sorted(partner.perimeter.categories),
        },
        "contact": {"webhook_url": partner.contact.webhook_url, "email": partner.contact.email},
        "subscriptions": [
            {"kinds": sorted(k.value for k in s.kinds), "categories": sorted(s.categories)}
            for s in partner.subscriptions
        ],
        "active": partner.active,
        "version": partner.version,
        "updated_at": partner.updated_at.isoformat() if partner.updated_at else None,
        "updated_by": partner.updated_by,
    }
    if with_credentials:
        out["credentials"] = {
            "webhook_secret": partner.credentials.webhook_secret,
            "token_sha256": partner.credentials.token_sha256,
        }
    return out


def _strings(value: Any, what: str, problems: list[str]) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [v for v in re.split(r"[,\s]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{what} must be a list of strings")
        return frozenset()
    return frozenset(v.strip() for v in value if v.strip())


def partner_from_dict(data: Mapping[str, Any], base: Partner | None = None) -> Partner:
    """Parse the JSON form (fields absent from `data` keep `base`'s values: an update).
    Raises PartnerError listing every structural problem; `validate_partner` then checks the
    entry against the served area. `version`, `updated_*` and credentials are never read
    from `data` (the registry sets them)."""
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise PartnerError(["entry must be a JSON object"])
    allowed = {"org", "name", "kind", "perimeter", "contact", "subscriptions", "active"}
    ignored = {"version", "updated_at", "updated_by"}
    extra = sorted(set(data) - allowed - ignored)
    if extra:
        problems.append(f"unknown fields: {', '.join(extra)}")
    org = data.get("org", base.org if base else "")
    if not isinstance(org, str):
        problems.append("org must be a string")
        org = ""
    if base is not None and org != base.org:
        problems.append(f"org cannot change ({base.org!r} → {org!r})")
    name = data.get("name", base.name if base else "")
    if not isinstance(name, str):
        problems.append("name must be a string")
        name = ""
    kind_value = data.get("kind", base.kind.value if base else None)
    kind = PartnerKind.COLLECTIVITE
    if kind_value not in PARTNER_KINDS:
        problems.append(f"kind must be one of {', '.join(PARTNER_KINDS)} (got {kind_value!r})")
    else:
        kind = PartnerKind(kind_value)
    perimeter = base.perimeter if base else Perimeter()
    if "perimeter" in data:
        raw = data["perimeter"]
        if not isinstance(raw, Mapping):
            problems.append("perimeter must be an object {communes, jurisdictions, categories}")
        else:
            bad = sorted(set(raw) - {"communes", "jurisdictions", "categories"})
            if bad:
                problems.append(f"perimeter: unknown fields: {', '.join(bad)}")
            perimeter = Perimeter(
                communes=_strings(raw.get("communes"), "perimeter.communes", problems),
                jurisdictions=_strings(
                    raw.get("jurisdictions"), "perimeter.jurisdictions", problems
                ),
                categories=_strings(raw.get("categories"), "perimeter.categories", problems),
            )
    contact = base.contact if base else Contact()
    if "contact" in data:
        raw = data["contact"]
        if not isinstance(raw, Mapping):
            problems.append("contact must be an object {webhook_url, email}")
        else:
            bad = sorted(set(raw) - {"webhook_url", "email"})
            if bad:
                problems.append(f"contact: unknown fields: {', '.join(bad)}")
            url, email = raw.get("webhook_url") or "", raw.get("email") or ""
            if not isinstance(url, str) or not isinstance(email, str):
                problems.append("contact.webhook_url and contact.email must be strings")
            else:
                contact = Contact(webhook_url=url.strip(), email=email.strip())
    subscriptions = base.subscriptions if base else ()
    if "subscriptions" in data:
        raw = data["subscriptions"]
        if not isinstance(raw, list):
            problems.append("subscriptions must be a list")
        else:
            subs: list[Subscription] = []
            for index, item in enumerate(raw, 1):
                if not isinstance(item, Mapping):
                    problems.append(f"subscription #{index} must be an object")
                    continue
                kinds = _strings(item.get("kinds"), f"subscription #{index}.kinds", problems)
                bad_kinds = sorted(k for k in kinds if k not in DELIVERY_KINDS)
                if bad_kinds:
                    problems.append(
                        f"subscription #{index}: kinds must be among {', '.join(DELIVERY_KINDS)}"
                    )
                subs.append(
                    Subscription(
                        kinds=frozenset(DeliveryKind(k) for k in kinds if k in DELIVERY_KINDS),
                        categories=_strings(
                            item.get("categories"), f"subscription #{index}.categories", problems
                        ),
                    )
                )
            subscriptions = tuple(subs)
    active = data.get("active", base.active if base else True)
    if not isinstance(active, bool):
        problems.append("active must be true or false")
        active = True
    if problems:
        raise PartnerError(problems, org if isinstance(org, str) else "")
    return Partner(
        org=org,
        name=name.strip(),
        kind=kind,
        perimeter=perimeter,
        contact=contact,
        subscriptions=subscriptions,
        active=active,
        version=base.version if base else 0,
        updated_at=base.updated_at if base else None,
        updated_by=base.updated_by if base else "",
        credentials=base.credentials if base else Credentials(),
    )


def stored_partner(data: Mapping[str, Any]) -> Partner:
    """A partner read back from the storage's JSON form (credentials and version included)."""
    partner = partner_from_dict(
        {k: v for k, v in data.items() if k not in ("credentials", "version", "updated_at")}
    )
    creds = data.get("credentials") or {}
    updated = data.get("updated_at")
    return replace(
        partner,
        version=int(data.get("version", 0)),
        updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
        updated_by=str(data.get("updated_by", "")),
        credentials=Credentials(
            webhook_secret=str(creds.get("webhook_secret", "")),
            token_sha256=str(creds.get("token_sha256", "")),
        ),
    )
