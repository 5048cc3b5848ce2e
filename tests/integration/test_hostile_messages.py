"""Hostile input on the real broker and a real ClickHouse server (issue #21, items 1, 2, 4).

One worker gets, among good reports: the largest message the broker accepts (it used to
make a dead letter over the producer's limit, and the worker died on it at every restart), a
citizen-topic message claiming to be the police, and reports stamped 2100 and 1999. The
worker stays up, dead-letters each with its reason, stores the whole large message in
`rejected`, and keeps storing what follows."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import orjson
import pytest

from agents.core.record import rfc3339
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.vigie import Pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

BROKER_MAX = 1_048_588  # message.max.bytes of the test broker (Kafka's default)
WORKER_MAX = 1_000_000  # VIGIE_KAFKA_MAX_MESSAGE_BYTES default


def report(rid: str, kind: str = "citizen", org: str = "citoyen", **changes: Any) -> bytes:
    now = time.time()
    obj: dict[str, Any] = {
        "report_id": rid, "source": {"kind": kind, "org": org}, "category": "rodeo",
        "occurred_at": rfc3339(now - 600), "reported_at": rfc3339(now - 60),
        "location": {"lat": 48.629, "lon": 2.441}}
    obj.update(changes)
    return orjson.dumps(obj)


def padded(size: int) -> bytes:
    """A report of exactly `size` bytes (a huge description)."""
    head = report("huge-1")[:-1] + b',"description":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def produce_largest(bootstrap: str, topic: str) -> tuple[bytes, tuple[str, int, int]]:
    """The largest value the broker accepts on `topic` (key b"huge-1"): tried from just
    under the broker's limit downwards, the first accepted one is produced (the one before
    it was refused). A fresh producer each try: kafka-python gives up on its later sends
    after a refusal."""
    from kafka import KafkaProducer
    from kafka.errors import MessageSizeTooLargeError

    for size in range(BROKER_MAX - 60, BROKER_MAX - 400, -1):
        value = padded(size)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                 max_request_size=2 * BROKER_MAX)
        try:
            meta = producer.send(topic, key=b"huge-1", value=value).get(timeout=30)
        except MessageSizeTooLargeError:
            continue
        finally:
            producer.close()
        assert size < BROKER_MAX - 60, "the first size tried was accepted: not the largest"
        return value, (meta.topic, meta.partition, meta.offset)
    raise AssertionError("the broker accepted no message near its limit")


def test_hostile_messages_are_dead_lettered_and_the_worker_lives(
    pipeline_factory: Any, clickhouse_server: ClickHouseServer
) -> None:
    from kafka import KafkaProducer

    p: Pipeline = pipeline_factory(clickhouse_server.url_for("it_hostile"))
    worker = p.worker()
    worker.wait_ready(120)
    citizen, partner = p.topics["citizen"], p.topics["partner"]
    huge, huge_at = produce_largest(p.broker.bootstrap, citizen)
    assert len(huge) > BROKER_MAX - 200
    producer = KafkaProducer(bootstrap_servers=p.broker.bootstrap, acks="all")
    try:
        sends = {
            "police-on-citizen": (citizen, report("police-on-citizen", "police_nationale",
                                                  "csp-evry")),
            "y2100": (citizen, report("y2100", occurred_at="2099-12-31T23:00:00Z",
                                      reported_at="2100-01-01T00:00:00Z")),
            "y1999": (partner, report("y1999", "police_municipale", "pm-91228",
                                      occurred_at="1999-01-01T00:00:00Z",
                                      reported_at="1999-01-01T00:10:00Z")),
            "good-citizen": (citizen, report("good-citizen")),
            "good-police": (partner, report("good-police", "police_nationale", "csp-evry")),
        }
        for rid, (topic, value) in sends.items():
            producer.send(topic, key=rid.encode(), value=value).get(timeout=30)
    finally:
        producer.close()

    p.wait_for(lambda: p.scalar("SELECT count() FROM reports FINAL") >= 2
               and p.scalar("SELECT count() FROM rejected FINAL") >= 4, 120,
               "2 reports and 4 rejections stored")
    assert worker.running, worker.tail()
    assert "fatal" not in worker.output().lower()

    kinds = {r["report_id"]: r["source_kind"] for r in
             p.store.query("SELECT report_id, source_kind FROM reports FINAL")}
    assert kinds == {"good-citizen": "citizen", "good-police": "police_nationale"}
    rows = {r["report_id"] or "huge": r for r in p.store.query(
        "SELECT report_id, reason, size_bytes, original_sha256, original_b64, origin_topic,"
        " origin_partition, origin_offset FROM rejected FINAL")}
    assert {k: r["reason"] for k, r in rows.items()} == {
        "huge": "too_large", "police-on-citizen": "source_not_allowed_on_topic",
        "y2100": "timestamp_in_future", "y1999": "timestamp_too_old"}
    big = rows["huge"]
    assert (big["origin_topic"], big["origin_partition"], big["origin_offset"]) == huge_at
    assert base64.b64decode(big["original_b64"]) == huge  # the whole bytes, here only
    assert big["size_bytes"] == len(huge)
    assert big["original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert rows["y2100"]["original_b64"] == ""  # its dead letter carries it whole

    letters = {}
    for record in p.read_topic("rejected", 4):
        letter = json.loads(record.value)
        letters[letter["report_id"] or "huge"] = (record, letter)
        assert len(record.value) + len(record.key or b"") <= WORKER_MAX
    record, letter = letters["huge"]
    assert letter["reason"] == "too_large" and letter["original_truncated"] is True
    assert letter["original_size"] == len(huge)
    assert letter["original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert huge.startswith(base64.b64decode(letter["original_b64"]))
    assert record.key == b"huge-1"
    _, police = letters["police-on-citizen"]
    assert base64.b64decode(police["original_b64"]) == sends["police-on-citizen"][1]
    assert police["original_truncated"] is False

    # still alive: a report sent after all that is stored, and the offsets are committed
    after = KafkaProducer(bootstrap_servers=p.broker.bootstrap, acks="all")
    after.send(citizen, key=b"after", value=report("after")).get(timeout=30)
    after.close()
    p.wait_for(lambda: p.scalar("SELECT count() FROM reports FINAL") >= 3, 60, "a later report")
    p.wait_for(lambda: p.committed_and_end()[0] == p.committed_and_end()[1], 60,
               "every input offset committed")
    assert worker.running, worker.tail()


def parse_table(text: str) -> dict[str, str]:
    """probe name (without its parenthesised detail) -> outcome, from the probe's table."""
    rows = {}
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.split(" | ")]
        if len(cells) == 4:
            rows[cells[0].split(" (")[0]] = cells[2]
    return rows


