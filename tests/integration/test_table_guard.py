"""A worker whose RocksDB table store was built from another incarnation of its changelog
(the topic deleted and recreated, on the real broker) sets the store aside and does not
restore its incidents (`streams.table_guard`). Faust alone trusts such a store: the
recreated changelog has records past the stored offset, so its consistency check passes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.table_guard import MARKER, OFFSET_KEY, Reason, guard_tables, read_marker
from tests.infra.kafka import KafkaBroker
from tests.infra.vigie import Pipeline

pytestmark = [pytest.mark.kafka]

TABLE = "vigie-incident-state"
STALE_KEY = json.dumps("stale-incident").encode()


def recreate(broker: KafkaBroker, topic: str, partitions: int, records: int) -> None:
    """(Re)create `topic` with `records` tombstones of an unrelated key in partition 0."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    broker.delete_topics([topic])
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="vigie-tests")
    try:
        deadline = time.monotonic() + 15
        while topic in admin.list_topics():  # deletion is asynchronous
            assert time.monotonic() < deadline, f"{topic} not deleted"
            time.sleep(0.2)
    finally:
        admin.close()
    broker.create_topics([topic], partitions=partitions, config={"cleanup.policy": "compact"})
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for _ in range(records):
        producer.send(topic, key=json.dumps("unrelated").encode(), value=None, partition=0)
    producer.flush()
    producer.close()


def test_a_store_from_a_recreated_changelog_is_set_aside_not_restored(
    pipeline_factory: Callable[[str], Pipeline], tmp_path: Path
) -> None:
    from rocksdict import AccessType, Options, Rdict

    p = pipeline_factory(f"chdb://{tmp_path}/chdb")
    app_id = p.env["VIGIE_APP_ID"]
    changelog = f"{app_id}-{TABLE}-changelog"
    partitions = int(p.env["VIGIE_TOPIC_PARTITIONS"])
    data_dir = Path(p.env["VIGIE_WORKER_DATA_DIR"])
    tables = data_dir / "v1" / f"tables-{app_id}"
    tables.mkdir(parents=True)
    # the first incarnation: 3 changelog records, a store holding them and an incident
    recreate(p.broker, changelog, partitions, 3)
    db = Rdict(str(tables / f"{TABLE}-0.db"), options=Options(raw_mode=True))
    db[OFFSET_KEY] = b"2"
    db[STALE_KEY] = json.dumps({"_partition": 0, "incident_id": "stale-incident"}).encode()
    db.close()
    first = guard_tables(tables, {TABLE: changelog}, p.broker.bootstrap, "vigie-tests")
    assert first is not None and first.reason is Reason.ADOPTED
    marker = read_marker(tables)
    assert marker is not None and marker.cluster_id and marker.topic_ids[changelog]

    # the changelog recreated, longer than the stored offset: only its id tells
    recreate(p.broker, changelog, partitions, 5)
    worker = p.worker()
    worker.wait_ready(60)
    worker.wait_for_log("Recovery complete", 30)  # the table's partitions were recovered
    worker.stop()

    db = Rdict(
        str(tables / f"{TABLE}-0.db"),
        options=Options(raw_mode=True),
        access_type=AccessType.read_only(),
    )
    try:
        assert db.get(STALE_KEY) is None  # the stale incident was not restored
    finally:
        db.close()
    set_aside = [
        json.loads(line)
        for line in worker.output().splitlines()
        if '"table store set aside' in line
    ]
    assert len(set_aside) == 1, worker.tail()
    assert set_aside[0]["reason"] == Reason.TOPIC_RECREATED.value
    moved = Path(set_aside[0]["moved_to"])
    assert (moved / MARKER).exists() and (moved / f"{TABLE}-0.db").exists()  # kept, not deleted
    rebuilt = read_marker(tables)
    assert rebuilt is not None and rebuilt.topic_ids[changelog] != marker.topic_ids[changelog]
