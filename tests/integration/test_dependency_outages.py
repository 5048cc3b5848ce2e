"""The same results under faults, and faults that an SRE can see, on real Kafka and a real
ClickHouse server (and chDB):

- a worker started while ClickHouse is down waits for it (alive, not ready, the reason names
  ClickHouse, JSON logs, one line per attempt) and then stores everything exactly once;
- a ClickHouse outage mid-stream holds the batch (nothing committed, no more input, the
  worker alive and not ready, `vigie_dependency_up` 0, the lag exported as it grows) and the
  stream resumes when the server is back;
- a worker on chDB stopped by SIGTERM exits 0 (it used to die of SIGSEGV in chDB's exit
  handlers);
- re-deliveries dropped on a replay of committed offsets are told from a producer's
  re-sends;
- a broker restart is a handful of log lines, not a thousand, and shows as Kafka down.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.infra.clickhouse import ClickHouseServer
from tests.infra.kafka import KafkaBroker, free_port
from tests.infra.vigie import Pipeline, VigieWorker
from tests.integration.test_ingest_pipeline import assert_exactly_once, wait_all_stored

# Outages are short here: readiness turns false 2 s into one.
FAST = {"clickhouse_unready_seconds": "2", "input_retention_hours": "-1"}


def readyz(p: Pipeline) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{p.web_port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def samples(text: str, name: str, **labels: str) -> list[float]:
    """Values of every series of `name` whose labels include `labels`."""
    out = []
    for line in text.splitlines():
        found = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if not found:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            out.append(float(found.group(2)))
    return out


def value(text: str, name: str, **labels: str) -> float:
    return sum(samples(text, name, **labels))


def json_lines(worker: VigieWorker, since: int = 0) -> list[dict[str, Any]]:
    """Every line the worker wrote (after character `since`); fails on a non-JSON line."""
    out = []
    for line in worker.output()[since:].splitlines():
        assert line.startswith("{"), f"not a JSON line: {line[:200]}"
        out.append(json.loads(line))
    return out


def wait_until(probe: Any, timeout: float, what: str, worker: VigieWorker) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = probe()
        except (OSError, ValueError):  # web server not up yet
            result = None
        if result:
            return result
        assert worker.running, f"worker exited while waiting for {what}:\n{worker.tail()}"
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{worker.tail()}")


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_start_while_clickhouse_is_down_waits_then_stores_exactly_once(
    pipeline_factory: Any, clickhouse_server: ClickHouseServer,
) -> None:
    p = pipeline_factory(clickhouse_server.url_for("it_start_down"), **FAST)
    clickhouse_server.stop()
    try:
        worker = p.worker("first.log")
        _status, body = wait_until(
            lambda: (r := readyz(p))[0] == 503 and "clickhouse_unreachable" in r[1]["reasons"]
            and r, 90, "/readyz naming ClickHouse", worker)
        assert body["checks"]["clickhouse_error"] == "StoreUnavailable"
        assert p.http_json("/healthz")["status"] == "ok"
        produced = p.produce(p.simulate(days=1, seed=61))
        n = len(produced.messages)
        # the ingest lag is the whole input, read from the broker, while nothing is written
        wait_until(lambda: value(p.metrics_text(), "vigie_consumer_lag_messages",
                                 consumer="ingest") == n, 60, f"ingest lag {n}", worker)
        text = p.metrics_text()
        assert value(text, "vigie_dependency_up", dependency="clickhouse") == 0
        assert value(text, "vigie_dependency_up", dependency="kafka") == 1
        assert value(text, "vigie_ready") == 0
        assert p.committed_and_end() == (0, n)
        assert worker.running
    finally:
        clickhouse_server.start()
    p._store = None  # reconnect
    wait_all_stored(p, produced)
    assert_exactly_once(p, produced)
    wait_until(lambda: readyz(p)[0] == 200, 60, "ready once ClickHouse is back", worker)
    wait_until(lambda: value(p.metrics_text(), "vigie_consumer_lag_messages",
                             consumer="ingest") == 0, 60, "ingest lag back to 0", worker)
    text = p.metrics_text()
    assert value(text, "vigie_dependency_up", dependency="clickhouse") == 1
    # the correlator's lag is exported too, for the enriched topic's partitions it holds
    assert samples(text, "vigie_consumer_lag_messages", consumer="correlate",
                   topic=p.topics["enriched"])
    lines = json_lines(worker)  # every line JSON: no plain-text traceback
    waits = [e for e in lines if e["message"] == "retrying after failure"
             and e.get("operation") == "clickhouse schema at start"]
    assert waits and all(e["transient"] for e in waits)
    assert not [e for e in lines if "Traceback" in str(e.get("exc", ""))
                and e["logger"].startswith("clickhouse_driver")]
    assert worker.stop() == 0, worker.tail()


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_clickhouse_outage_mid_stream_holds_the_batch_and_shows(
    pipeline_factory: Any, clickhouse_server: ClickHouseServer,
) -> None:
    p = pipeline_factory(clickhouse_server.url_for("it_outage_hold"), sink_batch_rows="200",
                         **FAST)
    worker = p.worker("first.log")
    worker.wait_ready(90)
    produced = p.produce(p.simulate(days=1, seed=62))
    wait_all_stored(p, produced)
    committed_before, _ = p.committed_and_end()
    batches_before = value(p.metrics_text(), "vigie_consumer_batch_messages_count",
                           agent="ingest")

    clickhouse_server.stop()
    try:
        produced = p.produce(p.simulate(days=1, seed=63, start="2024-03-19"), produced)
        fresh = len(produced.messages) - committed_before
        wait_until(lambda: "clickhouse_unreachable" in readyz(p)[1]["reasons"], 60,
                   "/readyz naming ClickHouse", worker)
        wait_until(lambda: value(p.metrics_text(), "vigie_consumer_lag_messages",
                                 consumer="ingest") == fresh, 60, f"ingest lag {fresh}", worker)
        # far longer than the bounded retries that used to end the worker (~2 s here): ten
        # seconds of outage as the worker counts them (from its first failed write), alive
        wait_until(lambda: readyz(p)[1]["checks"]["clickhouse_down_seconds"] > 10, 60,
                   "10 s of ClickHouse outage", worker)
        assert worker.running, worker.tail()
        text = p.metrics_text()
        assert value(text, "vigie_dependency_up", dependency="clickhouse") == 0
        assert value(text, "vigie_ready") == 0
        assert value(text, "vigie_consumer_lag_messages", consumer="ingest") == fresh
        # one batch held, no more taken in; its offsets are not committed
        assert value(text, "vigie_consumer_batch_messages_count", agent="ingest") \
            <= batches_before + 1
        assert p.committed_and_end()[0] == committed_before
        assert readyz(p)[1]["checks"]["clickhouse_down_seconds"] > 10
    finally:
        clickhouse_server.start()
    p._store = None
    wait_all_stored(p, produced)
    assert_exactly_once(p, produced)
    wait_until(lambda: readyz(p)[0] == 200, 60, "ready once ClickHouse is back", worker)
    wait_until(lambda: value(p.metrics_text(), "vigie_consumer_lag_messages",
                             consumer="ingest") == 0, 60, "ingest lag back to 0", worker)
    assert p.committed_and_end()[0] == len(produced.messages)
    json_lines(worker)
    assert worker.stop() == 0, worker.tail()


@pytest.mark.kafka
def test_sigterm_on_chdb_exits_zero(pipeline_factory: Any, tmp_path: Any) -> None:
    """Three start/stop rounds on one chDB directory, each stopped by SIGTERM while chDB
    still merges what it was just given."""
    p = pipeline_factory(f"chdb://{tmp_path}/chdb", console_port=str(free_port()),
                         sink_batch_rows="1000", **FAST)
    n_valid = 0
    for round_ in range(3):
        worker = p.worker(f"round{round_}.log")
        worker.wait_ready(120)
        start = f"2024-03-{18 + 2 * round_}"
        produced = p.produce(p.simulate(days=2, seed=70 + round_, start=start))
        n_valid += len(produced.expected_valid_ids())
        wait_until(lambda n=n_valid: p.http_json("/counts?only=reports")["reports"] >= n,
                   90, f"{n_valid} reports stored", worker)
        code = worker.stop(60)
        assert code == 0, f"round {round_}: exit {code}\n{worker.tail()}"
        assert "store closed" in worker.output()


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_replays_are_counted_apart_from_producer_resends(
    pipeline_factory: Any, clickhouse_server: ClickHouseServer,
) -> None:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    p = pipeline_factory(clickhouse_server.url_for("it_replays"), **FAST)
    first = p.worker("first.log")
    first.wait_ready(90)
    messages = p.simulate(days=1, seed=64, redelivery_rate=0.0, malformed_rate=0.0)
    produced = p.produce(messages)
    wait_all_stored(p, produced)
    n, n_valid = len(messages), len(produced.expected_valid_ids())
    assert value(p.metrics_text(), "vigie_reports_redelivered_dropped_total") == 0
    p.produce(messages)  # the producer sends every report a second time
    wait_until(lambda: value(p.metrics_text(), "vigie_reports_received_total") == 2 * n, 60,
               "the re-sends consumed", first)
    text = p.metrics_text()
    assert value(text, "vigie_reports_redelivered_dropped_total") == n_valid
    assert value(text, "vigie_reports_replayed_dropped_total") == 0
    assert first.stop() == 0

    # an operator replays the input: the group's offsets go back to the start
    consumer = KafkaConsumer(bootstrap_servers=p.broker.bootstrap,
                             group_id=p.env["VIGIE_APP_ID"] + "-ingest",
                             enable_auto_commit=False)
    tps = [TopicPartition(p.topics[t], i) for t in ("partner", "citizen")
           for i in range(int(p.env["VIGIE_TOPIC_PARTITIONS"]))]
    consumer.assign(tps)
    consumer.commit({tp: OffsetAndMetadata(0, "", -1) for tp in tps})
    consumer.close()

    second = p.worker("second.log")
    wait_until(lambda: value(p.metrics_text(), "vigie_reports_received_total") == 2 * n, 90,
               "the replay consumed", second)
    # the classification follows the batch's commit
    wait_until(lambda: value(p.metrics_text(), "vigie_reports_replayed_dropped_total") > 0,
               30, "replays counted", second)
    time.sleep(2)
    text = p.metrics_text()
    assert value(text, "vigie_reports_redelivered_dropped_total") == 2 * n_valid
    assert value(text, "vigie_reports_replayed_dropped_total") == n_valid  # the originals
    assert_exactly_once(p, produced)
    assert second.stop() == 0


@pytest.mark.kafka
@pytest.mark.clickhouse
def test_broker_restart_is_few_log_lines_and_shows_kafka_down(
    pipeline_factory: Any, clickhouse_server: ClickHouseServer, kafka_broker: KafkaBroker,
) -> None:
    if kafka_broker.external:
        pytest.skip("cannot restart an external broker")
    p = pipeline_factory(clickhouse_server.url_for("it_broker_restart"), **FAST)
    worker = p.worker()
    worker.wait_ready(90)
    produced = p.produce(p.simulate(days=1, seed=65))
    wait_all_stored(p, produced)
    since = len(worker.output())
    kafka_seen: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            with contextlib.suppress(OSError):
                kafka_seen.append(value(p.metrics_text(), "vigie_dependency_up",
                                        dependency="kafka"))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    began = time.monotonic()
    try:
        kafka_broker.restart()
        outage = time.monotonic() - began
        wait_until(lambda: value(p.metrics_text(), "vigie_dependency_up",
                                 dependency="kafka") == 1, 90, "Kafka seen up again", worker)
    finally:
        done.set()
        watcher.join(5)
    assert 0.0 in kafka_seen, "Kafka never reported down during the restart"
    produced = p.produce(p.simulate(days=1, seed=66, start="2024-03-19"), produced)
    wait_all_stored(p, produced, timeout=180)
    assert_exactly_once(p, produced)
    assert worker.running
    assert worker.stop() == 0, worker.tail()  # its last lines: the counts still pending
    lines = json_lines(worker, since)
    errors = [e for e in lines if e["level"] == "ERROR"]
    # aiokafka alone logged ~20 errors a second of outage; now one line per message kind
    # and 30 s window, the others counted in `suppressed_repeats`
    assert len(errors) <= 12 + outage / 30 * 12, (outage, [e["message"] for e in errors])
    assert sum(int(e.get("suppressed_repeats", 0)) for e in lines) > 0, outage
