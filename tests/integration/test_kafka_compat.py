"""Client compatibility with the pinned broker (docs/kafka.md): kafka-python 3.0.12,
aiokafka 0.14.0 and faust-streaming 0.15.3 against a real single-node KRaft broker."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient

if TYPE_CHECKING:
    from tests.infra.kafka import FaustWorker, KafkaBroker

pytest_plugins = ["tests.infra.kafka"]
pytestmark = pytest.mark.kafka

PINNED_VERSION = "4.4.0"  # the default of scripts/kafka.sh; docs/kafka.md says why
APP = "tests.integration.faust_compat_app:app"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout}s")
        time.sleep(0.1)


def _read_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 30
) -> list[dict[str, Any]]:
    """Every record of `topic` (JSON values), reading until `expected` are seen or timeout."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        _wait(lambda: bool(consumer.partitions_for_topic(topic)), 20, f"topic {topic}")
        parts = [KTopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(seen) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                seen.extend(json.loads(r.value) for r in records)
        return seen
    finally:
        consumer.close()


def test_broker_runs_the_pinned_version(kafka_broker: KafkaBroker) -> None:
    if kafka_broker.log_path is None:
        pytest.skip("external broker: version not checked")
    expected = os.environ.get("KAFKA_VERSION", PINNED_VERSION)
    assert kafka_broker.version == expected
    assert f"Kafka version: {expected}" in kafka_broker.log_path.read_text()


def test_kafka_python_admin_producer_and_offset_lookups(kafka_broker: KafkaBroker) -> None:
    bootstrap = kafka_broker.bootstrap
    topic, other = _unique("kp-data"), _unique("kp-other")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat")
    try:
        admin.create_topics(
            {
                topic: {"num_partitions": 3, "replication_factor": 1},
                other: {"num_partitions": 1, "replication_factor": 1},
            },
            wait_for_metadata=True,
        )
        assert {topic, other} <= set(admin.list_topics())
        described = {d["name"]: d for d in admin.describe_topics([topic])}
        assert len(described[topic]["partitions"]) == 3

        base_ms = int(time.time() * 1000) - 100_000
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        for i in range(10):
            producer.send(
                topic, value=f"v{i}".encode(), partition=1, timestamp_ms=base_ms + i * 1000
            )
        producer.flush(10)
        producer.close()

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        try:
            tp = KTopicPartition(topic, 1)
            empty = KTopicPartition(topic, 0)
            assert consumer.beginning_offsets([tp, empty]) == {tp: 0, empty: 0}
            assert consumer.end_offsets([tp, empty]) == {tp: 10, empty: 0}
            found = consumer.offsets_for_times({tp: base_ms + 4500, empty: base_ms})
            assert found[tp].offset == 5
            assert found[tp].timestamp == base_ms + 5000
            assert found[empty] is None
            late = consumer.offsets_for_times({tp: base_ms + 60_000})
            assert late[tp] is None

            consumer.assign([tp])
            consumer.seek(tp, found[tp].offset)
            values: list[bytes] = []
            deadline = time.monotonic() + 15
            while len(values) < 5 and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    values.extend(r.value for r in records)
            assert values == [f"v{i}".encode() for i in range(5, 10)]
        finally:
            consumer.close()

        admin.delete_topics([other])
        _wait(lambda: other not in set(admin.list_topics()), 20, "topic deleted")
    finally:
        admin.close()


async def test_aiokafka_producer_and_group_consumer_commit(kafka_broker: KafkaBroker) -> None:
    topic, group = _unique("aio"), _unique("aio-group")
    kafka_broker.create_topics([topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(20):
            await producer.send(topic, key=f"k{i % 4}".encode(), value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[int] = []
        async with asyncio.timeout(30):
            while len(got) < 20:
                batch = await consumer.getmany(timeout_ms=500)
                got.extend(int(r.value) for records in batch.values() for r in records)
        assert sorted(got) == list(range(20))
        await consumer.commit()
        parts = [TopicPartition(topic, p) for p in range(2)]
        ends = await consumer.end_offsets(parts)
        assert sum(ends.values()) == 20
        for tp in parts:
            assert await consumer.committed(tp) == ends[tp]
    finally:
        await consumer.stop()

    # The same group resumes from its committed offsets: nothing left to read.
    again = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
    )
    await again.start()
    try:
        batch = await again.getmany(timeout_ms=3000)
        assert sum(len(records) for records in batch.values()) == 0
    finally:
        await again.stop()


def test_faust_worker_topics_group_commits_and_table_recovery(
    kafka_broker: KafkaBroker,
    faust_worker: Callable[..., FaustWorker],
    tmp_path: Path,
) -> None:
    bootstrap = kafka_broker.bootstrap
    suffix = "-" + uuid.uuid4().hex[:8]
    app_id = f"compat-app{suffix}"
    events, out = f"compat-events{suffix}", f"compat-out{suffix}"
    changelog = f"{app_id}-counts-changelog"
    env = {
        "COMPAT_BROKER": bootstrap,
        "COMPAT_APP_ID": app_id,
        "COMPAT_DATADIR": str(tmp_path),
        "COMPAT_SUFFIX": suffix,
        "COMPAT_RUN": "1",
    }

    # Run 1: Faust declares its topics (source, sink, table changelog) and processes events.
    worker = faust_worker(APP, env=env, log_name="run1.log")
    worker.wait_ready(timeout=60)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        _wait(
            lambda: all(consumer.partitions_for_topic(t) for t in (events, out, changelog)),
            30,
            "faust topics created",
        )
        assert len(consumer.partitions_for_topic(events)) == 2
        assert len(consumer.partitions_for_topic(changelog)) == 2
    finally:
        consumer.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key in ["a", "b", "a", "b", "a"]:
        producer.send(events, key=key.encode(), value=b"x")
    producer.flush(10)

    first = _read_all(bootstrap, out, expected=5, timeout=45)
    assert sorted((r["key"], r["count"], r["run"]) for r in first) == [
        ("a", 1, 1),
        ("a", 2, 1),
        ("a", 3, 1),
        ("b", 1, 1),
        ("b", 2, 1),
    ], worker.tail()

    # The agent's consumer group committed its offsets (broker_commit_interval).
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat")
    try:

        def committed() -> int:
            offsets = admin.list_group_offsets(app_id).get(app_id, {})
            return sum(m.offset for tp, m in offsets.items() if tp.topic == events)

        _wait(lambda: committed() == 5, 20, "5 committed offsets")
        assert worker.stop() == 0, worker.tail()
        assert committed() == 5
    finally:
        admin.close()

    # Run 2: a new process with an in-memory store recovers `counts` from the changelog and
    # resumes after the committed offsets (the five old events are not processed again).
    worker = faust_worker(APP, env={**env, "COMPAT_RUN": "2"}, log_name="run2.log")
    worker.wait_ready(timeout=60)
    for key in ["a", "b"]:
        producer.send(events, key=key.encode(), value=b"x")
    producer.flush(10)
    producer.close()

    after = _read_all(bootstrap, out, expected=7, timeout=45)
    second = sorted((r["key"], r["count"]) for r in after if r["run"] == 2)
    assert second == [("a", 4), ("b", 3)], worker.tail()
    time.sleep(1.0)  # nothing else trickles in (no reprocessing of run 1's events)
    assert len(_read_all(bootstrap, out, expected=8, timeout=2)) == 7
    assert worker.stop() == 0, worker.tail()


def test_broker_restart_and_kill_keep_acknowledged_records(kafka_broker: KafkaBroker) -> None:
    if kafka_broker.external:
        pytest.skip("external broker: lifecycle not ours")
    topic = _unique("durable")
    kafka_broker.create_topics([topic], partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    producer.send(topic, value=b"before-restart").get(10)
    producer.close()

    kafka_broker.restart()
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    producer.send(topic, value=b"before-kill").get(10)
    producer.close()

    kafka_broker.kill()
    kafka_broker.start()
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap)
    try:
        tp = KTopicPartition(topic, 0)
        _wait(lambda: bool(consumer.partitions_for_topic(topic)), 20, "topic after restart")
        assert consumer.end_offsets([tp]) == {tp: 2}
    finally:
        consumer.close()
