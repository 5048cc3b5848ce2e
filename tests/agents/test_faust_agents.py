"""The Faust wiring of `agents.faust_agents`, run with Faust's `test_context` (no broker).

The correlate agent gets enriched bundles (the ingest stage's wire format) on its test
channel and drives the real `CorrelateProcessor` and correlation engine; Kafka sends,
ClickHouse and the table changelog are in-memory fakes (`tests.agents.fakes`) that record
every write, so the tests check what a worker writes, in which order, and what it acks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from faust.serializers import codecs
from faust.types import TP

from agents import faust_agents
from agents.core.correlation import incident_json
from agents.correlate import (
    ESTIMATES_KEY,
    PLACES_KEY,
    WATERMARK_KEY,
    CorrelateProcessor,
    place_key,
)
from agents.detect import DetectProcessor
from agents.faust_agents import install_correlate, install_detector, install_ingest
from agents.ingest import IngestProcessor
from agents.ports import metrics
from agents.ports.retry import RetryPolicy
from agents.state_journal import journal_key
from schemas.alert import Alert
from schemas.incident import Incident
from streams.app import create_app
from streams.settings import Settings
from streams.topics import Topics
from streams.worker import agent_config, ingest_loop_config
from tests.agents.fakes import (
    T0,
    FakeChangelog,
    FakeKafka,
    FakeStore,
    bundle,
    report,
    run_inline,
)

TABLE = "vigie-incident-state"
DAY = 86_400.0


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def put_acked(agent: Any, key: bytes, value: bytes, partition: int) -> Any:
    """Put one message on the agent's test channel and wait until the agent acked it."""
    event = await agent.put(value, key=key, partition=partition)
    await until(lambda: bool(event.message.acked))
    return event


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    # a short store clock unless a test sets one: most tests wait for each message's ack
    overrides.setdefault("correlate_store_seconds", 0.02)
    return Settings(sink_batch_seconds=0.02, topic_partitions=4, table_store="memory",
                    worker_data_dir=str(tmp_path / "worker"), **overrides)


@dataclass
class Correlation:
    """One worker's correlate wiring: app, agent, processor and the fakes behind it."""

    app: faust.App
    topics: Topics
    settings: Settings
    agent: Any
    processor: CorrelateProcessor
    store: FakeStore
    kafka: FakeKafka
    changelog: FakeChangelog

    @classmethod
    def build(cls, tmp_path: Path, **overrides: Any) -> Correlation:
        settings = settings_for(tmp_path, **overrides)
        app, topics = create_app(settings)
        store, kafka, changelog = FakeStore(), FakeKafka(), FakeChangelog()
        processor = CorrelateProcessor(
            store=store, send=kafka.send, incidents_topic=settings.topic_incidents,
            retry=RetryPolicy(max_retries=1, base_seconds=0.0), run_blocking=run_inline,
        )
        agent = install_correlate(app, topics, processor, agent_config(settings),
                                  changelog=changelog.write)
        return cls(app, topics, settings, agent, processor, store, kafka, changelog)

    @property
    def table(self) -> Any:
        return self.app.tables[TABLE]

    def published(self) -> list[tuple[bytes | None, dict[str, Any]]]:
        return self.kafka.on(self.settings.topic_incidents)


def recover(table: Any, writes: Sequence[tuple[int, str, Any]]) -> None:
    """What Faust does when a worker starts: replay the changelog into the table. Values go
    through the table's JSON codec as on the topic; a tombstone has a null value."""
    events = []
    for partition, key, value in writes:
        raw = None if value is None else codecs.dumps("json", value)
        events.append(SimpleNamespace(
            key=key, value=None if raw is None else codecs.loads("json", raw),
            message=SimpleNamespace(value=raw, partition=partition)))
    table.apply_changelog_batch(events)


