"""Closed vocabularies of contract v1."""

from enum import StrEnum


class SourceKind(StrEnum):
    POLICE_NATIONALE = "police_nationale"
    GENDARMERIE = "gendarmerie"
    POLICE_MUNICIPALE = "police_municipale"
    TRANSPORT = "transport"
    BAILLEUR_SOCIAL = "bailleur_social"
    EDUCATION = "education"
    SECURITE_PRIVEE = "securite_privee"
    COLLECTIVITE = "collectivite"
    CITIZEN = "citizen"


class Category(StrEnum):
    CAMBRIOLAGE = "cambriolage"
    INFRACTION_ROUTIERE = "infraction_routiere"
    CAMPEMENT_ILLICITE = "campement_illicite"
    RODEO = "rodeo"
    DEGRADATION = "degradation"
    TRAFIC_STUPEFIANTS = "trafic_stupefiants"
    VIOLENCE = "violence"
    VOL = "vol"
    NUISANCE = "nuisance"
    INCENDIE = "incendie"
    OCCUPATION_HALL = "occupation_hall"
    AUTRE = "autre"


class IncidentStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Precision(StrEnum):
    """How an incident (or a report) is located: a position, or only its commune (INSEE)."""

    POINT = "point"
    COMMUNE = "commune"


SOURCE_KINDS: tuple[str, ...] = tuple(k.value for k in SourceKind)
CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)
