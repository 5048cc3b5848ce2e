"""agents.core.intake: validate -> drop re-deliveries -> enrich, the one sequence that the live
ingest, `vigie backtest` and `vigie eval` share (real validation, real geocoder)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from agents.core.geo import Geocoder
from agents.core.intake import Intake, IntakeChunk
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.record import ReportKey, ReportRecord
from agents.core.refdata import load_refdata
from agents.core.validation import Rejection, validate_report
from schemas.rejection import RejectReason

PSEUDO = Pseudonymiser(b"unit-test-secret-0123456789abcdefghi")
EVRY = {"lat": 48.629, "lon": 2.441}
PARIS = {"lat": 48.857, "lon": 2.352}  # outside the served area


class CountingGeocoder:
    """The real geocoder, remembering which report_ids it was asked to enrich."""

    def __init__(self, geocoder: Geocoder) -> None:
        self.geocoder = geocoder
        self.asked: list[str] = []

    def enrich_batch(self, records: list[ReportRecord]) -> list[ReportRecord | Rejection]:
        self.asked += [r.report_id for r in records]
        return self.geocoder.enrich_batch(records)


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    refdata = load_refdata()
    return Geocoder(refdata, load_jurisdictions(None, refdata))


@pytest.fixture
def enricher(geocoder: Geocoder) -> Iterator[CountingGeocoder]:
    yield CountingGeocoder(geocoder)


def report(report_id: str, location: dict[str, object] | None = None) -> bytes:
    return orjson.dumps(
        {
            "report_id": report_id,
            "source": {"kind": "citizen", "org": "citoyen"},
            "category": "rodeo",
            "occurred_at": "2024-03-18T21:00:00+01:00",
            "location": EVRY if location is None else location,
        }
    )


def key(report_id: str) -> ReportKey:
    """The identity of `report(report_id)`."""
    return ReportKey("citizen", "citoyen", report_id)


def content_of(value: bytes) -> str:
    """The content hash validation gives a message."""
    record = validate_report(value, message_timestamp=1_710_792_000.0, pseudonymiser=PSEUDO)
    assert isinstance(record, ReportRecord)
    return record.content_hash


def intake(enricher: CountingGeocoder, **kwargs: bool) -> Intake[int]:
    return Intake(pseudonymiser=PSEUDO, enricher=enricher, **kwargs)


def feed(it: Intake[int], values: list[bytes]) -> None:
    for tag, value in enumerate(values):
        it.add(tag, value, 1_710_792_000.0)


def test_one_chunk_keeps_tags_and_orders_rejections(enricher: CountingGeocoder) -> None:
    it = intake(enricher)
    feed(it, [
        report("r1"),
        b"{not json",
        report("r2", PARIS),
        report("r1"),  # exact re-delivery, later in the same stream
        report("r3", {"insee": "91228"}),
        report("r4", {"insee": "75056"}),  # a commune outside the area
    ])
    chunk = it.flush()
    assert [(tag, rec.report_id) for tag, rec in chunk.accepted] == [(0, "r1"), (4, "r3")]
    assert all(rec.commune and rec.h3_r9 and rec.jurisdiction for _, rec in chunk.accepted)
    assert [(tag, r.reason) for tag, r in chunk.invalid] == [(1, RejectReason.NOT_JSON)]
    assert [(tag, r.reason) for tag, r in chunk.unlocated] == [
        (2, RejectReason.OUT_OF_AREA),
        (5, RejectReason.UNKNOWN_INSEE),
    ]
    assert [tag for tag, _ in chunk.rejected] == [1, 2, 5]  # validation's, then enrichment's
    assert chunk.redeliveries == 1
    assert enricher.asked == ["r1", "r2", "r3", "r4"]  # the re-delivery is never enriched
    assert it.pending == 0 and it.flush() == IntakeChunk()


def test_ids_the_store_already_holds_are_dropped_before_enrichment(
    enricher: CountingGeocoder,
) -> None:
    it = intake(enricher)
    feed(it, [report("r1"), report("r2"), report("r2")])
    assert sorted(it.pending_keys()) == [key("r1"), key("r2")] and it.pending == 2
    chunk = it.flush(stored={key("r1"): content_of(report("r1"))})
    assert [rec.report_id for _, rec in chunk.accepted] == ["r2"]
    assert chunk.redeliveries == 2  # r1 (stored) and the second r2 (same stream)
    assert enricher.asked == ["r2"]


def test_the_memory_spans_flushes_and_includes_unlocated_reports(
    enricher: CountingGeocoder,
) -> None:
    it = intake(enricher)
    feed(it, [report("r1"), report("r2", PARIS)])
    first = it.flush()
    assert len(first.accepted) == 1 and len(first.unlocated) == 1
    feed(it, [report("r1"), report("r2", PARIS), report("r5")])
    second = it.flush()
    assert second.redeliveries == 2 and not second.unlocated
    assert [rec.report_id for _, rec in second.accepted] == ["r5"]


def test_redeliveries_can_be_kept(enricher: CountingGeocoder) -> None:
    it = intake(enricher, drop_redeliveries=False)
    feed(it, [report("r1"), report("r1")])
    chunk = it.flush()
    assert [rec.report_id for _, rec in chunk.accepted] == ["r1", "r1"]
    assert chunk.redeliveries == 0 and it.memory == {}


def test_chunk_size_does_not_change_what_comes_out(geocoder: Geocoder) -> None:
    """Flushing after every message or once at the end: the same records in the same order,
    the same rejections, the same re-delivery count (callers pick their batch size freely)."""
    from offline.simulator.config import SimulationConfig
    from offline.simulator.engine import simulate

    messages = [
        (m.value, m.timestamp_ms / 1000.0)
        for m in simulate(SimulationConfig(days=1, seed=5, malformed_rate=0.05,
                                           redelivery_rate=0.05))
    ]

    def run(every: int) -> tuple[list[str], list[tuple[int, str]], int]:
        it: Intake[int] = Intake(pseudonymiser=PSEUDO, enricher=geocoder)
        chunks = []
        for tag, (value, ts) in enumerate(messages):
            it.add(tag, value, ts)
            if it.pending >= every:
                chunks.append(it.flush())
        chunks.append(it.flush())
        accepted = [rec.report_id for c in chunks for _, rec in c.accepted]
        rejected = sorted((tag, r.reason.value) for c in chunks for tag, r in c.rejected)
        return accepted, rejected, sum(c.redeliveries for c in chunks)

    one_by_one, at_once = run(1), run(len(messages) + 1)
    assert one_by_one == at_once
    accepted, rejected, redeliveries = at_once
    assert len(accepted) > 500 and rejected and redeliveries > 0
    assert len(set(accepted)) == len(accepted)