# ---- the correlate agent -----------------------------------------------------------------
async def test_two_reports_of_one_incident_are_published_stored_and_persisted(
    tmp_path: Path,
) -> None:
    w = Correlation.build(tmp_path)
    police = report(kind="police_nationale", org="csp-evry", t=0)
    citizen = report(east_m=40, t=1800, contact="h1")
    key, value = bundle(police, citizen)
    events: list[Any] = []
    acked_at_confirm: list[bool] = []
    w.changelog.on_confirm = lambda: acked_at_confirm.extend(e.message.acked for e in events)

    async with w.agent.test_context() as agent:
        events.append(await agent.put(value, key=key, partition=3))
        await until(lambda: events[0].message.acked)

    # one incident, two versions, on the topic as contract JSON keyed by incident_id
    published = w.published()
    assert [v["version"] for _, v in published] == [1, 2]
    iid = published[0][1]["incident_id"]
    assert {k for k, _ in published} == {iid.encode()}
    last = Incident.model_validate(published[-1][1])
    assert last.report_count == 2
    assert sorted(last.report_ids) == sorted([police.report_id, citizen.report_id])
    assert {k.value for k in last.source_kinds} == {"police_nationale", "citizen"}
    # the same versions are the store's incidents rows, byte for byte once serialised
    rows = w.store.rows["incidents"]
    assert [r["version"] for r in rows] == [1, 2]
    assert [v for t, _, v in w.kafka.sent if t == w.settings.topic_incidents] == [
        incident_json(r) for r in rows
    ]
    # the incident's state, the partition's watermark and learnt parameters went to the
    # changelog (partition 3)
    written = {k: v for _, k, v in w.changelog.writes}
    assert {p for p, _, _ in w.changelog.writes} == {3}
    head = journal_key(3, 0)  # first the batch's journal (`agents.state_journal`)
    assert set(written) == {iid, f"{WATERMARK_KEY}/3", f"{ESTIMATES_KEY}/3", head}
    assert w.changelog.writes[0][1] == head
    assert w.table.data[f"{ESTIMATES_KEY}/3"] == written[f"{ESTIMATES_KEY}/3"]
    assert written[iid]["_partition"] == 3
    assert {m["report_id"] for m in written[iid]["members"]} == {
        police.report_id, citizen.report_id}
    assert written[f"{WATERMARK_KEY}/3"] == citizen.reported_at
    # ... and to the table itself; every write confirmed by the broker before the ack
    assert w.table.data[iid] == written[iid]
    assert w.table.data[f"{WATERMARK_KEY}/3"] == citizen.reported_at
    assert w.changelog.confirmed == 4
    assert acked_at_confirm == [False] * 4


async def test_undecodable_message_is_counted_skipped_and_the_agent_goes_on(
    tmp_path: Path,
) -> None:
    w = Correlation.build(tmp_path)
    topic = w.settings.topic_enriched

    def undecodable() -> float:
        value = metrics.REGISTRY.get_sample_value(
            "vigie_internal_messages_undecodable_total", {"topic": topic})
        return value or 0.0

    before = undecodable()
    ok = report(t=0)
    key, value = bundle(ok)
    async with w.agent.test_context() as agent:
        await put_acked(agent, key, b'{"not": "a bundle"}', partition=1)
        await put_acked(agent, key, value, partition=1)

    assert undecodable() == before + 1
    assert [v["report_ids"] for _, v in w.published()] == [[ok.report_id]]
    assert len(w.store.rows["incidents"]) == 1


class WorkerExit(Exception):
    """Stands for `os._exit(70)`: `crash` never returns."""


async def test_failed_store_insert_crashes_the_worker_before_any_ack_or_changelog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = Correlation.build(tmp_path)
    w.store.fail_inserts = True
    crashes: list[tuple[str, BaseException | None]] = []

    def crash(reason: str, exc: BaseException | None = None) -> None:
        crashes.append((reason, exc))
        raise WorkerExit(reason)

    monkeypatch.setattr(faust_agents, "crash", crash)
    key, value = bundle(report(t=0))
    async with w.agent.test_context() as agent:
        event = await agent.put(value, key=key, partition=0, wait=False)
        await until(lambda: bool(crashes))
        await asyncio.sleep(0.05)  # room for a wrong ack to happen
        assert not event.message.acked

    assert len(crashes) == 1
    assert crashes[0][0] == "correlation batch could not be written"
    assert "insert into incidents" in str(crashes[0][1])
    assert w.store.insert_attempts == 2  # the first try and the one retry allowed
    assert "incidents" not in w.store.rows
    assert w.changelog.writes == []
    assert w.changelog.confirmed == 0
    assert TABLE in w.app.tables and len(w.table.data) == 0


