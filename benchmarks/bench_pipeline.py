"""Ingestion throughput on real components: `python -m benchmarks.bench_pipeline`.

Pre-loads N simulated reports into a local Kafka broker, then
1. reads them with a bare aiokafka consumer (no processing): the ceiling;
2. runs `vigie worker` on them (validate, dedup, enrich, dead-letter, forward, insert into
   ClickHouse, commit) and times from the worker being ready to all N rows stored.
Prints one JSON line with both rates and their ratio. Starts its own broker and (server
mode) ClickHouse server on free loopback ports, and stops them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ("vigie.reports.partner.v1", "vigie.reports.citizen.v1")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_kafka(directory: Path, attempts: int = 2) -> str:
    """Start the broker; a failed start-up (reason printed) is retried once on fresh ports
    in an emptied directory."""
    for attempt in range(1, attempts + 1):
        out = subprocess.run(
            ["bash", str(ROOT / "scripts/kafka.sh"), "start", "--dir", str(directory),
             "--port", str(free_port()), "--controller-port", str(free_port())],
            capture_output=True, text=True, timeout=180,
        )
        if out.returncode == 0:
            return out.stdout.strip().splitlines()[-1]
        print(f"bench: broker start {attempt} failed: {out.stderr.strip()[-2000:]}",
              file=sys.stderr)
        stop_kafka(directory)
        shutil.rmtree(directory, ignore_errors=True)
    raise RuntimeError(f"broker did not start in {attempts} attempts")


def stop_kafka(directory: Path) -> None:
    subprocess.run(["bash", str(ROOT / "scripts/kafka.sh"), "stop", "--dir", str(directory)],
                   check=False, capture_output=True, timeout=60)


def start_clickhouse(directory: Path) -> str:
    out = subprocess.run(["bash", str(ROOT / "scripts/clickhouse.sh"), "start", str(directory)],
                         check=True, capture_output=True, text=True, timeout=180)
    return out.stdout.strip().splitlines()[-1]


def stop_clickhouse(directory: Path) -> None:
    subprocess.run(["bash", str(ROOT / "scripts/clickhouse.sh"), "stop", str(directory)],
                   check=False, capture_output=True, timeout=60)


GENERATE_PER_DAY = 30_000  # messages a day of `generate`'s stream (20 times the département's)


def generate(n: int, seed: int, per_day: float = GENERATE_PER_DAY) -> tuple[list[Any], int]:
    """N messages (realistic mix incl. malformed and re-deliveries) at about `per_day` a
    day of simulated time; expected stored rows."""
    from offline.simulator import SimulationConfig, simulate

    days = max(1, int(n // per_day) + 1)
    msgs = []
    for m in simulate(SimulationConfig(days=days, seed=seed, reports_per_day=n / days * 1.05)):
        msgs.append(m)
        if len(msgs) >= n:
            break
    valid = {m.truth["report_id"] for m in msgs if not m.truth["expected_reject_reason"]}
    return msgs, len(valid)


async def produce(bootstrap: str, messages: list[Any], partitions: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    # simulated reports are stamped in the past (a replay, a stream-time soak): no time
    # retention, which would delete a rolled segment of them before the worker reads it
    await admin.create_topics([NewTopic(t, partitions, 1, topic_configs={"retention.ms": "-1"})
                               for t in TOPICS])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(m.topic, m.value, key=m.key, timestamp_ms=m.timestamp_ms)
                   for m in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def bare_consumer_rate(bootstrap: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(*TOPICS, bootstrap_servers=bootstrap, group_id="bench-bare",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen = 0
    started = time.perf_counter()
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    _ = record.value  # touch the payload
                    seen += 1
            await consumer.commit()
    finally:
        await consumer.stop()
    return n / (time.perf_counter() - started)


def start_worker(bootstrap: str, store_url: str, tmp: Path,
                 app_id: str) -> tuple[subprocess.Popen[bytes], int, IO[bytes]]:
    """`vigie worker` on the broker and store, its web port free, its log in `tmp`: the
    process, its web port and its open log (close it after the process ended)."""
    port = free_port()
    env = {**os.environ, "VIGIE_KAFKA_BOOTSTRAP": bootstrap, "VIGIE_CLICKHOUSE": store_url,
           "VIGIE_APP_ID": app_id, "VIGIE_WEB_PORT": str(port),
           "VIGIE_WORKER_DATA_DIR": str(tmp / "worker"), "VIGIE_LOG_LEVEL": "WARNING",
           "VIGIE_DEV_MODE": "1"}  # simulated data: a random pseudonymisation key will do
    log = (tmp / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "vigie.cli", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return proc, port, log


def pipeline_rate(bootstrap: str, store_url: str, expected: int, tmp: Path) -> dict[str, Any]:
    from agents.ports.sql import reports
    from streams.storage import is_embedded, open_store

    proc, port, log = start_worker(bootstrap, store_url, tmp, "bench-pipeline")
    embedded = is_embedded(store_url)
    store = None if embedded else open_store(store_url)

    def stored() -> int:
        if store is not None:
            return int(store.query(reports.COUNT_ROWS.sql)[0]["n"])
        from streams.local_api import get_json

        return int(get_json(f"http://127.0.0.1:{port}/counts?only=reports", tmp / "worker",
                            timeout=30)["reports"])

    def incident_versions() -> int:
        """Incident versions published so far (the worker's counter): shows whether the
        correlate agent ran during the measured window."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            return int(sum(float(line.rsplit(" ", 1)[1]) for line in r.read().decode()
                           .splitlines() if line.startswith("vigie_incidents_total{")))

    # seconds since start, report rows stored, incident versions published
    progress = (tmp / "progress.tsv").open("w")
    begun = polled = time.perf_counter()
    versions = -1
    try:
        # The clock starts at the first stored batch: worker start-up (group joins, table
        # creation) is not throughput. Rows of that first batch are not counted either.
        started = None
        first = 0
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                count = stored()
            except Exception:
                count = 0
            if time.perf_counter() - polled >= 1.0:  # the worker renders it: not too often
                polled = time.perf_counter()
                try:
                    versions = incident_versions()
                except Exception:
                    versions = -1
            progress.write(f"{time.perf_counter() - begun:.2f}\t{count}\t{versions}\n")
            if started is None and count > 0:
                started, first = time.perf_counter(), count
            if count >= expected:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited {proc.returncode}; see {log.name}")
            time.sleep(0.2 if store is not None else 1.0)  # embedded: the worker answers
        assert started is not None
        seconds = time.perf_counter() - started
        final = int(open_store(store_url).query(reports.count(since=False).sql)[0]["n"]) \
            if store is not None else stored()
        out = {"seconds": seconds, "rate": (expected - first) / seconds, "stored": final,
               "share": (expected - first) / expected}
        if store is not None:
            out.update(correlation_catch_up(store, started, progress))
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        progress.close()


