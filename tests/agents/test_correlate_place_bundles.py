"""A batch holding several bundles of one partition persists every place-memory record they
changed, so that a restarted worker restores the whole chronic-place memory (a record lost
here makes places look new again after a restart: their reports chain into one incident)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h3

from agents.core.record import ReportRecord
from agents.correlate import PLACES_KEY, CorrelateProcessor
from agents.faust_agents import IncidentStates
from agents.ports.retry import RetryPolicy
from tests.agents.fakes import FakeChangelog, FakeKafka, FakeStore, run_inline

DAY = 86400.0
T0 = 1_710_763_200.0  # 2024-03-18 12:00 UTC: a day of the place memory starts at noon UTC
LAT, LON = 48.6297, 2.4417


def _processor() -> CorrelateProcessor:
    return CorrelateProcessor(
        store=FakeStore(),
        send=FakeKafka().send,
        incidents_topic="incidents",
        retry=RetryPolicy(max_retries=1, base_seconds=0.0),
        run_blocking=run_inline,
    )


def _dealing(n: int, day: int) -> ReportRecord:
    """A located report of a chronic-place category, at the same place on day `day`."""
    r9 = h3.latlng_to_cell(LAT, LON, 9)
    t = T0 + day * DAY + 3600.0
    return ReportRecord(
        report_id=f"CIT-PLACE-{n}",
        source_kind="citizen",
        source_org="citoyen",
        source_channel=None,
        category="trafic_stupefiants",
        occurred_at=t,
        reported_at=t + 300.0,
        lat=LAT,
        lon=LON,
        accuracy_m=20.0,
        insee="91228",
        severity=None,
        contact_hash=f"contact-{n}",
        description_hash=None,
        description_len=0,
        commune="Évry-Courcouronnes",
        jurisdiction="csp-evry",
        precision="point",
        h3_r7=h3.cell_to_parent(r9, 7),
        h3_r8=h3.cell_to_parent(r9, 8),
        h3_r9=r9,
    )


def test_every_bundle_of_a_batch_persists_its_place_days() -> None:
    data: dict[str, Any] = {}
    changelog = FakeChangelog()
    states = IncidentStates(data, changelog.write)
    processor = _processor()
    # one batch, three bundles of partition 1, one day each
    batch = [(1, [_dealing(day, day)]) for day in range(3)]

    async def run() -> None:
        changes = await processor.process(
            batch, states.states_of, states.watermark_of, states.places_of
        )
        await states.persist(changes)

    asyncio.run(run())
    live = processor.engines[1].export_places()
    assert len(live) == 1 and len(next(iter(live.values()))) == 3  # one place, three days
    written = {key for _, key, _ in changelog.writes if key.startswith(f"{PLACES_KEY}/")}
    assert f"{PLACES_KEY}/days/1" in written
    # a restarted worker restores the same memory from what was written
    again = IncidentStates(json.loads(json.dumps(data)), changelog.write)
    restarted = _processor()
    engine = restarted.engine(
        1, lambda: again.states_of(1), again.watermark_of(1), again.places_of(1)
    )
    assert engine.export_places() == live


def test_saved_state_is_read_only_to_build_a_partition_engine() -> None:
    """The watermark, place memory and estimates saved for a partition are read when its
    engine is built, not for every batch: reading the place memory walks every day record
    it holds, a cost per batch that grew with the memory."""
    data: dict[str, Any] = {}
    changelog = FakeChangelog()
    states = IncidentStates(data, changelog.write)
    processor = _processor()
    reads: dict[str, int] = {"watermark": 0, "places": 0, "estimates": 0}

    def counted(name: str, read: Any) -> Any:
        def wrapped(partition: int) -> Any:
            reads[name] += 1
            return read(partition)

        return wrapped

    async def run() -> None:
        for day in range(4):  # four batches of one partition
            changes = await processor.process(
                [(1, [_dealing(day, day)])],
                states.states_of,
                counted("watermark", states.watermark_of),
                counted("places", states.places_of),
                counted("estimates", states.estimates_of),
            )
            await states.persist(changes)

    asyncio.run(run())
    assert reads == {"watermark": 1, "places": 1, "estimates": 1}
    assert len(next(iter(processor.engines[1].export_places().values()))) == 4
