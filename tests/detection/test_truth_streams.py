"""The true-incident streams of the detection harness (`offline.detection_quality`): each true
incident counted once, at its true place and category, or as its first report tells it."""

from __future__ import annotations

import json

from agents.core.detection.counts import IncidentCounter, InMemoryCountStore
from offline.detection_quality import TruthEvent, truth_incidents

TRUE = {
    "incident_id": "inc-1",
    "category": "cambriolage",
    "start": 1_700_000_000.0,
    "lat": 48.63,
    "lon": 2.44,
    "insee": "91228",
}


def _event(report: object) -> TruthEvent:
    value = report if isinstance(report, bytes) else json.dumps(report).encode()
    return TruthEvent(1_700_000_600_000, dict(TRUE), value)


def _one(event: TruthEvent, as_reported: bool) -> dict[str, object]:
    [(clock, incident)] = list(truth_incidents([event], as_reported=as_reported))
    assert clock == 1_700_000_600.0
    assert incident is not None
    return incident


def test_the_truth_ignores_what_the_report_says() -> None:
    report = {"category": "vol", "location": {"lat": 48.64, "lon": 2.45}}
    incident = _one(_event(report), as_reported=False)
    assert (incident["category"], incident["lat"], incident["lon"]) == ("cambriolage", 48.63, 2.44)
    assert "precision" not in incident


def test_as_reported_takes_the_category_and_position_the_report_states() -> None:
    report = {"category": "vol", "location": {"lat": 48.64, "lon": 2.45}}
    incident = _one(_event(report), as_reported=True)
    assert (incident["category"], incident["lat"], incident["lon"]) == ("vol", 48.64, 2.45)
    assert incident["incident_id"] == "inc-1"
    assert incident["first_occurred_at"] == TRUE["start"]


def test_as_reported_a_commune_only_report_is_not_counted_per_cell() -> None:
    report = {"category": "cambriolage", "location": {"insee": "91228"}}
    incident = _one(_event(report), as_reported=True)
    assert incident["precision"] == "commune"
    store = InMemoryCountStore()
    IncidentCounter(store).observe(incident, 1_700_000_600.0)
    assert store.span() is None  # nothing counted, as the pipeline's commune-only incidents
    located = _one(_event({"category": "vol", "location": {"lat": 48.6, "lon": 2.4}}), True)
    IncidentCounter(store).observe(located, 1_700_000_600.0)
    assert store.span() is not None


def test_as_reported_a_founding_message_that_does_not_parse_counts_as_the_truth() -> None:
    for value in (b"{not json", b'{"location": {}}', b'{"category": 3, "location": {}}', b"[]"):
        incident = _one(_event(value), as_reported=True)
        assert (incident["category"], incident["lat"]) == ("cambriolage", 48.63), value
        assert "precision" not in incident
