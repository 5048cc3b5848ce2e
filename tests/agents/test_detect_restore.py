"""The detect stage takes its alert state back from the stored alerts (`alerts`) before its
first run, after a rebalance (a change of leader) and after a failed run: a restarted
detector updates and closes the alerts it had opened, under their ids, and opens no new one
for the same hotspot."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h3
import pytest

from agents.core.detection import (
    DetectionConfig,
    InMemoryCountStore,
    PoissonScanDetector,
)
from agents.core.detection.cells import CellIndex
from agents.detect import DetectProcessor, alert_state
from agents.ports import metrics as metrics_module
from agents.ports.retry import RetryPolicy
from agents.ports.sql import alerts, detector_runs
from agents.ports.store import StoreError
from streams import worker
from tests.agents.fakes import FakeKafka, FakeStore, run_inline
from tests.detection.synthetic import H0, background, universe
from tests.streams.offline_worker import build_offline

SPREE_HOUR = H0 + 24 * 10 + 2
TOPIC = "vigie.alerts.v1"


class AlertStore(FakeStore):
    """`FakeStore` that answers `alerts.DETECTOR_STATE` from the rows inserted into `alerts`
    as ClickHouse would (the highest version of each id; not closed, or emitted since
    `since`); `fail_queries` makes every query raise."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_queries = False
        self.state_queries = 0

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if self.fail_queries:
            raise StoreError("clickhouse unreachable (test)")
        if sql == detector_runs.LAST_RUN.sql:  # as ClickHouse: count() and max() of the runs
            assert params is not None
            runs = [int(r["run_at"]) for r in self.rows.get("detector_runs", [])
                    if r["detector"] == params["detector"]]
            return [{"n": len(runs), "last": max(runs, default=0)}]
        if sql == detector_runs.SCHEDULE.sql:  # as ClickHouse: the latest row, if any
            assert params is not None
            rows = [r for r in self.rows.get(detector_runs.SCHEDULE_TABLE, [])
                    if r["detector"] == params["detector"]]
            rows.sort(key=lambda r: (r["updated_at"], r["calibrated_at"]))
            return [{k: r[k] for k in ("fit_at", "calibrated_at", "threshold")}
                    for r in rows[-1:]]
        if sql != alerts.DETECTOR_STATE.sql:
            return []
        assert params is not None
        self.state_queries += 1
        latest: dict[str, dict[str, Any]] = {}
        for row in self.rows.get("alerts", []):
            known = latest.get(row["alert_id"])
            if known is None or row["version"] > known["version"]:
                latest[row["alert_id"]] = row
        return [
            {**row, "emitted_at": int(row["emitted_at"])}
            for _, row in sorted(latest.items())
            if row["status"] != "closed" or row["emitted_at"] >= params["since"]
        ]


