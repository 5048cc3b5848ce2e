"""Commune → jurisdiction (police nationale circonscription or gendarmerie unit).

The mapping is a user-maintained CSV file (`VIGIE_JURISDICTIONS=/path.csv`)::

    # comment lines start with '#'
    insee,jurisdiction_id,jurisdiction_name,force
    91228,csp-evry,CSP Évry-Courcouronnes,PN

`force` is `PN` (police nationale) or `GN` (gendarmerie nationale). Every commune of the
served area must appear exactly once. The packaged `jurisdictions-91.example.csv` is
ILLUSTRATIVE only (no official open dataset is available offline): replace it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from agents.core.refdata import DATA_DIR, RefData

DEFAULT_JURISDICTIONS = DATA_DIR / "jurisdictions-91.example.csv"
HEADER = ("insee", "jurisdiction_id", "jurisdiction_name", "force")
FORCES = ("PN", "GN")


class JurisdictionError(ValueError):
    """The mapping file is invalid; the message lists every offending code."""


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    id: str
    name: str
    force: str  # "PN" or "GN"


@dataclass(frozen=True)
class Jurisdictions:
    by_insee: dict[str, Jurisdiction]
    source: str

    def of(self, insee: str) -> Jurisdiction:
        return self.by_insee[insee]

    def all(self) -> list[Jurisdiction]:
        """Distinct jurisdictions, sorted by id."""
        return sorted(set(self.by_insee.values()), key=lambda j: j.id)


def _listing(codes: list[str], limit: int = 50) -> str:
    shown = ", ".join(codes[:limit])
    return shown + (f" … (+{len(codes) - limit})" if len(codes) > limit else "")


def parse_jurisdictions(text: str, refdata: RefData, source: str = "<text>") -> Jurisdictions:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = tuple(h.strip() for h in next(reader, ()))
    if header != HEADER:
        raise JurisdictionError(f"{source}: header must be {','.join(HEADER)}, got {header}")
    by_insee: dict[str, Jurisdiction] = {}
    by_id: dict[str, Jurisdiction] = {}
    unknown: list[str] = []
    duplicates: list[str] = []
    bad_force: list[str] = []
    malformed: list[str] = []
    inconsistent: list[str] = []
    for lineno, row in enumerate(reader, start=2):
        if len(row) != len(HEADER):
            malformed.append(f"row {lineno}")
            continue
        insee, jid, name, force = (v.strip() for v in row)
        if not (insee and jid and name):
            malformed.append(f"row {lineno} ({insee or 'no insee'})")
            continue
        if force not in FORCES:
            bad_force.append(f"{insee} ({force!r})")
            continue
        if insee not in refdata.communes:
            unknown.append(insee)
            continue
        if insee in by_insee:
            duplicates.append(insee)
            continue
        j = Jurisdiction(jid, name, force)
        if by_id.setdefault(jid, j) != j:
            inconsistent.append(f"{jid} ({insee})")
        by_insee[insee] = j
    missing = sorted(set(refdata.communes) - set(by_insee) - set(duplicates) - set(unknown))
    problems = [
        (f"malformed rows: {_listing(malformed)}", malformed),
        (f"unknown INSEE codes (not in the served area): {_listing(unknown)}", unknown),
        (f"duplicate INSEE codes: {_listing(duplicates)}", duplicates),
        (f"bad force (must be PN or GN): {_listing(bad_force)}", bad_force),
        (
            f"jurisdiction ids with different names or forces: {_listing(inconsistent)}",
            inconsistent,
        ),
        (f"communes without a jurisdiction: {_listing(missing)}", missing),
    ]
    errors = [msg for msg, items in problems if items]
    if errors:
        raise JurisdictionError(f"{source}: " + "; ".join(errors))
    return Jurisdictions(by_insee=by_insee, source=source)


def load_jurisdictions(path: str | Path | None, refdata: RefData) -> Jurisdictions:
    """Read and validate a mapping file (default: the packaged ILLUSTRATIVE Essonne file)."""
    p = Path(path) if path else DEFAULT_JURISDICTIONS
    return parse_jurisdictions(p.read_text(encoding="utf-8"), refdata, str(p))
