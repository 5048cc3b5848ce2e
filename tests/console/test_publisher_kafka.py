"""KafkaActionPublisher against the real broker: the event comes back keyed by alert_id."""

from __future__ import annotations

import os

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from console import KafkaActionPublisher
from tests.infra.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


async def test_action_event_is_published(kafka_broker: KafkaBroker) -> None:
    topic = f"vigie.alerts.actions.test.{os.getpid()}"
    kafka_broker.create_topics([topic])
    publisher = KafkaActionPublisher(kafka_broker.bootstrap, topic)
    event = {
        "action_id": "4f9a1c1e-0000-4000-8000-000000000001",
        "alert_id": "alert-42",
        "action": "close",
        "comment": "Situation revenue au calme",
        "operator": "alice",
        "role": "operator",
        "at": "2026-01-01T10:00:00+00:00",
    }
    try:
        await publisher(event)
    finally:
        await publisher.close()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records = await consumer.getmany(timeout_ms=10_000, max_records=10)
    finally:
        await consumer.stop()
    messages = [m for batch in records.values() for m in batch]
    assert [(m.key, orjson.loads(m.value)) for m in messages] == [(b"alert-42", event)]
