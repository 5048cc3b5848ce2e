"""End-to-end latency under a steady load: `python -m benchmarks.bench_latency`.

Starts a local broker (and, `--store server`, a ClickHouse server) and one `vigie worker`
(the helpers of `benchmarks.bench_pipeline`), then its own producer sends simulated reports
at a fixed rate (`--rate` a second for `--seconds`), each stamped `reported_at` = the moment
it is sent, while its own consumer reads `vigie.incidents.v1`. A report's latency is the
time from its send to the first incident version that lists it (the version's Kafka
timestamp, set by the worker when it publishes). Prints the p50/p95/p99/max over the run
and per 10 s slice of send time (the curve: does latency stay flat or rise?), the worker's
resident memory once ready and at the end, and one JSON line for `benchmarks.run_all`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import (
    _workdir,
    add_run_arguments,
    generate,
    produce,
    start_clickhouse,
    start_kafka,
    start_worker,
    stop_clickhouse,
    stop_kafka,
)

INCIDENTS_TOPIC = "vigie.incidents.v1"
SLICE_S = 10.0
DRAIN_QUIET_S = 20.0  # after the last send: stop when no new report was seen for this long
DRAIN_MAX_S = 120.0


@dataclass(frozen=True)
class Outgoing:
    """One report to send: its topic, key, payload and its reporting delay (reported_at -
    occurred_at) to keep when it is stamped."""

    topic: str
    key: bytes
    payload: dict[str, Any]
    delay_s: float


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def outgoing(n: int, seed: int) -> list[Outgoing]:
    """N valid simulated reports, without re-deliveries (every report_id is new)."""
    messages, _ = generate(int(n * 1.15) + 200, seed)
    out: list[Outgoing] = []
    for m in messages:
        if m.truth["expected_reject_reason"] or m.truth["is_redelivery"]:
            continue
        payload = json.loads(m.value)
        occurred = _instant(payload["occurred_at"])
        reported = (_instant(payload["reported_at"]) if payload.get("reported_at")
                    else datetime.fromtimestamp(m.timestamp_ms / 1000, UTC))
        out.append(Outgoing(m.topic, m.key, payload,
                            max(0.0, (reported - occurred).total_seconds())))
        if len(out) == n:
            return out
    raise RuntimeError(f"the simulator gave {len(out)} valid reports, {n} wanted")


@dataclass
class Run:
    """What the producer sent and what the consumer saw (report_id -> epoch seconds)."""

    sent: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)


def send_steadily(bootstrap: str, reports: list[Outgoing], rate: float, run: Run) -> None:
    """Send report i at start + i / rate, stamped with the moment it is sent."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        start = time.time()
        for i, r in enumerate(reports):
            wait = start + i / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            now = time.time()
            stamped = datetime.fromtimestamp(now, UTC)
            payload = {**r.payload, "reported_at": stamped.isoformat(timespec="milliseconds"),
                       "occurred_at": (stamped - timedelta(seconds=r.delay_s))
                       .isoformat(timespec="seconds")}
            producer.send(r.topic, json.dumps(payload).encode(), key=r.key)
            with run.lock:
                run.sent[payload["report_id"]] = now
        producer.flush(60)
    except Exception as exc:  # reported with the results: a run that lost its producer
        run.errors.append(f"producer: {type(exc).__name__}: {exc}")
    finally:
        producer.close(10)


