"""The worker gives each stage a feedback sink of its own: the ingest's `recu`/`rejete`
and the correlate stage's `rattache` transitions in flight count towards their own
stage's row bound and are written with their own stage's tick."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.core.feedback import RATTACHE, FeedbackEvent
from agents.core.record import ReportKey
from agents.correlate import CorrelateProcessor
from agents.ingest import IngestProcessor
from streams import worker
from tests.agents.fakes import FakeKafka
from tests.streams.offline_worker import build_offline


async def test_a_rattache_in_flight_is_not_counted_in_the_ingest_row_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: dict[str, Any] = {}

    class Ingest(IngestProcessor):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            built["ingest"] = self

    class Correlate(CorrelateProcessor):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            built["correlate"] = self

    monkeypatch.setattr(worker, "IngestProcessor", Ingest)
    monkeypatch.setattr(worker, "CorrelateProcessor", Correlate)
    running = build_offline(tmp_path, monkeypatch)
    try:
        ingest, correlate = built["ingest"], built["correlate"]
        sink = correlate.feedback_sink
        assert sink is not None and sink is not ingest.feedback_sink

        async def nothing_stored(events: Any) -> dict[str, bytes]:
            return {}

        kafka = FakeKafka()
        sink.send_fn = kafka.send
        monkeypatch.setattr(sink, "stored_payloads", nothing_stored)
        event = FeedbackEvent(ReportKey("citizen", "app", "r-1"), RATTACHE, 1_700_000_000,
                              incident_id="i" * 32, other_reports=1)
        await sink.send([(event, None)])  # sent, held until the correlate stage flushes
        assert len(kafka.sent) == 1 and sink.held_rows == 1
        assert ingest.held_rows == 0
    finally:
        running.close()
