"""Restart time versus history: how long a worker takes to be ready again, and how many
changelog records its table recovery reads, after N days of simulated reports, with the
table state in memory (`VIGIE_TABLE_STORE=memory`: the whole changelog is replayed at every
start) or in RocksDB under the data directory (`rocksdb`: only the changelog's tail).

For each history size and table store, on a broker and ClickHouse (server, or chDB with
`--store chdb`) this starts on free loopback ports:

1. a worker processes the N days (its own consumer groups and changelog), then SIGTERM;
2. `sigterm`: a restart, timed to `/readyz`; it then processes one more day, and is SIGKILLed;
3. `sigkill`: a restart after that kill, timed the same way;
4. `no-store` (rocksdb only): the store directory deleted, a restart (a full replay).

`replayed` is the number of changelog offsets the recovery read (Faust logs, per changelog
partition, the highwater and the offset it starts reading at); `changelog` the changelog's
end offsets summed (every record ever written, before compaction).

    python -m benchmarks.bench_restart [--days 2 7 28] [--stores memory rocksdb] [--store chdb]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import (
    _workdir,
    add_run_arguments,
    free_port,
    start_clickhouse,
    start_kafka,
    stop_clickhouse,
    stop_kafka,
)

ROOT = Path(__file__).resolve().parents[1]
SIM_TOPICS = {"vigie.reports.partner.v1": "partner", "vigie.reports.citizen.v1": "citizen"}
_ROW = re.compile(r"^\|\s*(\S+)\s*\|\s*(\d+)\s*\|\s*(-?\d+)\s*\|$")


# ---- what the recovery read -----------------------------------------------------------------
def _log_table(message: str) -> dict[tuple[str, int], int]:
    """Faust's recovery log table (topic, partition, offset rows; `〃` repeats the topic)."""
    rows: dict[tuple[str, int], int] = {}
    topic = ""
    for line in message.splitlines():
        found = _ROW.match(line.strip())
        if found:
            topic = topic if found[1] == "〃" else found[1]
            rows[(topic, int(found[2]))] = int(found[3])
    return rows


def recovery_reads(log_text: str) -> tuple[int, int]:
    """(changelog offsets the last active recovery in a worker's JSON log read, offsets of
    the changelog): Faust logs the highwater of each active changelog partition, then the
    offset it starts reading at (the store's persisted offset, or the log's start)."""
    highwater: dict[tuple[str, int], int] = {}
    starts: dict[tuple[str, int], int] = {}
    for line in log_text.splitlines():
        if "faust.tables.recovery" not in line:
            continue
        try:
            message = str(json.loads(line).get("message", ""))
        except ValueError:
            continue
        if "Highwater - Active" in message:
            highwater = _log_table(message)
        elif "Reading Starts At - Active" in message:
            starts = _log_table(message)
    read = sum(max(0, hw - starts.get(tp, -1)) for tp, hw in highwater.items())
    return read, sum(hw + 1 for hw in highwater.values())


def recovery_seconds(log_text: str) -> float:
    """Seconds the last table recovery in a worker's JSON log took: from its highwater log
    line to `Recovery complete` (-1: none completed)."""
    began = done = None
    for line in log_text.splitlines():
        if "faust.tables.recovery" not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = str(record.get("message", ""))
        if "Highwater for active" in message:
            began, done = record["ts"], None
        elif "Recovery complete" in message and began is not None:
            done = record["ts"]
    if began is None or done is None:
        return -1.0
    return (datetime.fromisoformat(done) - datetime.fromisoformat(began)).total_seconds()


