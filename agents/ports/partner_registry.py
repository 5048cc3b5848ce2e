"""The partner registry in ClickHouse (`partners` table): read, write, and the operations the
CLI (`vigie partners ...`) and the console share.

Every change inserts a new version of the entry (history kept; the highest version is the
current entry), so a change needs no redeploy: the console re-reads the registry every few
seconds. Two writers changing the same org at the same instant may write the same version:
the table then keeps one of them (the operator sees it in `vigie partners show`).

Secrets: a partner's console token is shown once, when created or rotated, and only its
SHA-256 is stored; the webhook signing secret is stored (the delivery needs it to sign) and
shown once too. Neither is ever returned by `Partner.public()`.

Blocking (store calls): the console runs these through its store thread.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from agents.core.jurisdictions import Jurisdictions
from agents.core.partners import (
    Credentials,
    Partner,
    PartnerError,
    partner_from_dict,
    partner_to_dict,
    stored_partner,
    validate_partner,
)
from agents.core.refdata import RefData
from agents.ports.sql import partners as sql
from agents.ports.store import Store

MAX_PARTNERS = 10_000
TOKEN_PREFIX = "vgp_"  # partner console/API tokens (recognisable in a leaked-secret scan)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The current registry: entries by org, and the rows that could not be read (org →
    reason; such a partner sees nothing until its entry is fixed)."""

    partners: dict[str, Partner] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def by_token_digest(self, digest: str) -> Partner | None:
        for partner in self.partners.values():
            stored = partner.credentials.token_sha256
            if stored and secrets.compare_digest(stored, digest):
                return partner
        return None


@dataclass(frozen=True, slots=True)
class Issued:
    """A partner entry just written, with the secrets created for it (shown once; empty when
    not created by this operation)."""

    partner: Partner
    token: str = ""
    webhook_secret: str = ""


def _partner_of(row: Mapping[str, Any]) -> Partner:
    data = json.loads(row["entry"])
    if not isinstance(data, dict):
        raise PartnerError(["stored entry is not a JSON object"], str(row["org"]))
    return stored_partner(data)


def load(store: Store) -> Snapshot:
    rows = store.query(sql.CURRENT.sql, sql.CURRENT.bind(limit=MAX_PARTNERS))
    found: dict[str, Partner] = {}
    unreadable: dict[str, str] = {}
    for row in rows:
        try:
            found[str(row["org"])] = _partner_of(row)
        except (ValueError, KeyError, TypeError) as exc:
            unreadable[str(row["org"])] = str(exc)
    return Snapshot(found, unreadable)


def fingerprint(store: Store) -> tuple[int, int]:
    rows = store.query(sql.FINGERPRINT.sql)
    return (int(rows[0]["n"]), int(rows[0]["v"] or 0)) if rows else (0, 0)


def history(store: Store, org: str, limit: int = 50) -> list[Partner]:
    rows = store.query(sql.HISTORY.sql, sql.HISTORY.bind(org=org, limit=limit))
    return [_partner_of(row) for row in rows]


def get(store: Store, org: str) -> Partner | None:
    found = history(store, org, 1)
    return found[0] if found else None


def write(store: Store, partner: Partner) -> None:
    """Insert `partner` as a version of its entry (no validation: see `add`/`update`)."""
    at = partner.updated_at or datetime.now(UTC)
    store.insert(
        sql.TABLE,
        [
            {
                "org": partner.org,
                "version": partner.version,
                "active": int(partner.active),
                "entry": json.dumps(
                    partner_to_dict(partner, with_credentials=True), ensure_ascii=False
                ),
                "updated_at": int(at.timestamp()),
                "updated_by": partner.updated_by,
            }
        ],
    )


def _checked(partner: Partner, refdata: RefData, jurisdictions: Jurisdictions | None) -> Partner:
    problems = validate_partner(partner, refdata, jurisdictions)
    if problems:
        raise PartnerError(problems, partner.org)
    return partner


def add(
    store: Store,
    data: Mapping[str, Any],
    refdata: RefData,
    jurisdictions: Jurisdictions | None,
    by: str,
    now: datetime | None = None,
) -> Issued:
    """Register a new partner (PartnerError if invalid or if the org exists), with a fresh
    console token and webhook secret."""
    partner = partner_from_dict(data)
    _checked(partner, refdata, jurisdictions)
    if get(store, partner.org) is not None:
        raise PartnerError(["already registered (use update)"], partner.org)
    token, secret = new_token(), new_webhook_secret()
    partner = replace(
        partner,
        version=1,
        updated_at=now or datetime.now(UTC),
        updated_by=by,
        credentials=Credentials(webhook_secret=secret, token_sha256=token_digest(token)),
    )
    write(store, partner)
    return Issued(partner, token, secret)


