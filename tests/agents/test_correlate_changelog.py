"""The correlate stage over a changelog written by the previous engine (incident states kept
as dicts): each partition's engine restores its own states (`_partition`), goes on with them,
and writes states that a restarted worker restores to the same engine."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import h3

from agents.core.record import ReportRecord
from agents.correlate import ESTIMATES_KEY, PLACES_KEY, WATERMARK_KEY, CorrelateProcessor
from agents.faust_agents import IncidentStates
from agents.ports.retry import RetryPolicy
from agents.state_journal import journal_key, part_writes
from tests.agents.fakes import FakeChangelog, FakeKafka, FakeStore, run_inline

LEGACY = Path(__file__).parents[1] / "correlation" / "data" / "legacy_incident_states.json"


def _processor() -> CorrelateProcessor:
    return CorrelateProcessor(
        store=FakeStore(), send=FakeKafka().send, incidents_topic="incidents",
        retry=RetryPolicy(max_retries=1, base_seconds=0.0), run_blocking=run_inline,
    )


def _joining(state: dict[str, Any]) -> ReportRecord:
    """A new citizen's report at an incident's centre, ten minutes after its last one."""
    m = state["members"][-1]
    lat, lon = state["lat"], state["lon"]
    r9 = h3.latlng_to_cell(lat, lon, 9)
    t = state["last_occurred_at"] + 600.0
    return ReportRecord(
        report_id="AG-LEGACY-1", source_kind="citizen", source_org="citoyen",
        source_channel=None, category=state["category"], occurred_at=t, reported_at=t + 60.0,
        lat=lat, lon=lon, accuracy_m=20.0, insee=m["insee"], severity=None,
        contact_hash="new-contact", description_hash=None, description_len=0,
        commune=m["commune"], jurisdiction=m["jurisdiction"], precision="point",
        h3_r7=h3.cell_to_parent(r9, 7), h3_r8=h3.cell_to_parent(r9, 8), h3_r9=r9,
    )


def test_a_legacy_changelog_restores_per_partition_and_goes_on() -> None:
    legacy = json.loads(LEGACY.read_text())
    data: dict[str, Any] = {s["incident_id"]: copy.deepcopy(s) for s in legacy["written"]}
    for p in range(3):
        data[f"{WATERMARK_KEY}/{p}"] = legacy["watermark"]
    target = next(s for s in legacy["written"] if s["_partition"] == 1 and s["status"] == "open"
                  and s["precision"] == "point")
    changelog = FakeChangelog()
    states = IncidentStates(data, changelog.write)
    processor = _processor()
    record = _joining(target)

    async def batch() -> None:
        changes = await processor.process(
            [(1, [record])], states.states_of, states.watermark_of, states.places_of
        )
        await states.persist(changes)

    asyncio.run(batch())
    engine = processor.engines[1]
    mine = {s["incident_id"] for s in legacy["written"] if s["_partition"] == 1}
    assert set(engine.incident_ids()) == mine  # partition 1's states only
    iid = target["incident_id"]
    written = {key: value for _, key, value in changelog.writes}
    # the joined incident, the clock, the place memory (an occupied hall was reported) and
    # the learnt parameters; the place memory as the records of the days it changed
    # (`place_key`: `__places__/<day>/<p>`) and its day list (`__places__/days/<p>`)
    places = {k for k in written if k.startswith(f"{PLACES_KEY}/")}
    # and first the batch's journal (`agents.state_journal`): one part holding every write
    head = journal_key(1, 0)
    assert set(written) - places == {iid, f"{WATERMARK_KEY}/1", f"{ESTIMATES_KEY}/1", head}
    assert changelog.writes[0][1] == head
    assert part_writes(written[head]) == {k: v for k, v in written.items() if k != head}
    assert f"{PLACES_KEY}/days/1" in places and len(places) >= 2
    assert all(k.endswith("/1") for k in places)  # partition 1's records only
    state = written[iid]
    assert state["_partition"] == 1
    assert len(state["members"]) == len(target["members"]) + 1
    assert state["version"] == target["version"] + 1
    assert state["members"][:-1] == target["members"]  # the restored members, unchanged
    for iid_other in mine - {iid}:  # untouched states export as the old engine did
        before = legacy["exported_after_restore"][iid_other]
        assert engine.export_incident(iid_other) == {
            k: v for k, v in before.items() if k != "_partition"
        }
    # a restarted worker restores what was written (through JSON) to the same engine
    again = IncidentStates(json.loads(json.dumps(data)), changelog.write)
    restarted = _processor()
    restarted.engine(1, lambda: again.states_of(1), again.watermark_of(1), again.places_of(1))
    for i in mine:
        assert restarted.engines[1].export_incident(i) == engine.export_incident(i)
