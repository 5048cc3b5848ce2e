"""The detector's data clock (`VIGIE_DETECTOR_CLOCK=data`) reads the store: while ClickHouse
is down it fails, and that is one failed run, not a crash of the worker (found by
`make chaos`: the Faust timer raised StoreUnavailable and the worker exited)."""

from __future__ import annotations

import logging

import pytest

from agents.core.detection import DetectionConfig, PoissonScanDetector
from agents.detect import DetectProcessor
from agents.ports.retry import RetryPolicy
from agents.ports.store import StoreUnavailable
from tests.agents.fakes import FakeKafka, run_inline
from tests.agents.test_detect_restore import SPREE_HOUR, TOPIC, AlertStore, spree


async def test_a_data_clock_failing_with_the_store_is_a_failed_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counts, index, _zone = spree()
    store, kafka = AlertStore(), FakeKafka()
    down = True

    def data_clock() -> float:
        if down:
            raise StoreUnavailable("query failed: Connection refused (test)")
        return (SPREE_HOUR + 1) * 3600.0

    detector = PoissonScanDetector(counts, index, DetectionConfig(), fixed_threshold=12.0)
    proc = DetectProcessor(
        detector=detector,
        store=store,
        send=kafka.send,
        alerts_topic=TOPIC,
        retry=RetryPolicy(max_retries=0),
        run_blocking=run_inline,
        clock=data_clock,
    )
    with caplog.at_level(logging.ERROR, logger="agents.detect"):
        assert await proc.run() == []
    assert "detector run failed" in caplog.text
    assert store.state_queries == 0  # nothing ran on a time it could not read
    down = False
    await proc.run()  # ClickHouse back: the state is restored, detection runs
    assert store.state_queries == 1