async def test_a_worker_restored_from_the_changelog_continues_the_incident(
    tmp_path: Path,
) -> None:
    police = report(kind="police_nationale", org="csp-evry", t=0)
    citizen = report(east_m=40, t=1800, contact="h1")
    first = Correlation.build(tmp_path / "first")
    async with first.agent.test_context() as agent:
        await put_acked(agent, *bundle(police), partition=2)
    [(_, opened)] = first.published()
    assert opened["version"] == 1

    async def resume(w: Correlation) -> dict[str, Any]:
        async with w.agent.test_context() as agent:
            await put_acked(agent, *bundle(citizen), partition=2)
        [(_, version)] = w.published()
        return version

    restarted = Correlation.build(tmp_path / "restarted")
    recover(restarted.table, first.changelog.writes)
    version = await resume(restarted)
    assert version["incident_id"] == opened["incident_id"]
    assert version["version"] == 2
    assert sorted(version["report_ids"]) == sorted([police.report_id, citizen.report_id])
    assert restarted.processor.engines[2].watermark == citizen.reported_at

    # control: without the changelog the same report opens a new incident
    amnesic = Correlation.build(tmp_path / "amnesic")
    version = await resume(amnesic)
    assert version["incident_id"] != opened["incident_id"]
    assert version["version"] == 1


async def test_the_chronic_place_memory_survives_a_restart(tmp_path: Path) -> None:
    """Dealing reports at one spot on 3 evenings make it a chronic place; the memory goes
    to the changelog (one key per day and partition, written when that day changed), and a
    restarted worker still treats tonight's reports 3 h apart as two incidents, where a
    worker without it makes one."""
    deal = "trafic_stupefiants"
    evenings = [report(kind="police_municipale", org="pm", category=deal, t=d * DAY + 72_000)
                for d in range(3)]
    first = Correlation.build(tmp_path / "first")
    async with first.agent.test_context() as agent:
        for rec in evenings:
            await put_acked(agent, *bundle(rec), partition=2)
    written = [(k.split("/")[1], v) for _, k, v in first.changelog.writes
               if k.startswith(f"{PLACES_KEY}/") and k.endswith("/2")]
    # each evening writes its own day and the list of days, nothing older
    days = [int(name) for name, _ in written if name != "days"]
    assert len(days) == 3 and days == sorted(set(days))
    assert [v for name, v in written if name == "days"][-1] == days
    assert all(len(v) == 1 for name, v in written if name != "days")
    assert first.table.data[place_key(2, "days")] == days
    assert metrics.REGISTRY.get_sample_value(
        "vigie_state_entries", {"table": "chronic_places"}) == 1
    tonight = [report(category=deal, t=3 * DAY + 72_000, contact="c1"),
               report(category=deal, t=3 * DAY + 82_800, east_m=10, contact="c2")]

    async def incidents_tonight(w: Correlation) -> int:
        async with w.agent.test_context() as agent:
            await put_acked(agent, *bundle(*tonight), partition=2)
        return len({v["incident_id"] for _, v in w.published()})

    restarted = Correlation.build(tmp_path / "restarted")
    recover(restarted.table, first.changelog.writes)
    assert await incidents_tonight(restarted) == 2
    # control: the same incident states and clock, but not the place memory
    amnesic = Correlation.build(tmp_path / "amnesic")
    recover(amnesic.table, [w for w in first.changelog.writes
                            if not (w[1].startswith(PLACES_KEY) and w[1].endswith("/2"))])
    assert await incidents_tonight(amnesic) == 1


