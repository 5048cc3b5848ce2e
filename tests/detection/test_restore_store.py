"""A detector restarted mid-outbreak takes its alert back from the real `alerts` table, on
both backends (ClickHouse 18.16 server and chDB 26.x), and goes on with it: one alert id for
the hotspot, its versions in sequence, closed once the zone is quiet, none left open."""

from __future__ import annotations

from typing import Any

import h3

from agents.core.detection import DetectionConfig, InMemoryCountStore, PoissonScanDetector
from agents.core.detection.cells import CellIndex
from agents.detect import DetectProcessor
from agents.ports.retry import RetryPolicy
from agents.ports.sql import alerts
from streams.storage import Store
from tests.agents.fakes import FakeKafka, run_inline
from tests.detection.synthetic import H0, background, universe

SPREE_HOUR = H0 + 24 * 10 + 2


def processor(counts: InMemoryCountStore, index: CellIndex, store: Store) -> DetectProcessor:
    detector = PoissonScanDetector(counts, index, DetectionConfig(), fixed_threshold=12.0)
    return DetectProcessor(detector=detector, store=store, send=FakeKafka().send,
                           alerts_topic="vigie.alerts.v1", retry=RetryPolicy(max_retries=0),
                           run_blocking=run_inline)


async def test_a_restarted_detector_goes_on_with_its_stored_alert(store: Store) -> None:
    index = universe(6)
    counts = background(index, H0, 24 * 12, seed=3, daily_total=120.0)
    cells = sorted(h3.grid_disk(index.cells[40], 1))
    zone = set(cells)
    for i in range(10):  # a burglary spree: 10 incidents in 3 hours
        counts.add(cells[i % len(cells)], "cambriolage", SPREE_HOUR + i // 4, 1)

    def of_spree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if r["category"] == "cambriolage" and set(r["cells"]) & zone]

    first = processor(counts, index, store)
    now = (SPREE_HOUR + 1) * 3600.0
    while not of_spree(await first.run(now)):
        now += 300.0
        assert now < (SPREE_HOUR + 6) * 3600.0, "the spree was not detected"
    [opened] = of_spree(store.query("SELECT * FROM alerts"))

    restarted = processor(counts, index, store)  # a new process on the same tables
    now += 300.0
    emitted: list[dict[str, Any]] = []
    while now < (SPREE_HOUR + 30) * 3600.0:
        emitted += await restarted.run(now)
        now += 300.0
    spree = of_spree(emitted)
    assert spree and {m["alert_id"] for m in spree} == {opened["alert_id"]}
    assert spree[-1]["status"] == "closed"
    events = of_spree(store.query("SELECT * FROM alert_events ORDER BY alert_id, version"))
    assert [(e["alert_id"], e["version"]) for e in events] == [
        (opened["alert_id"], v) for v in range(1, len(spree) + 2)
    ]
    query = alerts.DETECTOR_STATE
    still_open = store.query(query.sql, query.bind(since=int(now) + 1))
    assert opened["alert_id"] not in {r["alert_id"] for r in still_open}
    assert {r["alert_id"] for r in still_open} == set(restarted.detector.manager.open_alerts)  # type: ignore[attr-defined]
