"""Export / restore: an engine rebuilt from exported states behaves exactly like the original."""

from __future__ import annotations

import json
from functools import lru_cache

from agents.core.correlation import Correlator, partition_key
from agents.core.geo import Geocoder
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportRecord
from agents.core.refdata import load_refdata
from agents.core.validation import Rejection, validate_report
from offline.simulator import SimulationConfig, simulate


@lru_cache(maxsize=1)
def simulated_records() -> tuple[ReportRecord, ...]:
    refdata = load_refdata()
    geocoder = Geocoder(refdata, load_jurisdictions(None, refdata))
    pseudonymiser = Pseudonymiser(b"test-secret-0123456789abcdefghijklmn")
    records = []
    for msg in simulate(SimulationConfig(days=3, seed=5)):
        r = validate_report(
            msg.value, message_timestamp=msg.timestamp_ms / 1000, pseudonymiser=pseudonymiser
        )
        if not isinstance(r, Rejection):
            records.append(r)
    return tuple(r for r in geocoder.enrich_batch(records) if isinstance(r, ReportRecord))


def test_restore_from_exported_state_gives_identical_future() -> None:
    records = simulated_records()
    assert len(records) > 2000
    half = len(records) // 2
    original = Correlator()
    for r in records[:half]:
        original.process(r)
    assert len(original) > 100
    # what a Faust table would hold: JSON round trip of every incident, plus the clock
    exported = [
        json.loads(json.dumps(original.export_incident(i))) for i in original.incident_ids()
    ]
    rebuilt = Correlator()
    rebuilt.restore(
        exported,
        watermark=original.watermark,
        estimates=json.loads(json.dumps(original.export_estimates())),
    )
    assert rebuilt.open_count == original.open_count
    future_a = [v for r in records[half:] for v in original.process(r)]
    future_b = [v for r in records[half:] for v in rebuilt.process(r)]
    assert len(future_a) > 1000
    assert future_a == future_b
    end = max(r.reported_at for r in records) + 10 * 86400
    assert original.advance(end) == rebuilt.advance(end)


def test_states_saved_without_search_cells_restore_alike() -> None:
    """A changelog written by an older version (r9 `cells`, no `grid`) restores to the same
    future: the search cells are rebuilt from the members and the centre."""
    records = simulated_records()
    half = len(records) // 2
    original = Correlator()
    for r in records[:half]:
        original.process(r)
    old_format = []
    for iid in original.incident_ids():
        state = json.loads(json.dumps(original.export_incident(iid)))
        del state["grid"]
        state["cells"] = ["891fb466257ffff"]
        old_format.append(state)
    rebuilt = Correlator()
    rebuilt.restore(old_format, watermark=original.watermark, estimates=original.export_estimates())
    future_a = [v for r in records[half:] for v in original.process(r)]
    future_b = [v for r in records[half:] for v in rebuilt.process(r)]
    assert future_a == future_b


def test_replay_gives_the_same_incident_versions() -> None:
    records = simulated_records()[:1500]
    a = [v for r in records for v in Correlator().process(r)]  # one engine per report
    engine, again = Correlator(), Correlator()
    b = [v for r in records for v in engine.process(r)]
    c = [v for r in records for v in again.process(r)]
    assert b == c
    assert len({v["incident_id"] for v in b}) < len({v["incident_id"] for v in a})  # merged


def test_partition_key_is_the_coarse_parent() -> None:
    r = simulated_records()[0]
    key = partition_key(r)
    assert key and key == partition_key(r)
    import h3

    assert h3.get_resolution(key) in (4, 5, 6)
    assert h3.cell_to_parent(r.h3_r9, h3.get_resolution(key)) == key
