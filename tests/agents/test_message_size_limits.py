"""Issue #21, item 1: one message must not be able to stop the ingest stage.

A ~900 KB message (the broker accepts up to ~1 MB) made a dead letter of ~1.2 MB (base64 +
envelope), over the producer's limit: the batch failed with MessageSizeTooLargeError, the
worker exited, and each restart replayed the same batch and died again. The fake producer
here refuses records as aiokafka does (`max_request_size`, its own size estimate)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from agents.core.correlation import partition_key
from agents.core.geo import Geocoder
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.refdata import load_refdata
from agents.core.validation import Rejection
from agents.ingest import (
    BUNDLE_MAX_RECORDS,
    DEAD_LETTER_KEY_MAX_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    InboundMessage,
    IngestProcessor,
    dead_letter,
    unbundle,
)
from agents.ports.retry import RetryPolicy
from schemas.rejection import RejectedReport, RejectReason
from tests.agents.fakes import FakeStore, run_inline

REJECTED, ENRICHED, CITIZEN = "rejected.t", "enriched.t", "vigie.reports.citizen.v1"
BROKER_MAX = 1_048_588  # Kafka's default message.max.bytes: the largest batch it accepts
TS = 1_710_792_000.0  # 2024-03-18T20:00:00Z


@dataclass
class StrictKafka:
    """A `SendFn` that refuses a record over `max_request_size`, as aiokafka's producer."""

    max_request_size: int = DEFAULT_MAX_MESSAGE_BYTES
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
        if size > self.max_request_size:
            raise MessageSizeTooLargeError(f"the message is {size} bytes")
        self.sent.append((topic, key, value))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    def on(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        return [(k, v) for t, k, v in self.sent if t == topic]


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    refdata = load_refdata()
    return Geocoder(refdata, load_jurisdictions(None, refdata))


def processor(store: FakeStore, kafka: StrictKafka, geocoder: Geocoder,
              **options: Any) -> IngestProcessor:
    return IngestProcessor(
        store=store, enricher=geocoder, pseudonymiser=Pseudonymiser(b"test-secret-" * 3),
        send=kafka.send, rejected_topic=REJECTED, enriched_topic=ENRICHED,
        partition_key=partition_key, retry=RetryPolicy(max_retries=0), run_blocking=run_inline,
        **options,
    )


def huge_report(size: int) -> bytes:
    """A report padded with a description to exactly `size` bytes (over the 64 KiB limit)."""
    head = orjson.dumps({
        "report_id": "big-1", "source": {"kind": "citizen", "org": "citoyen"},
        "category": "rodeo", "occurred_at": "2024-03-18T21:00:00+01:00",
        "location": {"lat": 48.629, "lon": 2.441}, "description": ""})
    value = head[:-2] + b"x" * (size - len(head)) + b'"}'
    assert len(value) == size
    return value


def letter_of(value: bytes, key: bytes | None = b"big-1") -> tuple[bytes | None, bytes]:
    msg = InboundMessage(CITIZEN, 0, 7, key, value, TS)
    letter = dead_letter(msg, Rejection(RejectReason.TOO_LARGE, "too large", "big-1"), TS)
    return letter.key, letter.value


def test_dead_letter_of_the_largest_message_fits_and_describes_the_whole() -> None:
    value = huge_report(BROKER_MAX - 100)  # about the largest value the broker accepts
    key, raw = letter_of(value)
    assert DefaultRecordBatchBuilder.estimate_size_in_bytes(key, raw, []) <= (
        DEFAULT_MAX_MESSAGE_BYTES)
    letter = RejectedReport.model_validate_json(raw)
    assert letter.original_truncated and not letter.original_key_truncated
    assert letter.original_size == len(value)
    assert letter.original_sha256 == hashlib.sha256(value).hexdigest()
    kept = base64.b64decode(letter.original_b64)
    assert value.startswith(kept) and len(kept) > 700_000  # as much as fits
    assert key == b"big-1" and base64.b64decode(letter.original_key_b64 or "") == b"big-1"


def test_a_small_dead_letter_carries_the_original_whole() -> None:
    value = b'{"report_id": "x", "category": 12}'
    _key, raw = letter_of(value)
    letter = RejectedReport.model_validate_json(raw)
    assert base64.b64decode(letter.original_b64) == value
    assert not letter.original_truncated and letter.original_size == len(value)


def test_a_huge_key_is_cut_and_the_dead_letter_keyed_by_its_hash() -> None:
    key = b"k" * (BROKER_MAX - 200)
    out_key, raw = letter_of(b"{}", key=key)
    assert out_key == hashlib.sha256(key).hexdigest().encode()
    assert DefaultRecordBatchBuilder.estimate_size_in_bytes(out_key, raw, []) <= (
        DEFAULT_MAX_MESSAGE_BYTES)
    letter = RejectedReport.model_validate_json(raw)
    assert letter.original_key_truncated and letter.original_key_size == len(key)
    assert base64.b64decode(letter.original_key_b64 or "") == key[:DEAD_LETTER_KEY_MAX_BYTES]


async def test_the_batch_with_the_largest_message_is_written_not_crashed(
    geocoder: Geocoder,
) -> None:
    store, kafka = FakeStore(), StrictKafka()
    big = huge_report(900_000)
    good = orjson.dumps({
        "report_id": "ok-1", "source": {"kind": "citizen", "org": "citoyen"},
        "category": "rodeo", "occurred_at": "2024-03-18T21:00:00+01:00",
        "location": {"lat": 48.629, "lon": 2.441}})
    batch = [InboundMessage(CITIZEN, 0, 1, b"big-1", big, TS),
             InboundMessage(CITIZEN, 0, 2, b"ok-1", good, TS)]
    outcome = await processor(store, kafka, geocoder).process(batch)  # raised before the fix

    assert [r.report_id for r in outcome.accepted] == ["ok-1"]
    [(key, raw)] = kafka.on(REJECTED)
    letter = RejectedReport.model_validate_json(raw)
    assert letter.reason == RejectReason.TOO_LARGE and letter.original_truncated
    assert letter.origin_offset == 1 and key == b"big-1"
    [row] = store.rows["rejected"]
    assert base64.b64decode(row["original_b64"]) == big  # the whole bytes, in ClickHouse
    assert row["original_sha256"] == hashlib.sha256(big).hexdigest()
    assert row["size_bytes"] == len(big)
    assert [r["report_id"] for r in store.rows["reports"]] == ["ok-1"]


async def test_rows_of_ordinary_dead_letters_keep_no_bytes(geocoder: Geocoder) -> None:
    """The dead-letter topic (bounded retention) carries ordinary originals; the table keeps
    their hash only, not a second copy of their personal data."""
    store, kafka = FakeStore(), StrictKafka()
    await processor(store, kafka, geocoder).process(
        [InboundMessage(CITIZEN, 0, 1, None, b"not json", TS)])
    [row] = store.rows["rejected"]
    assert row["original_b64"] == "" and row["original_key_b64"] == ""
    assert row["original_sha256"] == hashlib.sha256(b"not json").hexdigest()


async def test_enriched_bundles_stay_under_the_byte_limit(geocoder: Geocoder) -> None:
    """The largest enriched records the contract allows (ids and orgs of control characters,
    which JSON escapes to 6 bytes each), many to one area: bundles are cut by bytes as well
    as by count."""
    limit = 300_000
    store, kafka = FakeStore(), StrictKafka(max_request_size=limit)
    messages = []
    for i in range(BUNDLE_MAX_RECORDS + 50):
        rid = f"{i:04d}" + "\x01" * 124
        value = orjson.dumps({
            "report_id": rid, "source": {"kind": "citizen", "org": "\x02" * 64,
                                         "channel": "\x03" * 32},
            "category": "rodeo", "occurred_at": "2024-03-18T21:00:00+01:00",
            "location": {"lat": 48.629, "lon": 2.441}, "reporter": {"contact": "a@b.fr"},
            "description": "texte"})
        messages.append(InboundMessage(CITIZEN, 0, i, None, value, TS))
    outcome = await processor(store, kafka, geocoder, max_message_bytes=limit).process(messages)
    assert len(outcome.accepted) == len(messages)
    bundles = kafka.on(ENRICHED)
    assert len(bundles) >= 2
    assert sum(len(unbundle(v)) for _, v in bundles) == len(messages)
    for key, value in bundles:
        assert DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []) <= limit
