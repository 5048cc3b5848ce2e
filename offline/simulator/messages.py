"""Reports of an incident as contract-v1 messages, plus re-deliveries and malformed ones.

Time stamps: the Kafka timestamp of a message is the time it is *sent*. For every
source but one it equals `reported_at`. Social landlords (`bailleur_social`) upload
batches a few times a day: their `reported_at` is when the staff recorded the report,
the message is sent at the next upload slot, hours later (late data on purpose).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from agents.core.confusions import CONFUSED_WITH
from offline.simulator.area import M_PER_DEG_LAT, SimArea
from offline.simulator.clock import Clock
from offline.simulator.config import MOBILE, PARIS, PERSISTENT, SimulationConfig
from offline.simulator.incidents import Incident, loguniform
from offline.simulator.sources import (
    CHANNELS,
    CITIZEN,
    MISLABELS,
    PRECISION,
    RULES,
    STATION_RULE,
    UTC_WRITERS,
    SourceRule,
    delay,
    next_batch_upload,
    pick,
    resolve,
)
from offline.simulator.text import contact, description
from offline.simulator.world import MEDIAN_FACTOR, RADIUS_FACTOR, REPORT_ERROR_SPREAD
from schemas.report import MAX_MESSAGE_BYTES

TOPIC_PARTNER = "vigie.reports.partner.v1"
TOPIC_CITIZEN = "vigie.reports.citizen.v1"


@dataclass(slots=True)
class Pending:
    """A message waiting in the engine's time-ordered queue."""

    sent: float
    topic: str
    key: bytes
    value: bytes
    truth: dict[str, object]
    incident: Incident | None


_CLOCK = Clock()
iso = _CLOCK.iso


