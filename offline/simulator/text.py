"""Synthetic French free text and clearly fictional contacts (no real personal data).

Phone numbers are taken from the ranges ARCEP reserves for fiction (01 99 00 xx xx,
06 39 98 xx xx); e-mail addresses use the reserved `.invalid` top-level domain.
"""

from __future__ import annotations

import random

PLACES = (
    "rue des Lilas",
    "avenue de la République",
    "place du Marché",
    "allée des Tilleuls",
    "rue Jean Jaurès",
    "parking de la gare",
    "résidence les Peupliers",
    "rue Victor Hugo",
    "square des Acacias",
    "chemin des Vignes",
    "bâtiment B",
    "cour de l'école",
    "boulevard de France",
    "rue de la Mairie",
    "centre commercial",
    "arrêt de bus",
)

TEMPLATES: dict[str, tuple[str, ...]] = {
    "cambriolage": (
        "Porte fracturée constatée au retour, {p}.",
        "Cambriolage d'un pavillon {p}, fenêtre forcée, objets de valeur dérobés.",
        "Effraction dans une cave {p}.",
    ),
    "infraction_routiere": (
        "Véhicule circulant à vive allure {p}.",
        "Stationnement dangereux {p}, bus bloqué.",
        "Refus de priorité et franchissement de feu rouge {p}.",
    ),
    "campement_illicite": (
        "Installation de caravanes sur le terrain {p}.",
        "Campement toujours présent {p}, une dizaine de tentes.",
        "Occupation illicite d'un terrain communal {p}.",
    ),
    "rodeo": (
        "Rodéo de motos cross {p}, plusieurs passages.",
        "Quads qui tournent en boucle {p} depuis vingt minutes.",
        "Deux-roues en roue arrière {p}, très bruyant.",
    ),
    "degradation": (
        "Tags et vitres cassées {p}.",
        "Abribus dégradé {p}.",
        "Boîtes aux lettres arrachées {p}.",
    ),
    "trafic_stupefiants": (
        "Point de deal actif {p}, guetteurs en bas de l'immeuble.",
        "Allées et venues suspectes {p} toute la soirée.",
        "Transactions visibles {p}.",
    ),
    "violence": (
        "Rixe entre plusieurs individus {p}.",
        "Agression signalée {p}.",
        "Altercation violente {p}, une personne blessée.",
    ),
    "vol": (
        "Vol à l'arraché {p}.",
        "Vol de vélo {p}.",
        "Vol dans un véhicule {p}, vitre brisée.",
    ),
    "nuisance": (
        "Tapage nocturne {p}.",
        "Musique très forte {p} depuis minuit.",
        "Attroupement bruyant {p}.",
    ),
    "incendie": (
        "Véhicule en feu {p}.",
        "Incendie de poubelles {p}.",
        "Départ de feu {p}, fumée importante.",
    ),
    "occupation_hall": (
        "Hall occupé {p}, accès gêné pour les résidents.",
        "Regroupement dans la cage d'escalier {p}.",
        "Occupation du hall {p} tous les soirs.",
    ),
    "autre": (
        "Dépôt sauvage {p}.",
        "Éclairage public hors service {p}.",
        "Comportement suspect {p}.",
    ),
}


def description(category: str, rnd: random.Random) -> str:
    return rnd.choice(TEMPLATES[category]).format(p=rnd.choice(PLACES))


def contact(insee: str, population: int, rnd: random.Random) -> str:
    """A fictional citizen contact; one of about population/200 per commune, so the same
    neighbour can report again (the pipeline counts independent reporters by hash)."""
    k = rnd.randrange(max(population // 200, 5))
    if (k + int(insee)) % 3:
        return f"habitant.{insee}.{k}@exemple.invalid"
    n = (int(insee) * 7919 + k) % 10000
    return f"06 39 98 {n // 100:02d} {n % 100:02d}"
