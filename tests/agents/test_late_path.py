"""agents.late on a real store (ClickHouse server and chDB): a report that arrives past the
allowed lateness, after its incident left the engine's state, still joins that incident (its
next version follows the stored one) instead of founding a new one; without a stored incident
around it founds one; every record's lateness is measured."""

from __future__ import annotations

import asyncio
from typing import Any

from agents.core.correlation import CorrelationConfig
from agents.core.record import ReportRecord
from agents.correlate import CorrelateProcessor, PartitionChanges
from agents.ports.retry import RetryPolicy
from agents.ports.store import Store
from tests.agents.fakes import FakeKafka, report, run_inline
from tests.conftest import MetricsSince

DAY = 86_400.0
CONFIG = CorrelationConfig(allowed_lateness_s=2 * DAY)


def processor(store: Store, kafka: FakeKafka, *, late_path: bool = True) -> CorrelateProcessor:
    return CorrelateProcessor(
        store=store,
        send=kafka.send,
        incidents_topic="incidents",
        retry=RetryPolicy(max_retries=1, base_seconds=0.0),
        run_blocking=run_inline,
        config=CONFIG,
        late_path=late_path,
    )


def stored(store: Store, *records: ReportRecord) -> None:
    """The `reports` rows the ingest stage writes for `records`."""
    store.insert(
        "reports", [{**r.to_dict(), "content_hash": "h", "ingested_at": 0} for r in records]
    )


def batch(p: CorrelateProcessor, *records: ReportRecord) -> dict[int, PartitionChanges]:
    return asyncio.run(p.process([(0, list(records))], lambda _p: [], lambda _p: None))


def later(p: CorrelateProcessor, store: Store, days: float) -> dict[int, PartitionChanges]:
    """Reports `days` later, far away (three: the engine's clock leaps only when three of
    its last records agree)."""
    far = [report(t=days * DAY + i, east_m=20_000.0 + 5_000.0 * i) for i in range(3)]
    stored(store, *far)
    return batch(p, *far)


def held(p: CorrelateProcessor, store: Store, *records: ReportRecord) -> None:
    """Reports stored and correlated, their versions published and held (`correlate`
    without `flush`: the store clock has not struck)."""
    stored(store, *records)
    asyncio.run(p.correlate([(0, list(records))], lambda _p: [], lambda _p: None))


def incident_of(kafka: FakeKafka, report_id: str) -> dict[str, Any]:
    """The last version sent that lists `report_id`."""
    return [v for _, v in kafka.on("incidents") if report_id in v["report_ids"]][-1]


def scenario(store: Store, late_path: bool) -> tuple[FakeKafka, ReportRecord, ReportRecord]:
    kafka = FakeKafka()
    p = processor(store, kafka, late_path=late_path)
    first, second = report(t=0.0), report(t=600.0, east_m=30.0)
    stored(store, first, second)
    batch(p, first, second)
    assert incident_of(kafka, first.report_id)["report_ids"] == [first.report_id, second.report_id]
    # 40 days later elsewhere: the incident closes, then leaves the state
    changes = later(p, store, 40)
    iid = incident_of(kafka, first.report_id)["incident_id"]
    assert iid in changes[0].evicted and not any(iid in e for e in p.engines.values())
    # a report of the first incident, 40 days late (occurred 20 min after the second one)
    late = report(t=1200.0, east_m=15.0)
    stored(store, late)
    batch(p, late)
    return kafka, first, late


def test_a_report_past_the_lateness_joins_its_evicted_incident(
    store: Store, metrics: MetricsSince
) -> None:
    kafka, first, late = scenario(store, late_path=True)
    joined = incident_of(kafka, late.report_id)
    before = incident_of(kafka, first.report_id)
    assert joined["incident_id"] == before["incident_id"]
    assert joined["report_ids"][-1] == late.report_id and len(joined["report_ids"]) == 3
    versions = [
        v["version"] for _, v in kafka.on("incidents") if v["incident_id"] == joined["incident_id"]
    ]
    assert versions == list(range(1, len(versions) + 1))  # the stored versions go on
    assert metrics.sample("vigie_correlation_late_records_total", outcome="readmitted") == 1
    # the first two and the far ones in time (none behind the clock), the late one 40 days
    assert metrics.sample("vigie_correlation_record_lateness_seconds_count") == 6
    assert metrics.sample("vigie_correlation_record_lateness_seconds_bucket", le="0.0") == 5


def test_without_the_late_path_the_report_founds_an_incident(store: Store) -> None:
    kafka, _first, late = scenario(store, late_path=False)
    assert incident_of(kafka, late.report_id)["report_ids"] == [late.report_id]