def poisson(rnd: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, rnd.random()
    while p > limit:
        k += 1
        p *= rnd.random()
    return k


class ReportFactory:
    def __init__(self, cfg: SimulationConfig, area: SimArea, hours: dict[str, np.ndarray]) -> None:
        self.cfg, self.area = cfg, area
        self.rnd = random.Random(cfg.seed * 7_919 + 3)
        self.hours_max = {c: (h.tolist(), float(h.max())) for c, h in hours.items()}
        self.seq: dict[str, int] = {}
        # Partner record numbers are sequential per system; a per-run batch tag keeps two
        # simulated runs (other seed or start) from reusing each other's report_ids.
        self.run_tag = f"{random.Random(f'{cfg.seed}/{cfg.start}').getrandbits(24):06x}"
        shares = 1.0 - cfg.redelivery_rate - cfg.malformed_rate
        # per valid original: expected re-deliveries and malformed siblings, so that they
        # make up `redelivery_rate` and `malformed_rate` of all emitted messages
        self.p_redeliver = cfg.redelivery_rate / shares
        self.p_malformed = cfg.malformed_rate / shares
        known = area.known_insee
        self.unknown_insee = [f"91{n:03d}" for n in range(1000) if f"91{n:03d}" not in known]
        self.world = cfg.world
        self.confused_with = {c: sorted(CONFUSED_WITH.get(c, ())) for c in cfg.categories}

    def _p(self, rule: SourceRule) -> float:
        """A rule's probability of reporting, times the world's weight of its source kind."""
        if self.world is None:
            return rule.p
        return min(rule.p * self.world.source_weights.get(rule.kind, 1.0), 0.98)

    # --- identities ---
    def report_id(self, kind: str, org: str) -> str:
        if kind == CITIZEN:
            return f"cit-{self.rnd.getrandbits(96):024x}"
        n = self.seq[org] = self.seq.get(org, 0) + 1
        prefix = {
            "police_nationale": "PN",
            "gendarmerie": "GN",
            "police_municipale": "PM",
            "transport": "TR",
            "bailleur_social": "BS",
            "education": "EN",
            "securite_privee": "SP",
            "collectivite": "CT",
        }[kind]
        return f"{prefix}-{org}-{self.run_tag}-{n:07d}"

    # --- reporters of an incident ---
    def _rules(self, inc: Incident) -> list[SourceRule]:
        pop = self.area.communes[inc.commune].population
        rules = [r for r in RULES[inc.category] if pop >= r.min_pop]
        if inc.spot_kind == "gare":
            rules.append(STATION_RULE)
        return rules

    def _observe_time(self, inc: Incident) -> float:
        """A time the incident is seen, following its category's hour profile."""
        prof, top = self.hours_max[inc.category]
        rnd = self.rnd
        t = inc.start
        for _ in range(6):
            t = rnd.uniform(inc.start, inc.end)
            if rnd.random() * top < prof[_CLOCK.local_hour(t)]:
                break
        return t

    def reporters(self, inc: Incident) -> list[tuple[SourceRule, float]]:
        rnd = self.rnd
        rules = self._rules(inc)
        out: list[tuple[SourceRule, float]] = []
        twin = inc.twin_of is not None or inc.twinned
        for i, r in enumerate(rules):
            forced = twin and r.kind != CITIZEN and all(x.kind == CITIZEN for x in rules[:i])
            if forced or rnd.random() < self._p(r):
                for _ in range(1 + poisson(rnd, r.extra)):
                    out.append((r, self._first_obs(inc, r)))
        if not out:
            out.append((rules[0], self._first_obs(inc, rules[0])))
        if inc.kind == PERSISTENT:
            prof = self.cfg.categories[inc.category]
            n = poisson(rnd, prof.repeat_per_day * (inc.end - inc.start) / 86400.0)
            weights = [self._p(r) for r in rules]
            for _ in range(n):
                out.append((rnd.choices(rules, weights)[0], self._observe_time(inc)))
        return out

    def _first_obs(self, inc: Incident, r: SourceRule) -> float:
        if r.delay == "discovery":
            return inc.end
        if inc.kind == PERSISTENT:
            return inc.start + self.rnd.uniform(0, min(3600.0, inc.end - inc.start))
        return self.rnd.uniform(inc.start, inc.end)

    # --- one report ---
    def _position(self, inc: Incident, obs: float, kind: str) -> dict[str, object]:
        if self.world is not None:
            return self._world_position(inc, obs, kind)
        rnd = self.rnd
        commune = self.area.communes[inc.commune]
        if kind == CITIZEN:
            commune_only, acc, no_acc = self.cfg.citizen_commune_only_rate, None, 0.0
        else:
            commune_only, acc, no_acc = PRECISION[kind]
        if rnd.random() < commune_only:
            return {"insee": commune.insee}
        lat, lon = inc.lat, inc.lon
        if inc.kind == MOBILE and inc.end > inc.start:
            f = min(max((obs - inc.start) / (inc.end - inc.start), 0.0), 1.0)
            lat, lon = lat + f * (inc.lat2 - lat), lon + f * (inc.lon2 - lon)
        accuracy = loguniform(rnd, 10.0, 300.0) if acc is None else acc
        dx, dy = rnd.gauss(0.0, accuracy / 2), rnd.gauss(0.0, accuracy / 2)
        norm, room = math.hypot(dx, dy), max(inc.budget_m - 10.0, 0.0)
        if norm > room:
            dx, dy = (dx * room / norm, dy * room / norm) if norm else (0.0, 0.0)
        lat += dy / M_PER_DEG_LAT
        lon += dx / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
        loc: dict[str, object] = {"lat": round(lat, 6), "lon": round(lon, 6)}
        if rnd.random() >= no_acc:
            loc["accuracy_m"] = round(accuracy, 0)
        return loc

    def _true_point(self, inc: Incident, obs: float) -> tuple[float, float]:
        if inc.kind == MOBILE and inc.end > inc.start:
            f = min(max((obs - inc.start) / (inc.end - inc.start), 0.0), 1.0)
            return inc.lat + f * (inc.lat2 - inc.lat), inc.lon + f * (inc.lon2 - inc.lon)
        return inc.lat, inc.lon

    def _world_position(self, inc: Incident, obs: float, kind: str) -> dict[str, object]:
        """A position under the drawn world: per-axis sigma around the world's median error
        (log-normal spread per report), the stated accuracy by the world's convention."""
        world, rnd = self.world, self.rnd
        assert world is not None
        citizen = kind == CITIZEN
        if citizen:
            commune_only, no_acc = world.commune_only, 0.0
            median_m, factor = world.citizen_error_m, world.stated_factor()
        else:
            default_share, _, no_acc = PRECISION[kind]
            commune_only = world.partner_commune_only(default_share)
            median_m = world.partner_error_m
            factor = RADIUS_FACTOR[world.accuracy_radius]
        if rnd.random() < commune_only:
            return {"insee": self.area.communes[inc.commune].insee}
        lat, lon = self._true_point(inc, obs)
        sigma = median_m / MEDIAN_FACTOR * math.exp(REPORT_ERROR_SPREAD * rnd.gauss(0.0, 1.0))
        dx, dy = rnd.gauss(0.0, sigma), rnd.gauss(0.0, sigma)
        norm, room = math.hypot(dx, dy), max(inc.budget_m - 10.0, 0.0)
        if norm > room:  # stay inside the served area (see `area`)
            dx, dy = (dx * room / norm, dy * room / norm) if norm else (0.0, 0.0)
        lat += dy / M_PER_DEG_LAT
        lon += dx / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
        loc: dict[str, object] = {"lat": round(lat, 6), "lon": round(lon, 6)}
        if factor is not None and rnd.random() >= no_acc:
            loc["accuracy_m"] = max(round(sigma * factor, 0), 1.0)
        return loc

    def _occurred(self, inc: Incident, r: SourceRule, kind: str, obs: float) -> float:
        rnd = self.rnd
        if r.delay == "discovery":  # the victim guesses when it happened
            return round((inc.start + rnd.gauss(0.0, 5400.0)) / 300.0) * 300.0
        if kind == CITIZEN:
            return math.floor((obs - rnd.uniform(0.0, 180.0)) / 60.0) * 60.0
        if kind in ("police_nationale", "gendarmerie") and inc.category == "cambriolage":
            return round((inc.start + rnd.gauss(0.0, 3600.0)) / 900.0) * 900.0
        return round(obs / 300.0) * 300.0

    def build(self, inc: Incident, r: SourceRule, obs: float) -> Pending:
        rnd, cfg = self.rnd, self.cfg
        commune = self.area.communes[inc.commune]
        kind, org = resolve(r, commune, rnd, inc.spot_kind == "gare")
        world = self.world
        if world is None:
            recorded = obs + delay(r.delay, rnd)
            batch = r.delay == "batch"
        else:
            recorded = obs + delay(r.delay, rnd) * world.lag_factor
            batch = r.delay == "batch" or (
                kind != CITIZEN and rnd.random() < world.late_batch_share
            )
        sent = next_batch_upload(recorded, rnd) if batch else recorded
        occurred = min(self._occurred(inc, r, kind, obs), recorded)
        utc = kind in UTC_WRITERS
        category = inc.category
        if kind == CITIZEN and world is not None:
            alternatives = self.confused_with[category]
            if alternatives and rnd.random() < world.confusion:
                category = rnd.choice(alternatives)
        elif kind == CITIZEN:
            for alt, p in MISLABELS.get(category, ()):
                if rnd.random() < p * cfg.mislabel_rate:
                    category = alt
                    break
        rid = self.report_id(kind, org)
        msg: dict[str, object] = {
            "report_id": rid,
            "source": {"kind": kind, "org": org, "channel": pick(CHANNELS[kind], rnd)},
            "category": category,
            "occurred_at": iso(occurred, utc),
        }
        if rnd.random() >= cfg.omit_reported_at_rate:
            msg["reported_at"] = iso(recorded, utc)
        msg["location"] = self._position(inc, obs, kind)
        if rnd.random() < (0.6 if kind == CITIZEN else 0.85):
            msg["description"] = description(inc.category, rnd)
        if kind == CITIZEN and rnd.random() < cfg.contact_rate:
            msg["reporter"] = {"contact": contact(commune.insee, commune.population, rnd)}
        if rnd.random() < (0.2 if kind == CITIZEN else 0.6):
            base = cfg.categories[inc.category].severity
            msg["severity"] = min(max(base + rnd.choice((-1, 0, 0, 1)), 1), 5)
        topic = TOPIC_CITIZEN if kind == CITIZEN else TOPIC_PARTNER
        truth: dict[str, object] = {
            "type": "message",
            "report_id": rid,
            "incident_id": inc.incident_id,
            "is_redelivery": False,
            "expected_reject_reason": None,
            "outbreak_id": inc.outbreak_id,
            "topic": topic,
            "source_kind": kind,
            "true_category": inc.category,
            "reported_category": category,
        }
        return Pending(sent, topic, rid.encode(), orjson.dumps(msg), truth, inc)

    def messages(self, inc: Incident, horizon_end: float) -> list[Pending]:
        """Every message about `inc` (valid, re-deliveries, malformed siblings)."""
        out: list[Pending] = []
        rnd = self.rnd
        for r, obs in self.reporters(inc):
            p = self.build(inc, r, obs)
            if p.sent >= horizon_end:
                continue
            out.append(p)
            if rnd.random() < self.p_redeliver:
                late = rnd.random() < self.cfg.replay_share
                extra = rnd.uniform(3600.0, 72 * 3600.0) if late else rnd.uniform(0.05, 30.0)
                truth = dict(p.truth, is_redelivery=True)
                out.append(Pending(p.sent + extra, p.topic, p.key, p.value, truth, inc))
            if rnd.random() < self.p_malformed:
                out.append(self.malformed(p))
        return out

    # --- malformed messages ---
    def malformed(self, valid: Pending) -> Pending:
        rnd = self.rnd
        msg = orjson.loads(valid.value)
        kind = str(msg["source"]["kind"])
        rid = self.report_id(kind, str(msg["source"]["org"]))
        msg["report_id"] = rid
        reason = rnd.choices(list(CORRUPTIONS), [w for w, _ in CORRUPTIONS.values()])[0]
        value = CORRUPTIONS[reason][1](self, msg, valid.sent)
        truth: dict[str, object] = {
            "type": "message",
            "report_id": rid,
            "incident_id": None,
            "is_redelivery": False,
            "expected_reject_reason": reason,
            "outbreak_id": None,
            "topic": valid.topic,
            "source_kind": kind,
            "true_category": None,
            "reported_category": None,
        }
        return Pending(
            valid.sent + rnd.uniform(0.0, 1.0), valid.topic, rid.encode(), value, truth, None
        )


Corruptor = Callable[[ReportFactory, dict[str, Any], float], bytes]


def _dumps(msg: object) -> bytes:
    return orjson.dumps(msg)


def _not_json(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    raw = _dumps(m)
    if f.rnd.random() < 0.5:  # a Python repr instead of JSON
        return repr(m).encode()
    cut = raw[: f.rnd.randrange(1, len(raw) - 1)]
    return cut.decode("utf-8", "ignore").encode()  # truncated, still UTF-8


def _not_utf8(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    m["description"] = "Dégradation signalée près de l'entrée"
    return _dumps(m).decode().encode("latin-1", "replace")


def _not_object(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    return f.rnd.choice((_dumps([m]), _dumps(m["report_id"]), b"null", b"42"))


def _missing_field(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    field = f.rnd.choice(("report_id", "source", "category", "occurred_at", "location", "org"))
    if field == "org":
        del m["source"]["org"]
    else:
        del m[field]
    return _dumps(m)


def _invalid_field(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    choice = f.rnd.randrange(3)
    if choice == 0:
        m["severity"] = f.rnd.choice((0, 7, 10))
    elif choice == 1:
        m["severity"] = "3"
    else:
        m["source"]["org"] = "x" * 80
    return _dumps(m)


def _unknown_category(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    m["category"] = f.rnd.choice(("tapage", "Cambriolage", "burglary", "stupefiants", "rodéo"))
    return _dumps(m)


def _unknown_source_kind(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    m["source"]["kind"] = f.rnd.choice(("police", "mairie", "citoyen", "sncf", "PN"))
    return _dumps(m)


def _point(m: dict[str, Any], lat: float, lon: float) -> None:
    m["location"] = {"lat": lat, "lon": lon, "accuracy_m": 20.0}


def _invalid_coordinates(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    choice = f.rnd.randrange(4)
    if choice < 2:  # JSON has no NaN/Infinity, sloppy producers write them anyway
        _point(m, 1234.5, 2.4)
        token = b"NaN" if choice == 0 else b"Infinity"
        return _dumps(m).replace(b"1234.5", token)
    _point(m, 4863.12, 2.41) if choice == 2 else _point(m, 48.63, -245.0)
    return _dumps(m)


def _out_of_area(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    loc = m["location"]
    lat, lon = (loc["lat"], loc["lon"]) if "lat" in loc else (48.6, 2.4)
    choice = f.rnd.randrange(4)
    if choice == 0:
        _point(m, lon, lat)  # swapped latitude / longitude
    elif choice == 1:
        _point(m, 48.8566 + f.rnd.uniform(-0.01, 0.01), 2.3522 + f.rnd.uniform(-0.01, 0.01))
    elif choice == 2:
        _point(m, 0.0, 0.0)
    else:
        _point(m, 47.9 + f.rnd.uniform(-0.02, 0.02), 1.9 + f.rnd.uniform(-0.02, 0.02))
    return _dumps(m)


def _unknown_insee(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    m["location"] = {"insee": f.rnd.choice(f.unknown_insee)}
    return _dumps(m)


def _naive_timestamp(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    m["occurred_at"] = str(m["occurred_at"]).replace("Z", "")[:19]
    return _dumps(m)


def _invalid_timestamp(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    local = datetime.fromtimestamp(sent, PARIS)
    m["occurred_at"] = f.rnd.choice((local.strftime("%d/%m/%Y %H:%M"), "hier soir"))
    return _dumps(m)


def _occurred_after(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    reported = datetime.fromisoformat(str(m.get("reported_at") or iso(sent, False))).timestamp()
    m["reported_at"] = iso(reported, False)
    m["occurred_at"] = iso(reported + f.rnd.uniform(3600.0, 3 * 86400.0), False)
    return _dumps(m)


def _long_description(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    text = description(str(m["category"]), f.rnd) if m["category"] else "Signalement."
    m["description"] = ((text + " ") * 400)[: f.rnd.randrange(4001, 6000)]
    return _dumps(m)


def _too_large(f: ReportFactory, m: dict[str, Any], sent: float) -> bytes:
    m["description"] = "Pièce jointe collée dans le texte. " * 2100
    raw = _dumps(m)
    assert len(raw) > MAX_MESSAGE_BYTES
    return raw


CORRUPTIONS: dict[str, tuple[float, Corruptor]] = {
    "not_json": (0.12, _not_json),
    "not_utf8": (0.03, _not_utf8),
    "not_object": (0.06, _not_object),
    "missing_field": (0.12, _missing_field),
    "invalid_field": (0.05, _invalid_field),
    "unknown_category": (0.10, _unknown_category),
    "unknown_source_kind": (0.07, _unknown_source_kind),
    "invalid_coordinates": (0.08, _invalid_coordinates),
    "out_of_area": (0.08, _out_of_area),
    "unknown_insee": (0.06, _unknown_insee),
    "timestamp_without_offset": (0.08, _naive_timestamp),
    "invalid_timestamp": (0.03, _invalid_timestamp),
    "occurred_after_reported": (0.06, _occurred_after),
    "description_too_long": (0.04, _long_description),
    "too_large": (0.02, _too_large),
}
GEO_REASONS = frozenset({"out_of_area", "unknown_insee"})  # rejected by enrichment (geo)
