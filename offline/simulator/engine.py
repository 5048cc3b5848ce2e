"""The simulation loop: incidents chunk by chunk, messages in order of send time.

Incidents are drawn one day at a time; their messages go into a heap keyed by send
time. Every message of a later chunk is sent at or after that chunk's start, so once a
chunk is drawn everything before its end can be released in order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from offline.simulator.area import SimArea, load_essonne_area
from offline.simulator.config import PARIS, SimulationConfig
from offline.simulator.incidents import IncidentModel
from offline.simulator.messages import Pending, ReportFactory

CHUNK_SECONDS = 86400.0


@dataclass(slots=True)
class SimMessage:
    """One Kafka message and its ground truth.

    `truth`: report_id, incident_id (None for malformed), is_redelivery,
    expected_reject_reason (None for valid), outbreak_id, topic, source_kind,
    true_category, reported_category. `incident_truth` is set on the first message of an
    incident (so every incident in the truth has at least one message, listed before it).
    """

    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int
    truth: dict[str, object]
    incident_truth: dict[str, object] | None = field(default=None)


def start_epoch(start: str | date | datetime) -> float:
    """A date means local midnight (Europe/Paris); a naive datetime is local time too."""
    if isinstance(start, str):
        start = datetime.fromisoformat(start) if "T" in start else date.fromisoformat(start)
    if not isinstance(start, datetime):
        start = datetime(start.year, start.month, start.day)
    if start.tzinfo is None:
        start = start.replace(tzinfo=PARIS)
    return start.timestamp()


class Simulation:
    """Iterator of `SimMessage` in send order; `outbreaks` and `chronic_spots` are known
    up front (truth dicts), `area` is the area used."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.area: SimArea = config.area or load_essonne_area(config.pool_size)
        self.t0 = start_epoch(config.start)
        self.t1 = self.t0 + round(config.days * 24) * 3600.0
        self.model = IncidentModel(config, self.area, self.t0, self.t1)
        self.factory = ReportFactory(config, self.area, self.model.hours)
        insee = [c.insee for c in self.area.communes]
        self.outbreaks = [ob.truth(insee[ob.commune]) for ob in self.model.outbreaks]
        self.chronic_spots: list[dict[str, object]] = [
            {
                "type": "chronic_spot",
                "chronic_spot_id": s.spot_id,
                "spot_kind": s.spot_kind,
                "lat": round(s.lat, 6),
                "lon": round(s.lon, 6),
                "insee": insee[s.commune],
                "categories": [c for c, _ in s.categories],
            }
            for s in self.model.spots
        ]
        self.background_per_day = dict(self.model.daily)
        self._iter = self._run()

    def __iter__(self) -> Iterator[SimMessage]:
        return self

    def __next__(self) -> SimMessage:
        return next(self._iter)

    def _run(self) -> Iterator[SimMessage]:
        heap: list[tuple[float, int, Pending]] = []
        seq = 0
        seen: set[str] = set()
        insee = [c.insee for c in self.area.communes]
        a = self.t0
        while a < self.t1:
            b = min(a + CHUNK_SECONDS, self.t1)
            for inc in self.model.chunk(a, b):
                for p in self.factory.messages(inc, self.t1):
                    seq += 1
                    heapq.heappush(heap, (p.sent, seq, p))
            while heap and heap[0][0] < b:
                p = heapq.heappop(heap)[2]
                inc_truth = None
                if p.incident is not None and p.incident.incident_id not in seen:
                    seen.add(p.incident.incident_id)
                    inc = p.incident
                    path = (
                        self.area.communes_along(inc.lat, inc.lon, inc.lat2, inc.lon2)
                        if (inc.lat2, inc.lon2) != (inc.lat, inc.lon)
                        else []
                    )
                    inc_truth = inc.truth(insee[inc.commune], [insee[i] for i in path])
                p.truth["timestamp_ms"] = ms = int(p.sent * 1000)
                yield SimMessage(p.topic, p.key, p.value, ms, p.truth, inc_truth)
            a = b


def simulate(config: SimulationConfig) -> Simulation:
    """The simulated stream for `config` (an iterator of `SimMessage`, in send order)."""
    return Simulation(config)
