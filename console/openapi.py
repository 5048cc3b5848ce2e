"""The OpenAPI 3.1 document of the console API (`GET /api/openapi.json`).

Paths are listed by hand next to `console.api.ROUTES` (a test checks both match); query
parameters and request bodies are generated from the pydantic models that validate them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from console.incident_actions import IncidentActionBody
from console.map_api import MapLayersQuery
from console.params import (
    MAX_MAP_POINTS,
    MAX_PAGE,
    ActionBody,
    AlertQuery,
    IncidentQuery,
    MapQuery,
    SummaryQuery,
)
from console.partners_api import openapi_paths as partner_openapi_paths

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    return out


def _path_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_.:-]{1,128}$"},
    }


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema or {"type": "object"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Paramètres invalides",
        401: "Jeton manquant ou invalide",
        403: "Rôle insuffisant",
        404: "Inconnu",
        409: "action_id déjà enregistré pour une autre action (l'historique ne se réécrit pas)",
        429: "Trop d'échecs d'authentification depuis cette adresse, ou trop de flux ouverts"
        " (en-tête Retry-After)",
        502: "Action enregistrée mais non publiée sur Kafka",
        503: "Base de données indisponible",
    }
    return {str(c): {"description": text[c], "content": {JSON: {"schema": ERROR}}} for c in codes}


def _get(summary: str, ok: dict[str, Any], params: list[dict[str, Any]], *codes: int) -> Any:
    return {
        "get": {
            "summary": summary,
            "parameters": params,
            "responses": {"200": ok, **_errors(401, 429, *codes)},
        }
    }


DIAGNOSTIC_PARAMS = [
    {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
    for name, schema, text in (
        ("commune", {"type": "string"}, "Code INSEE de la commune"),
        ("communes", {"type": "string"}, "Codes INSEE séparés par des virgules"),
        ("jurisdiction", {"type": "string"}, "Identifiant de circonscription"),
        ("weeks", {"type": "integer", "minimum": 1, "maximum": 52}, "Semaines (défaut 12)"),
        ("until", {"type": "integer"}, "Fin, secondes epoch (défaut : fin de l'heure en cours)"),
    )
]

PAGE = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": {"type": "object"}},
        "limit": {"type": "integer", "maximum": MAX_PAGE},
        "offset": {"type": "integer"},
        "next_offset": {"type": ["integer", "null"]},
    },
}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    action_schema = ActionBody.model_json_schema()
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "summary": "Vivacité (sans jeton)",
                "security": [],
                "responses": {"200": _ok("Le service répond")},
            }
        },
        "/api/openapi.json": _get("Ce document", _ok("OpenAPI 3.1"), []),
        "/api/me": _get("Identité, rôle et jeton de flux SSE (10 min)", _ok("Identité"), []),
        "/api/summary": _get(
            "Compteurs : dernière heure, aujourd'hui, tendance 7 jours, répartitions",
            _ok("Compteurs"),
            _query_params(SummaryQuery),
            400,
            503,
        ),
        "/api/incidents": _get(
            "Incidents (état courant), paginés",
            _ok("Page", PAGE),
            _query_params(IncidentQuery),
            400,
            503,
        ),
        "/api/incidents/{incident_id}": _get(
            "Détail d'un incident et signalements fusionnés",
            _ok("Incident"),
            [_path_param("incident_id")],
            400,
            404,
            503,
        ),
        "/api/alerts": _get(
            "Alertes (état courant et suite donnée), paginées",
            _ok("Page", PAGE),
            _query_params(AlertQuery),
            400,
            503,
        ),
        "/api/alerts/{alert_id}": _get(
            "Détail d'une alerte et historique des actions",
            _ok("Alerte"),
            [_path_param("alert_id")],
            400,
            404,
            503,
        ),
        "/api/alerts/{alert_id}/actions": {
            "post": {
                "summary": "Acquitter (ack) ou clôturer (close) une alerte avec un commentaire"
                " (rôle operator) ; enregistrée dans ClickHouse et publiée sur Kafka. Les"
                " actions ne se réécrivent pas : un action_id déjà enregistré avec le même"
                " contenu renvoie l'action enregistrée, avec un autre contenu 409. Commentaire"
                " sans caractère de contrôle (hors tabulation et saut de ligne) ni contrôle de"
                " direction du texte (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)",
                "parameters": [_path_param("alert_id")],
                "requestBody": {"required": True, "content": {JSON: {"schema": action_schema}}},
                "responses": {
                    "201": _ok("Action enregistrée et publiée"),
                    **_errors(400, 401, 403, 404, 409, 429, 502, 503),
                },
            }
        },
        "/api/incidents/{incident_id}/actions": {
            "post": {
                "summary": "Marquer un incident pris en compte, ou clos avec une issue"
                " (intervention, interpellation, orientation_partenaire, sans_suite,"
                " fausse_alerte) et une note (rôle operator, ou partner dans son périmètre) ;"
                " chaque signalement de l'incident reçoit son retour (pris_en_compte / clos)"
                " sur vigie.reports.feedback.v1. La note n'est jamais transmise aux signalants",
                "parameters": [_path_param("incident_id")],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": IncidentActionBody.model_json_schema()}},
                },
                "responses": {
                    "201": _ok("Action enregistrée, retours publiés"),
                    **_errors(400, 401, 403, 404, 409, 429, 502, 503),
                },
            }
        },
        "/api/map": _get(
            f"Carte : incidents (au plus {MAX_MAP_POINTS}) et zones d'alerte ouvertes",
            _ok("Points et zones"),
            _query_params(MapQuery),
            400,
            503,
        ),
        "/api/map/layers": _get(
            "Couches de la carte : incidents (au plus 20 000, lignes compactes), nombre"
            " d'incidents par hexagone H3 (résolutions 7 et 8, avec contours), zones des alertes"
            " ouvertes",
            _ok("Couches"),
            _query_params(MapLayersQuery),
            400,
            503,
        ),
        "/api/refdata/jurisdictions.geojson": _get(
            "Contours des circonscriptions (union de leurs communes, GeoJSON)",
            {"description": "FeatureCollection", "content": {"application/geo+json": {}}},
            [],
        ),
        "/api/refdata/communes.geojson": _get(
            "Contours des communes (GeoJSON)",
            {"description": "FeatureCollection", "content": {"application/geo+json": {}}},
            [],
        ),
        "/api/refdata/filters": _get(
            "Listes des filtres : catégories, communes, circonscriptions", _ok("Listes"), []
        ),
        "/api/diagnostic": _get(
            "Diagnostic territorial (commune, groupe de communes ou circonscription) sur"
            " `weeks` semaines (défaut 12) avant `until` : profil, taux pour 1 000 habitants,"
            " tendances, heures, lieux récurrents, alertes, sources, présence dynamique",
            _ok("Diagnostic"),
            DIAGNOSTIC_PARAMS,
            400,
            403,
            503,
        ),
        "/api/diagnostic/report": _get(
            "Le même diagnostic en document HTML autonome (graphiques SVG), imprimable",
            {"description": "Document HTML", "content": {"text/html": {}}},
            DIAGNOSTIC_PARAMS,
            400,
            403,
            503,
        ),
        "/api/stream": {
            "get": {
                "summary": "Flux SSE (événements hello, change, alert, status, expired)."
                " EventSource ne pouvant pas envoyer d'en-tête, le jeton court de /api/me passe"
                " en ?st=. Le flux se termine par « expired » quand ce jeton expire (ouvert avec"
                " l'en-tête Authorization : après la même durée) ; nombre de flux ouverts limité"
                " par compte et au total (429)",
                "security": [{"bearer": []}, {"streamToken": []}],
                "parameters": [
                    {"name": "st", "in": "query", "required": False, "schema": {"type": "string"}},
                    {
                        "name": "feed",
                        "in": "query",
                        "required": False,
                        "description": "partenaire : « subscriptions » ne transmet que les"
                        " alertes des catégories auxquelles il est abonné",
                        "schema": {"type": "string", "enum": ["subscriptions"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "text/event-stream",
                        "content": {"text/event-stream": {}},
                    },
                    **_errors(401, 429),
                },
            }
        },
    }
    paths.update(partner_openapi_paths())  # the partner registry (operators only)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vigie — API de la console de la salle opérationnelle",
            "version": "1.0.0",
            "description": "Lecture seule de ClickHouse, sauf les actions sur les alertes. Toutes"
            " les requêtes sont bornées dans le temps (31 jours au plus) et paginées"
            f" (au plus {MAX_PAGE} éléments). Heures : secondes epoch UTC.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "streamToken": {"type": "apiKey", "in": "query", "name": "st"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "details": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
        },
    }
