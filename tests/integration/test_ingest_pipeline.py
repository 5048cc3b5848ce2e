"""Ingestion on real Kafka and a real ClickHouse server (and chDB): every good report stored
exactly once, every bad one dead-lettered with its reason, nothing lost or doubled when the
worker is SIGKILLed or ClickHouse fails mid-stream."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections import Counter

import pytest

from tests.infra.clickhouse import ClickHouseServer
from tests.infra.vigie import Pipeline, Produced

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def stored_ids(p: Pipeline) -> list[str]:
    return [r["report_id"] for r in p.store.query("SELECT report_id FROM reports FINAL")]


def assert_exactly_once(p: Pipeline, produced: Produced) -> None:
    expected = produced.expected_valid_ids()
    ids = stored_ids(p)
    assert len(ids) == len(set(ids)), "a report is stored twice in query results"
    assert set(ids) == expected
    rejected = p.store.query(
        "SELECT origin_topic, origin_partition, origin_offset, reason FROM rejected FINAL"
    )
    got = {(r["origin_topic"], r["origin_partition"], r["origin_offset"]): r["reason"]
           for r in rejected}
    assert len(got) == len(rejected)
    assert got == produced.expected_rejects()


def wait_all_stored(p: Pipeline, produced: Produced, timeout: float = 120) -> None:
    n_valid = len(produced.expected_valid_ids())
    n_bad = len(produced.expected_rejects())
    p.wait_for(
        lambda: p.scalar("SELECT count() FROM reports FINAL") >= n_valid
        and p.scalar("SELECT count() FROM rejected FINAL") >= n_bad,
        timeout,
        f"{n_valid} reports and {n_bad} rejections stored",
    )


def test_malformed_stream_good_once_bad_dead_lettered(
    pipeline_factory, clickhouse_server: ClickHouseServer
) -> None:
    p = pipeline_factory(clickhouse_server.url_for("it_malformed"))
    messages = p.simulate(days=1, seed=21, malformed_rate=0.05, redelivery_rate=0.05)
    worker = p.worker()
    worker.wait_ready(90)
    produced = p.produce(messages)
    n_bad = len(produced.expected_rejects())
    assert n_bad >= 30 and len(produced.expected_valid_ids()) > 900
    wait_all_stored(p, produced)
    assert_exactly_once(p, produced)

    # Dead letters: original bytes, reason, origin topic/partition/offset.
    by_position = {pos: m for m, pos in zip(produced.messages, produced.positions, strict=True)}
    dead = p.read_topic("rejected", n_bad)
    assert len(dead) >= n_bad
    for record in dead:
        letter = json.loads(record.value)
        origin = (letter["origin_topic"], letter["origin_partition"], letter["origin_offset"])
        original = by_position[origin]
        assert base64.b64decode(letter["original_b64"]) == original.value
        assert letter["reason"] == original.truth["expected_reject_reason"]
        assert letter["detail"]
        assert record.key == original.key
    assert {(json.loads(r.value)["origin_topic"], json.loads(r.value)["origin_partition"],
             json.loads(r.value)["origin_offset"]) for r in dead} == set(
        produced.expected_rejects())

    # Personal data never stored in clear.
    sample = p.store.query("SELECT * FROM reports FINAL WHERE contact_hash IS NOT NULL LIMIT 50")
    assert sample
    for row in sample:
        assert "@" not in str(row) and "exemple.invalid" not in str(row)

    # Metrics agree with the stream.
    text = p.metrics_text()
    received = sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("vigie_reports_received_total{"))
    assert received == len(produced.messages)
    by_reason = {
        line.split('reason="')[1].split('"')[0]: float(line.split()[-1])
        for line in text.splitlines() if line.startswith("vigie_reports_rejected_total{")
    }
    assert by_reason == {r: float(n) for r, n in
                         Counter(produced.expected_rejects().values()).items()}
    accepted = sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith("vigie_reports_accepted_total{"))
    assert accepted == len(produced.expected_valid_ids())
    redelivered = next(float(line.split()[-1]) for line in text.splitlines()
                       if line.startswith("vigie_reports_redelivered_dropped_total "))
    assert received == accepted + n_bad + redelivered
    assert p.committed_and_end()[0] == len(produced.messages)


def test_sigkill_mid_stream_loses_and_doubles_nothing(
    pipeline_factory, clickhouse_server: ClickHouseServer
) -> None:
    p = pipeline_factory(clickhouse_server.url_for("it_sigkill"), sink_batch_rows="300")
    messages = p.simulate(days=4, seed=22)
    worker = p.worker("first.log")
    worker.wait_ready(90)
    produced = p.produce(messages)
    total = len(produced.expected_valid_ids())
    p.wait_for(lambda: p.scalar("SELECT count() FROM reports") > 300, 60, "first batches")
    worker.kill()  # SIGKILL, mid-stream
    partial = p.scalar("SELECT count() FROM reports FINAL")
    committed, end = p.committed_and_end()
    assert partial < total and committed < end, "the kill did not land mid-stream"

    p.worker("second.log").wait_ready(120)
    wait_all_stored(p, produced)
    assert_exactly_once(p, produced)


def test_clickhouse_down_crashes_worker_then_replay_stores_exactly_once(
    pipeline_factory, clickhouse_server: ClickHouseServer
) -> None:
    # an outage is waited out for this long, then the worker exits for a replay
    p = pipeline_factory(clickhouse_server.url_for("it_chdown"), dependency_outage_seconds="5")
    first = p.worker("first.log")
    first.wait_ready(90)
    produced = p.produce(p.simulate(days=1, seed=23))
    wait_all_stored(p, produced)
    committed_before, _ = p.committed_and_end()

    clickhouse_server.stop()
    try:
        produced = p.produce(p.simulate(days=1, seed=24, start="2024-03-19"), produced)
        assert first.process is not None
        code = first.process.wait(120)  # the outage outlasts its ceiling: exit for a replay
        assert code == 70, first.tail()
        committed, end = p.committed_and_end()
        assert committed < end, "offsets of an unwritten batch were committed"
        assert committed >= committed_before
    finally:
        clickhouse_server.start()
    p._store = None  # reconnect
    p.worker("second.log").wait_ready(120)
    wait_all_stored(p, produced)
    assert_exactly_once(p, produced)


def test_embedded_chdb_mode_and_vigie_counts(pipeline_factory, tmp_path) -> None:
    p = pipeline_factory(f"chdb://{tmp_path}/chdb")
    worker = p.worker()
    worker.wait_ready(90)
    produced = p.produce(p.simulate(days=1, seed=25))
    n_valid = len(produced.expected_valid_ids())
    p.wait_for(lambda: p.http_json("/counts")["reports"] >= n_valid, 90, "counts via worker")
    counts = p.http_json("/counts")
    assert counts["reports"] == n_valid
    assert sum(counts["rejected_by_reason"].values()) == len(produced.expected_rejects())
    # The CLI reads the same numbers although the worker holds the chDB directory.
    out = subprocess.run(
        [sys.executable, "-m", "vigie.cli", "counts", "--json"],
        env={**p.env}, capture_output=True, text=True, timeout=60, check=True,
    )
    assert json.loads(out.stdout)["reports"] == n_valid
