"""Which categories reporters confuse: the one definition of that domain knowledge.

A citizen names what they saw in their own words: a rodeo heard from a window is a nuisance
or a traffic offence, a car fire found in the morning is damage, an occupied hall is a
nuisance or dealing (and dealing an occupied hall), a burglary a theft, and "autre" is what
a citizen cannot name. A pair is symmetric knowledge: either category may stand for the
other's situation.

Users: correlation (`CorrelationConfig.compatible_pairs`: reports of a confused pair may
merge), detection quality (an alert of a confused category matches an outbreak) and the
simulator, which checks that every mislabel it draws is one of these pairs (how often each
happens is a parameter of its simulated world, not domain knowledge).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from schemas.enums import Category

CONFUSED_PAIRS: tuple[tuple[Category, Category], ...] = (
    (Category.RODEO, Category.NUISANCE),
    (Category.RODEO, Category.INFRACTION_ROUTIERE),
    (Category.INCENDIE, Category.DEGRADATION),
    (Category.OCCUPATION_HALL, Category.NUISANCE),
    (Category.OCCUPATION_HALL, Category.TRAFIC_STUPEFIANTS),
    (Category.TRAFIC_STUPEFIANTS, Category.AUTRE),
    (Category.CAMBRIOLAGE, Category.VOL),
    (Category.VIOLENCE, Category.AUTRE),
    (Category.CAMPEMENT_ILLICITE, Category.AUTRE),
)


def _confusion_map(pairs: Iterable[tuple[str, str]]) -> Mapping[str, frozenset[str]]:
    """category -> the categories it is confused with (both directions of every pair)."""
    out: dict[str, set[str]] = {}
    for a, b in pairs:
        if a != b:
            out.setdefault(a, set()).add(b)
            out.setdefault(b, set()).add(a)
    return MappingProxyType({c: frozenset(others) for c, others in out.items()})


CONFUSED_WITH: Mapping[str, frozenset[str]] = _confusion_map(CONFUSED_PAIRS)


def confused(a: str, b: str) -> bool:
    """The same category, or a pair reporters confuse (either order)."""
    return a == b or b in CONFUSED_WITH.get(a, ())
