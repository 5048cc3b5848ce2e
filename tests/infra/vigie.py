"""Fixtures to run the real `vigie worker` as a subprocess against real Kafka and ClickHouse.

- `pipeline` (function): a `Pipeline` with its own topic names, consumer group, database and
  web port (so tests never see each other's data), helpers to produce simulated messages,
  read topics, query the store and start/kill/stop `vigie worker` processes.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from offline.simulator import SimulationConfig, simulate
from offline.simulator.engine import SimMessage
from streams.local_api import get_json
from streams.storage import Store, open_store
from tests.infra.kafka import FaustWorker, KafkaBroker, free_port

_ids = itertools.count(1)
SIM_TOPIC_SUFFIX = {"vigie.reports.partner.v1": "partner", "vigie.reports.citizen.v1": "citizen"}


class VigieWorker(FaustWorker):
    """`vigie worker` (the project's own entry point) instead of `faust -A app worker`."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "vigie.cli", "worker"]


@dataclass
class Produced:
    messages: list[SimMessage] = field(default_factory=list)
    # (topic, partition, offset) of each produced message, same order
    positions: list[tuple[str, int, int]] = field(default_factory=list)

    def expected_valid_ids(self) -> set[str]:
        return {
            str(m.truth["report_id"])
            for m in self.messages
            if not m.truth["expected_reject_reason"]
        }

    def expected_rejects(self) -> dict[tuple[str, int, int], str]:
        return {
            pos: str(m.truth["expected_reject_reason"])
            for m, pos in zip(self.messages, self.positions, strict=True)
            if m.truth["expected_reject_reason"]
        }


class Pipeline:
    def __init__(self, broker: KafkaBroker, store_url: str, tmp: Path, **settings: str) -> None:
        n = next(_ids)
        tag = f"{os.getpid()}x{n}"
        self.tmp = tmp
        self.broker = broker
        self.web_port = free_port()
        self.topics = {
            "partner": f"t{tag}.reports.partner",
            "citizen": f"t{tag}.reports.citizen",
            "rejected": f"t{tag}.reports.rejected",
            "enriched": f"t{tag}.reports.enriched",
            "incidents": f"t{tag}.incidents",
            "alerts": f"t{tag}.alerts",
            "alert_actions": f"t{tag}.alerts.actions",
        }
        self.store_url = store_url
        self.env: dict[str, str] = {
            "VIGIE_KAFKA_BOOTSTRAP": broker.bootstrap,
            "VIGIE_APP_ID": f"vigie-test-{tag}",
            "VIGIE_CLICKHOUSE": store_url,
            "VIGIE_WEB_PORT": str(self.web_port),
            "VIGIE_WEB_HOST": "127.0.0.1",
            # embedded mode serves the console too: on a port of its own, never a fixed one
            # another process (a `make run`, a parallel test) may hold
            "VIGIE_CONSOLE_PORT": str(free_port()),
            "VIGIE_WORKER_DATA_DIR": str(tmp / "worker"),
            "VIGIE_TOPIC_PARTITIONS": "3",
            "VIGIE_SINK_BATCH_SECONDS": "0.5",
            "VIGIE_SINK_MAX_RETRIES": "3",
            "VIGIE_SINK_BACKOFF_SECONDS": "0.2",
            "VIGIE_PSEUDONYM_SECRET": "integration-test-secret-0123456789",
            # simulated reports carry past timestamps, and Kafka's retention follows
            # record timestamps: a time limit would delete them before they are read
            "VIGIE_INPUT_RETENTION_HOURS": "-1",
            **{f"VIGIE_TOPIC_{k.upper()}": v for k, v in self.topics.items()},
            **{k.upper() if k.startswith("VIGIE_") else f"VIGIE_{k.upper()}": v
               for k, v in settings.items()},
        }
        self.workers: list[VigieWorker] = []
        self._store: Store | None = None

    # ---- workers ----------------------------------------------------------------------
    def worker(self, log_name: str | None = None, **extra_env: str) -> VigieWorker:
        log = self.tmp / (log_name or f"worker-{len(self.workers)}.log")
        worker = VigieWorker("unused", log, env={**self.env, **extra_env})
        self.workers.append(worker)
        return worker.start()

    def http_json(self, path: str, port: int | None = None,
                  data_dir: str | None = None) -> Any:
        """GET a worker page with the local API token of the worker's data dir (the
        pipeline's unless given)."""
        url = f"http://127.0.0.1:{port or self.web_port}{path}"
        return get_json(url, data_dir or self.env["VIGIE_WORKER_DATA_DIR"])

    def metrics_text(self, port: int | None = None) -> str:
        url = f"http://127.0.0.1:{port or self.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return str(resp.read().decode())

    # ---- Kafka --------------------------------------------------------------------------
    def simulate(self, **config: Any) -> list[SimMessage]:
        return list(simulate(SimulationConfig(**config)))

    def produce(self, messages: Iterable[SimMessage], produced: Produced | None = None) -> Produced:
        from kafka import KafkaProducer

        produced = produced or Produced()
        producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all",
                                 linger_ms=10)
        futures = []
        for msg in messages:
            topic = self.topics[SIM_TOPIC_SUFFIX[msg.topic]]
            futures.append((msg, producer.send(topic, key=msg.key, value=msg.value,
                                               timestamp_ms=msg.timestamp_ms)))
        producer.flush()
        for msg, fut in futures:
            meta = fut.get(timeout=30)
            produced.messages.append(msg)
            produced.positions.append((meta.topic, meta.partition, meta.offset))
        producer.close()
        return produced

    def read_topic(self, name: str, expect: int, timeout: float = 60) -> list[Any]:
        """Every message of topic `name` (a key of `self.topics`), waiting for `expect`."""
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            self.topics[name], bootstrap_servers=self.broker.bootstrap,
            auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=1000,
        )
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < expect and time.monotonic() < deadline:
            records.extend(consumer)
        consumer.close()
        return records

    def committed_and_end(self) -> tuple[int, int]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap,
                                 group_id=self.env["VIGIE_APP_ID"] + "-ingest",
                                 enable_auto_commit=False)
        tps = [TopicPartition(self.topics[t], p) for t in ("partner", "citizen")
               for p in range(int(self.env["VIGIE_TOPIC_PARTITIONS"]))]
        end = sum(consumer.end_offsets(tps).values())
        committed = sum(consumer.committed(tp) or 0 for tp in tps)
        consumer.close()
        return committed, end

    def caught_up(self, group: str, topics: Iterable[str]) -> bool:
        """Whether consumer group `group` has committed the end of every partition of
        `topics` (keys of `self.topics`): it has read, and acked, all their messages."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, group_id=group,
                                 enable_auto_commit=False)
        try:
            tps = [TopicPartition(self.topics[t], n) for t in topics
                   for n in range(int(self.env["VIGIE_TOPIC_PARTITIONS"]))]
            end = consumer.end_offsets(tps)
            return all((consumer.committed(tp) or 0) >= end[tp] for tp in tps)
        finally:
            consumer.close()

    # ---- store ------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.store_url)
        return self._store

    def scalar(self, sql: str, **params: Any) -> Any:
        rows = self.store.query(sql, params or None)
        return next(iter(rows[0].values()))

    def wait_for(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if probe():
                    return
            except Exception:  # table not created yet, worker starting...
                pass
            time.sleep(0.5)
        tails = "\n".join(f"--- {w.log_path.name}\n{w.tail(30)}" for w in self.workers)
        raise AssertionError(f"timed out waiting for {what}\n{tails}")

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        if self._store is not None:
            self._store.close()


@pytest.fixture
def pipeline_factory(
    kafka_broker: KafkaBroker, tmp_path: Path
) -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def make(store_url: str, **settings: str) -> Pipeline:
        p = Pipeline(kafka_broker, store_url, tmp_path / f"p{len(made)}", **settings)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
