"""Who reports what, how late, how precisely: the reporting model of each category.

`police` in a rule stands for the national police or the gendarmerie, whichever
serves the commune (see `area.assign_jurisdictions`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.core.confusions import confused
from offline.simulator.area import SimCommune
from offline.simulator.config import PARIS

CITIZEN = "citizen"
POLICE = "police"  # resolved per commune


@dataclass(frozen=True, slots=True)
class SourceRule:
    """One kind of reporter of an incident.

    p: probability it reports; extra: mean of the Poisson number of *additional*
    reporters of that kind (several neighbours filming a rodeo); delay: delay model name
    (see `DELAYS`); min_pop: the source exists only in communes at least that large.
    """

    kind: str
    p: float
    extra: float = 0.0
    delay: str = "partner"
    min_pop: int = 0


def _r(kind: str, p: float, extra: float = 0.0, delay: str = "partner") -> SourceRule:
    min_pop = {"police_municipale": 3000, "bailleur_social": 5000}.get(kind, 0)
    return SourceRule(kind, p, extra, delay, min_pop)


RULES: dict[str, tuple[SourceRule, ...]] = {
    "cambriolage": (
        _r(CITIZEN, 0.55, 0.0, "discovery"),
        _r(POLICE, 0.85, 0.0, "police"),
        _r(CITIZEN, 0.08, 0.0, "citizen"),
        _r("securite_privee", 0.05),
    ),
    "infraction_routiere": (
        _r("police_municipale", 0.45, 0.0, "patrol"),
        _r(POLICE, 0.35, 0.0, "police"),
        _r(CITIZEN, 0.35, 0.3, "instant"),
    ),
    "campement_illicite": (
        _r("bailleur_social", 0.5, 0.0, "batch"),
        _r("police_municipale", 0.6, 0.0, "patrol"),
        _r("collectivite", 0.4),
        _r(CITIZEN, 0.5, 0.5, "citizen"),
    ),
    "rodeo": (
        _r(CITIZEN, 0.95, 2.0, "instant"),
        _r("police_municipale", 0.3, 0.0, "patrol"),
        _r(POLICE, 0.2, 0.0, "police"),
    ),
    "degradation": (
        _r(CITIZEN, 0.45, 0.2, "citizen"),
        _r("collectivite", 0.35),
        _r("bailleur_social", 0.25, 0.0, "batch"),
        _r("education", 0.05),
        _r("transport", 0.05, 0.0, "transport"),
    ),
    "trafic_stupefiants": (
        _r(CITIZEN, 0.6, 0.3, "citizen"),
        _r("bailleur_social", 0.35, 0.0, "batch"),
        _r(POLICE, 0.3, 0.0, "police"),
        _r("securite_privee", 0.1),
    ),
    "violence": (
        _r(POLICE, 0.8, 0.0, "police"),
        _r(CITIZEN, 0.35, 0.5, "instant"),
        _r("transport", 0.08, 0.0, "transport"),
        _r("education", 0.06),
    ),
    "vol": (
        _r(CITIZEN, 0.6, 0.0, "citizen"),
        _r(POLICE, 0.6, 0.0, "police"),
        _r("transport", 0.1, 0.0, "transport"),
    ),
    "nuisance": (
        _r(CITIZEN, 0.9, 0.8, "instant"),
        _r("police_municipale", 0.3, 0.0, "patrol"),
        _r("bailleur_social", 0.1, 0.0, "batch"),
    ),
    "incendie": (
        _r(CITIZEN, 0.9, 1.5, "instant"),
        _r(POLICE, 0.5, 0.0, "police"),
        _r("collectivite", 0.2),
        _r("bailleur_social", 0.15, 0.0, "batch"),
    ),
    "occupation_hall": (
        _r("bailleur_social", 0.6, 0.0, "batch"),
        _r(CITIZEN, 0.5, 0.3, "citizen"),
        _r("securite_privee", 0.25),
        _r("police_municipale", 0.3, 0.0, "patrol"),
    ),
    "autre": (
        _r(CITIZEN, 0.6, 0.0, "citizen"),
        _r("collectivite", 0.3),
        _r("police_municipale", 0.2, 0.0, "patrol"),
    ),
}
STATION_RULE = _r("transport", 0.85, 0.0, "transport")  # added for incidents at a station

# How often a citizen names a true category as another: true category -> (reported
# category, probability), drawn in this order. The probabilities are this simulated world's
# parameters; which categories get confused is domain knowledge (`agents.core.confusions`),
# and every pair here must be one of those (`check_mislabels`, at import).
MISLABELS: dict[str, tuple[tuple[str, float], ...]] = {
    "rodeo": (("nuisance", 0.18), ("infraction_routiere", 0.05)),
    "incendie": (("degradation", 0.12),),
    "occupation_hall": (("nuisance", 0.12), ("trafic_stupefiants", 0.05)),
    "trafic_stupefiants": (("autre", 0.06), ("occupation_hall", 0.05)),
    "cambriolage": (("vol", 0.08),),
    "violence": (("autre", 0.05),),
    "campement_illicite": (("autre", 0.1),),
}


def check_mislabels(mislabels: dict[str, tuple[tuple[str, float], ...]]) -> None:
    """Refuse a mislabel that is not a pair reporters confuse (the correlation could never
    merge it: the simulated world would contradict the domain) or whose probability is not
    in [0, 1]."""
    for true, options in mislabels.items():
        for reported, p in options:
            if reported == true or not confused(true, reported):
                raise ValueError(
                    f"mislabel {true} -> {reported} is not a pair of agents.core.confusions"
                )
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"mislabel {true} -> {reported}: probability {p} not in [0, 1]")


check_mislabels(MISLABELS)

BAILLEURS = (
    "bailleur-essonne-habitat",
    "bailleur-1001-vies-habitat",
    "bailleur-cdc-habitat",
    "bailleur-immobiliere-3f",
)
PRIVATE_SECURITY = ("sp-gardiennage-91", "sp-surveillance-sud")
TRANSPORT_BUS = ("idfm-bus-essonne", "ratp-rer")

CHANNELS: dict[str, tuple[tuple[str, float], ...]] = {
    CITIZEN: (("app", 0.8), ("web", 0.2)),
    "police_nationale": (("api", 1.0),),
    "gendarmerie": (("api", 1.0),),
    "police_municipale": (("api", 0.6), ("radio", 0.25), ("phone", 0.15)),
    "transport": (("api", 1.0),),
    "bailleur_social": (("api", 1.0),),
    "education": (("web", 0.7), ("phone", 0.3)),
    "securite_privee": (("phone", 0.5), ("api", 0.5)),
    "collectivite": (("web", 0.7), ("api", 0.3)),
}

# Location precision: (share of commune-only reports, accuracy_m, share without accuracy_m)
PRECISION: dict[str, tuple[float, float, float]] = {
    "police_nationale": (0.12, 15.0, 0.5),
    "gendarmerie": (0.15, 15.0, 0.5),
    "police_municipale": (0.10, 20.0, 0.3),
    "transport": (0.0, 50.0, 0.0),
    "bailleur_social": (0.0, 25.0, 0.2),
    "education": (0.05, 20.0, 0.5),
    "securite_privee": (0.05, 20.0, 0.3),
    "collectivite": (0.20, 30.0, 0.3),
}
UTC_WRITERS = frozenset({"police_nationale", "gendarmerie", "transport"})  # send `Z` times


def resolve(
    rule: SourceRule, commune: SimCommune, rnd: random.Random, at_station: bool
) -> tuple[str, str]:
    """(source.kind, source.org) of a rule in a commune."""
    kind = rule.kind
    if kind == POLICE:
        return commune.police_kind, commune.police_org
    if kind == CITIZEN:
        return CITIZEN, "citoyen"
    if kind == "police_municipale":
        return kind, f"pm-{commune.insee}"
    if kind == "collectivite":
        return kind, f"mairie-{commune.insee}"
    if kind == "bailleur_social":
        return kind, BAILLEURS[int(commune.insee) % len(BAILLEURS)]
    if kind == "transport":
        return kind, "sncf-transilien" if at_station else rnd.choice(TRANSPORT_BUS)
    if kind == "education":
        return kind, "dsden-91"
    return kind, PRIVATE_SECURITY[int(commune.insee) % len(PRIVATE_SECURITY)]


def pick(options: tuple[tuple[str, float], ...], rnd: random.Random) -> str:
    u = rnd.random()
    for value, p in options:
        u -= p
        if u < 0:
            return value
    return options[-1][0]


def _lognormal(rnd: random.Random, median_s: float, sigma: float) -> float:
    return median_s * math.exp(sigma * rnd.gauss(0.0, 1.0))


BATCH_HOURS = (6, 14, 22)  # local times of the social landlords' batch uploads


def next_batch_upload(ts: float, rnd: random.Random) -> float:
    """The next local upload slot after `ts`; one batch in ten slips to the next day."""
    local = datetime.fromtimestamp(ts, PARIS)
    for day in range(3):
        base = (local + timedelta(days=day)).date()
        for h in BATCH_HOURS:
            slot = datetime(base.year, base.month, base.day, h, rnd.randrange(0, 20), tzinfo=PARIS)
            if slot.timestamp() > ts:
                up = slot.timestamp()
                return up + 86400.0 if rnd.random() < 0.1 else up
    return ts + 8 * 3600.0


def delay(model: str, rnd: random.Random) -> float:
    """Seconds from the observation to the report being recorded at the source."""
    if model == "instant":
        return _lognormal(rnd, 240.0, 0.8)
    if model == "citizen":
        return _lognormal(rnd, 1200.0, 1.0)
    if model == "discovery":  # the victim finds the burglary on coming home
        return rnd.uniform(1800.0, 36000.0)
    if model == "police":
        return _lognormal(rnd, 9000.0, 0.7)
    if model == "patrol":
        return _lognormal(rnd, 5400.0, 0.8)
    if model == "transport":
        return _lognormal(rnd, 1800.0, 0.8)
    if model == "batch":  # time the staff records it; the upload comes later
        return _lognormal(rnd, 3600.0, 0.8)
    return _lognormal(rnd, 10800.0, 0.8)
