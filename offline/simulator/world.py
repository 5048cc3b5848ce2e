"""Random reporting worlds: the reporting model of a simulated stream drawn from wide ranges.

The default simulator is one plausible world. A robustness check needs many: each
`ReportingWorld` is drawn from its own random stream (`draw_world(seed)`), independent of the
simulation's streams, and recorded in the ground truth (a `world` line), so a result can be
read against the world that produced it. What is drawn (ranges are the priors of what a
deployment may meet, not values fitted to any output):

- citizen position error: the median distance of a citizen position from the truth,
  30-300 m (log-uniform); each report's own error scale varies around it (log-normal,
  sigma 0.5), the error is a 2-D Gaussian of that scale;
- stated accuracy of citizen positions: `honest` (the 68 % or the 95 % radius of the report's
  error distribution, the convention drawn too: contract v1 leaves `accuracy_m` unspecified),
  `understated` (that radius times 0.25-0.7) or `absent` (no `accuracy_m`);
- partner position error: median distance 10-80 m, all partner kinds; stated honestly (same
  radius convention), each kind keeping its usual share without `accuracy_m`;
- lags: every source's delay from observation to record times 0.3-3 (log-uniform); late batch
  uploads: a share (0-60 %) of partner reports held back and sent with the next batch upload
  (06:00, 14:00, 22:00 local), as social landlords always do;
- confusion: a citizen names the category as one it is confused with
  (`agents.core.confusions`) in 0-20 % of reports;
- commune-only positions: citizens 0-15 %; partner kinds their usual share scaled alike;
- re-deliveries: 0-6 % of the messages;
- source mix: each source kind's probability of reporting an incident times 0.4-2.5
  (log-uniform, drawn per kind);
- incident rates: the background volume times 0.5-2 (log-uniform; outbreaks are unchanged);
- chronic places (dealing points, occupied halls, stations) or none (even odds); when present,
  their numbers times 0.5-1.5.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, replace
from typing import Any

from offline.simulator.config import SimulationConfig

# radius containing a share q of a 2-D isotropic Gaussian of per-axis sigma s: s*sqrt(-2 ln(1-q))
RADIUS_FACTOR = {
    "r68": math.sqrt(-2.0 * math.log(1.0 - 0.68)),
    "r95": math.sqrt(-2.0 * math.log(0.05)),
}
MEDIAN_FACTOR = math.sqrt(2.0 * math.log(2.0))  # median distance / per-axis sigma
REPORT_ERROR_SPREAD = 0.5  # log-normal sigma of a report's error scale around the world's

STATED_ACCURACY = ("honest", "understated", "absent")
SOURCE_KINDS = (
    "citizen",
    "police",  # national police or gendarmerie, whichever serves the commune
    "police_municipale",
    "transport",
    "bailleur_social",
    "education",
    "securite_privee",
    "collectivite",
)

# (low, high) of every drawn number: the tests check draws stay inside and span them
RANGES: dict[str, tuple[float, float]] = {
    "citizen_error_m": (30.0, 300.0),
    "understatement": (0.25, 0.7),
    "partner_error_m": (10.0, 80.0),
    "lag_factor": (0.3, 3.0),
    "late_batch_share": (0.0, 0.6),
    "confusion": (0.0, 0.2),
    "commune_only": (0.0, 0.15),
    "redelivery_rate": (0.0, 0.06),
    "source_weight": (0.4, 2.5),
    "incident_rate": (0.5, 2.0),
    "chronic_scale": (0.5, 1.5),
}
DEFAULT_PARTNER_COMMUNE_ONLY = 0.10  # about the mean share of the partner kinds' defaults


@dataclass(frozen=True)
class ReportingWorld:
    """One drawn reporting model (see the module docstring for each field's meaning)."""

    seed: int
    citizen_error_m: float
    stated_accuracy: str  # honest | understated | absent
    accuracy_radius: str  # r68 | r95: what a stated accuracy means in this world
    understatement: float  # stated / honest radius (1.0 unless understated)
    partner_error_m: float
    lag_factor: float
    late_batch_share: float
    confusion: float
    commune_only: float
    redelivery_rate: float
    source_weights: dict[str, float]
    incident_rate: float
    chronic_places: bool
    chronic_scale: float  # 0.0 without chronic places

    def truth(self) -> dict[str, object]:
        """The `world` line of the ground truth."""
        return {"type": "world", **asdict(self)}

    @classmethod
    def from_truth(cls, line: dict[str, Any]) -> ReportingWorld:
        data = {k: v for k, v in line.items() if k != "type"}
        data["source_weights"] = dict(data["source_weights"])
        return cls(**data)

    def stated_factor(self) -> float | None:
        """Stated accuracy / per-axis sigma of a citizen report (None: not stated)."""
        if self.stated_accuracy == "absent":
            return None
        return RADIUS_FACTOR[self.accuracy_radius] * self.understatement

    def partner_commune_only(self, default_share: float) -> float:
        return min(default_share * self.commune_only / DEFAULT_PARTNER_COMMUNE_ONLY, 0.5)


def _loguniform(rnd: random.Random, lo: float, hi: float) -> float:
    return math.exp(rnd.uniform(math.log(lo), math.log(hi)))


def draw_world(seed: int) -> ReportingWorld:
    """The reporting world of `seed`: a stream of its own, the same for the same seed."""
    rnd = random.Random(f"vigie-world/{seed}")
    r = RANGES
    stated = rnd.choice(STATED_ACCURACY)
    radius = rnd.choice(tuple(RADIUS_FACTOR))
    under = rnd.uniform(*r["understatement"])
    chronic = rnd.random() < 0.5
    chronic_scale = rnd.uniform(*r["chronic_scale"])
    return ReportingWorld(
        seed=seed,
        citizen_error_m=round(_loguniform(rnd, *r["citizen_error_m"]), 1),
        stated_accuracy=stated,
        accuracy_radius=radius,
        understatement=round(under, 3) if stated == "understated" else 1.0,
        partner_error_m=round(_loguniform(rnd, *r["partner_error_m"]), 1),
        lag_factor=round(_loguniform(rnd, *r["lag_factor"]), 3),
        late_batch_share=round(rnd.uniform(*r["late_batch_share"]), 3),
        confusion=round(rnd.uniform(*r["confusion"]), 4),
        commune_only=round(rnd.uniform(*r["commune_only"]), 4),
        redelivery_rate=round(rnd.uniform(*r["redelivery_rate"]), 4),
        source_weights={k: round(_loguniform(rnd, *r["source_weight"]), 3) for k in SOURCE_KINDS},
        incident_rate=round(_loguniform(rnd, *r["incident_rate"]), 3),
        chronic_places=chronic,
        chronic_scale=round(chronic_scale, 3) if chronic else 0.0,
    )


def apply_world(cfg: SimulationConfig, world: ReportingWorld) -> SimulationConfig:
    """`cfg` with the world's reporting model (its outbreak settings untouched)."""
    spots = world.chronic_scale
    return replace(
        cfg,
        world=world,
        reports_per_day=cfg.reports_per_day * world.incident_rate,
        redelivery_rate=world.redelivery_rate,
        citizen_commune_only_rate=world.commune_only,
        dealing_points=round(cfg.dealing_points * spots),
        occupied_halls=round(cfg.occupied_halls * spots),
        stations=round(cfg.stations * spots),
    )


BURST_REFERENCE_DAYS = 28.0  # `offline.detection_quality.BURST` counts its outbreaks per 28 days


def burst_fields(fields: dict[str, Any], days: float) -> dict[str, Any]:
    """`SimulationConfig` fields of an outbreak model (`OutbreakModel.sim_fields()`) with its
    number of outbreaks scaled from 28 days to `days` (the same density of outbreaks)."""
    n = int(fields["outbreaks"])
    return {**fields, "outbreaks": max(round(n * days / BURST_REFERENCE_DAYS), 1 if n else 0)}