def spree() -> tuple[InMemoryCountStore, CellIndex, list[str]]:
    """Background counts and a burglary spree (10 incidents in 3 hours) on a small zone."""
    index = universe(6)
    counts = background(index, H0, 24 * 12, seed=3, daily_total=120.0)
    zone = sorted(h3.grid_disk(index.cells[40], 1))
    for i in range(10):
        counts.add(zone[i % len(zone)], "cambriolage", SPREE_HOUR + i // 4, 1)
    return counts, index, zone


def processor(counts: InMemoryCountStore, index: CellIndex, store: FakeStore,
              kafka: FakeKafka) -> DetectProcessor:
    detector = PoissonScanDetector(counts, index, DetectionConfig(), fixed_threshold=12.0)
    return DetectProcessor(detector=detector, store=store, send=kafka.send, alerts_topic=TOPIC,
                           retry=RetryPolicy(max_retries=0), run_blocking=run_inline)


def of_spree(rows: list[dict[str, Any]], zone: list[str]) -> list[dict[str, Any]]:
    return [r for r in rows if r["category"] == "cambriolage" and set(r["cells"]) & set(zone)]


async def run_until_open(proc: DetectProcessor, zone: list[str], now: float) -> float:
    while True:
        if of_spree(await proc.run(now), zone):
            return now + 300.0
        now += 300.0
        assert now < (SPREE_HOUR + 6) * 3600.0, "the spree was not detected"


async def run_span(proc: DetectProcessor, start: float, end: float) -> float:
    now = start
    while now < end:
        await proc.run(now)
        now += 300.0
    return now


async def test_a_restarted_detector_updates_and_closes_its_alert_under_its_id() -> None:
    counts, index, zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    now = await run_until_open(processor(counts, index, store, kafka), zone,
                               (SPREE_HOUR + 1) * 3600.0)
    [opened] = of_spree(store.rows["alerts"], zone)
    restarted = processor(counts, index, store, kafka)  # SIGKILL, then a new process
    await run_span(restarted, now, (SPREE_HOUR + 30) * 3600.0)
    assert store.state_queries == 2  # once per process, before its first run
    stored = of_spree(store.rows["alerts"], zone)
    assert {r["alert_id"] for r in stored} == {opened["alert_id"]}
    assert [r["version"] for r in stored] == list(range(1, len(stored) + 1))
    assert stored[-1]["status"] == "closed"
    assert of_spree([m for _, m in kafka.on(TOPIC)], zone)[-1]["status"] == "closed"
    open_now = alerts_open(store)
    assert opened["alert_id"] not in open_now


def alerts_open(store: AlertStore) -> set[str]:
    return {r["alert_id"] for r in store.query(alerts.DETECTOR_STATE.sql, {"since": 2**40})}


async def test_a_worker_that_regains_the_lead_restores_what_the_other_leader_did() -> None:
    counts, index, zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    first = processor(counts, index, store, kafka)
    now = await run_until_open(first, zone, (SPREE_HOUR + 1) * 3600.0)
    second = processor(counts, index, store, kafka)  # the new leader after a rebalance
    now = await run_span(second, now, (SPREE_HOUR + 30) * 3600.0)
    [closed] = [r for r in of_spree(store.rows["alerts"], zone) if r["status"] == "closed"]
    first.rebalanced()  # the lead comes back to the first worker
    assert of_spree(await first.run(now), zone) == []  # closed by the other one: not again
    assert first.detector.manager.open_alerts.keys() == alerts_open(store)  # type: ignore[attr-defined]
    assert len([r for r in store.rows["alerts"] if r["alert_id"] == closed["alert_id"]
                and r["status"] == "closed"]) == 1


async def test_no_detection_runs_until_the_alert_state_is_restored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counts, index, zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    now = await run_until_open(processor(counts, index, store, kafka), zone,
                               (SPREE_HOUR + 1) * 3600.0)
    restarted = processor(counts, index, store, kafka)
    store.fail_queries = True
    with caplog.at_level(logging.ERROR, logger="agents.detect"):
        assert await restarted.run(now) == []
    assert "detector run failed" in caplog.text
    assert restarted.detector.manager.open_alerts == {}  # type: ignore[attr-defined]
    store.fail_queries = False  # the next run restores, then detects
    await run_span(restarted, now + 300.0, (SPREE_HOUR + 30) * 3600.0)
    assert len({r["alert_id"] for r in of_spree(store.rows["alerts"], zone)}) == 1


async def test_a_stored_row_that_is_not_an_alert_state_is_named_and_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counts, index, zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    now = await run_until_open(processor(counts, index, store, kafka), zone,
                               (SPREE_HOUR + 1) * 3600.0)
    [opened] = of_spree(store.rows["alerts"], zone)
    store.rows["alerts"].append({**opened, "alert_id": "hs-bad", "status": "reopened"})
    restarted = processor(counts, index, store, kafka)
    with caplog.at_level(logging.ERROR, logger="agents.detect"):
        await restarted.run(now)
    [record] = [r for r in caplog.records if r.getMessage() == "stored alert state left out"]
    assert record.alert_id == "hs-bad"  # type: ignore[attr-defined]
    assert "unknown status 'reopened'" in record.error  # type: ignore[attr-defined]
    assert set(restarted.detector.manager.open_alerts) == {opened["alert_id"]}  # type: ignore[attr-defined]


def test_alert_state_reads_a_stored_row() -> None:
    row = {
        "alert_id": "hs-1", "version": 3, "status": "update", "kind": "hotspot",
        "category": "vol", "center_lat": 48.63, "center_lon": 2.44, "radius_m": 800.0,
        "cells": ["881fb46625fffff"], "insee": ["91228"], "window_start": 3600,
        "window_end": 7200, "observed": 6.0, "expected": 0.5, "score": 12.0, "severity": 2,
        "emitted_at": 7300, "detector": "poisson_scan",
    }
    state = alert_state(row)
    assert state.message()["center"] == {"lat": 48.63, "lon": 2.44}
    assert (state.cells, state.window_start, state.version) == (("881fb46625fffff",), 3600.0, 3)
    with pytest.raises(KeyError):
        alert_state({k: v for k, v in row.items() if k != "cells"})


async def test_the_worker_restores_the_alert_state_after_every_rebalance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`build_worker` tells the detect stage of each rebalance (the only way the leader
    changes): its next run restores the alert state."""
    built: list[DetectProcessor] = []

    class Recorded(DetectProcessor):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            built.append(self)

    monkeypatch.setattr(worker, "DetectProcessor", Recorded)
    running = build_offline(tmp_path, monkeypatch)
    try:
        [detect] = built
        detect._restore_due = False  # as after a run
        await running.app.on_partitions_assigned.send(set())
        assert detect._restore_due
    finally:
        running.close()


async def test_a_failed_run_takes_the_stored_state_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run that failed may have left the lifecycle half-updated (its messages never
    stored): the next run starts from the stored state."""
    counts, index, zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    proc = processor(counts, index, store, kafka)
    now = await run_until_open(proc, zone, (SPREE_HOUR + 1) * 3600.0)
    assert store.state_queries == 1
    detector: Any = proc.detector
    detector.manager.open_alerts.clear()  # what a run that failed half-way may leave

    def failing(at: float) -> list[Any]:
        raise RuntimeError("scan failed (test)")

    detector.run, real_run = failing, detector.run
    with caplog.at_level(logging.ERROR, logger="agents.detect"):
        assert await proc.run(now) == []
    detector.run = real_run
    await run_span(proc, now + 300.0, (SPREE_HOUR + 30) * 3600.0)
    assert store.state_queries == 2
    assert len({r["alert_id"] for r in of_spree(store.rows["alerts"], zone)}) == 1


def calibrated_processor(counts: InMemoryCountStore, index: CellIndex, store: FakeStore,
                         kafka: FakeKafka) -> DetectProcessor:
    """A processor whose detector calibrates its threshold (no fixed one), on a short
    simulated null."""
    detector = PoissonScanDetector(counts, index, DetectionConfig(calibration_days=4))
    return DetectProcessor(detector=detector, store=store, send=kafka.send, alerts_topic=TOPIC,
                           retry=RetryPolicy(max_retries=0), run_blocking=run_inline)


async def test_a_restarted_detector_keeps_the_stored_threshold_until_it_is_due() -> None:
    """A calibrated detector (no fixed threshold) writes its schedule when it fits or
    calibrates; the detector of a new process takes it back before its first run and alerts
    on the same threshold, where calibrating on its own start gave another one."""
    counts, index, _zone = spree()
    store, kafka = AlertStore(), FakeKafka()

    def calibrated() -> DetectProcessor:
        return calibrated_processor(counts, index, store, kafka)

    first = calibrated()
    start = (SPREE_HOUR - 30) * 3600.0
    await first.run(start)
    [row] = store.rows[detector_runs.SCHEDULE_TABLE]
    assert row["calibrated_at"] == int(start) and row["fit_at"] == int(start)
    await first.run(start + 600.0)  # nothing fitted or calibrated: nothing written
    assert len(store.rows[detector_runs.SCHEDULE_TABLE]) == 1
    threshold = first.detector.threshold  # type: ignore[attr-defined]
    later = start + 5 * 3600.0
    restarted = calibrated()  # SIGKILL, then a new process
    await restarted.run(later)
    assert restarted.detector.threshold == threshold  # type: ignore[attr-defined]
    schedule = restarted.detector.schedule()  # type: ignore[attr-defined]
    assert (schedule.fit_at, schedule.calibrated_at) == (start, start)
    # the same restart without the stored schedule
    alone = calibrated_processor(counts, index, AlertStore(), kafka)
    await alone.run(later)
    assert alone.detector.threshold != threshold  # type: ignore[attr-defined]
    # a day after the first fit, the restarted detector refits as the first one would have
    await restarted.run(start + 86400.0 + 300.0)
    refit = restarted.detector.schedule()  # type: ignore[attr-defined]
    assert refit.fit_at == start + 86400.0 + 300.0 and refit.calibrated_at == start
    stored = max(store.rows[detector_runs.SCHEDULE_TABLE], key=lambda r: r["updated_at"])
    assert stored["fit_at"] == int(refit.fit_at)


async def test_the_threshold_in_use_and_its_calibration_time_are_exported() -> None:
    """`vigie_detector_threshold` and `vigie_detector_calibrated_timestamp_seconds` say what
    the detector alerts on: its own calibration, then, in a restarted process, the stored
    schedule it took back (not the threshold a calibration at its start would give)."""
    counts, index, _zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    start = (SPREE_HOUR - 30) * 3600.0
    first = calibrated_processor(counts, index, store, kafka)
    await first.run(start)
    threshold = first.detector.threshold  # type: ignore[attr-defined]
    assert metrics_module.sample("vigie_detector_threshold") == threshold
    assert metrics_module.sample("vigie_detector_calibrated_timestamp_seconds") == start
    alone = calibrated_processor(counts, index, AlertStore(), kafka)  # no stored schedule
    await alone.run(start + 5 * 3600.0)
    assert metrics_module.sample("vigie_detector_threshold") != threshold
    restarted = calibrated_processor(counts, index, store, kafka)
    await restarted.run(start + 5 * 3600.0)
    assert metrics_module.sample("vigie_detector_threshold") == threshold
    assert metrics_module.sample("vigie_detector_calibrated_timestamp_seconds") == start


async def test_a_leader_back_takes_the_newer_schedule_of_the_other_leader() -> None:
    counts, index, _zone = spree()
    store, kafka = AlertStore(), FakeKafka()

    def calibrated() -> DetectProcessor:
        return calibrated_processor(counts, index, store, kafka)

    first, second = calibrated(), calibrated()
    start = (SPREE_HOUR - 30) * 3600.0
    await first.run(start)
    await second.run(start + 3600.0)  # the new leader after a rebalance takes it back
    assert second.detector.schedule() == first.detector.schedule()  # type: ignore[attr-defined]
    await second.run(start + 86400.0 + 60.0)  # ... and refits a day later
    newer = second.detector.schedule()  # type: ignore[attr-defined]
    assert newer.fit_at == start + 86400.0 + 60.0
    first.rebalanced()  # the lead comes back
    await first.run(start + 86400.0 + 360.0)
    assert first.detector.schedule() == newer  # type: ignore[attr-defined]