def watch_incidents(bootstrap: str, run: Run) -> None:
    """Record, for every report, the Kafka timestamp of the first incident version listing
    it. The broker is fresh: every version on the topic is this run's."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=100)
    try:
        partitions = None
        while partitions is None and not run.stop.is_set():
            partitions = consumer.partitions_for_topic(INCIDENTS_TOPIC)
            if partitions is None:
                time.sleep(0.5)
        if partitions is None:
            return
        consumer.assign([TopicPartition(INCIDENTS_TOPIC, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        while not run.stop.is_set():
            for records in consumer.poll(timeout_ms=200, max_records=5000).values():
                for record in records:
                    version = json.loads(record.value)
                    at = record.timestamp / 1000
                    with run.lock:
                        for rid in version.get("report_ids", ()):
                            run.seen.setdefault(rid, at)
    except Exception as exc:
        run.errors.append(f"consumer: {type(exc).__name__}: {exc}")
    finally:
        consumer.close()


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def wait_ready(port: int, proc: Any, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(1.0)
    raise RuntimeError(f"worker not ready after {timeout_s:.0f} s")


def quantile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    return {"p50": round(quantile(latencies, 0.5), 3), "p95": round(quantile(latencies, 0.95), 3),
            "p99": round(quantile(latencies, 0.99), 3), "max": round(max(latencies), 3)}


def measure(run: Run) -> dict[str, Any]:
    """Overall and per-slice latencies of the reports seen in an incident."""
    start = min(run.sent.values())
    slices: dict[int, list[float]] = {}
    overall: list[float] = []
    for rid, sent in run.sent.items():
        seen = run.seen.get(rid)
        if seen is None:
            continue
        latency = max(0.0, seen - sent)
        overall.append(latency)
        slices.setdefault(int((sent - start) // SLICE_S), []).append(latency)
    last = max(slices, default=-1)
    per_slice = [summary(slices.get(i, [])) for i in range(last + 1)]
    return {"overall": summary(overall), "seen": len(overall),
            "slices": per_slice, "slice_counts": [len(slices.get(i, [])) for i in range(last + 1)]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="reports a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    add_run_arguments(parser, store="chdb")
    args = parser.parse_args(argv)
    n = int(args.rate * args.seconds)
    reports = outgoing(n, args.seed)
    run = Run()
    with _workdir(args.keep) as tmpdir:
        tmp = Path(tmpdir)
        bootstrap = start_kafka(tmp / "kafka")
        ch_dir = tmp / "clickhouse"
        proc = log = None
        try:
            store_url = (start_clickhouse(ch_dir).rsplit("/", 1)[0] + "/bench"
                         if args.store == "server" else f"chdb://{tmp}/chdb")
            asyncio.run(produce(bootstrap, [], args.partitions))  # the input topics
            proc, port, log = start_worker(bootstrap, store_url, tmp, "bench-latency")
            wait_ready(port, proc)
            rss_start = rss_mib(proc.pid)
            watcher = threading.Thread(target=watch_incidents, args=(bootstrap, run),
                                       daemon=True)
            watcher.start()
            began = time.time()
            send_steadily(bootstrap, reports, args.rate, run)
            sent_for = time.time() - began
            quiet_since, last_seen = time.monotonic(), -1
            drain_end = time.monotonic() + DRAIN_MAX_S
            while time.monotonic() < drain_end:
                with run.lock:
                    count = sum(1 for rid in run.sent if rid in run.seen)
                if count != last_seen:
                    quiet_since, last_seen = time.monotonic(), count
                if count == len(run.sent) or time.monotonic() - quiet_since > DRAIN_QUIET_S:
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited {proc.returncode}; see {log.name}")
                time.sleep(0.5)
            rss_end = rss_mib(proc.pid)
            run.stop.set()
            watcher.join(10)
        finally:
            run.stop.set()
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(30)
                except Exception:
                    proc.kill()
            if log is not None:
                log.close()
            stop_kafka(tmp / "kafka")
            if args.store == "server":
                stop_clickhouse(ch_dir)
    if run.errors:
        raise RuntimeError("; ".join(run.errors))
    m = measure(run)
    overall, slices = m["overall"], m["slices"]
    print(f"latency, report sent -> first incident version listing it ({args.store}, "
          f"{args.rate:g}/s for {args.seconds:g} s): {m['seen']:,} of {len(run.sent):,} "
          f"reports seen", file=sys.stderr)
    print(f"{'slice (s)':>10} {'n':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}",
          file=sys.stderr)
    rows = [(f"{i * SLICE_S:g}-{(i + 1) * SLICE_S:g}", c, s)
            for i, (c, s) in enumerate(zip(m["slice_counts"], slices, strict=True))]
    for label, c, s in [*rows, ("all", m["seen"], overall)]:
        cells = " ".join(f"{'-' if s[k] is None else format(s[k], '.3f'):>7}"
                         for k in ("p50", "p95", "p99", "max"))
        print(f"{label:>10} {c:>6} {cells}", file=sys.stderr)
    print(f"worker RSS: {rss_start} MiB when ready, {rss_end} MiB at the end", file=sys.stderr)
    result: dict[str, Any] = {
        "bench": "latency",
        "store": args.store,
        "rate_per_s": args.rate,
        "duration_s": args.seconds,
        "sent_rate_per_s": round(len(run.sent) / sent_for, 1),
        "reports_sent": len(run.sent),
        "reports_seen": m["seen"],
        "latency_p50_s": overall["p50"],
        "latency_p95_s": overall["p95"],
        "latency_p99_s": overall["p99"],
        "latency_max_s": overall["max"],
        "slice_p50_s": [s["p50"] for s in slices],
        "slice_p95_s": [s["p95"] for s in slices],
        "slice_p99_s": [s["p99"] for s in slices],
        "slice_max_s": [s["max"] for s in slices],
        "worker_rss_ready_mib": rss_start,
        "worker_rss_end_mib": rss_end,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
