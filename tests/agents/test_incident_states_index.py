"""`IncidentStates` reads one partition's states through its key index: the table holds
every partition's states, and restoring (or reading) one partition must not walk all of
them each time. Recovered data (written to the table by Faust, not by `persist`) is indexed
after `reindex`, which the agent's rebalance and recovery hooks call."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents import correlate
from agents.correlate import WATERMARK_KEY, CorrelateProcessor, PartitionChanges
from agents.faust_agents import IncidentStates
from agents.ports import metrics
from agents.ports.retry import RetryPolicy
from tests.agents.fakes import FakeChangelog, FakeKafka, FakeStore, bundle, report, run_inline
from tests.agents.test_faust_agents import Correlation, put_acked, recover

PARTITIONS = 8
PER_PARTITION = 300


class CountingTable(dict[str, Any]):
    """A table that counts the entries read from it (iterated or looked up)."""

    touched = 0

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        for item in super().items():
            self.touched += 1
            yield item

    def get(self, key: str, default: Any = None) -> Any:
        self.touched += 1
        return super().get(key, default)


def _table() -> CountingTable:
    table = CountingTable()
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            table[f"INC-{p}-{i}"] = {"incident_id": f"INC-{p}-{i}", "_partition": p}
        table[f"{WATERMARK_KEY}/{p}"] = 1.0
    return table


def _full_scan(data: dict[str, Any], partition: int) -> list[dict[str, Any]]:
    """What `states_of` returns: the partition's states, in the table's order."""
    return [v for k, v in dict.items(data) if not k.startswith("__") and isinstance(v, dict)
            and v.get("_partition") == partition]


def test_restoring_every_partition_reads_the_table_once_not_once_per_partition() -> None:
    table = _table()
    states = IncidentStates(table, FakeChangelog().write)
    for p in range(PARTITIONS):
        assert states.states_of(p) == _full_scan(table, p)
    # one pass over the table, then each partition's own states
    assert table.touched <= 2 * len(table)


def test_reading_a_partition_after_a_batch_touches_its_states_not_the_table() -> None:
    table = _table()
    states = IncidentStates(table, FakeChangelog().write)
    states.states_of(0)  # the index is built (a restore)
    changes = {3: PartitionChanges(states={"INC-3-new": {"incident_id": "INC-3-new"}},
                                   evicted={"INC-3-0"}, watermark=2.0)}
    table.touched = 0
    asyncio.run(states.persist(changes))
    got = states.states_of(3)
    assert got == _full_scan(table, 3)
    assert got[-1]["incident_id"] == "INC-3-new"
    assert all(s["incident_id"] != "INC-3-0" for s in got)
    assert table.touched <= PER_PARTITION + 2  # O(partition), not O(table)


def test_reindex_picks_up_data_written_outside_persist() -> None:
    table = _table()
    states = IncidentStates(table, FakeChangelog().write)
    assert len(states.states_of(5)) == PER_PARTITION
    table["INC-5-recovered"] = {"incident_id": "INC-5-recovered", "_partition": 5}
    del table["INC-5-1"]
    assert len(states.states_of(5)) == PER_PARTITION - 1  # a deleted key is never returned
    states.reindex()
    assert states.states_of(5) == _full_scan(table, 5)
    assert states.states_of(5)[-1]["incident_id"] == "INC-5-recovered"


async def test_a_worker_restores_a_partition_recovered_after_its_first_batch(
    tmp_path: Path,
) -> None:
    """The running agent has already read its table (partition 1) when a rebalance hands it
    partition 2, whose changelog Faust replays into the table: the report that follows on
    partition 2 joins the recovered incident."""
    first = Correlation.build(tmp_path / "first")
    police = report(kind="police_nationale", org="csp-evry", t=0)
    async with first.agent.test_context() as agent:
        await put_acked(agent, *bundle(police), partition=2)
    opened = first.published()[0][1]

    w = Correlation.build(tmp_path / "second")
    async with w.agent.test_context() as agent:
        await put_acked(agent, *bundle(report(t=0, east_m=5_000)), partition=1)
        recover(w.table, copy.deepcopy(first.changelog.writes))
        await w.table.call_recover_callbacks()  # what Faust does once recovery completed
        await put_acked(agent, *bundle(report(east_m=40, t=1800, contact="h1")), partition=2)
    version = w.published()[-1][1]
    assert version["incident_id"] == opened["incident_id"]
    assert version["version"] == 2


def test_the_state_gauges_do_not_walk_every_incident_after_each_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counting the open incidents walks every engine's state: done once a gauge interval,
    not after each batch (a batch's cost must not grow with the state). Counted where the
    count goes, the gauge: the engine may be a compiled class, which takes no patch."""
    reads: list[int] = []
    set_state_size = metrics.set_state_size

    def counting(table: str, value: int) -> None:
        if table == "open_incidents":
            reads.append(value)
        set_state_size(table, value)

    monkeypatch.setattr(correlate.metrics, "set_state_size", counting)
    clock = [1000.0]
    processor = CorrelateProcessor(
        store=FakeStore(), send=FakeKafka().send, incidents_topic="incidents",
        retry=RetryPolicy(max_retries=1, base_seconds=0.0), run_blocking=run_inline,
        clock=lambda: clock[0],
    )
    states = IncidentStates({}, FakeChangelog().write)

    async def batches(n: int) -> None:
        for i in range(n):
            changes = await processor.process([(1, [report(t=60.0 * i, east_m=100.0 * i)])],
                                              states.states_of, states.watermark_of,
                                              states.places_of)
            await states.persist(changes)

    asyncio.run(batches(20))
    assert len(reads) == 1  # the first batch sets the gauges
    clock[0] += correlate.STATE_GAUGES_EVERY_S
    asyncio.run(batches(5))
    assert len(reads) == 2
    # the gauge holds the count of its last read (batches since then may open incidents)
    assert metrics.REGISTRY.get_sample_value(
        "vigie_state_entries", {"table": "open_incidents"}) == reads[-1]