def test_make_probe_prints_the_outcome_of_each_hostile_message(
    pipeline_factory: Any, tmp_path: Any
) -> None:
    """`make probe` (scripts/probe.py) against a running worker in embedded mode, as `make
    run` starts it."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    p: Pipeline = pipeline_factory(f"chdb://{tmp_path}/chdb")
    worker = p.worker()
    worker.wait_ready(120)
    done = subprocess.run([sys.executable, str(root / "scripts" / "probe.py"), "--timeout",
                           "120"], env=p.env, cwd=root, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = parse_table(done.stdout)
    assert rows["largest message the broker accepts"].startswith(
        "dead-lettered: too_large (dead letter cut to")
    assert "sha256 matches" in rows["largest message the broker accepts"]
    assert rows["far-future reported_at"] == "dead-lettered: timestamp_in_future"
    assert rows["far-past occurred_at"] == "dead-lettered: timestamp_too_old"
    assert rows["citizen topic claiming police_nationale/csp-evry"] == (
        "dead-lettered: source_not_allowed_on_topic")
    assert rows["malformed JSON"] == "dead-lettered: not_json"
    assert rows["report_id first sent by csp-evry"].startswith("accepted: stored")
    # identity is (kind, org, report_id): another source's same id is another report, the
    # same source's id with other content is dead-lettered, never dropped
    assert rows["same report_id from gendarmerie, other content"].startswith("accepted: stored")
    assert rows["same report_id from csp-evry again, other content"] == (
        "dead-lettered: id_reused_with_different_content")
    assert rows["ordinary report sent last"].startswith("accepted: stored")
    assert "200 before, 200 after" in done.stdout
    assert worker.running

    # loopback only: another broker address is refused before anything is sent
    elsewhere = {**p.env, "VIGIE_KAFKA_BOOTSTRAP": "192.0.2.1:9092"}
    refused = subprocess.run([sys.executable, str(root / "scripts" / "probe.py")],
                             env=elsewhere, cwd=root, capture_output=True, text=True,
                             timeout=60, check=False)
    assert refused.returncode == 2 and "loopback" in refused.stderr
