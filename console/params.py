"""Query and body parameters of the API, validated by pydantic (errors → HTTP 400)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.enums import Category

MAX_PAGE = 200
MAX_OFFSET = 10_000
MAX_SPAN_SECONDS = 31 * 86_400
DEFAULT_SPAN_SECONDS = 86_400
MAX_MAP_POINTS = 3_000

INSEE_PATTERN = r"^[0-9][0-9AB][0-9]{3}$"

# Characters refused in free text: the bidirectional controls (they reorder what the next
# reader sees, e.g. U+202E shows "txt.exe" for "exe.txt") and the control characters but
# tab and newline (NUL, escape sequences, C1 controls).
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def forbidden_character(text: str) -> str | None:
    """Why `text` is refused (a French reason naming the character), or None."""
    for pattern, kind in (
        (_BIDI, "contrôle de direction du texte"),
        (_CONTROL, "caractère de contrôle"),
    ):
        found = pattern.search(text)
        if found:
            return f"caractère interdit U+{ord(found.group()):04X} ({kind})"
    return None


class BadRequest(ValueError):
    """A parameter is invalid; `message` is shown to the client."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


@dataclass(frozen=True, slots=True)
class Window:
    """A resolved, bounded time range in UTC epoch seconds [since, until)."""

    since: int
    until: int


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Filters(_Strict):
    category: Category | None = None
    insee: str | None = Field(None, pattern=INSEE_PATTERN, description="Code INSEE de commune")
    jurisdiction: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Identifiant de circonscription"
    )
    since: AwareDatetime | None = Field(
        None, description="Début, ISO 8601 avec fuseau ou secondes epoch (défaut : until - 24 h)"
    )
    until: AwareDatetime | None = Field(
        None, description="Fin exclue, ISO 8601 avec fuseau ou secondes epoch (défaut : maintenant)"
    )

    @model_validator(mode="after")
    def _range(self) -> Filters:
        self.window()
        return self

    def window(self, now: float | None = None) -> Window:
        now_s = int(now if now is not None else time.time())
        until = int(self.until.timestamp()) if self.until else now_s + 1
        since = int(self.since.timestamp()) if self.since else until - DEFAULT_SPAN_SECONDS
        if since >= until:
            raise ValueError("'since' doit précéder 'until'")
        if until - since > MAX_SPAN_SECONDS:
            raise ValueError("période trop longue (31 jours au plus)")
        return Window(since=since, until=until)


class Page(_Strict):
    limit: int = Field(50, ge=1, le=MAX_PAGE, description=f"Taille de page (≤ {MAX_PAGE})")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Décalage")


class SummaryQuery(Filters):
    pass


class IncidentQuery(Filters, Page):
    status: Literal["open", "closed", "all"] = "all"


class AlertQuery(Filters, Page):
    status: Literal["open", "closed", "all"] = "all"


class MapQuery(Filters):
    status: Literal["open", "closed", "all"] = "open"


class ActionBody(_Strict):
    action: Literal["ack", "close"]
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


def parse(model: type[_Strict], data: dict[str, Any]) -> Any:
    """Validate `data` against `model`, raising BadRequest with a readable message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(p) for p in err["loc"]) or "période",
                "error": err["msg"].removeprefix("Value error, "),
            }
            for err in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        message = "; ".join(f"{d['field']}: {d['error']}" for d in details)
        raise BadRequest(f"paramètres invalides — {message}", details) from None
