"""A correlate batch's state writes are all or none across a kill (`agents.state_journal`).

The worker is killed after each write of a batch in turn; the restarted worker's table is
either its local data at the kill (RocksDB keeps every local write) or the changelog's
records up to the kill (a store rebuilt from the changelog). Either way, once the partition
is settled, its state is the state before the batch or after it, never a mix, and replaying
the batch ends in the state of an uninterrupted run with no version published twice with
other contents.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Sequence
from typing import Any

import pytest

from agents.core.record import ReportRecord
from agents.correlate import CorrelateProcessor
from agents.faust_agents import IncidentStates
from agents.ports.retry import RetryPolicy
from agents.state_journal import (
    JOURNAL_KEY,
    Write,
    journal_key,
    journal_parts,
    journal_writes,
    part_budget,
    part_writes,
    pending,
)
from tests.agents.fakes import FakeKafka, FakeStore, report, run_inline

Table = dict[str, Any]


class Killed(Exception):
    """The process died here (SIGKILL)."""


class Changelog:
    """A changelog writer that dies at its `kill_at`-th write (the records before it sent)."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.records: list[tuple[str, Any]] = []
        self.kill_at = kill_at

    async def write(
        self, partition: int, key: str, value: Any, raw: bytes | None = None
    ) -> Awaitable[None]:
        if self.kill_at is not None and len(self.records) >= self.kill_at:
            raise Killed
        self.records.append((key, copy.deepcopy(value)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def roundtrip(table: Table) -> Table:
    return dict(json.loads(json.dumps(table)))  # what a restart reads: encoded, decoded


def own(table: Table) -> Table:
    """The table without its journal: the state an engine is built from."""
    return {k: v for k, v in table.items() if not k.startswith(JOURNAL_KEY)}


def processor() -> tuple[CorrelateProcessor, FakeKafka]:
    kafka = FakeKafka()
    return CorrelateProcessor(
        store=FakeStore(),
        send=kafka.send,
        incidents_topic="incidents",
        retry=RetryPolicy(max_retries=1, base_seconds=0.0),
        run_blocking=run_inline,
    ), kafka


async def run(
    states: IncidentStates, proc: CorrelateProcessor, records: Sequence[ReportRecord]
) -> None:
    await states.settle([0])
    changes = await proc.process(
        [(0, list(records))],
        states.states_of,
        states.watermark_of,
        states.places_of,
        states.estimates_of,
    )
    await states.persist(changes)


def batches() -> tuple[list[ReportRecord], list[ReportRecord]]:
    """Three incidents, then a batch that joins two of them, founds two and moves the clock."""
    first = [report(east_m=e, t=t) for e, t in ((0, 0), (3000, 60), (6000, 120))]
    second = [
        report(east_m=20, t=900),
        report(kind="police_nationale", org="csp-evry", east_m=9000, t=960),
        report(east_m=6010, t=1000),
        report(east_m=12000, t=1100, category="degradation"),
    ]
    return first, second


def published(kafka: FakeKafka) -> dict[tuple[str, int], dict[str, Any]]:
    return {(v["incident_id"], v["version"]): v for _k, v in kafka.on("incidents")}


@pytest.mark.parametrize("max_part_bytes", [part_budget(1_000_000), 700])
def test_a_kill_at_any_write_of_a_batch_restores_before_or_after_it(max_part_bytes: int) -> None:
    first, second = batches()

    async def clean() -> tuple[Table, Table, dict[tuple[str, int], dict[str, Any]], Changelog]:
        table: Table = {}
        log = Changelog()
        proc, kafka = processor()
        states = IncidentStates(table, log.write, max_part_bytes)
        await run(states, proc, first)
        before = roundtrip(table)
        del log.records[:]
        await run(states, proc, second)
        return before, roundtrip(table), published(kafka), log

    before, after, versions, log = asyncio.run(clean())
    assert own(before) != own(after)
    assert not any(k.startswith(JOURNAL_KEY) for k in after)  # the journal: changelog only
    journal = [v for k, v in log.records if k.startswith(JOURNAL_KEY)]
    assert journal[-1]["part"] == 0 and log.records[len(journal) - 1][0] == journal_key(0, 0)
    if max_part_bytes < 1000:  # every write its own journal part
        assert journal[-1]["parts"] > 2
    n_writes = len(log.records)
    assert n_writes >= 7  # journal, 4 incidents, watermark, estimates

    outcomes: set[str] = set()
    for kill_at in range(n_writes + 1):

        async def killed(kill_at: int = kill_at) -> tuple[Table, Table]:
            table: Table = {}
            log = Changelog()
            proc, _ = processor()
            states = IncidentStates(table, log.write, max_part_bytes)
            await run(states, proc, first)
            sent = len(log.records)
            changelog_before = roundtrip(table)
            log.kill_at = sent + kill_at
            with pytest.raises(Killed):
                await run(states, proc, second)
                raise Killed  # the kill came after the batch's last write
            rebuilt = copy.deepcopy(changelog_before)
            for key, value in log.records[sent:]:  # a store rebuilt from the changelog
                if value is None:
                    rebuilt.pop(key, None)
                else:
                    rebuilt[key] = value
            return roundtrip(table), roundtrip(rebuilt)

        for restored in asyncio.run(killed()):

            async def restart(table: Table) -> tuple[Table, Table, CorrelateProcessor, FakeKafka]:
                proc, kafka = processor()
                states = IncidentStates(table, Changelog().write, max_part_bytes)
                await states.settle([0])
                settled = roundtrip(table)
                await run(states, proc, second)  # the unacked batch, replayed
                return settled, roundtrip(table), proc, kafka

            settled, final, _proc, kafka = asyncio.run(restart(restored))
            state = own(settled)
            assert state in (own(before), own(after)), f"a mix after a kill at write {kill_at}"
            outcomes.add("before" if state == own(before) else "after")
            assert own(final) == own(after), f"kill at write {kill_at}"
            for key, version in published(kafka).items():  # a version is told one way only
                assert version == versions[key], f"{key} differs after a kill at {kill_at}"
    assert outcomes == {"before", "after"}


def test_a_head_whose_parts_are_another_batchs_is_not_applied() -> None:
    writes = [Write.of(f"INC-{i}", {"v": i, "pad": "x" * 300}) for i in range(4)]
    old = journal_parts("old", writes, 400)
    assert [p.value["parts"] for p in old] == [4] * 4
    table: Table = {w.key: w.value for w in journal_writes(0, old, 0)}
    batch = pending(table.get, 0)
    assert batch is not None and batch.token == "old" and batch.writes == writes
    # the next batch, of two parts, killed after its part 1 and the old part 2's deletion
    new = journal_parts("new", writes[:2], 400)
    for w in journal_writes(0, new, 4)[:3]:
        if w.value is None:
            table.pop(w.key, None)
        else:
            table[w.key] = w.value
    assert table[journal_key(0, 0)]["token"] == "old"
    assert pending(table.get, 0) is None  # the old batch was whole before the new began
    table[journal_key(0, 0)] = new[0].value
    assert pending(table.get, 0) is not None
    assert journal_key(0, 2) not in table and journal_key(0, 3) not in table


def test_parts_fit_the_budget_keep_the_writes_order_and_are_their_json() -> None:
    writes = [Write.of(f"INC-{i}", {"members": list(range(i * 10))}) for i in range(40)]
    writes.append(Write.of("INC-gone", None))
    parts = journal_parts("t", writes, 1000)
    assert len(parts) > 3
    held = [part_writes(p.value) for p in parts]
    for p, w in zip(parts, held, strict=True):
        assert json.loads(p.raw or b"") == p.value  # the record is the part's JSON
        assert w is not None
        if len(w) > 1:
            assert len(json.dumps(w, separators=(",", ":"))) <= 1000
            assert len(p.raw or b"") < len(json.dumps(w))  # deflated
    assert [(k, v) for w in held if w for k, v in w.items()] == [(w.key, w.value) for w in writes]
    big = [Write.of("INC-big", {"pad": "x" * 5000})]
    assert [part_writes(p.value) for p in journal_parts("t", big, 1000)] == [
        {"INC-big": big[0].value}
    ]
    assert part_budget(1_000_000) < 1_000_000 - 4096
    # a part that does not read back is no batch: never applied
    broken = dict(parts[0].value, z="not base64!")
    assert part_writes(broken) is None
    assert pending({journal_key(0, 0): broken}.get, 0) is None