def test_a_late_report_with_no_stored_incident_around_founds_one(
    store: Store, metrics: MetricsSince
) -> None:
    kafka = FakeKafka()
    p = processor(store, kafka)
    later(p, store, 40)
    late = report(t=0.0)
    stored(store, late)
    batch(p, late)
    assert incident_of(kafka, late.report_id)["report_ids"] == [late.report_id]
    assert metrics.sample("vigie_correlation_late_records_total", outcome="none") == 1


def test_a_late_report_finds_its_incident_while_the_versions_are_held_unstored(
    store: Store,
) -> None:
    """Batches correlated but not yet written (`correlate` without `flush`, the store
    clock): their versions are inserted before the late path reads the store, so a late
    report joins its evicted incident even when no version of it was stored yet."""
    kafka = FakeKafka()
    p = processor(store, kafka)
    first, second = report(t=0.0), report(t=600.0, east_m=30.0)
    held(p, store, first, second)
    held(p, store, *[report(t=40 * DAY + i, east_m=20_000.0 + 5_000.0 * i) for i in range(3)])
    iid = incident_of(kafka, first.report_id)["incident_id"]
    assert p.held_rows > 0 and not any(iid in e for e in p.engines.values())
    late = report(t=1200.0, east_m=15.0)
    held(p, store, late)
    assert incident_of(kafka, late.report_id)["incident_id"] == iid
    changes = asyncio.run(p.flush())
    assert iid in changes[0].states and iid not in changes[0].evicted  # put back, joined
    assert p.held_rows == 0 and not p.holding


def test_a_late_report_finds_its_incident_while_its_tick_is_being_written(
    store: Store,
) -> None:
    """A tick cut and not yet written (`cut`, its writer behind): the late path inserts the
    tick's versions itself before it reads the store, and the tick's write then inserts
    them no second time."""
    kafka = FakeKafka()
    p = processor(store, kafka)
    first, second = report(t=0.0), report(t=600.0, east_m=30.0)
    held(p, store, first, second)
    tick = p.cut()
    held(p, store, *[report(t=40 * DAY + i, east_m=20_000.0 + 5_000.0 * i) for i in range(3)])
    iid = incident_of(kafka, first.report_id)["incident_id"]
    assert not any(iid in e for e in p.engines.values())
    late = report(t=1200.0, east_m=15.0)
    held(p, store, late)
    assert incident_of(kafka, late.report_id)["incident_id"] == iid
    count = "SELECT count() AS n FROM incidents WHERE incident_id = %(iid)s"
    before = store.query(count, {"iid": iid})[0]["n"]
    asyncio.run(p.write(tick))
    assert store.query(count, {"iid": iid})[0]["n"] == before  # not inserted again
    asyncio.run(p.flush())
    assert not p.holding


def current_members(store: Store, iid: str) -> list[str]:
    rows = store.query("SELECT report_ids FROM incidents FINAL WHERE incident_id = %(iid)s",
                       {"iid": iid})
    assert len(rows) == 1
    return list(rows[0]["report_ids"])


def test_a_late_re_delivery_of_a_member_not_yet_stored_founds_nothing_again(
    store: Store, metrics: MetricsSince
) -> None:
    """A worker killed after its correlator merged reports its ingest forwarded but had not
    stored: the next ingest forwards them again, behind the restored clock, before it stores
    them. Their incident cannot be rebuilt (a member not stored), and the founder must not
    found it again under the same deterministic id at version 1: the versions that followed
    would share numbers with the stored ones and replace them (a member then in no current
    version). A report its incident lists is known: nothing is published for it; a new late
    report next to it founds an incident of its own."""
    kafka = FakeKafka()
    p = processor(store, kafka)
    first, second = report(t=0.0), report(t=600.0, east_m=30.0)
    stored(store, second)  # the first one forwarded, never stored by the killed ingest
    batch(p, first, second)
    iid = incident_of(kafka, first.report_id)["incident_id"]
    later(p, store, 40)
    assert not any(iid in e for e in p.engines.values())
    sent = len(kafka.on("incidents"))
    batch(p, first)  # forwarded again, late, not stored yet
    assert len(kafka.on("incidents")) == sent, "a version published for a known report"
    assert metrics.sample("vigie_correlation_late_records_total", outcome="known") == 1
    new = report(t=1300.0, east_m=10.0)
    stored(store, new)
    batch(p, new)
    assert incident_of(kafka, new.report_id)["incident_id"] != iid
    assert current_members(store, iid) == [first.report_id, second.report_id]
