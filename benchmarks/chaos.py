"""`make chaos`: the live pipeline under faults, checked against a fault-free replay of the
same stream.

    python -m benchmarks.chaos [--seed 5] [--days 10] [--chunks 12] [--kills 5]
                               [--outage-seconds 90] [--short] [--strict] [--record]

Everything runs on loopback, on free ports, in a temp dir of its own: a Kafka broker
(`scripts/kafka.sh`), a ClickHouse server (`scripts/clickhouse.sh`) and `vigie worker`
processes. The stream is simulated (`offline.simulator`: malformed messages and re-deliveries
included, each malformed one with the dead-letter reason it must get), plus a few reports
stamped in 2100 (`timestamp_in_future`). It is produced in chunks, in stream order, while:

- the worker is SIGKILLed at random points: mid-stream, and right after a restart (before or
  while it joins its groups), then started again at once (a supervisor's restart);
- ClickHouse is stopped `--outage-seconds` while a chunk arrives; meanwhile `/metrics` is
  sampled every half second: `vigie_ready` must be 0, `vigie_dependency_up{clickhouse}` 0,
  the ingest lag > 0, never decreasing, and equal to what the broker says is uncommitted;
- the broker is restarted (clean stop, start on the same directory and ports);
- the last part of the stream arrives as one backlog, with one more SIGKILL in its catch-up.

After each fault the harness waits until the worker is ready and its ingest group has
committed every message (the broker's offsets, and the exported lag 0): the recovery time is
from the fault's end to that point. Then, once correlation has settled, it compares with
`vigie backtest` of the same lines (the fault-free reference):

- every valid report stored exactly once (`reports FINAL`: the count and each id once);
- every malformed message dead-lettered with its reason (the dead-letter topic, by origin
  topic/partition/offset; `rejected FINAL` counts by reason);
- incident assignment: pairwise F1 of the live incidents against the backtest's (target
  >= 0.98; the F1 of each against the simulator's truth is shown too);
- alerts: no hotspot under two alert ids at once (replaying the alert topic's lifecycle), the
  versions of each id contiguous, and no alert left open where the backtest closed its zone.

It prints a table fault x outcome with recovery times, then one of the checks, then one JSON
line (with `--record`, also appended to `benchmarks/results/chaos.jsonl`).

Exit codes: 0 every hard guarantee held (exactly once, dead letters, alerts, truthful
readiness and lag, every recovery within its bound); 1 one of them failed, or with
`--strict` also the F1 below its target; 2 bad arguments; 3 the harness itself failed
(a dependency did not start, the global `--timeout`). Processes are stopped by PID, the temp
dir removed (unless `--keep`), also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from offline.simulator import SimulationConfig, simulate
from offline.simulator.engine import SimMessage

ROOT = Path(__file__).resolve().parents[1]
F1_TARGET = 0.98
SIM_TOPICS = {"vigie.reports.partner.v1": "partner", "vigie.reports.citizen.v1": "citizen"}
# Reports of a simulated day stamped far in the future: dead-lettered, never stored.
FUTURE = "2100-01-01T00:00:00Z"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HARNESS = 0, 1, 2, 3


class HarnessError(RuntimeError):
    """The harness could not run a step (a dependency did not start, the global timeout)."""


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 5
    days: float = 10.0
    start: str = "2024-03-18"
    rate_per_day: float = 1500.0
    malformed_rate: float = 0.02
    future_reports: int = 5
    chunks: int = 12
    kills: int = 5
    outage_s: float = 90.0
    backlog_share: float = 0.3
    partitions: int = 3
    recovery_timeout_s: float = 240.0
    timeout_s: float = 1800.0
    warmup_days: float = 7.0  # the live detector's `min_history_days`
    settle_quiet_s: float = 12.0  # incidents and alerts unchanged this long: settled


# The CI variant (`--short`, tests/integration/test_chaos_short.py).
SHORT: dict[str, Any] = dict(days=1.0, kills=2, outage_s=10.0, chunks=5,
                             recovery_timeout_s=120.0, timeout_s=400.0, future_reports=3,
                             settle_quiet_s=4.0)


# ---- the stream ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    topic: str  # "partner" or "citizen"
    key: bytes
    value: bytes
    timestamp_ms: int
    report_id: str
    reject_reason: str | None  # the dead-letter reason it must get; None: valid
    incident_id: str | None  # the simulator's true incident


def future_report(msg: SimMessage, n: int) -> Message:
    """A copy of a valid report under a new id, stamped in 2100."""
    obj = orjson.loads(msg.value)
    rid = f"chaos-future-{n}"
    obj.update(report_id=rid, occurred_at=FUTURE, reported_at=FUTURE)
    return Message(SIM_TOPICS[msg.topic], rid.encode(), orjson.dumps(obj), msg.timestamp_ms,
                   rid, "timestamp_in_future", None)


def make_stream(cfg: ChaosConfig) -> list[Message]:
    sim = list(simulate(SimulationConfig(
        days=cfg.days, seed=cfg.seed, start=cfg.start, reports_per_day=cfg.rate_per_day,
        malformed_rate=cfg.malformed_rate)))
    out = [Message(SIM_TOPICS[m.topic], m.key, m.value, m.timestamp_ms,
                   str(m.truth["report_id"]),
                   str(m.truth["expected_reject_reason"] or "") or None,
                   None if m.truth["incident_id"] is None else str(m.truth["incident_id"]))
           for m in sim]
    rnd = random.Random(cfg.seed)
    valid = [m for m in sim if not m.truth["expected_reject_reason"]]
    for n in range(cfg.future_reports):
        out.insert(rnd.randrange(len(out)), future_report(rnd.choice(valid), n))
    return out


def split(stream: Sequence[Message], parts: int, backlog_share: float) -> list[list[Message]]:
    """`parts` contiguous chunks in stream order, the last one (the backlog) holding
    `backlog_share` of the stream and the others equal shares of the rest."""
    n_backlog = int(len(stream) * backlog_share)
    head = len(stream) - n_backlog
    bounds = [round(head * i / (parts - 1)) for i in range(parts)]
    chunks = [list(stream[a:b]) for a, b in itertools.pairwise(bounds)]
    return [*chunks, list(stream[head:])]


def fault_plan(kills: int, outage: bool = True) -> list[tuple[str, bool]]:
    """The faults in order, (name, flag): kills spread around the ClickHouse outage (unless
    `outage` is False: `--outage-seconds 0`) and the broker restart, every other one (flag)
    with a second kill during its restart; the backlog last, its flag a kill in its
    catch-up, which takes the last kill when there are at least 3."""
    in_backlog = kills >= 3
    plain = [("kill", i % 2 == 1) for i in range(kills - int(in_backlog))]
    steps: list[tuple[str, bool]] = []
    others = [("clickhouse", False), ("broker", False)] if outage else [("broker", False)]
    slots = len(others) + 1
    per = [len(plain) // slots + (1 if i < len(plain) % slots else 0) for i in range(slots)]
    k = 0
    for i in range(slots):
        steps += plain[k:k + per[i]]
        k += per[i]
        if i < len(others):
            steps.append(others[i])
    steps.append(("backlog", in_backlog))
    return steps


def chunk_groups(stream: Sequence[Message], steps: int, chunks: int, backlog_share: float,
                 ) -> tuple[list[list[Message]], list[list[list[Message]]]]:
    """The stream in `chunks` chunks (at least one per step and the first), and the chunks of
    each step: the first chunk goes before any fault, the backlog (the last chunk) to the
    last step, the others in turn to the steps before it."""
    total = max(chunks, steps + 1)
    parts = split(stream, total, backlog_share)
    gap = (total - 2) / (steps - 1)  # >= 1: every step has a chunk
    bounds = [1 + int(gap * i + 0.5) for i in range(steps)]
    groups = [parts[a:b] for a, b in itertools.pairwise(bounds)]
    groups.append([parts[-1]])
    return parts, groups


# ---- the environment (own processes, or the test suite's fixtures) -------------------------
@dataclass
class Environment:
    """Where the live run happens: a broker, a ClickHouse database and the means to stop and
    start them. The harness owns neither; `own_environment` builds one it started."""

    bootstrap: str
    store_url: str
    tmp: Path
    stop_clickhouse: Callable[[], None]
    start_clickhouse: Callable[[], None]
    restart_broker: Callable[[], None]


def _script(args: list[str], timeout: float) -> str:
    done = subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise HarnessError(f"{' '.join(args[:2])} failed: {done.stderr.strip()[-1500:]}")
    return done.stdout.strip().splitlines()[-1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def own_environment(tmp: Path) -> Iterator[Environment]:
    """A broker and a ClickHouse server of their own, in `tmp`, stopped on exit (by the
    scripts, which signal the PIDs they recorded)."""
    kafka, clickhouse = tmp / "kafka", tmp / "clickhouse"
    kafka_sh, clickhouse_sh = str(ROOT / "scripts/kafka.sh"), str(ROOT / "scripts/clickhouse.sh")
    try:
        _script([kafka_sh, "fetch"], 900)
        bootstrap = _script([kafka_sh, "start", "--dir", str(kafka), "--port", str(free_port()),
                             "--controller-port", str(free_port()), "--timeout", "180"], 400)
        url = _script([clickhouse_sh, "start", str(clickhouse)], 180)
        store_url = url.rsplit("/", 1)[0] + "/chaos"

        def restart_broker() -> None:
            _script([kafka_sh, "stop", "--dir", str(kafka)], 120)
            _script([kafka_sh, "start", "--dir", str(kafka), "--timeout", "180"], 400)

        def stop_clickhouse() -> None:
            _script([clickhouse_sh, "stop", str(clickhouse)], 120)

        def start_clickhouse() -> None:
            _script([clickhouse_sh, "start", str(clickhouse)], 180)

        yield Environment(bootstrap, store_url, tmp, stop_clickhouse, start_clickhouse,
                          restart_broker)
    finally:
        for args in ([kafka_sh, "stop", "--dir", str(kafka)], [clickhouse_sh, "stop",
                                                                str(clickhouse)]):
            with contextlib.suppress(Exception):
                subprocess.run(["bash", *args], cwd=ROOT, capture_output=True, timeout=120,
                               check=False)


# ---- the worker -----------------------------------------------------------------------------
class Worker:
    """`vigie worker` processes, one at a time, their output appended to one log."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.sigkills = 0

    def start(self) -> None:
        if self.running:
            raise HarnessError("worker already running")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vigie.cli", "worker"], cwd=ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def sigkill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
            self.sigkills += 1

    def stop(self) -> int | None:
        """SIGTERM (Faust commits and flushes), SIGKILL after 30 s; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def metric_values(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> {name: [(labels, value)]}."""
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, raw = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels: dict[str, str] = {}
        for part in rest.rstrip("}").split(","):
            if "=" in part:
                k, _, v = part.partition("=")
                labels[k.strip()] = v.strip().strip('"')
        with contextlib.suppress(ValueError):
            out[name].append((labels, float(raw)))
    return out


