"""End-to-end latency under a steady load: `python -m benchmarks.bench_latency`.

Starts a local broker (and, `--store server`, a ClickHouse server) and one `vigie worker`
(the helpers of `benchmarks.bench_pipeline`), then its own producer sends simulated reports
at a fixed rate (`--rate` a second for `--seconds`), each stamped `reported_at` = the moment
it is sent, while its own consumer reads `vigie.incidents.v1`. A report's latency is the
time from its send to the first incident version that lists it (the version's Kafka
timestamp, set by the worker when it publishes). Prints the p50/p95/p99/max over the run
and per slice of send time (10 s; a minute with `--minutes`: the curve, does latency stay
flat or rise?) with the worker's resident memory at the end of each slice and the CPU
time it used in each (does its work per slice grow with the latency?) beside the CPU time
of the broker, the ClickHouse server and the bench itself (`NEIGHBOURS`), where the
latency went by the worker's own histograms (`stage_figures`), the worker's CPU time per
report and the machine's load (on a shared machine the latency is mostly the queue for a
core: compare the CPU figure, which the load barely moves), and one JSON line for
`benchmarks.run_all`. On the ClickHouse server it also reads the server's `system.part_log`
(`merge_figures`): per slice, the rows its background merges wrote and the parts the inserts
made, and per table the rows merged per row inserted (the server's work that grows with its
tables, beside the worker's); and its `system.query_log` (`query_figures`): per kind of
query (its text, literals as ?), how many ran, their seconds of the server's wall time and
the rows they read, over the run and per slice for the costliest kinds (which of its
queries grows).

Modes:
- soak, `--minutes 30 --rate 200`: per-minute slices, and the p99 of the first 5 minutes
  against the last 5 (flat: within 20 %).
- state, `--state-days 30`: first replays a simulated stream of that many days ending now
  (`--state-per-day` valid reports a day, the simulator's département-sized default),
  through the worker at full speed until its consumers' lag reads 0, so the measurement
  runs over a month of correlation state (open incidents, place memory) and a month of
  stored reports.
- warm, `--event-time stream --warm-days 8`: first sends, at full speed, the 8 days of the
  same stream that precede the run's (stamped with the run's offset) and waits as for
  `--state-days`: the run starts from the correlation state and detector history those
  days leave (their steady size: state keeps an incident at most 7 days), so its first
  minutes are not a cold start and the soak's first-to-last ratio compares like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import re
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.ports.sql import merges
from benchmarks.bench_pipeline import (
    GENERATE_PER_DAY,
    _workdir,
    add_run_arguments,
    free_port,
    generate,
    produce,
    start_clickhouse,
    start_kafka,
    start_worker,
    stop_clickhouse,
    stop_kafka,
)

if TYPE_CHECKING:
    from offline.simulator.engine import SimMessage

INCIDENTS_TOPIC = "vigie.incidents.v1"
SLICE_S = 10.0
SOAK_SLICE_S = 60.0  # `--minutes`: one slice a minute
EDGE_MINUTES = 5  # soak: p99 of the first and the last this many minutes
REPLAY_QUIET_S = 15.0  # state mode: the replay is done when the lag stays 0 this long
REPLAY_MAX_S = 3600.0
DRAIN_QUIET_S = 20.0  # after the last send: stop when no new report was seen for this long
DRAIN_MAX_S = 120.0


@dataclass(frozen=True)
class Outgoing:
    """One report to send: its topic, key, payload, its reporting delay (reported_at -
    occurred_at) to keep when it is stamped, and its simulated reported_at (epoch s)."""

    topic: str
    key: bytes
    payload: dict[str, Any]
    delay_s: float
    reported_s: float


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def outgoing(n: int, seed: int, per_day: float = GENERATE_PER_DAY) -> list[Outgoing]:
    """N valid simulated reports, without re-deliveries (every report_id is new), from a
    stream of about `per_day` messages a day."""
    out: list[Outgoing] = []
    want = int(n * 1.15) + 200
    for _ in range(4):  # the simulator's share of invalid messages varies: ask for more
        out = _valid(n, seed, want, per_day)
        if len(out) == n:
            return out
        want = int(want * 1.5)
    raise RuntimeError(f"the simulator gave {len(out)} valid reports, {n} wanted")


def _valid(n: int, seed: int, want: int, per_day: float) -> list[Outgoing]:
    """Up to N valid reports of `want` simulated messages."""
    messages, _ = generate(want, seed, per_day)
    out: list[Outgoing] = []
    for m in messages:
        if m.truth["expected_reject_reason"] or m.truth["is_redelivery"]:
            continue
        payload = json.loads(m.value)
        occurred = _instant(payload["occurred_at"])
        reported = (_instant(payload["reported_at"]) if payload.get("reported_at")
                    else datetime.fromtimestamp(m.timestamp_ms / 1000, UTC))
        out.append(Outgoing(m.topic, m.key, payload,
                            max(0.0, (reported - occurred).total_seconds()),
                            reported.timestamp()))
        if len(out) == n:
            break
    return out


@dataclass
class Run:
    """What the producer sent and what the consumer saw (report_id -> epoch seconds)."""

    sent: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)


def send_steadily(bootstrap: str, reports: list[Outgoing], rate: float, run: Run,
                  event_time: str = "wall", shift: float | None = None) -> None:
    """Send report i at start + i / rate. `event_time` "wall": stamped with the moment it is
    sent. "stream": it keeps its simulated times, all shifted by one offset so that the
    last report is stamped at the end of the run (its Kafka timestamp too, the reference of
    the age checks): the simulated days pass in minutes at the simulated stream's density
    (`--stream-per-day`; by default `bench_pipeline.generate`'s, about 30,000 reports a day,
    20 times the département's), and correlation state is evicted on event time as in a
    long live run. `shift`: that offset, when the caller fixed it (`--warm-days`: the days
    sent before the run take the same)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        start = time.time()
        if shift is None:
            shift = stream_shift(reports, start, rate)
        for i, r in enumerate(reports):
            wait = start + i / rate - time.time()
            if wait > 0:
                time.sleep(wait)
            now = time.time()
            stamp = now if event_time == "wall" else min(now, r.reported_s + shift)
            payload = stamped(r, stamp)
            producer.send(r.topic, json.dumps(payload).encode(), key=r.key,
                          timestamp_ms=int(stamp * 1000))
            with run.lock:
                run.sent[payload["report_id"]] = now
        producer.flush(60)
    except Exception as exc:  # reported with the results: a run that lost its producer
        run.errors.append(f"producer: {type(exc).__name__}: {exc}")
    finally:
        producer.close(10)


def stream_shift(reports: list[Outgoing], start: float, rate: float) -> float:
    """The offset from simulated to sent time that stamps the last of `reports`, sent at
    `rate` from `start`, at the end of its sending."""
    return start + len(reports) / rate - max((r.reported_s for r in reports), default=0.0)


def stamped(r: Outgoing, stamp: float) -> dict[str, Any]:
    """The report's payload reported at `stamp` (epoch s), its reporting delay kept."""
    at = datetime.fromtimestamp(stamp, UTC)
    return {**r.payload, "reported_at": at.isoformat(timespec="milliseconds"),
            "occurred_at": (at - timedelta(seconds=r.delay_s)).isoformat(timespec="seconds")}


def split_warm(reports: list[Outgoing], n: int,
               days: float) -> tuple[list[Outgoing], list[Outgoing]]:
    """(the warm reports, the run's): the run is the last `n` reports; the warm ones are
    those before it reported at most `days` before its first report in stream order (a few
    of the run's were reported a day before that one: its earliest would keep more)."""
    head, run = reports[:len(reports) - n], reports[len(reports) - n:]
    since = (run[0].reported_s if run else 0.0) - days * 86400.0
    return [r for r in head if r.reported_s >= since], run


def warm_messages(warm: list[Outgoing], shift: float) -> list[SimMessage]:
    """The reports that precede the run in its stream (`--warm-days`), stamped with the
    run's offset: they come before its first report in event time, as the days before it.
    (Simulator messages, as `replay_messages` gives, for `bench_pipeline.produce`; no
    ground truth: the benchmark reads none of theirs.)"""
    from offline.simulator.engine import SimMessage

    out = []
    for r in warm:
        stamp = r.reported_s + shift
        out.append(SimMessage(r.topic, r.key, json.dumps(stamped(r, stamp)).encode(),
                              int(stamp * 1000), {}))
    return out


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


def cpu_s(pid: int) -> float | None:
    """A process's CPU time so far (user + system, all threads; s), from `/proc`."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


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


def scrape(port: int) -> str:
    """The worker's /metrics text ("" when it cannot be read)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
            return str(r.read().decode())
    except Exception:
        return ""


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """(name, labels) -> value of every sample of a /metrics text."""
    out: Samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        try:
            out[(name, frozenset(re.findall(r'(\w+)="([^"]*)"', labels)))] = float(value)
        except ValueError:
            continue
    return out


def since(end: Samples, start: Samples) -> Samples:
    """The counts of `end` minus those of `start` (what happened between two scrapes)."""
    return {k: v - start.get(k, 0.0) for k, v in end.items()}


def _series(samples: Samples, name: str,
            labels: dict[str, str]) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of `name` whose labels include `labels`."""
    out: list[tuple[dict[str, str], float]] = []
    for (n, frozen), value in samples.items():
        found = dict(frozen)
        if n == name and all(found.get(k) == v for k, v in labels.items()):
            out.append((found, value))
    return out


def histogram_quantile(samples: Samples, name: str, q: float, **labels: str) -> float | None:
    """Prometheus's `histogram_quantile` over one histogram's cumulative buckets (linear
    inside the bucket holding the rank)."""
    buckets = sorted((float(lb["le"]), v) for lb, v in _series(samples, name + "_bucket", labels))
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_le, lower_n = 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if math.isinf(le):
                return lower_le
            return lower_le + (le - lower_le) * ((rank - lower_n) / max(n - lower_n, 1e-9))
        lower_le, lower_n = le, n
    return None


def histogram_mean(samples: Samples, name: str, **labels: str) -> float | None:
    total = sum(v for _, v in _series(samples, name + "_sum", labels))
    count = sum(v for _, v in _series(samples, name + "_count", labels))
    return total / count if count else None


def stage_figures(samples: Samples) -> dict[str, float | None]:
    """Where the latency goes, from the worker's own histograms: reported_at -> stored and
    -> incident published (p50, p99), mean ClickHouse insert per table and mean ingest
    batch size (rows)."""
    e2e = "vigie_end_to_end_latency_seconds"
    out: dict[str, float | None] = {}
    for stage in ("stored", "incident"):
        for q in (0.5, 0.99):
            v = histogram_quantile(samples, e2e, q, stage=stage)
            out[f"{stage}_p{int(q * 100)}_s"] = None if v is None else round(v, 3)
    for table in ("reports", "incidents"):
        v = histogram_mean(samples, "vigie_clickhouse_insert_duration_seconds", table=table)
        out[f"insert_{table}_mean_s"] = None if v is None else round(v, 4)
        v = histogram_mean(samples, "vigie_clickhouse_insert_batch_rows", table=table)
        out[f"insert_{table}_mean_rows"] = None if v is None else round(v, 1)
    v = histogram_mean(samples, "vigie_consumer_batch_messages", agent="ingest")
    out["ingest_batch_mean_messages"] = None if v is None else round(v, 1)
    # the leader's detector shares the store's one thread with the inserts
    v = histogram_mean(samples, "vigie_detector_run_duration_seconds")
    out["detector_run_mean_s"] = None if v is None else round(v, 3)
    # the worker's CPU (all threads) over the phase: robust to a loaded machine, unlike
    # the latencies, which then measure the queue for the CPU
    cpu = [v for _, v in _series(samples, "process_cpu_seconds_total", {})]
    out["worker_cpu_s"] = round(cpu[0], 1) if cpu else None
    # the process stops while Python's garbage collector runs: full collections (generation
    # 2) walk the whole heap, so their pauses grow with the state held
    for gen in ("0", "1", "2"):
        name = "vigie_gc_pause_seconds"
        count = sum(v for _, v in _series(samples, name + "_count", {"generation": gen}))
        total = sum(v for _, v in _series(samples, name + "_sum", {"generation": gen}))
        out[f"gc{gen}_collections"] = count
        out[f"gc{gen}_pause_s"] = round(total, 2)
    v = histogram_quantile(samples, "vigie_gc_pause_seconds", 0.99, generation="2")
    out["gc2_pause_p99_s"] = None if v is None else round(v, 3)
    return out


def store_memory(samples: Samples) -> dict[str, float | None]:
    """RocksDB's memory for the incident-state table at the time of `samples` (MiB, by
    part), to tell it from the Python heap in the worker's RSS."""
    return {f"rocksdb_{lb['part']}_mib": round(v / 2**20, 1)
            for lb, v in _series(samples, "vigie_table_store_memory_bytes", {})}