def correlation_catch_up(store: Any, started: float, progress: Any,
                         quiet_s: float = 15.0) -> dict[str, Any]:
    """After ingestion, wait for the correlate agent to merge the backlog: reports merged =
    the sum of `report_count` over current incidents (each report is in exactly one). Done
    when that count has not moved for `quiet_s`; the rate is timed to its last increase,
    from the same start as the ingestion rate (the whole worker, both stages sharing it)."""
    from agents.ports.sql import incidents

    merged, last_change = -1, time.perf_counter()
    while time.perf_counter() - last_change < quiet_s:
        row = store.query(incidents.SUM_REPORT_COUNT.sql)[0]
        now = time.perf_counter()
        if int(row["n"] or 0) != merged:
            merged, last_change = int(row["n"] or 0), now
        progress.write(f"{now - started:.2f}\tcorrelated\t{merged}\n")
        time.sleep(0.5)
    seconds = last_change - started
    return {"correlated": merged, "correlated_seconds": seconds,
            "correlated_rate": merged / seconds if seconds > 0 else 0.0}


@contextlib.contextmanager
def _workdir(keep: str | None) -> Iterator[str]:
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="vigie-bench-") as tmpdir:
            yield tmpdir
    else:
        Path(keep).mkdir(parents=True, exist_ok=False)
        yield keep


def add_run_arguments(parser: argparse.ArgumentParser, store: str) -> None:
    """The options every benchmark that starts its own broker, store and worker takes."""
    parser.add_argument("--store", choices=("server", "chdb"), default=store)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", metavar="DIR",
                        help="work in DIR and keep it (broker, ClickHouse and worker logs)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=100_000)
    add_run_arguments(parser, store="server")
    args = parser.parse_args(argv)
    with _workdir(args.keep) as tmpdir:
        tmp = Path(tmpdir)
        messages, expected = generate(args.n, args.seed)
        bootstrap = start_kafka(tmp / "kafka")
        ch_dir = tmp / "clickhouse"
        try:
            store_url = (start_clickhouse(ch_dir).rsplit("/", 1)[0] + "/bench"
                         if args.store == "server" else f"chdb://{tmp}/chdb")
            asyncio.run(produce(bootstrap, messages, args.partitions))
            bare = asyncio.run(bare_consumer_rate(bootstrap, len(messages)))
            pipe = pipeline_rate(bootstrap, store_url, expected, tmp)
        finally:
            stop_kafka(tmp / "kafka")
            if args.store == "server":
                stop_clickhouse(ch_dir)
    result = {
        "bench": "pipeline",
        "store": args.store,
        "messages": len(messages),
        "reports_stored": pipe["stored"],
        "expected_stored": expected,
        "bare_consumer_msgs_per_s": round(bare),
        "pipeline_reports_per_s": round(pipe["rate"]),
        "pipeline_msgs_per_s": round(len(messages) * pipe["share"] / pipe["seconds"]),
        "ratio": round(len(messages) * pipe["share"] / pipe["seconds"] / bare, 3),
    }
    if "correlated" in pipe:  # server mode: the correlate stage's catch-up
        result["reports_correlated"] = pipe["correlated"]
        result["correlated_reports_per_s"] = round(pipe["correlated_rate"])
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