async def test_a_place_memory_in_the_older_whole_format_is_read_and_rewritten_per_day(
        tmp_path: Path) -> None:
    """A changelog written by an older worker holds the whole memory in one record
    (`PLACES_KEY/<partition>`): it is restored, then written again as per-day records and
    the old record deleted, so that the next restart reads the same memory."""
    deal = "trafic_stupefiants"
    first = Correlation.build(tmp_path / "first")
    async with first.agent.test_context() as agent:
        for d in range(3):
            rec = report(kind="police_municipale", org="pm", category=deal, t=d * DAY + 72_000)
            await put_acked(agent, *bundle(rec), partition=2)
    whole = first.processor.engines[2].export_places()  # the older format
    assert [len(days) for days in whole.values()] == [3]
    older = [w for w in first.changelog.writes if not w[1].startswith(PLACES_KEY)]
    older.append((2, f"{PLACES_KEY}/2", whole))
    tonight = [report(category=deal, t=3 * DAY + 72_000, contact="c1"),
               report(category=deal, t=3 * DAY + 82_800, east_m=10, contact="c2")]

    upgraded = Correlation.build(tmp_path / "upgraded")
    recover(upgraded.table, older)
    async with upgraded.agent.test_context() as agent:
        await put_acked(agent, *bundle(*tonight), partition=2)
    assert len({v["incident_id"] for _, v in upgraded.published()}) == 2  # still chronic
    assert (2, f"{PLACES_KEY}/2", None) in upgraded.changelog.writes  # the old record deleted
    assert f"{PLACES_KEY}/2" not in upgraded.table.data
    assert len(upgraded.table.data[place_key(2, "days")]) == 4  # 3 evenings + tonight

    again = Correlation.build(tmp_path / "again")  # restarted over the upgraded changelog
    recover(again.table, [*older, *upgraded.changelog.writes])
    assert again.processor.engine(
        2, lambda: [], None, again_places := faust_agents.IncidentStates(
            again.table.data, again.changelog.write).places_of(2)).place_count == 1
    assert again_places == {p: [*days, days[-1] + 1] for p, days in whole.items()}


async def test_an_evicted_incident_is_deleted_from_table_and_changelog(tmp_path: Path) -> None:
    w = Correlation.build(tmp_path)
    # three records agree that the clock moved on 30 days (a lone one would be taken for a
    # bogus timestamp and not move it, see agents.core.clock)
    old, later = report(t=0), [report(t=30 * DAY + i) for i in range(3)]
    async with w.agent.test_context() as agent:
        for rec in (old, *later):
            await put_acked(agent, *bundle(rec), partition=1)

    by_id: dict[str, list[int]] = {}
    for _, v in w.published():
        by_id.setdefault(v["incident_id"], []).append(v["version"])
    old_id = next(i for i, v in by_id.items() if v[0] == 1 and len(v) == 2)
    assert [v["status"] for _, v in w.published() if v["incident_id"] == old_id] == [
        "open", "closed"]
    assert [v for p, k, v in w.changelog.writes if k == old_id][-1] is None  # tombstone
    assert old_id not in w.table.data
    new_id = next(i for i in by_id if i != old_id)
    assert w.table.data[new_id]["_partition"] == 1
    assert w.table.data[f"{WATERMARK_KEY}/1"] == later[0].reported_at


async def test_revoked_partitions_are_forgotten(tmp_path: Path) -> None:
    w = Correlation.build(tmp_path)
    async with w.agent.test_context() as agent:
        for partition in (1, 2):
            await put_acked(agent, *bundle(report(t=0)), partition=partition)
    assert set(w.processor.engines) == {1, 2}
    enriched = w.settings.topic_enriched
    await w.app.on_partitions_revoked.send({TP(enriched, 2), TP("other.topic", 1)})
    assert set(w.processor.engines) == {1}


# ---- the store clock: published per batch, stored and acked together ----------------------
def incident_inserts(w: Correlation) -> list[int]:
    return [n for table, n in w.store.inserts if table == "incidents"]