# ---- the broker side --------------------------------------------------------------------------
def create_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> None:
    """The input topics, without time retention: simulated reports are stamped in the past."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(t, partitions, 1, topic_configs={"retention.ms": "-1"})
                             for t in topics])
    finally:
        admin.close()


def produce(bootstrap: str, messages: Sequence[Any], topics: Mapping[str, str]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                             batch_size=512 * 1024)
    for m in messages:
        producer.send(topics[SIM_TOPICS[m.topic]], key=m.key, value=m.value,
                      timestamp_ms=m.timestamp_ms)
    producer.flush(120)
    producer.close()


def lag(bootstrap: str, group: str, topics: Sequence[str]) -> int:
    """Records of `topics` the group has not committed (-1: it committed nothing yet)."""
    from kafka import KafkaConsumer, TopicPartition

    # a consumer of the group that never subscribes: it reads the commits, joins nothing
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics
               for p in (consumer.partitions_for_topic(t) or ())]
        if not tps:
            return -1
        ends = consumer.end_offsets(tps)
        behind = 0
        for tp, end in ends.items():
            done = consumer.committed(tp)
            if done is None and end > 0:
                return -1
            behind += max(0, end - (done or 0))
        return behind
    finally:
        consumer.close()


def changelog_records(bootstrap: str, app_id: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    topic = f"{app_id}-vigie-incident-state-changelog"
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return int(sum(consumer.end_offsets(tps).values()))
    finally:
        consumer.close()


# ---- one worker ---------------------------------------------------------------------------
@dataclass
class Run:
    app_id: str
    env: dict[str, str]
    datadir: Path
    log_dir: Path
    port: int

    def start(self, name: str) -> tuple[subprocess.Popen[bytes], Path, float]:
        log_path = self.log_dir / f"{self.app_id}-{name}.log"
        with log_path.open("wb") as log:
            began = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "vigie.cli", "worker"],
                                    env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=ROOT, start_new_session=True)
        return proc, log_path, began

    def wait_ready(self, proc: subprocess.Popen[bytes], began: float,
                   timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {self.app_id} exited {proc.returncode}")
            try:
                url = f"http://127.0.0.1:{self.port}/readyz"
                with urllib.request.urlopen(url, timeout=5) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - began
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"worker {self.app_id} not ready in {timeout}s")

    def wait_caught_up(self, bootstrap: str, proc: subprocess.Popen[bytes],
                       timeout: float = 1800) -> None:
        """Until both consumer groups (ingest, Faust's correlate agent) committed every
        record of their topics."""
        groups = {f"{self.app_id}-ingest": [self.env["VIGIE_TOPIC_PARTNER"],
                                            self.env["VIGIE_TOPIC_CITIZEN"]],
                  self.app_id: [self.env["VIGIE_TOPIC_ENRICHED"]]}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {self.app_id} exited {proc.returncode}")
            if all(lag(bootstrap, g, t) == 0 for g, t in groups.items()):
                return
            time.sleep(1.0)
        raise TimeoutError(f"worker {self.app_id} did not catch up in {timeout}s")


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


@dataclass
class Restart:
    days: float
    reports: int
    table_store: str
    case: str  # sigterm | sigkill | no-store
    ready_s: float  # process start -> /readyz 200
    recovery_s: float  # the table recovery alone (Faust's log)
    replayed: int
    changelog: int  # changelog offsets at the restart (records ever written)
    store_bytes: int  # the worker's data directory before the restart


def measure(bootstrap: str, store_url: str, tmp: Path, days: float, table_store: str,
            history: Sequence[Any], tail: Sequence[Any], topics: Mapping[str, str],
            partitions: int) -> list[Restart]:
    app_id = f"bench-restart-{table_store}-{days:g}d".replace(".", "_")
    datadir = tmp / f"{app_id}-data"
    port = free_port()
    env = {**os.environ, "VIGIE_KAFKA_BOOTSTRAP": bootstrap, "VIGIE_CLICKHOUSE": store_url,
           "VIGIE_APP_ID": app_id, "VIGIE_WEB_PORT": str(port), "VIGIE_WEB_HOST": "127.0.0.1",
           "VIGIE_CONSOLE_PORT": str(free_port()),  # chDB: the worker serves the console
           "VIGIE_WORKER_DATA_DIR": str(datadir), "VIGIE_TABLE_STORE": table_store,
           "VIGIE_TOPIC_PARTITIONS": str(partitions),
           "VIGIE_TOPIC_PARTNER": topics["partner"], "VIGIE_TOPIC_CITIZEN": topics["citizen"],
           "VIGIE_TOPIC_ENRICHED": f"{app_id}.enriched",
           "VIGIE_PSEUDONYM_SECRET": "bench-restart-secret-0123456789abcdef",
           # simulated reports are stamped in the past: no time retention on the inputs
           "VIGIE_INPUT_RETENTION_HOURS": "-1", "VIGIE_LOG_LEVEL": "INFO"}
    run = Run(app_id, env, datadir, tmp, port)
    reports = sum(1 for m in history if not m.truth["expected_reject_reason"])
    out: list[Restart] = []

    def restart(case: str) -> tuple[subprocess.Popen[bytes], Restart]:
        size = directory_bytes(datadir)
        records = changelog_records(bootstrap, app_id)
        proc, log_path, began = run.start(case)
        ready = run.wait_ready(proc, began)
        time.sleep(1.0)  # the recovery log lines are written before /readyz turns 200
        text = log_path.read_text(errors="replace")
        replayed, _ = recovery_reads(text)
        result = Restart(days, reports, table_store, case, round(ready, 2),
                         round(recovery_seconds(text), 2), replayed, records, size)
        print(json.dumps({"bench": "restart", **asdict(result)}), file=sys.stderr)
        return proc, result

    proc, _log, began = run.start("history")
    run.wait_ready(proc, began)
    run.wait_caught_up(bootstrap, proc)
    stop(proc, signal.SIGTERM)

    proc, result = restart("sigterm")
    out.append(result)
    produce(bootstrap, tail, topics)
    run.wait_caught_up(bootstrap, proc)
    stop(proc, signal.SIGKILL)

    proc, result = restart("sigkill")
    out.append(result)
    stop(proc, signal.SIGTERM)

    if table_store == "rocksdb":
        for store_dir in list(datadir.rglob("tables-*")):  # Faust's `tabledir` (streams.app)
            shutil.rmtree(store_dir)
        proc, result = restart("no-store")
        out.append(result)
        stop(proc, signal.SIGTERM)
    return out


def split_days(messages: Sequence[Any], days: float) -> tuple[list[Any], list[Any]]:
    start = min(m.timestamp_ms for m in messages)
    cut = start + days * 86_400_000
    return ([m for m in messages if m.timestamp_ms < cut],
            [m for m in messages if m.timestamp_ms >= cut])


def table(rows: Sequence[Restart]) -> str:
    head = (f"{'days':>5} {'reports':>8} {'store':>8} {'case':>9} {'ready_s':>8} "
            f"{'recovery_s':>10} {'replayed':>9} {'changelog':>10} {'store_MB':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.days:>5g} {r.reports:>8} {r.table_store:>8} {r.case:>9} "
                     f"{r.ready_s:>8.2f} {r.recovery_s:>10.2f} {r.replayed:>9} {r.changelog:>10} "
                     f"{r.store_bytes / 2**20:>9.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from offline.simulator import SimulationConfig, simulate

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, nargs="+", default=[2.0, 7.0, 28.0])
    parser.add_argument("--stores", nargs="+", choices=("memory", "rocksdb"),
                        default=["memory", "rocksdb"])
    add_run_arguments(parser, store="chdb")
    args = parser.parse_args(argv)
    rows: list[Restart] = []
    with _workdir(args.keep) as tmpdir:
        tmp = Path(tmpdir)
        bootstrap = start_kafka(tmp / "kafka")
        ch_dir = tmp / "clickhouse"
        server = start_clickhouse(ch_dir).rsplit("/", 1)[0] if args.store == "server" else ""
        try:
            for days in args.days:
                messages = list(simulate(SimulationConfig(days=days + 1, seed=args.seed)))
                history, tail = split_days(messages, days)
                for table_store in args.stores:
                    name = f"restart_{table_store}_{days:g}".replace(".", "_")
                    # inputs of its own: the run of the other store must not see its tail
                    topics = {k: f"{name}.reports.{k}" for k in ("partner", "citizen")}
                    create_topics(bootstrap, list(topics.values()), args.partitions)
                    produce(bootstrap, history, topics)
                    store_url = (f"{server}/{name}" if server
                                 else f"chdb://{tmp / ('chdb-' + name)}")
                    rows += measure(bootstrap, store_url, tmp, days, table_store, history, tail,
                                    topics, args.partitions)
        finally:
            stop_kafka(tmp / "kafka")
            if server:
                stop_clickhouse(ch_dir)
    print(table(rows), file=sys.stderr)
    results = [{"bench": "restart", "store": args.store, **asdict(r)} for r in rows]
    for result in results:  # one JSON line per restart (flat, as `benchmarks.history` reads)
        print(json.dumps(result))
    return results


if __name__ == "__main__":
    main()