def metric(values: Mapping[str, list[tuple[dict[str, str], float]]], name: str,
           **labels: str) -> float | None:
    """Sum of the series of `name` whose labels include `labels`; None when there is none."""
    found = [v for have, v in values.get(name, []) if all(have.get(k) == x
                                                         for k, x in labels.items())]
    return sum(found) if found else None


# ---- the run --------------------------------------------------------------------------------
@dataclass
class FaultRow:
    fault: str
    sigkills: int = 0
    outcome: str = ""
    ok: bool = True
    recovery_s: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class CheckRow:
    check: str
    expected: str
    got: str
    ok: bool
    hard: bool = True


@dataclass
class ChaosResult:
    faults: list[FaultRow]
    checks: list[CheckRow]
    summary: dict[str, Any]
    seconds: float

    def hard_ok(self) -> bool:
        return all(r.ok for r in self.faults) and all(c.ok for c in self.checks if c.hard)

    def all_ok(self) -> bool:
        return self.hard_ok() and all(c.ok for c in self.checks)

    def exit_code(self, strict: bool) -> int:
        return EXIT_OK if (self.all_ok() if strict else self.hard_ok()) else EXIT_FAILED


class Run:
    def __init__(self, cfg: ChaosConfig, env: Environment, stream: list[Message],
                 deadline: float, log: Callable[[str], None]) -> None:
        self.cfg, self.envr, self.stream, self.deadline, self.say = cfg, env, stream, deadline, log
        self.rnd = random.Random(cfg.seed * 7919 + 1)
        tag = f"chaos{os.getpid()}x{cfg.seed}x{int(time.time()) % 100000}"
        self.tag = tag
        self.topics = {
            "partner": f"{tag}.reports.partner", "citizen": f"{tag}.reports.citizen",
            "rejected": f"{tag}.reports.rejected", "enriched": f"{tag}.reports.enriched",
            "incidents": f"{tag}.incidents", "alerts": f"{tag}.alerts",
            "alert_actions": f"{tag}.alerts.actions",
        }
        self.web_port = free_port()
        self.app_id = f"vigie-{tag}"
        worker_env = {
            "VIGIE_KAFKA_BOOTSTRAP": env.bootstrap,
            "VIGIE_APP_ID": self.app_id,
            "VIGIE_CLICKHOUSE": env.store_url,
            "VIGIE_WEB_PORT": str(self.web_port),
            "VIGIE_WEB_HOST": "127.0.0.1",
            "VIGIE_WORKER_DATA_DIR": str(env.tmp / "worker"),
            "VIGIE_TOPIC_PARTITIONS": str(cfg.partitions),
            "VIGIE_SINK_BATCH_SECONDS": "0.5",
            "VIGIE_SINK_BACKOFF_SECONDS": "0.2",
            "VIGIE_CLICKHOUSE_UNREADY_SECONDS": "2",
            "VIGIE_DETECTOR_CLOCK": "data",
            "VIGIE_DETECT_INTERVAL_SECONDS": "5",
            # simulated data only: a fixed key for the run, never a deployment's
            "VIGIE_PSEUDONYM_SECRET": f"chaos-run-{tag}-0123456789abcdef",
            # simulated reports carry 2024 timestamps and retention follows them
            "VIGIE_INPUT_RETENTION_HOURS": "-1",
            **{f"VIGIE_TOPIC_{k.upper()}": v for k, v in self.topics.items()},
        }
        self.worker = Worker(worker_env, env.tmp / "worker.log")
        self.produced: list[tuple[Message, tuple[str, int, int]]] = []
        self.faults: list[FaultRow] = []
        self.outage: dict[str, Any] = {}
        self.began = time.monotonic()
        self.last_seen = ""
        self.crashes = 0  # the worker exited without being killed (restarted at once)

    # -- helpers --
    def remaining(self, bound: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise HarnessError("global timeout reached")
        return min(bound, left)

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics",
                                        timeout=5) as resp:
                return metric_values(resp.read().decode())
        except (OSError, ValueError):
            return None

    def produce(self, messages: Sequence[Message]) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.envr.bootstrap, acks="all",
                                 linger_ms=10, max_request_size=2_000_000)
        try:
            futures = [(m, producer.send(self.topics[m.topic], key=m.key, value=m.value,
                                         timestamp_ms=m.timestamp_ms)) for m in messages]
            producer.flush(self.remaining(120))
            for m, fut in futures:
                meta = fut.get(timeout=30)
                self.produced.append((m, (meta.topic, meta.partition, meta.offset)))
        finally:
            producer.close(10)

    def committed_and_end(self) -> tuple[int, int] | None:
        """The ingest group's committed offsets and the input's end offsets (the broker's
        view); None while the broker does not answer."""
        from kafka import KafkaConsumer, TopicPartition

        try:
            consumer = KafkaConsumer(bootstrap_servers=self.envr.bootstrap,
                                     group_id=f"{self.app_id}-ingest", enable_auto_commit=False,
                                     request_timeout_ms=5000)
        except Exception:
            return None
        try:
            tps = [TopicPartition(self.topics[t], p) for t in ("partner", "citizen")
                   for p in range(self.cfg.partitions)]
            end = sum(consumer.end_offsets(tps).values())
            committed = sum(consumer.committed(tp) or 0 for tp in tps)
            return committed, end
        except Exception:
            return None
        finally:
            consumer.close()

    def drained(self) -> bool:
        """Ready, every input message committed, the exported ingest lag 0."""
        values = self.metrics()
        ready = None if values is None else metric(values, "vigie_ready")
        lag = None if values is None else metric(values, "vigie_consumer_lag_messages",
                                                 consumer="ingest")
        offsets = self.committed_and_end()
        self.last_seen = f"ready {ready}, ingest lag {lag}, committed/end {offsets}"
        return (ready == 1 and lag in (0.0, None) and offsets is not None
                and offsets[1] > 0 and offsets[0] == offsets[1])

    def wait_drained(self, since: float, row: FaultRow) -> None:
        deadline = time.monotonic() + self.remaining(self.cfg.recovery_timeout_s)
        while time.monotonic() < deadline:
            if not self.worker.running:
                row.notes.append("worker exited by itself; restarted")
                row.ok = False
                self.crashes += 1
                self.worker.start()
            if self.drained():
                row.recovery_s = time.monotonic() - since
                return
            time.sleep(0.5)
        row.ok = False
        row.notes.append(f"not drained within {self.cfg.recovery_timeout_s:.0f} s"
                         f" ({self.last_seen})")
        self.say(self.worker.tail())
        self.remaining(1)  # a global timeout is the harness's failure, not an outcome

    def wait_ready(self, bound: float) -> bool:
        deadline = time.monotonic() + self.remaining(bound)
        while time.monotonic() < deadline:
            values = self.metrics()
            if values is not None and metric(values, "vigie_ready") == 1:
                return True
            if not self.worker.running:
                return False
            time.sleep(0.3)
        return False

    # -- faults --
    def first_chunk(self, chunk: list[Message]) -> None:
        row = FaultRow("none (first chunk)", outcome="stored")
        began = time.monotonic()
        self.worker.start()
        if not self.wait_ready(180):
            raise HarnessError(f"worker not ready:\n{self.worker.tail()}")
        row.notes.append(f"worker ready in {time.monotonic() - began:.1f} s")
        self.produce(chunk)
        self.wait_drained(time.monotonic(), row)
        self.faults.append(row)

    def kill(self, groups: list[list[Message]], during_restart: bool, n: int) -> None:
        name = "SIGKILL mid-stream" + (", again during the restart" if during_restart else "")
        row = FaultRow(f"{name} (#{n})")
        before = self.worker.sigkills
        at = self.rnd.randrange(len(groups))  # killed after this chunk, the rest sent
        for group in groups[:at + 1]:
            self.produce(group)
        time.sleep(self.rnd.uniform(0.2, 3.0))
        self.worker.sigkill()
        self.worker.start()
        if during_restart:
            delay = self.rnd.uniform(0.5, 6.0)
            time.sleep(delay)
            was_ready = (v := self.metrics()) is not None and metric(v, "vigie_ready") == 1
            self.worker.sigkill()
            row.notes.append(f"2nd kill {delay:.1f} s after start"
                             + (" (was ready)" if was_ready else " (not ready yet)"))
            self.worker.start()
        restarted = time.monotonic()
        for group in groups[at + 1:]:
            self.produce(group)
        row.sigkills = self.worker.sigkills - before
        self.wait_drained(restarted, row)
        row.outcome = "restarted, caught up" if row.ok else "NOT caught up"
        self.faults.append(row)

    def clickhouse_outage(self, groups: list[list[Message]]) -> None:
        cfg = self.cfg
        row = FaultRow(f"ClickHouse down {cfg.outage_s:.0f} s")
        committed_before = self.committed_and_end()
        self.envr.stop_clickhouse()
        try:
            stopped = time.monotonic()
            produced, produced_at = False, 0.0
            samples: list[tuple[float, float | None, float | None, float | None]] = []
            while time.monotonic() - stopped < cfg.outage_s:
                self.remaining(1)
                if not produced and time.monotonic() - stopped >= min(1.0, cfg.outage_s / 3):
                    for group in groups:
                        self.produce(group)
                    produced, produced_at = True, time.monotonic() - stopped
                values = self.metrics()
                if values is not None:
                    samples.append((time.monotonic() - stopped, metric(values, "vigie_ready"),
                                    metric(values, "vigie_dependency_up", dependency="clickhouse"),
                                    metric(values, "vigie_consumer_lag_messages",
                                           consumer="ingest")))
                time.sleep(0.5)
            if not produced:
                for group in groups:
                    self.produce(group)
                produced_at = time.monotonic() - stopped
            alive = self.worker.running
            offsets = self.committed_and_end()
            last = self.metrics()
        finally:  # back up whatever happened (the tests share the server)
            self.envr.start_clickhouse()
        started = time.monotonic()
        # Truthful while down. The worker learns of the outage by failing to write: once the
        # chunk is in, the unready grace (2 s) and one lag refresh (5 s) have passed, it must
        # say not ready and ClickHouse down; the lag positive, never decreasing, and at the
        # end what the broker says is left uncommitted.
        settled = [s for s in samples if s[0] >= produced_at + 5.0]
        unready_at = next((s[0] for s in samples if s[1] == 0), None)
        lags = [s[3] for s in settled if s[3] is not None]
        uncommitted = None if offsets is None else offsets[1] - offsets[0]
        last_lag = None if last is None else metric(last, "vigie_consumer_lag_messages",
                                                    consumer="ingest")
        problems = []
        if not alive:
            problems.append("worker died")
        if not settled:
            problems.append("no /metrics sample while down")
        if any(s[1] != 0 for s in settled):
            problems.append(f"vigie_ready {sorted({s[1] for s in settled}, key=str)}")
        if any(s[2] != 0 for s in settled):
            problems.append(f"dependency_up {sorted({s[2] for s in settled}, key=str)}")
        if not lags or max(lags) <= 0:
            problems.append("lag never > 0")
        if any(b < a for a, b in itertools.pairwise(lags)):
            problems.append("lag decreased while down")
        if uncommitted is None or last_lag != uncommitted:
            problems.append(f"lag {last_lag} != uncommitted {uncommitted}")
        if committed_before is not None and offsets is not None \
                and offsets[0] != committed_before[0]:
            problems.append("offsets committed while ClickHouse was down")
        self.outage = {"samples": len(settled), "max_lag": max(lags, default=0),
                       "uncommitted": uncommitted, "problems": problems}
        row.ok = not problems
        row.outcome = ("ready 0, clickhouse down, lag truthful" if row.ok
                       else "UNTRUTHFUL: " + "; ".join(problems))
        row.notes.append(f"{len(settled)} samples, lag up to {max(lags, default=0):.0f}, "
                         + ("never unready" if unready_at is None else
                            f"unready {unready_at:.1f} s after the stop (chunk at"
                            f" {produced_at:.1f} s)"))
        self.say("chaos: while ClickHouse was down (s since the stop, chunk at "
                 f"{produced_at:.1f} s): " + ", ".join(
                     f"{t:.1f} ready={r} ch={c} lag={lag}" for t, r, c, lag in samples))
        self.wait_drained(started, row)
        if row.recovery_s is None:
            row.outcome += "; NOT caught up"
        self.faults.append(row)

    def broker_restart(self, groups: list[list[Message]]) -> None:
        row = FaultRow("broker restart")
        seen_down = []
        began = time.monotonic()
        self.envr.restart_broker()
        row.notes.append(f"broker back in {time.monotonic() - began:.1f} s")
        started = time.monotonic()
        # the worker sees it: Kafka down, then up
        while time.monotonic() - started < self.remaining(60):
            values = self.metrics()
            up = None if values is None else metric(values, "vigie_dependency_up",
                                                    dependency="kafka")
            seen_down.append(up)
            if up == 1 and 0.0 in seen_down:
                break
            if up == 1 and time.monotonic() - started > 10:
                break
            time.sleep(0.3)
        if 0.0 not in seen_down:
            row.notes.append("kafka never shown down (restart faster than a probe)")
        for group in groups:
            self.produce(group)
        self.wait_drained(started, row)
        row.outcome = "reconnected, caught up" if row.ok else "NOT caught up"
        self.faults.append(row)

    def backlog(self, chunk: list[Message], kill: bool) -> None:
        row = FaultRow(f"backlog of {len(chunk)} messages at once"
                       + (", SIGKILL in its catch-up" if kill else ""))
        before = self.worker.sigkills
        self.produce(chunk)
        start = time.monotonic()
        if kill:
            time.sleep(self.rnd.uniform(1.0, 4.0))
            self.worker.sigkill()
            self.worker.start()
        row.sigkills = self.worker.sigkills - before
        self.wait_drained(start, row)
        row.outcome = "caught up" if row.ok else "NOT caught up"
        self.faults.append(row)

    def run(self) -> None:
        steps = fault_plan(self.cfg.kills, outage=self.cfg.outage_s > 0)
        chunks, groups = chunk_groups(self.stream, len(steps), self.cfg.chunks,
                                      self.cfg.backlog_share)
        self.say(f"chaos: {len(self.stream)} messages in {len(chunks)} chunks, steps "
                 + ", ".join(s for s, _ in steps))
        self.first_chunk(chunks[0])
        n_kill = 0
        for (step, flag), group in zip(steps, groups, strict=True):
            size = sum(len(c) for c in group)
            self.say(f"chaos: {step} ({len(group)} chunks, {size} messages),"
                     f" t+{self.elapsed():.0f} s")
            if step == "kill":
                n_kill += 1
                self.kill(group, flag, n_kill)
            elif step == "clickhouse":
                self.clickhouse_outage(group)
            elif step == "broker":
                self.broker_restart(group)
            else:
                self.backlog(group[0], flag)

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    # -- the end state --
    def settle(self, n_valid: int) -> dict[str, Any]:
        """Wait until every valid report is in one current incident and the incidents and
        alerts stopped changing; the store's final state."""
        from agents.ports.sql import incidents as incident_sql
        from streams.storage import open_store, queries

        store = open_store(self.envr.store_url)
        try:
            last, stable_since = None, time.monotonic()
            deadline = time.monotonic() + self.remaining(self.cfg.recovery_timeout_s)
            while time.monotonic() < deadline:
                if not self.worker.running:
                    self.crashes += 1
                    self.worker.start()
                with contextlib.suppress(Exception):
                    merged = int(store.query(incident_sql.SUM_REPORT_COUNT.sql)[0]["n"] or 0)
                    values = self.metrics() or {}
                    alerts_n = metric(values, "vigie_alerts_total")
                    now = (merged, alerts_n)
                    if now != last:
                        last, stable_since = now, time.monotonic()
                    elif merged >= n_valid and \
                            time.monotonic() - stable_since >= self.cfg.settle_quiet_s:
                        break
                time.sleep(1)
            incidents = queries.current_incidents(store, status=None, limit=10_000_000)
            alerts = queries.current_alerts(store, status=None, limit=1_000_000)
            return {"incidents": incidents, "alerts": alerts, **self.stored(store)}
        finally:
            store.close()

    def stored(self, store: Any) -> dict[str, Any]:
        from agents.ports.sql import rejected, reports

        ids = sorted({m.report_id for m, _ in self.produced if m.reject_reason is None})
        found: list[str] = []
        for i in range(0, len(ids), 2000):
            rows = store.query(reports.OF_INCIDENT_IDS.sql, {
                "ids": tuple(ids[i:i + 2000]), "lo": 0, "hi": 4_102_444_800,
                "limit": 1_000_000})
            found += [str(r["report_id"]) for r in rows]
        return {
            "final_count": int(store.query(reports.count(since=False).sql)[0]["n"]),
            "raw_rows": int(store.query(reports.COUNT_ROWS.sql)[0]["n"]),
            "found_ids": found,
            "rejected_by_reason": {str(r["reason"]): int(r["n"]) for r in
                                   store.query(rejected.by_reason(since=False).sql)},
        }

    def read_topic(self, name: str, at_least: int, timeout: float) -> list[Any]:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(self.topics[name], bootstrap_servers=self.envr.bootstrap,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 consumer_timeout_ms=2000)
        records: list[Any] = []
        deadline = time.monotonic() + self.remaining(timeout)
        try:
            while time.monotonic() < deadline:
                got = list(consumer)
                records += got
                if len(records) >= at_least and not got:
                    break
        finally:
            consumer.close()
        return records