def update(
    store: Store,
    org: str,
    changes: Mapping[str, Any],
    refdata: RefData,
    jurisdictions: Jurisdictions | None,
    by: str,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> Partner:
    """Apply `changes` (fields of the JSON form) to partner `org` as a new version.
    PartnerError if unknown, invalid, or (given `expected_version`) changed meanwhile."""
    current = get(store, org)
    if current is None:
        raise PartnerError(["unknown partner"], org)
    if expected_version is not None and current.version != expected_version:
        raise PartnerError(
            [f"changed meanwhile (version {current.version}, expected {expected_version})"], org
        )
    changed = partner_from_dict(changes, base=current)
    _checked(changed, refdata, jurisdictions)
    partner = changed.next_version(now or datetime.now(UTC), by)
    write(store, partner)
    return partner


def rotate(store: Store, org: str, by: str, *, token: bool, webhook_secret: bool) -> Issued:
    """New console token and/or webhook secret for `org` (the old ones stop working)."""
    current = get(store, org)
    if current is None:
        raise PartnerError(["unknown partner"], org)
    new_tok = new_token() if token else ""
    new_secret = new_webhook_secret() if webhook_secret else ""
    credentials = Credentials(
        webhook_secret=new_secret or current.credentials.webhook_secret,
        token_sha256=token_digest(new_tok) if new_tok else current.credentials.token_sha256,
    )
    partner = current.next_version(datetime.now(UTC), by, credentials=credentials)
    write(store, partner)
    return Issued(partner, new_tok, new_secret)


def set_token(store: Store, org: str, token: str, by: str) -> Partner:
    """Bind a given console token to `org` (the demo's known token; at least 24 characters)."""
    if len(token) < 24:
        raise PartnerError(["token shorter than 24 characters"], org)
    current = get(store, org)
    if current is None:
        raise PartnerError(["unknown partner"], org)
    credentials = replace(current.credentials, token_sha256=token_digest(token))
    partner = current.next_version(datetime.now(UTC), by, credentials=credentials)
    write(store, partner)
    return partner


@dataclass(frozen=True, slots=True)
class Imported:
    added: list[Issued] = field(default_factory=list)
    updated: list[Partner] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _same_entry(a: Partner, b: Partner) -> bool:
    ignored = ("version", "updated_at", "updated_by")
    left, right = a.public(), b.public()
    return all(left[k] == right[k] for k in left if k not in ignored)


def import_entries(
    store: Store,
    entries: list[Mapping[str, Any]],
    refdata: RefData,
    jurisdictions: Jurisdictions | None,
    by: str,
    *,
    add_only: bool = False,
) -> Imported:
    """Add the entries whose org is new, update those that changed (unless `add_only`: the
    demo's seed never overwrites an operator's change). Every entry is checked first: any
    problem raises PartnerError listing them all, and nothing is written."""
    snapshot = load(store)
    problems: list[str] = []
    parsed: list[Partner] = []
    seen: set[str] = set()
    for index, data in enumerate(entries, 1):
        label = f"entry #{index} ({data.get('org', '?')})" if isinstance(data, Mapping) else ""
        try:
            current = snapshot.partners.get(str(data.get("org", "")))
            partner = partner_from_dict(data, base=current)
        except PartnerError as exc:
            problems += [f"{label}: {p}" for p in exc.problems]
            continue
        if partner.org in seen:
            problems.append(f"{label}: org given twice")
        seen.add(partner.org)
        problems += [f"{label}: {p}" for p in validate_partner(partner, refdata, jurisdictions)]
        parsed.append(partner)
    if problems:
        raise PartnerError(problems)
    result = Imported()
    for partner in parsed:
        current = snapshot.partners.get(partner.org)
        if current is None:
            result.added.append(add(store, partner.public(), refdata, jurisdictions, by))
        elif add_only or _same_entry(current, partner):
            result.unchanged.append(partner.org)
        else:
            changed = partner.next_version(datetime.now(UTC), by)
            write(store, changed)
            result.updated.append(changed)
    return result
