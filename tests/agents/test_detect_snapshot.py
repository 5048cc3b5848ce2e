"""The live counts' snapshot (`ClickHouseCountStore.snapshot`): a catch-up's detector runs
(one for each skipped hour) read their windows once and move them on by the hour, instead
of re-reading a day of counts for each hour, and alert exactly what runs reading the store
each time alert. Over a store answering the live queries as ClickHouse would."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from agents.core.detection import DetectionConfig, InMemoryCountStore, PoissonScanDetector
from agents.core.detection.cells import CellIndex
from agents.detect import ClickHouseCountStore, DetectProcessor, rows_within
from agents.ports.retry import RetryPolicy
from agents.ports.sql import incident_hours, incidents
from tests.agents.fakes import FakeKafka, run_inline
from tests.agents.test_detect_restore import SPREE_HOUR, TOPIC, AlertStore, of_spree, spree
from tests.detection.test_history_totals import totals_of


class LiveStore(AlertStore):
    """`AlertStore` that answers the live counts' queries from `counts` (as ClickHouse: rows
    ordered by hour) and counts them by name."""

    def __init__(self, counts: InMemoryCountStore) -> None:
        super().__init__()
        self.counts = counts
        self.asked: dict[str, int] = {}

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        for query in (incident_hours.LIVE_COUNTS, incident_hours.LIVE_CELL_TOTALS,
                      incident_hours.LIVE_HOUR_TOTALS, incidents.LIVE_SPAN):
            if sql == query.sql:
                self.asked[query.name] = self.asked.get(query.name, 0) + 1
                return self._answer(query.name, params or {})
        return super().query(sql, params)

    def _answer(self, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        if name == incidents.LIVE_SPAN.name:
            span = self.counts.span()
            if span is None:
                return [{"n": 0, "lo": 0, "hi": 0}]
            return [{"n": 1, "lo": span[0] * 3600, "hi": span[1] * 3600 + 59}]
        rows = self.counts.window_counts(params["start"] // 3600, params["end"] // 3600)
        rows.sort(key=lambda r: (r[2], r[0], r[1]))
        if name == incident_hours.LIVE_COUNTS.name:
            return [{"h3_r8": c, "category": k, "hour": h, "n": n} for c, k, h, n in rows]
        cells, hours = totals_of(rows)
        if name == incident_hours.LIVE_CELL_TOTALS.name:
            return [{"h3_r8": c, "category": k, "n": n} for c, k, n in cells]
        return [{"category": k, "hour": h, "n": n} for k, h, n in hours]


Snapshot = Callable[[ClickHouseCountStore], Callable[[], AbstractContextManager[object]]]


def _processor(counts: InMemoryCountStore, index: CellIndex, store: LiveStore, kafka: FakeKafka,
               snapshot: Snapshot) -> DetectProcessor:
    live = ClickHouseCountStore(store)
    detector = PoissonScanDetector(live, index, DetectionConfig(), fixed_threshold=12.0)
    return DetectProcessor(detector=detector, store=store, send=kafka.send, alerts_topic=TOPIC,
                           retry=RetryPolicy(max_retries=0), run_blocking=run_inline,
                           snapshot=snapshot(live))


async def _catch_up(snapshot: Snapshot) -> tuple[list[dict[str, Any]], dict[str, int]]:
    counts, index, zone = spree()
    store, kafka = LiveStore(counts), FakeKafka()
    proc = _processor(counts, index, store, kafka, snapshot)
    await proc.run((SPREE_HOUR - 1) * 3600.0)  # before the spree: quiet
    store.asked.clear()
    await proc.run((SPREE_HOUR + 48) * 3600.0)  # then two days of data read at once
    return of_spree([m for _, m in kafka.on(TOPIC)], zone), store.asked


async def test_a_catch_up_reads_its_windows_once_and_alerts_the_same() -> None:
    each_time, asked_each_time = await _catch_up(lambda live: nullcontext)
    once, asked_once = await _catch_up(lambda live: live.snapshot)
    assert each_time, "the spree inside the jump was never alerted"
    assert once == each_time  # the same alert versions, in the same order
    # 49 runs (48 skipped hours, then now); a refit (daily) in the jump reads totals
    assert asked_each_time[incident_hours.LIVE_COUNTS.name] >= 49
    assert asked_once[incident_hours.LIVE_COUNTS.name] == 1
    assert asked_once[incidents.LIVE_SPAN.name] == 1
    assert asked_once.get(incident_hours.LIVE_CELL_TOTALS.name, 0) >= 1  # the refits


def test_a_snapshot_serves_covered_reads_and_stands_still() -> None:
    counts, _, _ = spree()
    store = LiveStore(counts)
    live = ClickHouseCountStore(store)
    first, last = counts.span() or (0, 0)
    assert live.revision() != live.revision()  # outside: every read is new
    assert live.changes_since(live.revision()) is None
    with live.snapshot():
        rev = live.revision()
        assert live.revision() == rev and live.changes_since(rev) == []
        assert live.changes_since(rev - 1) is None
        assert live.span() == (first, last)  # read first, as the detector does
        whole = live.window_counts(first + 24, last + 1)
        assert live.window_counts(first + 30, first + 40) == [
            r for r in whole if first + 30 <= r[2] < first + 40]
        assert live.span() == (first, last)
        # a read past the span's last hour holds every later hour there is
        assert live.window_counts(first + 30, last + 50) == [r for r in whole if r[2] >= first + 30]
        assert store.asked == {incident_hours.LIVE_COUNTS.name: 1, incidents.LIVE_SPAN.name: 1}
        live.window_counts(first, first + 30)  # not covered: read
        assert store.asked[incident_hours.LIVE_COUNTS.name] == 2
    assert live.changes_since(rev) is None
    live.window_counts(first + 30, first + 40)  # after the block: read again
    assert store.asked[incident_hours.LIVE_COUNTS.name] == 3
    rows = [("c", "vol", h, 1) for h in (3, 3, 4, 6, 6, 9)]
    assert rows_within(rows, 4, 7) == rows[2:5] and rows_within(rows, 10, 12) == []
