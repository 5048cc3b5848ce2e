"""Bearer tokens with roles, and short-lived signed tokens for the SSE stream.

Tokens are configured as `token:role:name` entries separated by commas, e.g.
`VIGIE_CONSOLE_TOKENS="s3cr3t-a:operator:alice,s3cr3t-b:viewer:wall"`. Only the SHA-256 of
each token is kept in memory. Roles: `viewer` reads, `operator` also acknowledges/closes,
`partner` reads and acknowledges inside the perimeter of its organisation, given as a fourth
field (`token:partner:name:org`, the org of the partner registry). Partners' tokens issued
by the registry (`vigie partners add`) are checked through `lookup` (SHA-256 → principal).

EventSource cannot send an Authorization header, so `/api/stream` takes `?st=<stream
token>`: `name.role.expiry.signature` (HMAC-SHA256 with a per-process secret unless one is
configured - replicas behind a load balancer must share it). The browser gets one from
`GET /api/me` (bearer-authenticated); it is valid 10 minutes and only for the stream. A
stream is closed when its stream token expires (a stream opened with a bearer header after
the same lifetime): the page then fetches a new token and reconnects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

ROLES = ("viewer", "operator", "partner")
STREAM_TOKEN_SECONDS = 600
_ORG = re.compile(r"^[a-z0-9-]{1,64}$")


class TokenConfigError(ValueError):
    """The token setting is malformed (the message never contains a token)."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    org: str = ""  # the partner's organisation (role `partner` only)

    @property
    def can_act(self) -> bool:
        """May record actions on alerts (a partner only `ack`, inside its perimeter)."""
        return self.role in ("operator", "partner")

    @property
    def is_partner(self) -> bool:
        return self.role == "partner"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    """Known tokens (hashed) → principal, plus the signer of stream tokens."""

    def __init__(
        self,
        entries: dict[str, Principal],
        stream_secret: bytes | None = None,
        stream_seconds: int = STREAM_TOKEN_SECONDS,
    ) -> None:
        self._by_digest = {_digest(token): who for token, who in entries.items()}
        self._secret = stream_secret or secrets.token_bytes(32)
        self.stream_seconds = stream_seconds
        # tokens known elsewhere (the partner registry): SHA-256 hex → principal or None
        self.lookup: Callable[[str], Principal | None] | None = None

    @classmethod
    def parse(
        cls,
        spec: str,
        stream_secret: bytes | None = None,
        stream_seconds: int = STREAM_TOKEN_SECONDS,
    ) -> TokenRegistry:
        entries: dict[str, Principal] = {}
        for index, item in enumerate(filter(None, (p.strip() for p in spec.split(","))), 1):
            parts = item.split(":")
            if len(parts) not in (3, 4) or not all(parts):
                raise TokenConfigError(
                    f"token entry #{index}: expected token:role:name (token:partner:name:org)"
                )
            token, role, name = parts[:3]
            org = parts[3] if len(parts) == 4 else ""
            if role not in ROLES:
                raise TokenConfigError(f"token entry #{index}: role must be one of {ROLES}")
            if (role == "partner") != bool(org):
                raise TokenConfigError(
                    f"token entry #{index}: a partner token names its org"
                    " (token:partner:name:org), and only a partner token does"
                )
            if org and not _ORG.match(org):
                raise TokenConfigError(f"token entry #{index}: org must be a slug [a-z0-9-]")
            if len(token) < 16:
                raise TokenConfigError(f"token entry #{index}: token shorter than 16 characters")
            entries[token] = Principal(name=name, role=role, org=org)
        return cls(entries, stream_secret, stream_seconds)

    def __len__(self) -> int:
        return len(self._by_digest)

    def check_bearer(self, header: str | None) -> Principal | None:
        if not header or not header.startswith("Bearer "):
            return None
        return self.check_token(header[len("Bearer ") :].strip())

    def check_token(self, token: str) -> Principal | None:
        digest = _digest(token)
        found = None
        for known, who in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = who
        if found is None and self.lookup is not None:
            found = self.lookup(digest)
        return found

    def derive_key(self, purpose: str) -> bytes:
        """A key for `purpose` derived from the stream secret (never the secret itself)."""
        return hmac.new(self._secret, b"vigie-console:" + purpose.encode(), hashlib.sha256).digest()

    # ---- stream tokens -----------------------------------------------------------------
    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")

    def stream_token(self, who: Principal, now: float | None = None) -> tuple[str, int]:
        expiry = int((now if now is not None else time.time()) + self.stream_seconds)
        name = base64.urlsafe_b64encode(who.name.encode()).decode().rstrip("=")
        role = f"{who.role}~{who.org}" if who.org else who.role  # org: a slug, no '.'
        payload = f"{name}.{role}.{expiry}"
        return f"{payload}.{self._sign(payload)}", expiry

    def check_stream_token(self, token: str, now: float | None = None) -> Principal | None:
        found = self.stream_principal(token, now)
        return found[0] if found else None

    def stream_principal(
        self, token: str, now: float | None = None
    ) -> tuple[Principal, int] | None:
        """The principal of a valid stream token and the token's expiry (epoch seconds)."""
        parts = token.split(".")
        if len(parts) != 4:
            return None
        name, role, expiry, signature = parts
        if not hmac.compare_digest(self._sign(f"{name}.{role}.{expiry}"), signature):
            return None
        if not expiry.isdigit() or int(expiry) < (now if now is not None else time.time()):
            return None
        role, _, org = role.partition("~")
        if role not in ROLES or (role == "partner") != bool(org):
            return None
        padded = name + "=" * (-len(name) % 4)
        who = Principal(name=base64.urlsafe_b64decode(padded).decode(), role=role, org=org)
        return who, int(expiry)


def generate_dev_tokens() -> str:
    """A fresh `VIGIE_CONSOLE_TOKENS` value for development (one operator, one viewer)."""
    return (
        f"{secrets.token_urlsafe(24)}:operator:dev-operator,"
        f"{secrets.token_urlsafe(24)}:viewer:dev-wall"
    )