async def test_batches_are_published_at_once_and_stored_acked_together_on_the_store_clock(
    tmp_path: Path,
) -> None:
    """Each batch's version reaches the topic without waiting for the store clock; its row,
    its state and its ack wait for it, and two batches make one insert, one changelog round
    (confirmed before any ack). Nothing follows the second: the timer writes them."""
    w = Correlation.build(tmp_path, correlate_store_seconds=0.6)
    events: list[Any] = []
    acked_at_confirm: list[bool] = []
    w.changelog.on_confirm = lambda: acked_at_confirm.extend(e.message.acked for e in events)
    async with w.agent.test_context() as agent:
        for n, partition in enumerate((1, 2)):
            events.append(await agent.put(bundle(report(t=0))[1], key=b"k", partition=partition))
            await until(lambda n=n: len(w.published()) == n + 1)  # type: ignore[misc]
        assert not any(e.message.acked for e in events)
        assert "incidents" not in w.store.rows and w.changelog.writes == []
        await until(lambda: all(e.message.acked for e in events))

    assert incident_inserts(w) == [2]  # both batches' versions, one insert
    assert {p for p, _, _ in w.changelog.writes} == {1, 2}
    assert acked_at_confirm and not any(acked_at_confirm)
    for _, version in w.published():
        assert w.table.data[version["incident_id"]]["version"] == version["version"]


async def test_the_next_batches_are_published_while_a_tick_is_being_written(
    tmp_path: Path,
) -> None:
    """A tick's write (here its changelog records, held up by a slow broker) runs beside
    the stage: the next batch is correlated and published meanwhile, and is acked only
    after the tick before it was written."""
    w = Correlation.build(tmp_path, correlate_store_seconds=0.0)  # a tick per batch
    w.changelog.gate = asyncio.Event()
    async with w.agent.test_context() as agent:
        first = await agent.put(bundle(report(t=0))[1], key=b"k", partition=1)
        await until(lambda: bool(w.changelog.writes))  # the first tick is being written
        second = await agent.put(bundle(report(t=0))[1], key=b"k", partition=2)
        await until(lambda: len(w.published()) == 2)
        await asyncio.sleep(0.05)  # room for a wrong ack to happen
        assert not first.message.acked and not second.message.acked
        w.changelog.gate.set()
        await until(lambda: first.message.acked and second.message.acked)
    assert incident_inserts(w) == [1, 1]
    assert {p for p, _, _ in w.changelog.writes} == {1, 2}


async def test_held_batches_are_stored_at_the_row_bound_without_waiting_for_the_clock(
    tmp_path: Path,
) -> None:
    w = Correlation.build(tmp_path, correlate_store_seconds=60.0, sink_batch_rows=2)
    async with w.agent.test_context() as agent:
        first = await agent.put(bundle(report(t=0))[1], key=b"k", partition=1)
        await until(lambda: len(w.published()) == 1)
        await asyncio.sleep(0.05)
        assert not first.message.acked  # one version held: below the bound
        await put_acked(agent, *bundle(report(t=0)), partition=2)  # two: written
        assert first.message.acked
    assert incident_inserts(w) == [2]


async def test_a_failed_insert_of_held_batches_crashes_before_any_of_them_is_acked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = Correlation.build(tmp_path, correlate_store_seconds=0.3)
    w.store.fail_inserts = True
    crashes: list[str] = []

    def crash(reason: str, exc: BaseException | None = None) -> None:
        crashes.append(reason)
        raise WorkerExit(reason)

    monkeypatch.setattr(faust_agents, "crash", crash)
    async with w.agent.test_context() as agent:
        events = []
        for n, partition in enumerate((1, 2)):
            events.append(await agent.put(bundle(report(t=0))[1], key=b"k", partition=partition))
            await until(lambda n=n: len(w.published()) == n + 1)  # type: ignore[misc]
        await until(lambda: bool(crashes))  # the timer's write failed
        await asyncio.sleep(0.05)  # room for a wrong ack to happen
        assert not any(e.message.acked for e in events)

    assert crashes == ["correlation batch could not be written"]
    assert "incidents" not in w.store.rows
    assert w.changelog.writes == [] and len(w.table.data) == 0


async def test_a_revocation_stores_the_held_batches_before_forgetting_their_engines(
    tmp_path: Path,
) -> None:
    """The next owner of a revoked partition restores it from the changelog: what its engine
    holds is written first, not left to a replay after the partition moved."""
    w = Correlation.build(tmp_path, correlate_store_seconds=60.0)
    async with w.agent.test_context() as agent:
        event = await agent.put(bundle(report(t=0))[1], key=b"k", partition=2)
        await until(lambda: len(w.published()) == 1)
        assert not event.message.acked
        await w.app.on_partitions_revoked.send({TP(w.settings.topic_enriched, 2)})
        assert event.message.acked
    [(_, version)] = w.published()
    assert incident_inserts(w) == [1]
    assert w.table.data[version["incident_id"]]["_partition"] == 2
    assert 2 not in w.processor.engines


