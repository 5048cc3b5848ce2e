"""The diagnostic as one self-contained HTML document (French), the same for the console
page, the `vigie diagnostic` HTML file and its PDF (printed by Chromium from this HTML).

Charts are Vega-Lite specifications rendered to SVG on the server by vl-convert (no script
in the document, so the PDF shows them as the page does), embedded as `data:` images.
Every text from the data is escaped.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agents.core.diagnostic import (
    SIZE_BANDS,
    SLOT_HOURS,
    SLOTS_PER_DAY,
    WEEK_S,
    CategoryProfile,
    Diagnostic,
)
from agents.core.refdata import RefData
from console.labels import CATEGORY_LABELS, SOURCE_KIND_LABELS

PARIS = ZoneInfo("Europe/Paris")
DASH = "\u2013"  # en dash: empty value, ranges
DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"
TOP_SERIES = 5
TOP_HEATMAPS = 3

# One stylesheet: inlined in the document, linked by the console page.
CSS_FILE = Path(__file__).parent / "static" / "diagnostic.css"


# ---- formatting ------------------------------------------------------------------------------
def _num(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value) or math.isinf(value):
        return DASH
    text = f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")
    return text


def _int(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, PARIS).strftime("%d/%m/%Y")


def _stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, PARIS).strftime("%d/%m/%Y %H:%M")


def _label(category: str) -> str:
    return "Toutes catégories" if category == "total" else CATEGORY_LABELS.get(category, category)


def _slot(slot: int) -> str:
    day, block = divmod(slot, SLOTS_PER_DAY)
    start = block * SLOT_HOURS
    return f"{DAYS[day]} {start:02d} h {DASH} {start + SLOT_HOURS:02d} h"


def _trend_cell(profile: CategoryProfile) -> str:
    """The change and whether it is beyond the usual variation (details on the trends page)."""
    t = profile.trend
    change = "nouveau" if math.isinf(t.change_pct) else f"{_num(t.change_pct, 0)} %"
    if not t.significant:
        return f"{escape(change)} (habituel)"
    css = "up" if t.z > 0 else "down"
    return f'<span class="{css}">{escape(change)} : {t.direction} nette</span>'


# ---- charts ----------------------------------------------------------------------------------
def svg(spec: dict[str, Any]) -> str:
    """A Vega-Lite specification rendered to SVG (vl-convert), French number format."""
    import vl_convert

    text: str = vl_convert.vegalite_to_svg(spec, format_locale="fr-FR")
    return text


def _img(spec: dict[str, Any], alt: str, css: str = "chart") -> str:
    data = base64.b64encode(svg(spec).encode()).decode()
    return f'<img class="{css}" alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def _base(values: list[dict[str, Any]], width: int = 620) -> dict[str, Any]:
    return {
        "$schema": VEGA_LITE,
        "data": {"values": values},
        "width": width,
        "config": {"font": "DejaVu Sans", "view": {"stroke": None}},
    }


def rates_chart(d: Diagnostic) -> dict[str, Any]:
    values = []
    for p in d.categories:
        values.append({"cat": _label(p.category), "qui": "Territoire", "taux": round(p.rate, 3)})
        values.append(
            {"cat": _label(p.category), "qui": "Département", "taux": round(p.dept_rate, 3)}
        )
    return {
        **_base(values, 460),
        "height": {"step": 6},
        "title": "Incidents pour 1 000 habitants sur la période",
        "mark": "bar",
        "encoding": {
            "y": {"field": "cat", "type": "nominal", "title": None, "sort": None},
            "yOffset": {"field": "qui", "sort": ["Territoire", "Département"]},
            "x": {"field": "taux", "type": "quantitative", "title": "pour 1 000 habitants"},
            "color": {
                "field": "qui",
                "type": "nominal",
                "title": None,
                "scale": {
                    "domain": ["Territoire", "Département"],
                    "range": ["#2a5d8f", "#b8c4d0"],
                },
                "legend": {"orient": "bottom"},
            },
        },
    }


def weekly_chart(d: Diagnostic) -> dict[str, Any]:
    values = []
    shown = [d.total, *d.categories[:TOP_SERIES]]
    start = d.until - 2 * d.weeks * WEEK_S
    for p in shown:
        for week, n in enumerate(p.weekly):
            day = datetime.fromtimestamp(start + week * WEEK_S, UTC).strftime("%Y-%m-%d")
            values.append({"semaine": day, "cat": _label(p.category), "n": n})
    return {
        **_base(values),
        "title": "Incidents par semaine (période précédente puis période étudiée)",
        "height": 220,
        "layer": [
            {
                "mark": {"type": "line", "point": True},
                "encoding": {
                    "x": {
                        "field": "semaine",
                        "type": "temporal",
                        "title": "semaine commençant le",
                        "axis": {"format": "%d/%m"},
                    },
                    "y": {"field": "n", "type": "quantitative", "title": "incidents"},
                    "color": {
                        "field": "cat",
                        "type": "nominal",
                        "title": None,
                        "sort": None,
                        "legend": {"orient": "bottom", "columns": 3},
                    },
                },
            },
            {
                "data": {
                    "values": [{"debut": datetime.fromtimestamp(d.since, UTC).strftime("%Y-%m-%d")}]
                },
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#666"},
                "encoding": {"x": {"field": "debut", "type": "temporal"}},
            },
        ],
    }


def heatmap_chart(d: Diagnostic) -> dict[str, Any]:
    shown = ["total", *[p.category for p in d.categories[:TOP_HEATMAPS]]]
    values = []
    for category in shown:
        counts = d.hour_of_week.get(category, (0,) * 168)
        for how, n in enumerate(counts):
            day, hour = divmod(how, 24)
            values.append({"cat": _label(category), "jour": DAYS[day], "heure": hour, "n": n})
    base = _base(values)
    del base["width"]
    return {
        **base,
        "title": "Quand : incidents par heure de la semaine (heure de Paris)",
        "facet": {
            "field": "cat",
            "type": "nominal",
            "title": None,
            "sort": [_label(c) for c in shown],
        },
        "columns": 2,
        "spec": {
            "width": 300,
            "height": 110,
            "mark": "rect",
            "encoding": {
                "x": {"field": "heure", "type": "ordinal", "title": "heure"},
                "y": {"field": "jour", "type": "ordinal", "sort": list(DAYS), "title": None},
                "color": {
                    "field": "n",
                    "type": "quantitative",
                    "title": "incidents",
                    "scale": {"scheme": "oranges"},
                },
            },
        },
        "resolve": {"scale": {"color": "independent"}},
    }


def sources_chart(d: Diagnostic) -> dict[str, Any]:
    total = sum(s.n for s in d.sources) or 1
    values = [
        {"source": SOURCE_KIND_LABELS.get(s.kind, s.kind), "part": round(100 * s.n / total, 2)}
        for s in d.sources
    ]
    return {
        **_base(values, 480),
        "title": "Qui signale : part des signalements par type de source (%)",
        "mark": "bar",
        "encoding": {
            "y": {"field": "source", "type": "nominal", "sort": "-x", "title": None},
            "x": {"field": "part", "type": "quantitative", "title": "% des signalements"},
            "color": {"value": "#2a5d8f"},
        },
    }


# ---- document --------------------------------------------------------------------------------
def _profile_table(d: Diagnostic) -> str:
    head = (
        "<tr><th class=t>Catégorie</th><th>Incidents</th><th>Période préc.</th>"
        "<th>‰ hab.</th><th>‰ département</th><th>Ratio dépt.</th>"
        "<th>Ratio communes comparables</th><th class=t>Évolution</th></tr>"
    )
    rows = []
    for p in (*d.categories, d.total):
        rows.append(
            f"<tr><td class=t>{escape(_label(p.category))}</td><td>{_int(p.current)}</td>"
            f"<td>{_int(p.previous)}</td><td>{_num(p.rate, 2)}</td><td>{_num(p.dept_rate, 2)}</td>"
            f"<td>{_num(p.ratio_dept, 2)}</td><td>{_num(p.ratio_band, 2)}</td>"
            f"<td class=t>{_trend_cell(p)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _band_text(d: Diagnostic) -> str:
    if d.band is None:
        return "pas de comparaison par taille"
    return (
        f"communes comparables : les {d.band_communes} autres communes du département de "
        f"{SIZE_BANDS[d.band][1]}"
    )


def render_html(d: Diagnostic, refdata: RefData) -> str:
    """The whole document (four pages when printed)."""
    t = d.territory
    kind = {
        "commune": "Commune",
        "communes": "Groupe de communes",
        "jurisdiction": "Circonscription",
    }[t.kind.value]
    codes = ", ".join(t.communes[:12]) + (" …" if len(t.communes) > 12 else "")
    total = d.total
    verdict = {
        "hausse": "en hausse au-delà de la variation habituelle",
        "baisse": "en baisse au-delà de la variation habituelle",
        "stable": "sans évolution au-delà de la variation habituelle",
    }[total.trend.direction]
    key = (
        f'<div class="key"><div>Incidents<b>{_int(total.current)}</b></div>'
        f"<div>Pour 1 000 habitants<b>{_num(total.rate, 2)}</b></div>"
        f"<div>Ratio au département<b>{_num(total.ratio_dept, 2)}</b></div>"
        f"<div>Ratio aux communes comparables<b>{_num(total.ratio_band, 2)}</b></div>"
        f"<div>Évolution<b>{escape(total.trend.direction)}</b></div></div>"
    )
    page1 = (
        f"<section class=page id=profil><h1>Diagnostic territorial — {escape(t.label)}</h1>"
        f'<p class="meta">{kind} ({escape(codes)}) · période du {_day(d.since)} au '
        f"{_day(d.until - 1)} ({d.weeks} semaines), comparée aux {d.weeks} semaines "
        f"précédentes et au département · {_int(d.population)} habitants "
        f"({escape(d.population_source)}) · {escape(_band_text(d))}</p>"
        f"{key}<p>Sur la période, le territoire compte {_int(total.current)} incidents, "
        f"{verdict} ({_int(total.previous)} la période précédente).</p>"
        f"<h2>Profil des problèmes</h2>{_profile_table(d)}"
        f'<p class="note">‰ hab. : incidents pour 1 000 habitants sur la période. Ratio : '
        "taux du territoire rapporté à celui du département (ou des communes comparables) ; "
        "1 = même niveau.</p></section>"
    )
    tests = "".join(
        f"<tr><td class=t>{escape(_label(p.category))}</td><td>{_int(p.trend.current)}</td>"
        f"<td>{_int(p.trend.previous)}</td><td>{_num(p.trend.ratio, 2)}</td>"
        f"<td>{_num(p.trend.dispersion, 2)}</td><td>{_num(p.trend.z, 2)}</td>"
        f"<td class=t>{'oui' if p.trend.significant else 'non'}</td></tr>"
        for p in (d.total, *d.categories)
    )
    page2 = (
        "<section class=page id=tendances><h2>Comparaison et tendances</h2>"
        f"{_img(rates_chart(d), 'Taux pour 1 000 habitants par catégorie')}"
        f"{_img(weekly_chart(d), 'Incidents par semaine')}"
        "<table><tr><th class=t>Catégorie</th><th>Période</th><th>Période préc.</th>"
        "<th>Rapport</th><th>Dispersion φ</th><th>z</th><th class=t>Au-delà de la variation"
        f" habituelle</th></tr>{tests}</table>"
        '<p class="note">Comment lire ce test : on compare le nombre d\'incidents de la période '
        "à celui de la période précédente de même durée. Les nombres hebdomadaires varient "
        "naturellement d'une semaine à l'autre ; cette variation habituelle est mesurée sur les "
        "semaines elles-mêmes (dispersion φ, au moins 1). L'écart est jugé net lorsque le "
        "logarithme du rapport des deux périodes dépasse 1,96 fois son incertitude (|z| > 1,96, "
        "soit moins de 5 % de chances d'un tel écart par le seul hasard). Un pourcentage seul ne "
        "suffit pas : +50 % sur 4 incidents n'est pas significatif, +10 % sur 2 000 peut "
        "l'être. Les catégories sont jugées ensemble (méthode de Holm) : sans cela, une sur "
        "douze serait signalée par hasard dans un diagnostic sur deux.</p></section>"
    )
    chronic = (
        "".join(
            f"<tr><td class=t>{escape(p.commune)}</td><td class=t>{escape(p.cell)}</td>"
            f"<td>{p.days}</td><td>{p.reports}</td><td>{_num(p.lat, 4)}, {_num(p.lon, 4)}</td></tr>"
            for p in d.chronic_places
        )
        or "<tr><td class=t colspan=5>aucun lieu récurrent sur la période</td></tr>"
    )
    alerts = (
        "".join(
            f"<tr><td class=t>{_stamp(a.emitted_at)}</td>"
            f"<td class=t>{escape(_label(a.category))}</td><td class=t>{escape(a.status)}</td>"
            f"<td>{a.severity}</td><td>{_num(a.observed, 0)}</td>"
            f"<td>{_num(a.expected, 1)}</td></tr>"
            for a in d.alerts
        )
        or "<tr><td class=t colspan=6>aucune alerte sur la période</td></tr>"
    )
    page3 = (
        "<section class=page id=quand-ou><h2>Quand</h2>"
        f"{_img(heatmap_chart(d), 'Incidents par heure de la semaine', 'chart tall')}"
        "<h2>Où</h2><h3>Lieux récurrents (trafic, occupation de hall)</h3>"
        "<table><tr><th class=t>Commune</th><th class=t>Lieu (H3 r9)</th><th>Jours</th>"
        f"<th>Signalements</th><th>Position</th></tr>{chronic}</table>"
        '<p class="note">Un lieu est récurrent lorsqu\'il a des signalements de trafic ou '
        "d'occupation de hall sur au moins 3 jours distincts de la période (jours de midi à midi, "
        "comme la mémoire des lieux de la corrélation).</p>"
        "<h3>Historique des alertes</h3><table><tr><th class=t>Émise le</th>"
        "<th class=t>Catégorie</th><th class=t>État</th><th>Gravité</th><th>Observé</th>"
        f"<th>Attendu</th></tr>{alerts}</table></section>"
    )
    reports = sum(s.n for s in d.sources)
    sources = (
        "".join(
            f"<tr><td class=t>{escape(SOURCE_KIND_LABELS.get(s.kind, s.kind))}</td>"
            f"<td>{_int(s.n)}</td><td>{_num(100 * s.n / reports if reports else 0, 1)} %</td>"
            f"<td>{s.orgs}</td></tr>"
            for s in d.sources
        )
        or "<tr><td class=t colspan=4>aucun signalement sur la période</td></tr>"
    )
    present = {s.kind for s in d.sources}
    missing = [
        label
        for kind, label in SOURCE_KIND_LABELS.items()
        if kind not in present and kind != "citizen"
    ]
    coverage = (
        "Partenaires sans signalement sur la période : " + ", ".join(missing) + "."
        if missing
        else "Tous les types de partenaires ont signalé sur la période."
    )
    share = DASH if d.citizen_share is None else f"{_num(100 * d.citizen_share, 1)} %"
    forecast = (
        "".join(
            f"<tr><td class=t>{escape(f.commune)}</td><td class=t>{escape(f.cell)}</td>"
            f"<td class=t>{_slot(f.slot)}</td><td>{_num(f.expected, 2)}</td>"
            f"<td>{f.low} {DASH} {f.high}</td></tr>"
            for f in d.forecast
        )
        or "<tr><td class=t colspan=5>pas assez d'incidents localisés</td></tr>"
    )
    page4 = (
        "<section class=page id=qui-presence><h2>Qui signale</h2>"
        + (_img(sources_chart(d), "Part des signalements par type de source") if d.sources else "")
        + "<table><tr><th class=t>Source</th><th>Signalements</th><th>Part</th>"
        f"<th>Sources distinctes</th></tr>{sources}</table>"
        f"<p>Part des signalements citoyens : <b>{share}</b>. {escape(coverage)}</p>"
        '<p class="note">Une faible part citoyenne ou un partenaire absent peut signaler une '
        "sous-déclaration : les chiffres décrivent ce qui est signalé.</p>"
        "<h2>Présence dynamique — semaine à venir</h2>"
        "<table><tr><th class=t>Commune</th><th class=t>Lieu (H3 r8)</th>"
        "<th class=t>Créneau</th><th>Incidents attendus</th><th>Intervalle à 80 %</th></tr>"
        f'{forecast}</table><p class="note">{escape(d.forecast_note)} Attendu : nombre '
        "d'incidents de la période au lieu et au créneau, rapproché du niveau du lieu réparti "
        "selon le profil horaire du territoire (même structure que les références du "
        "détecteur) ; intervalle de prévision gamma-Poisson.</p>"
        f'<p class="meta">Sources : incidents et signalements de Vigie (ClickHouse), '
        f"période se terminant le {_stamp(d.until)} (heure de Paris). "
        f"Populations : {escape(d.population_source)}. Fonds : {escape(refdata.attribution)}."
        "</p></section>"
    )
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>Diagnostic territorial — {escape(t.label)}</title>"
        f"<style>{CSS_FILE.read_text(encoding='utf-8')}</style></head><body>{page1}{page2}{page3}{page4}</body></html>"
    )
