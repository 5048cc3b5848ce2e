"""French labels of the contract's closed vocabularies (one place, served to the page)."""

from __future__ import annotations

CATEGORY_LABELS: dict[str, str] = {
    "cambriolage": "Cambriolage",
    "infraction_routiere": "Infraction routière",
    "campement_illicite": "Campement illicite",
    "rodeo": "Rodéo",
    "degradation": "Dégradation",
    "trafic_stupefiants": "Trafic de stupéfiants",
    "violence": "Violence",
    "vol": "Vol",
    "nuisance": "Nuisance",
    "incendie": "Incendie",
    "occupation_hall": "Occupation de hall",
    "autre": "Autre",
}

SOURCE_KIND_LABELS: dict[str, str] = {
    "police_nationale": "Police nationale",
    "gendarmerie": "Gendarmerie",
    "police_municipale": "Police municipale",
    "transport": "Transport",
    "bailleur_social": "Bailleur social",
    "education": "Éducation",
    "securite_privee": "Sécurité privée",
    "collectivite": "Collectivité",
    "citizen": "Citoyen",
}