async def test_default_changelog_writer_sends_now_and_returns_the_delivery() -> None:
    """States go straight to the producer (`force`, not Faust's one-at-a-time buffer), as
    the JSON the caller made when it has it, and the writer hands back each record's
    delivery for the agent to await before its acks. It stores no offset: the agent writes
    the batch's last one with the batch's local writes (`RoutedRocksData.write_batch`)."""
    calls: list[dict[str, Any]] = []

    async def send(**kw: Any) -> str:
        calls.append(kw)
        return f"delivery-{len(calls)}"

    table = SimpleNamespace(changelog_topic=SimpleNamespace(send=send), data=None)
    write = faust_agents.table_changelog(table)
    assert await write(2, "INC-1", {"version": 1}) == "delivery-1"
    assert await write(2, "INC-1", None) == "delivery-2"
    assert await write(2, "INC-1", {"version": 2}, b'{"version":2}') == "delivery-3"
    assert calls == [
        {"key": "INC-1", "value": {"version": 1}, "partition": 2, "force": True},
        {"key": "INC-1", "value": None, "partition": 2, "value_serializer": "raw",
         "force": True},
        {"key": "INC-1", "value": b'{"version":2}', "partition": 2, "value_serializer": "raw",
         "force": True},
    ]


# ---- the detector timer and the ingest task ----------------------------------------------
class OneAlertDetector:
    name = "test"

    def __init__(self) -> None:
        self.runs: list[float] = []

    def run(self, now: float) -> list[dict[str, Any]]:
        self.runs.append(now)
        if len(self.runs) > 1:
            return []
        return [{
            "alert_id": "ALR-1", "status": "open", "kind": "hotspot", "category": "rodeo",
            "center": {"lat": 48.63, "lon": 2.44}, "radius_m": 800.0,
            "cells": ["881fb46625fffff"], "insee": ["91228"], "window_start": T0,
            "window_end": T0 + 3600, "observed": 6.0, "expected": 0.5, "score": 12.0,
            "severity": 3, "emitted_at": now, "version": 1, "detector": "poisson_scan",
        }]


async def test_detector_timer_runs_on_the_leader_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, detect_interval_seconds=0.01)
    app, _ = create_app(settings)
    store, kafka, detector = FakeStore(), FakeKafka(), OneAlertDetector()
    timer = install_detector(app, DetectProcessor(
        detector=detector, store=store, send=kafka.send, alerts_topic=settings.topic_alerts,
        retry=RetryPolicy(max_retries=0), run_blocking=run_inline), agent_config(settings))
    leader = False
    monkeypatch.setattr(app, "is_leader", lambda: leader)

    task = asyncio.create_task(timer())
    try:
        await asyncio.sleep(0.1)
        assert detector.runs == []
        leader = True
        await until(lambda: len(detector.runs) >= 3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    [(key, message)] = kafka.on(settings.topic_alerts)
    assert key == b"ALR-1"
    Alert.model_validate(message)
    assert [r["alert_id"] for r in store.rows["alerts"]] == ["ALR-1"]
    assert [r["alert_id"] for r in store.rows["alert_events"]] == ["ALR-1"]


async def test_ingest_task_declares_the_output_topics_then_runs_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path)
    app, topics = create_app(settings)
    journal: list[str] = []

    async def declare(topic: Any) -> None:
        journal.extend(topic.topics)

    async def run() -> None:
        journal.append("loop")

    monkeypatch.setattr(faust.topics.Topic, "maybe_declare", declare)
    loop = install_ingest(app, topics, cast(IngestProcessor, None), ingest_loop_config(settings))
    monkeypatch.setattr(loop, "run", run)
    [task] = app._app_tasks  # the one task install_ingest registered
    await task()
    s = settings
    assert set(journal[:-1]) == {
        s.topic_partner, s.topic_citizen, s.topic_rejected, s.topic_enriched,
        s.topic_incidents, s.topic_alerts, s.topic_alert_actions, s.topic_feedback}
    assert journal[-1] == "loop"