def quantile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    return {"p50": round(quantile(latencies, 0.5), 3), "p95": round(quantile(latencies, 0.95), 3),
            "p99": round(quantile(latencies, 0.99), 3), "max": round(max(latencies), 3)}


def measure(run: Run, slice_s: float = SLICE_S) -> dict[str, Any]:
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
        slices.setdefault(int((sent - start) // slice_s), []).append(latency)
    last = max(slices, default=-1)
    per_slice = [summary(slices.get(i, [])) for i in range(last + 1)]
    return {"overall": summary(overall), "seen": len(overall),
            "slices": per_slice, "slice_counts": [len(slices.get(i, [])) for i in range(last + 1)]}


def edge_p99(run: Run, minutes: float) -> tuple[float | None, float | None]:
    """p99 of the reports sent in the first and in the last `minutes` of the run."""
    start, end = min(run.sent.values()), max(run.sent.values())
    first: list[float] = []
    last: list[float] = []
    for rid, sent in run.sent.items():
        seen = run.seen.get(rid)
        if seen is None:
            continue
        if sent - start < minutes * 60:
            first.append(max(0.0, seen - sent))
        if end - sent < minutes * 60:
            last.append(max(0.0, seen - sent))
    return summary(first)["p99"], summary(last)["p99"]


def replay_messages(days: float, per_day: float, seed: int) -> list[Any]:
    """A simulated stream of `days` days ending now (its own timestamps), realistic mix
    (malformed messages and re-deliveries included)."""
    from offline.simulator import SimulationConfig, simulate

    start = datetime.now(UTC) - timedelta(days=days, hours=1)
    return list(simulate(SimulationConfig(days=days, seed=seed, start=start,
                                          reports_per_day=per_day)))


# (epoch seconds, worker RSS MiB, worker CPU time s) of one sample
Sample = tuple[float, float | None, float | None]


def sample_worker(pid: int, every_s: float, samples: list[Sample],
                  stop: threading.Event) -> None:
    """A `Sample` now and every `every_s` until `stop`."""
    samples.append((time.time(), rss_mib(pid), cpu_s(pid)))
    while not stop.wait(every_s):
        samples.append((time.time(), rss_mib(pid), cpu_s(pid)))


# the processes beside the worker whose CPU time per slice is sampled too: is the latency
# that rises with flat worker CPU waiting for the broker, the server or the bench itself?
NEIGHBOURS = ("broker", "server", "bench")


def neighbours(kafka_dir: Path, clickhouse_dir: Path) -> dict[str, int]:
    """PIDs of `NEIGHBOURS` (this process: the bench's producer and consumer); a process
    without a pid file (chDB: no server) is left out."""
    pids = {"bench": os.getpid()}
    for name, pid_file in (("broker", kafka_dir / "kafka.pid"),
                           ("server", clickhouse_dir / "clickhouse.pid")):
        with contextlib.suppress(OSError, ValueError):
            pids[name] = int(pid_file.read_text().strip())
    return pids


def per_slice(samples: list[Sample], began: float, slice_s: float,
              n: int) -> tuple[list[float | None], list[float | None]]:
    """The worker's RSS at the end of each of `n` slices of send time from `began` (the
    last sample in it) and the CPU time it used in each (between the samples that end it
    and the one before; None where a sample is missing): where the latency grows, does the
    worker's work per slice grow with it?"""
    rss: dict[int, float | None] = {}
    cpu: dict[int, float | None] = {}
    for (_, _, before), (at, mib, now) in itertools.pairwise(samples):
        i = round((at - began) / slice_s) - 1
        rss[i] = mib
        cpu[i] = None if before is None or now is None else round(now - before, 1)
    return [rss.get(i) for i in range(n)], [cpu.get(i) for i in range(n)]


Rows = list[dict[str, Any]]


def read_server_logs(store_url: str, since: float) -> tuple[Rows | None, Rows | None]:
    """The server's own records since `since` (epoch s), its logs flushed first: the
    `merges.PARTS_SINCE` rows of the store's database and the `merges.QUERIES_SINCE` rows
    (the bench's own server: every query is the worker's or the bench's). Either is None
    when the server keeps no such log (`system.part_log`, `system.query_log`: a server
    configured otherwise than deploy/clickhouse)."""
    from streams.storage import StoreError, open_store

    store = open_store(store_url)
    try:
        try:
            store.query(merges.FLUSH_LOGS.sql)
        except StoreError as exc:
            print(f"no merge or query figures: {exc}", file=sys.stderr)
            return None, None
        database = store.database  # type: ignore[attr-defined]  # the URL's, as the store read it
        out: list[Rows | None] = []
        for what, query, params in (
            ("merge", merges.PARTS_SINCE, merges.PARTS_SINCE.bind(database=database,
                                                                 since=int(since))),
            ("query", merges.QUERIES_SINCE, merges.QUERIES_SINCE.bind(since=int(since))),
        ):
            try:
                out.append(store.query(query.sql, params))
            except StoreError as exc:
                print(f"no {what} figures: {exc}", file=sys.stderr)
                out.append(None)
        return out[0], out[1]
    finally:
        store.close()


QUERY_KINDS_SLICED = 4  # the costliest kinds of query followed slice by slice
_PLACEHOLDERS = re.compile(r"\?(?:\s*,\s*\?)+")


def query_kind(text: str) -> str:
    """A `merges.QUERIES_SINCE` kind with its whitespace collapsed and any list of
    placeholders as one `?...`: the lookups of one statement, whatever their ids' count."""
    return _PLACEHOLDERS.sub("?...", " ".join(text.split()))


def query_figures(rows: list[dict[str, Any]], began: float, slice_s: float,
                  n: int) -> dict[str, Any]:
    """From `read_server_logs`' query rows: per kind over every row (`queries_by_kind`, costliest
    first): queries, their seconds of the server's wall time and rows read, and per slice
    of send time from `began` the seconds of the `QUERY_KINDS_SLICED` costliest kinds
    (`slice_query_s`, kind -> list) and of all kinds (`slice_queries_s`)."""
    kinds: dict[str, dict[str, float]] = {}
    per_slice: dict[str, list[float]] = {}
    total = [0.0] * n
    for row in rows:
        kind = query_kind(str(row["kind"]))
        k = kinds.setdefault(kind, dict.fromkeys(("queries", "seconds", "read_rows"), 0))
        seconds = int(row["duration_ms"]) / 1000
        k["queries"] += int(row["queries"])
        k["seconds"] += seconds
        k["read_rows"] += int(row["read_rows"])
        i = math.floor((int(row["at"]) - began) / slice_s)
        if 0 <= i < n:
            per_slice.setdefault(kind, [0.0] * n)[i] += seconds
            total[i] += seconds
    ranked = sorted(kinds.items(), key=lambda kv: -kv[1]["seconds"])
    for _, k in ranked:
        k["seconds"] = round(k["seconds"], 1)
    return {
        "queries_by_kind": dict(ranked),
        "slice_query_s": {kind: [round(x, 1) for x in per_slice.get(kind, [0.0] * n)]
                          for kind, _ in ranked[:QUERY_KINDS_SLICED]},
        "slice_queries_s": [round(x, 1) for x in total],
    }


def merge_figures(rows: list[dict[str, Any]], began: float, slice_s: float,
                  n: int) -> dict[str, Any]:
    """From `read_server_logs`' part rows: per slice of send time from `began` (n slices;
    later rows, the drain's, in no slice) the rows the server's merges wrote (`slice_merged_rows`),
    their seconds of its wall time (`slice_merge_s`) and the parts the inserts wrote
    (`slice_new_parts`); per table over every row (`merges_by_table`): parts written, rows
    inserted, merges, rows merged, their seconds and rows merged per row inserted (the
    table's write amplification)."""
    merged = [0] * n
    merge_ms = [0] * n
    new_parts = [0] * n
    tables: dict[str, dict[str, float]] = {}
    for row in rows:
        i = math.floor((int(row["at"]) - began) / slice_s)
        t = tables.setdefault(str(row["table"]), dict.fromkeys(
            ("new_parts", "rows_inserted", "merges", "rows_merged", "merge_s"), 0))
        if row["event"] == "MERGE_PARTS":
            t["merges"] += int(row["parts"])
            t["rows_merged"] += int(row["rows"])
            t["merge_s"] += int(row["duration_ms"]) / 1000
            if 0 <= i < n:
                merged[i] += int(row["rows"])
                merge_ms[i] += int(row["duration_ms"])
        elif row["event"] == "NEW_PART":
            t["new_parts"] += int(row["parts"])
            t["rows_inserted"] += int(row["rows"])
            if 0 <= i < n:
                new_parts[i] += int(row["parts"])
    for t in tables.values():
        t["merge_s"] = round(t["merge_s"], 1)
        t["rows_merged_per_row_inserted"] = (round(t["rows_merged"] / t["rows_inserted"], 1)
                                             if t["rows_inserted"] else 0.0)
    return {
        "slice_merged_rows": merged,
        "slice_merge_s": [round(ms / 1000, 1) for ms in merge_ms],
        "slice_new_parts": new_parts,
        "merges_by_table": dict(sorted(tables.items(), key=lambda kv: -kv[1]["merge_s"])),
    }


def consumer_lag(samples: Samples) -> float | None:
    """Messages behind, over every consumer of the worker (ingest, correlate), as its lag
    gauge reads them from the broker; None before the gauge is set."""
    lags = _series(samples, "vigie_consumer_lag_messages", {})
    return sum(v for _, v in lags) if lags else None


def wait_replayed(run: Run, proc: Any, port: int, log_name: str) -> int:
    """Wait until the worker caught up with the replay: its consumers' lag (refreshed every
    10 s) read 0 on two scrapes `REPLAY_QUIET_S` apart with no incident published between
    them. Returns the replay's reports seen in an incident."""
    end = time.monotonic() + REPLAY_MAX_S
    caught_up_with: int | None = None  # reports seen when the lag first read 0
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited {proc.returncode}; see {log_name}")
        with run.lock:
            count = len(run.seen)
        lag = consumer_lag(parse_metrics(scrape(port)))
        if lag == 0 and count > 0:
            if caught_up_with == count:
                return count
            caught_up_with = count
        else:
            caught_up_with = None
        time.sleep(REPLAY_QUIET_S)
    raise RuntimeError(f"replay not done after {REPLAY_MAX_S:.0f} s")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="reports a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--minutes", type=float, default=None,
                        help="soak: run this long (instead of --seconds), slices of a minute")
    parser.add_argument("--state-days", type=float, default=0.0,
                        help="first replay a simulated stream of this many days (0: none)")
    parser.add_argument("--state-per-day", type=float, default=1500.0,
                        help="valid reports a day of the replay (the simulator's default)")
    parser.add_argument("--event-time", choices=("wall", "stream"), default="wall",
                        help="wall: reports stamped when sent (every report of the run is "
                             "within the correlation's reach of every other); stream: they "
                             "keep the simulated stream's times (--stream-per-day), shifted "
                             "to end with the run (days pass in minutes, state is evicted)")
    parser.add_argument("--stream-per-day", type=float, default=float(GENERATE_PER_DAY),
                        help="messages a day of simulated time in the sent stream (default "
                             "30,000, 20 times the département's; 1500: its own density, "
                             "so a 30-minute soak at 200/s passes about 8 months)")
    parser.add_argument("--warm-days", type=float, default=0.0,
                        help="stream time: first send, at full speed, this many days of the "
                             "same stream before the run's (0: none), so the run starts "
                             "from the state those days leave, not from an empty one")
    add_run_arguments(parser, store="chdb")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60 if args.minutes is not None else args.seconds
    slice_s = SOAK_SLICE_S if args.minutes is not None else SLICE_S
    n = int(args.rate * seconds)
    if args.warm_days > 0 and (args.event_time != "stream" or args.state_days > 0):
        parser.error("--warm-days needs --event-time stream and no --state-days")
    # the warm days come first in the stream: of about --stream-per-day messages a day,
    # fewer valid reports (no malformed message, no re-delivery), so that many reports a day
    # reach past them, and the reports before those days (counted back from the run's
    # first report in stream order: a few later ones were reported a day before it) are
    # left out
    n_warm = int(args.warm_days * args.stream_per_day)
    warm, reports = split_warm(outgoing(n + n_warm, args.seed, args.stream_per_day), n,
                               args.warm_days)
    # the run's offset from simulated time, fixed now: the warm days take it too (the run
    # starts when they are done, so its stamps end that long before its end: all in the
    # past, in order)
    shift = stream_shift(reports, time.time(), args.rate) if warm else None
    replay = (replay_messages(args.state_days, args.state_per_day, args.seed + 1000)
              if args.state_days > 0 else
              warm_messages(warm, shift) if warm and shift is not None else [])
    run = Run()
    rss: list[Sample] = []
    beside: dict[str, list[Sample]] = {name: [] for name in NEIGHBOURS}
    state: dict[str, Any] = {}
    parts: Rows | None = None
    queries: Rows | None = None
    with _workdir(args.keep) as tmpdir:
        tmp = Path(tmpdir)
        bootstrap = start_kafka(tmp / "kafka")
        ch_dir = tmp / "clickhouse"
        proc = log = None
        sampling = threading.Event()
        try:
            store_url = (start_clickhouse(ch_dir).rsplit("/", 1)[0] + "/bench"
                         if args.store == "server" else f"chdb://{tmp}/chdb")
            asyncio.run(produce(bootstrap, replay, args.partitions))  # + the input topics
            # the chDB worker embeds the console: on a port of its own, not 8080, which
            # another worker on this machine may hold
            os.environ["VIGIE_CONSOLE_PORT"] = str(free_port())
            proc, port, log = start_worker(bootstrap, store_url, tmp, "bench-latency")
            replay_began = time.time()
            wait_ready(port, proc)
            rss_start = rss_mib(proc.pid)
            watcher = threading.Thread(target=watch_incidents, args=(bootstrap, run),
                                       daemon=True)
            watcher.start()
            if replay:
                state["replay_messages"] = len(replay)
                state["replay_reports_seen"] = wait_replayed(run, proc, port, log.name)
                state["replay_s"] = round(time.time() - replay_began - REPLAY_QUIET_S, 1)
                state["rss_after_replay_mib"] = rss_start = rss_mib(proc.pid)
                print(f"replayed {args.state_days or args.warm_days:g} days "
                      f"({len(replay):,} messages) in "
                      f"{state['replay_s']:.0f} s; worker RSS {rss_start} MiB", file=sys.stderr)
            sampler = threading.Thread(target=sample_worker, daemon=True,
                                       args=(proc.pid, slice_s, rss, sampling))
            sampler.start()
            for name, pid in neighbours(tmp / "kafka", ch_dir).items():
                threading.Thread(target=sample_worker, daemon=True,
                                 args=(pid, slice_s, beside[name], sampling)).start()
            before = parse_metrics(scrape(port))  # the live phase's figures only
            began = time.time()
            send_steadily(bootstrap, reports, args.rate, run, args.event_time, shift)
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
            end_samples = parse_metrics(scrape(port))
            stages = stage_figures(since(end_samples, before))
            stages.update(store_memory(end_samples))
            run.stop.set()
            watcher.join(10)
            if args.store == "server":
                parts, queries = read_server_logs(store_url, began)
        finally:
            run.stop.set()
            sampling.set()
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
    m = measure(run, slice_s)
    overall, slices = m["overall"], m["slices"]
    slice_rss, slice_cpu = per_slice(rss, began, slice_s, len(slices))
    slice_beside = {name: per_slice(samples, began, slice_s, len(slices))[1]
                    for name, samples in beside.items()}
    server = merge_figures(parts, began, slice_s, len(slices)) if parts is not None else None
    asked = query_figures(queries, began, slice_s, len(slices)) if queries is not None else None
    slice_merged = (server["slice_merged_rows"] if server is not None
                    else [None] * len(slices))
    print(f"latency, report sent -> first incident version listing it ({args.store}, "
          f"{args.rate:g}/s for {seconds:g} s): {m['seen']:,} of {len(run.sent):,} "
          f"reports seen", file=sys.stderr)
    print(f"{'slice (s)':>11} {'n':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
          f"{'RSS MiB':>8} {'CPU s':>6} {'merged':>9} "
          + " ".join(f"{name:>6}" for name in NEIGHBOURS), file=sys.stderr)
    rows: list[tuple[str, Any, Any, Any, Any, Any, list[float | None]]] = [
            (f"{i * slice_s:g}-{(i + 1) * slice_s:g}", c, s, r, u, g,
             [slice_beside[name][i] for name in NEIGHBOURS])
            for i, (c, s, r, u, g) in enumerate(zip(m["slice_counts"], slices, slice_rss,
                                                    slice_cpu, slice_merged, strict=True))]
    rows.append(("all", m["seen"], overall, rss_end, None, None, [None] * len(NEIGHBOURS)))
    for label, c, s, r, u, g, b in rows:
        cells = " ".join(f"{'-' if s[k] is None else format(s[k], '.3f'):>7}"
                         for k in ("p50", "p95", "p99", "max"))
        print(f"{label:>11} {c:>6} {cells} {'-' if r is None else r:>8} "
              f"{'-' if u is None else u:>6} {'-' if g is None else g:>9} "
              + " ".join(f"{'-' if x is None else x:>6}" for x in b), file=sys.stderr)
    if server is not None:
        print("ClickHouse server, per table (merged: rows its merges wrote): "
              + "; ".join(f"{name} {t['new_parts']:.0f} parts, {t['rows_inserted']:.0f} rows "
                          f"inserted, {t['rows_merged']:.0f} merged "
                          f"(x{t['rows_merged_per_row_inserted']}) in {t['merge_s']} s"
                          for name, t in server["merges_by_table"].items()), file=sys.stderr)
    if asked is not None:
        print("ClickHouse server, queries by kind (costliest first; s of its wall time):",
              file=sys.stderr)
        for kind, k in list(asked["queries_by_kind"].items())[:8]:
            print(f"  {k['seconds']:>8} s {k['queries']:>7.0f} queries "
                  f"{k['read_rows']:>12,.0f} rows read  {kind[:90]}", file=sys.stderr)
        for kind, xs in asked["slice_query_s"].items():
            print(f"  per slice, {kind[:50]}: {' '.join(format(x, 'g') for x in xs)}",
                  file=sys.stderr)
    print(f"worker RSS: {rss_start} MiB when ready, {rss_end} MiB at the end", file=sys.stderr)
    print("worker stages: " + ", ".join(f"{k} {v}" for k, v in stages.items()), file=sys.stderr)
    result: dict[str, Any] = {
        "bench": "latency",
        "store": args.store,
        "mode": ("state" if args.state_days > 0 else
                 "soak" if args.minutes is not None else "steady")
                + ("" if args.event_time == "wall" else ", stream time")
                + (", warm" if warm else ""),
        "event_time": args.event_time,
        **({"stream_per_day": args.stream_per_day} if args.event_time == "stream" else {}),
        "rate_per_s": args.rate,
        "duration_s": seconds,
        "sent_rate_per_s": round(len(run.sent) / sent_for, 1),
        "reports_sent": len(run.sent),
        "reports_seen": m["seen"],
        "latency_p50_s": overall["p50"],
        "latency_p95_s": overall["p95"],
        "latency_p99_s": overall["p99"],
        "latency_max_s": overall["max"],
        "slice_s": slice_s,
        "slice_p50_s": [s["p50"] for s in slices],
        "slice_p95_s": [s["p95"] for s in slices],
        "slice_p99_s": [s["p99"] for s in slices],
        "slice_max_s": [s["max"] for s in slices],
        "slice_rss_mib": slice_rss,
        # the worker's CPU time in each slice (s): the work that grows, if any
        "slice_worker_cpu_s": slice_cpu,
        **{f"slice_{name}_cpu_s": cpu for name, cpu in slice_beside.items()},
        "worker_rss_ready_mib": rss_start,
        "worker_rss_end_mib": rss_end,
        "worker_stages": stages,
        "worker_cpu_ms_per_report": (None if stages["worker_cpu_s"] is None or not m["seen"]
                                     else round(1000 * stages["worker_cpu_s"] / m["seen"], 2)),
        "load_avg_1m": round(os.getloadavg()[0], 1),
        **(server or {}),
        **(asked or {}),
    }
    if args.state_days > 0:
        result.update(state_days=args.state_days, state_per_day=args.state_per_day, **state)
    if warm:
        span = max(r.reported_s for r in warm) - min(r.reported_s for r in warm)
        result.update(warm_days=args.warm_days, warm_reports=len(warm),
                      warm_span_days=round(span / 86400, 2), **state)
    if seconds >= 2 * EDGE_MINUTES * 60:
        first, last = edge_p99(run, EDGE_MINUTES)
        result.update(first_5min_p99_s=first, last_5min_p99_s=last)
        if first and last is not None:
            result["last_over_first_p99"] = round(last / first, 3)
            print(f"p99 first {EDGE_MINUTES} min {first:.3f} s, last {EDGE_MINUTES} min "
                  f"{last:.3f} s (x{last / first:.2f})", file=sys.stderr)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