# ---- comparison -----------------------------------------------------------------------------
def backtest(lines_path: Path, out: Path, warmup_days: float) -> subprocess.Popen[bytes]:
    """`vigie backtest` of the stream's lines, in the background (a process of its own)."""
    return subprocess.Popen(
        [sys.executable, "-m", "vigie.cli", "backtest", "--input", str(lines_path), "--out",
         str(out), "--warmup-days", str(warmup_days)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(out.parent / "backtest.log").open("wb"),
        start_new_session=True)


def latest_versions(messages: Sequence[Mapping[str, Any]], key: str,
                    first: bool = False) -> dict[str, Any]:
    """The highest version of each `key` (the lowest with `first`)."""
    out: dict[str, Any] = {}
    for m in messages:
        known = out.get(m[key])
        v, kv = int(m["version"]), -1 if known is None else int(known["version"])
        if known is None or (v <= kv if first else v >= kv):
            out[str(m[key])] = m
    return out


def assignment(incidents: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {str(rid): str(inc["incident_id"]) for inc in incidents for rid in inc["report_ids"]}


def epoch(value: Any) -> float:
    """A time of a message: epoch seconds, or RFC 3339 text (contract v1)."""
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def alert_checks(lifecycle: Sequence[Mapping[str, Any]],
                 reference: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Live alert lifecycle messages (the alert topic, re-sends included) against the
    backtest's: an alert opened on a hotspot another open alert covers (same category,
    shared cells); version
    gaps; alerts left open at the end whose zone the backtest closed (orphans) or that match
    nothing in the backtest (unmatched, shown, not a failure: the detectors' clocks differ)."""
    by_id: dict[str, dict[int, Mapping[str, Any]]] = defaultdict(dict)
    for m in lifecycle:
        by_id[str(m["alert_id"])][int(m["version"])] = m
    gaps = [a for a, vs in by_id.items() if sorted(vs) != list(range(1, max(vs) + 1))]
    ordered = sorted((m for vs in by_id.values() for m in vs.values()),
                     key=lambda m: (epoch(m["emitted_at"]), int(m["version"])))
    open_now: dict[str, Mapping[str, Any]] = {}
    doubles: set[tuple[str, str]] = set()
    for m in ordered:
        aid = str(m["alert_id"])
        if m["status"] == "closed":
            open_now.pop(aid, None)
            continue
        # The lifecycle opens no alert over an open one of its category (updates may make
        # two grow into each other): an opening that does lost the other's state.
        for other, o in open_now.items():
            if m["status"] == "open" and other != aid and o["category"] == m["category"] \
                    and set(o["cells"]) & set(m["cells"]):
                doubles.add((min(aid, other), max(aid, other)))
        open_now[aid] = m
    ref_last = latest_versions(reference, "alert_id")

    def overlaps(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        return bool(a["category"] == b["category"] and set(a["cells"]) & set(b["cells"]))

    orphans, unmatched = [], []
    for aid, m in open_now.items():
        near = [r for r in ref_last.values() if overlaps(m, r)]
        if not near:
            unmatched.append(aid)
        elif all(r["status"] == "closed" for r in near):
            orphans.append(aid)
    live_hotspots = len({str(m["alert_id"]) for m in lifecycle})
    # the backtest's hotspots the live detector also alerted (same category, shared cells,
    # opened within a day of each other): shown, the detectors' clocks differ
    ref_first = latest_versions(reference, "alert_id", first=True)
    live_first = [m for m in ordered if m["status"] == "open"]
    alerted = sum(
        1 for r in ref_first.values()
        if any(overlaps(m, r) and abs(epoch(m["emitted_at"]) - epoch(r["emitted_at"])) <= 86400
               for m in live_first))
    return {"alert_ids": live_hotspots, "reference_alert_ids": len(ref_last),
            "reference_alerted_live": alerted,
            "open_at_end": len(open_now), "doubles": sorted(doubles), "gaps": gaps,
            "orphans": orphans, "unmatched": unmatched}


def compare(run: Run, state: Mapping[str, Any], reference_dir: Path) -> list[CheckRow]:
    from agents.core.correlation.quality import score

    produced = run.produced
    valid = {m.report_id for m, _ in produced if m.reject_reason is None}
    expected_rejects = {pos: m.reject_reason for m, pos in produced if m.reject_reason}
    checks: list[CheckRow] = []

    found = Counter(state["found_ids"])
    doubled = sorted(r for r, n in found.items() if n > 1)
    missing = sorted(valid - set(found))
    checks.append(CheckRow(
        "valid reports stored exactly once (reports FINAL)",
        f"{len(valid)} ids, each once",
        f"{state['final_count']} rows, {len(set(found))} ids found, {len(missing)} missing,"
        f" {len(doubled)} twice (raw rows before merges: {state['raw_rows']})",
        state["final_count"] == len(valid) and not missing and not doubled))

    dead = run.read_topic("rejected", len(expected_rejects), 60)
    got: dict[tuple[str, int, int], str] = {}
    resent = 0
    for record in dead:
        letter = orjson.loads(record.value)
        pos = (str(letter["origin_topic"]), int(letter["origin_partition"]),
               int(letter["origin_offset"]))
        if pos in got:
            resent += 1
        got[pos] = str(letter["reason"])
    wrong = [p for p, r in expected_rejects.items() if got.get(p) != r]
    extra = [p for p in got if p not in expected_rejects]
    reasons = Counter(expected_rejects.values())
    checks.append(CheckRow(
        "bad messages dead-lettered with their reason (topic, by origin offset)",
        f"{len(expected_rejects)} letters, {len(reasons)} reasons",
        f"{len(got)} letters, {len(wrong)} missing or wrong, {len(extra)} unexpected,"
        f" {resent} re-sent copies", not wrong and not extra))
    checks.append(CheckRow(
        "rejected FINAL counts by reason", "as injected",
        "equal" if state["rejected_by_reason"] == dict(reasons)
        else f"{state['rejected_by_reason']} vs {dict(reasons)}",
        state["rejected_by_reason"] == dict(reasons)))

    ref_incidents = [orjson.loads(line) for line in
                     (reference_dir / "incidents.jsonl").read_bytes().splitlines() if line]
    ref = assignment(list(latest_versions(ref_incidents, "incident_id").values()))
    live = assignment(state["incidents"])
    truth = {m.report_id: m.incident_id for m, _ in produced
             if m.reject_reason is None and m.incident_id is not None}
    versus = score(live, ref)
    live_truth, ref_truth = score(live, truth), score(ref, truth)
    run.outage["f1"] = versus.pairwise_f1
    checks.append(CheckRow(
        "incident assignment vs `vigie backtest` (pairwise F1)", f">= {F1_TARGET}",
        f"{versus.pairwise_f1:.4f} (P {versus.pairwise_precision:.4f}, R "
        f"{versus.pairwise_recall:.4f}; vs truth: live {live_truth.pairwise_f1:.4f},"
        f" backtest {ref_truth.pairwise_f1:.4f}; {len(live)} / {len(ref)} reports)",
        versus.pairwise_f1 >= F1_TARGET, hard=False))
    run.outage["scores"] = {"pair_f1_vs_backtest": round(versus.pairwise_f1, 4),
                            "pair_f1_live_vs_truth": round(live_truth.pairwise_f1, 4),
                            "pair_f1_backtest_vs_truth": round(ref_truth.pairwise_f1, 4)}

    lifecycle = [orjson.loads(r.value) for r in run.read_topic("alerts", 0, 20)]
    ref_alerts = [orjson.loads(line) for line in
                  (reference_dir / "alerts.jsonl").read_bytes().splitlines() if line]
    try:
        a = alert_checks(lifecycle, ref_alerts)
    except (KeyError, TypeError, ValueError) as exc:  # a message the checks cannot read
        checks.append(CheckRow("alert lifecycle readable", "every message", repr(exc), False))
        return checks
    run.outage["alerts"] = {k: (len(v) if isinstance(v, list) else v) for k, v in a.items()}
    stored_ids = {str(x["alert_id"]) for x in state["alerts"]}
    topic_ids = {str(m["alert_id"]) for m in lifecycle}
    checks.append(CheckRow(
        "one alert id per hotspot, versions contiguous", "0 doubles, 0 gaps",
        f"{a['alert_ids']} alert ids live ({a['reference_alert_ids']} in the backtest,"
        f" {a['reference_alerted_live']} of them alerted live),"
        f" {len(a['doubles'])} doubles, {len(a['gaps'])} gaps",
        not a["doubles"] and not a["gaps"]))
    checks.append(CheckRow(
        "no alert left open that the backtest closed; stored = published",
        "0 orphans, same ids",
        f"{a['open_at_end']} open at the end, {len(a['orphans'])} orphans,"
        f" {len(a['unmatched'])} without a backtest match; stored {len(stored_ids)},"
        f" published {len(topic_ids)}",
        not a["orphans"] and stored_ids == topic_ids))
    problems = run.outage.get("problems")
    checks.append(CheckRow(
        "readiness and lag truthful during the ClickHouse outage",
        "ready 0, clickhouse 0, lag > 0 growing = uncommitted",
        "not measured" if problems is None else ("yes" if not problems else
                                                   "; ".join(problems)),
        problems == [],
        hard=run.cfg.outage_s > 0))  # without an outage (`--outage-seconds 0`): shown only
    return checks


# ---- output ---------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render(result: ChaosResult) -> str:
    faults = table(
        ("faute", "SIGKILL", "résultat", "rétabli en", "notes"),
        [(f.fault, str(f.sigkills), ("OK  " if f.ok else "ÉCHEC ") + f.outcome,
          "-" if f.recovery_s is None else f"{f.recovery_s:.1f} s", "; ".join(f.notes))
         for f in result.faults])
    checks = table(
        ("vérification", "attendu", "obtenu", "verdict"),
        [(c.check, c.expected, c.got,
          ("OK" if c.ok else "ÉCHEC") + ("" if c.hard else " (cible)")) for c in result.checks])
    return f"{faults}\n\n{checks}\n\ndurée totale {result.seconds:.0f} s"


# ---- entry points ---------------------------------------------------------------------------
def run_chaos(cfg: ChaosConfig, env: Environment,
              log: Callable[[str], None] = lambda s: print(s, file=sys.stderr,
                                                           flush=True)) -> ChaosResult:
    """The whole scenario on `env`; raises HarnessError when it cannot run."""
    began = time.monotonic()
    deadline = began + cfg.timeout_s
    stream = make_stream(cfg)
    lines = env.tmp / "stream.jsonl"
    with lines.open("wb") as fh:
        for m in stream:
            fh.write(m.value.replace(b"\n", b" ") + b"\n")
    ref_dir = env.tmp / "backtest"
    ref_dir.mkdir(exist_ok=True)
    ref = backtest(lines, ref_dir, cfg.warmup_days)
    run = Run(cfg, env, stream, deadline, log)
    run.began = began
    unfinished: list[CheckRow] = []
    try:
        try:
            run.run()
        except HarnessError as exc:  # the faults ran out of time: check what was produced
            unfinished.append(CheckRow("every fault run within --timeout", "yes", str(exc),
                                       False))
            run.deadline = time.monotonic() + 600.0
        n_valid = len({m.report_id for m, _ in run.produced if m.reject_reason is None})
        state = run.settle(n_valid)
        ref.wait(run.remaining(600))
        if ref.returncode != 0:
            raise HarnessError(f"vigie backtest exited {ref.returncode}; see "
                               f"{env.tmp / 'backtest.log'}")
        checks = unfinished + compare(run, state, ref_dir)
        checks.append(CheckRow("the worker never exits by itself (restarted when it does)",
                               "0 exits", f"{run.crashes} exits", run.crashes == 0))
        code = run.worker.stop()
        checks.append(CheckRow("worker stops cleanly at the end (SIGTERM)", "exit 0",
                               f"exit {code}", code == 0))
    finally:
        run.worker.sigkill()
        if ref.poll() is None:
            os.kill(ref.pid, signal.SIGKILL)
            ref.wait(10)
    seconds = time.monotonic() - began
    # which guarantees failed, so a recorded run says why without its printed table
    failed = ([f"{r.fault}: {r.outcome} {' '.join(r.notes)}".strip()
               for r in run.faults if not r.ok]
              + [f"{c.check}: {c.got}" for c in checks if c.hard and not c.ok])
    recovery = {f"recovery_{i}_s": round(f.recovery_s, 1) for i, f in
                enumerate(run.faults) if f.recovery_s is not None}
    summary = {
        "bench": "chaos", "seed": cfg.seed, "days": cfg.days, "messages": len(stream),
        "sigkills": run.worker.sigkills, "outage_s": cfg.outage_s,
        **run.outage.get("scores", {}),
        "recovery_clickhouse_s": next((round(f.recovery_s, 1) for f in run.faults
                                       if f.fault.startswith("ClickHouse")
                                       and f.recovery_s is not None), None),
        "recovery_broker_s": next((round(f.recovery_s, 1) for f in run.faults
                                   if f.fault.startswith("broker") and f.recovery_s is not None),
                                  None),
        "recovery_max_s": max(recovery.values(), default=None),
        "alerts": run.outage.get("alerts", {}),
        "hard_checks_passed": not failed,
        "failed_checks": "; ".join(failed)[:1000] or None,
        "run_s": round(seconds, 1),
    }
    return ChaosResult(run.faults, checks, summary, seconds)


def record(summary: Mapping[str, Any], argv: Sequence[str]) -> None:
    from benchmarks import history
    from benchmarks.run_all import git_rev, machine, utc_now

    ms = history.measurements_from_run(
        [{k: v for k, v in summary.items() if v is not None}], benchmark="chaos",
        date=utc_now(), commit=git_rev(),
        machine=machine(), command="python -m benchmarks.chaos " + " ".join(argv),
        via="make chaos" if os.environ.get("MAKELEVEL") else None,
        load_avg=[round(x, 1) for x in os.getloadavg()])
    history.append(history.RESULTS_DIR, ms)


def parse(argv: Sequence[str]) -> tuple[ChaosConfig, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    d = ChaosConfig()
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--days", type=float, help=f"days of stream ({d.days:g}; short 1)")
    ap.add_argument("--rate", type=float, default=d.rate_per_day,
                    help="valid reports a day of the simulated stream")
    ap.add_argument("--chunks", type=int,
                    help=f"chunks the stream is produced in, the backlog one of them ({d.chunks};"
                    " at least one per fault and the first)")
    ap.add_argument("--kills", type=int, help=f"SIGKILL faults ({d.kills}; short 2)")
    ap.add_argument("--outage-seconds", type=float,
                    help=f"ClickHouse outage ({d.outage_s:g}; short 10)")
    ap.add_argument("--short", action="store_true",
                    help="the CI variant: 1 day, 2 kills, a 10 s outage")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 also when a target (the F1) is missed")
    ap.add_argument("--record", action="store_true",
                    help="append the figures to benchmarks/results/chaos.jsonl")
    ap.add_argument("--timeout", type=float, help="global bound in seconds")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, stream)")
    args = ap.parse_args(argv)
    values: dict[str, Any] = dict(SHORT) if args.short else {}
    values.update(seed=args.seed, rate_per_day=args.rate)
    for key, arg in (("days", args.days), ("kills", args.kills), ("chunks", args.chunks),
                     ("outage_s", args.outage_seconds), ("timeout_s", args.timeout)):
        if arg is not None:
            values[key] = arg
    cfg = ChaosConfig(**values)
    if cfg.kills < 0 or cfg.outage_s < 0 or cfg.days <= 0:
        ap.error("--kills and --outage-seconds must be >= 0, --days > 0")
    return cfg, args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg, args = parse(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    keep = Path(args.keep) if args.keep else None
    tmp = keep or Path(tempfile.mkdtemp(prefix="vigie-chaos-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        with own_environment(tmp) as env:
            result = run_chaos(cfg, env)
    except (HarnessError, KeyboardInterrupt, subprocess.TimeoutExpired) as exc:
        print(f"chaos: harness failed: {exc!r:.2000}", file=sys.stderr)
        return EXIT_HARNESS
    finally:
        if keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(render(result))
    print(json.dumps(result.summary))
    if args.record:
        record(result.summary, argv)
    return result.exit_code(args.strict)


if __name__ == "__main__":
    sys.exit(main())
