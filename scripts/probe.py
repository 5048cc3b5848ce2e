"""`make probe`: replay hostile messages against a running worker and print what became of each.

    .venv/bin/python scripts/probe.py [--timeout 120]

It targets the worker that `make run` starts, through the same settings (`VIGIE_KAFKA_BOOTSTRAP`,
`VIGIE_TOPIC_*`, `VIGIE_APP_ID`, `VIGIE_WEB_PORT`), on loopback only (it refuses any other
broker or worker address). The probes: the largest message the broker accepts, reports
stamped far in the future and far in the past, a citizen-topic message claiming to be the
police, a report_id already used by another organisation with different content, malformed
JSON, NUL and U+202E (right-to-left override) in a description and in identifiers; then one
ordinary report (the canary: the worker still processes what follows).

Each probe's outcome is read from the worker's outputs, matched by the probe's own
topic/partition/offset: a dead letter on the rejected topic (`dead-lettered: <reason>`), an
enriched record on the enriched topic (`accepted: stored and forwarded`), or neither once
the worker's ingest group has committed past it (`dropped: no output`, i.e. taken for a
re-delivery). The worker's `/counts` (stored reports, rejections) and `/healthz` are read
before and after. Exit code 0 when every probe has an outcome and the worker is alive, 1
otherwise, 2 for a non-loopback target. Bounded by `--timeout` seconds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.local_api import LocalTokenError, auth_header
from streams.settings import Settings, get_settings

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
BROKER_MAX = 1_048_588  # Kafka's default message.max.bytes


@dataclass
class Probe:
    name: str
    topic: str  # "partner" or "citizen"
    key: bytes | None
    value: bytes
    expect: str  # what the contract says should happen
    position: tuple[str, int, int] | None = None
    outcome: str = ""
    notes: list[str] = field(default_factory=list)


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def report(rid: str, kind: str = "citizen", org: str = "citoyen", **changes: Any) -> bytes:
    now = time.time()
    obj: dict[str, Any] = {
        "report_id": rid,
        "source": {"kind": kind, "org": org, "channel": "api"},
        "category": "degradation",
        "occurred_at": rfc3339(now - 900),
        "reported_at": rfc3339(now - 60),
        "location": {"lat": 48.6295, "lon": 2.4405, "accuracy_m": 30.0},
        "description": "Sonde de test (make probe)",
    }
    obj.update(changes)
    return json.dumps(obj, ensure_ascii=False).encode()


def padded(rid: str, size: int) -> bytes:
    """A citizen report of exactly `size` bytes (a huge description)."""
    head = report(rid)[:-1] + b', "description2": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def host_of(address: str) -> str:
    return address.rsplit(":", 1)[0].strip()


def check_loopback(settings: Settings) -> str | None:
    for address in settings.kafka_bootstrap.split(","):
        if host_of(address) not in LOOPBACK:
            return f"broker {address} is not on loopback"
    if settings.web_host not in LOOPBACK:
        return f"worker web host {settings.web_host} is not loopback"
    return None


def http_json(settings: Settings, path: str, token: bool = False) -> tuple[int, Any]:
    """GET a worker page; `token`: with the worker's local API token (`/counts` asks for it)."""
    url = f"http://{settings.web_host}:{settings.web_port}{path}"
    try:
        headers = auth_header(settings.worker_data_dir) if token else {}
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError):
        return 0, None
    except LocalTokenError as exc:
        print(f"worker {path}: {exc}", file=sys.stderr)
        return 0, None


def build_probes(run: str) -> list[Probe]:
    now = time.time()
    dup = f"probe-{run}-dup"
    return [
        Probe("far-future reported_at (2100-01-01)", "citizen", None,
              report(f"probe-{run}-y2100", occurred_at="2099-12-31T23:50:00Z",
                     reported_at="2100-01-01T00:00:00Z"), "dead-lettered: timestamp_in_future"),
        Probe("far-past occurred_at (1999-01-01)", "partner", None,
              report(f"probe-{run}-y1999", "police_municipale", "pm-91228",
                     occurred_at="1999-01-01T00:00:00Z", reported_at="1999-01-01T00:10:00Z"),
              "dead-lettered: timestamp_too_old"),
        Probe("citizen topic claiming police_nationale/csp-evry", "citizen", None,
              report(f"probe-{run}-fakecop", "police_nationale", "csp-evry"),
              "dead-lettered: source_not_allowed_on_topic"),
        Probe("report_id first sent by csp-evry", "partner", None,
              report(dup, "police_nationale", "csp-evry"), "accepted: stored and forwarded"),
        Probe("same report_id from gendarmerie, other content", "partner", None,
              report(dup, "gendarmerie", "ggd91-bta-evry", category="vol",
                     location={"lat": 48.70, "lon": 2.30},
                     occurred_at=rfc3339(now - 3600), reported_at=rfc3339(now - 30)),
              "accepted: stored and forwarded"),  # another source: another report
        Probe("same report_id from csp-evry again, other content", "partner", None,
              report(dup, "police_nationale", "csp-evry", category="vol",
                     location={"lat": 48.70, "lon": 2.30},
                     occurred_at=rfc3339(now - 3600), reported_at=rfc3339(now - 30)),
              "dead-lettered: id_reused_with_different_content"),
        Probe("malformed JSON", "citizen", None, b'{"report_id": "probe-' + run.encode()
              + b'-badjson", "source": {"kind": "citizen"', "dead-lettered: not_json"),
        Probe("NUL and U+202E in description", "citizen", None,
              report(f"probe-{run}-ctrl", description="avant\u0000apr\u00e8s \u202eesuom"),
              "accepted: stored and forwarded (description is hashed)"),
        Probe("U+202E in report_id and source.org", "partner", None,
              report(f"probe-{run}-rlo\u202e", "police_municipale", "pm-\u202e91228"),
              "(identifiers are stored as sent)"),
    ]


def produce_largest(settings: Settings, topic: str, run: str, deadline: float) -> Probe:
    """The largest value the broker accepts: tried downwards from just under its limit
    with a fresh producer each try (kafka-python gives up on later sends after a refusal);
    the first size tried must be refused for the one accepted to be the largest."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError, MessageSizeTooLargeError

    rid = f"probe-{run}-huge"
    probe = Probe("largest message the broker accepts", "citizen", rid.encode(), b"",
                  "dead-lettered: too_large, worker alive")
    first = BROKER_MAX - 60  # the record and batch headers take more than that
    refused = False
    for size in range(first, first - 1000, -1):
        if time.monotonic() > deadline:
            break
        value = padded(rid, size)
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                 acks="all", max_request_size=2 * BROKER_MAX)
        try:
            meta = producer.send(topic, key=probe.key, value=value).get(timeout=30)
        except MessageSizeTooLargeError:
            refused = True
            continue
        except KafkaError as exc:
            probe.outcome = f"not sent: {type(exc).__name__}"
            return probe
        finally:
            producer.close()
        probe.value = value
        probe.position = (meta.topic, meta.partition, meta.offset)
        bound = f"{size + 1:,} refused" if refused else "larger not tried"
        probe.name = f"largest message the broker accepts ({size:,} bytes; {bound})"
        return probe
    probe.outcome = "not sent: the broker accepted no size tried"
    return probe


def send_all(settings: Settings, probes: list[Probe], topics: dict[str, str]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    try:
        for probe in probes:
            meta = producer.send(topics[probe.topic], key=probe.key,
                                 value=probe.value).get(timeout=30)
            probe.position = (meta.topic, meta.partition, meta.offset)
    finally:
        producer.close()


def end_offsets(settings: Settings, topic: str) -> dict[Any, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        return dict(consumer.end_offsets([TopicPartition(topic, p) for p in parts]))
    finally:
        consumer.close()


def follow(settings: Settings, starts: dict[Any, int], on_record: Callable[[Any], None],
           settled: Callable[[], bool], check_dropped: Callable[[], None],
           deadline: float) -> None:
    """Read the given partitions from the given offsets until `settled()` or `deadline`;
    `check_dropped()` every few seconds."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                             enable_auto_commit=False, max_partition_fetch_bytes=4_000_000,
                             fetch_max_bytes=16_000_000)
    try:
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        next_check = time.monotonic() + 3.0
        while not settled() and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    on_record(record)
            if time.monotonic() >= next_check:
                check_dropped()
                next_check = time.monotonic() + 3.0
    finally:
        consumer.close()


def committed_past(settings: Settings, probe: Probe) -> bool:
    from kafka import KafkaConsumer, TopicPartition

    if probe.position is None:
        return False
    topic, partition, offset = probe.position
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","),
                             group_id=f"{settings.app_id}-ingest", enable_auto_commit=False)
    try:
        committed = consumer.committed(TopicPartition(topic, partition))
    finally:
        consumer.close()
    return committed is not None and committed > offset


def describe_letter(probe: Probe, letter: dict[str, Any]) -> str:
    text = f"dead-lettered: {letter.get('reason')}"
    if letter.get("original_truncated"):
        kept = len(base64.b64decode(letter.get("original_b64") or ""))
        same = letter.get("original_sha256") == hashlib.sha256(probe.value).hexdigest()
        text += (f" (dead letter cut to {kept:,} of {letter.get('original_size'):,} bytes,"
                 f" sha256 {'matches' if same else 'DIFFERS'})")
    return text


def run_probes(settings: Settings, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    topics = {"partner": settings.topic_partner, "citizen": settings.topic_citizen}
    health_before, _ = http_json(settings, "/healthz")
    if health_before != 200:
        print(f"no running worker at http://{settings.web_host}:{settings.web_port} "
              "(start one with `make run`)", file=sys.stderr)
        return 1
    counts_before = http_json(settings, "/counts", token=True)[1] or {}
    run = uuid.uuid4().hex[:8]
    rejected_start = end_offsets(settings, settings.topic_rejected)
    enriched_start = end_offsets(settings, settings.topic_enriched)

    probes = [produce_largest(settings, topics["citizen"], run, deadline)]
    hostile = build_probes(run)
    canary = Probe("ordinary report sent last (canary)", "partner", None,
                   report(f"probe-{run}-canary", "police_nationale", "csp-evry"),
                   "accepted: stored and forwarded")
    send_all(settings, [*hostile, canary], topics)
    probes += [*hostile, canary]
    by_position = {p.position: p for p in probes if p.position is not None}

    def on_record(record: Any) -> None:
        if record.topic == settings.topic_rejected:
            letter = json.loads(record.value)
            origin = (letter.get("origin_topic"), letter.get("origin_partition"),
                      letter.get("origin_offset"))
            probe = by_position.get(origin)
            if probe is not None and not probe.outcome:
                probe.outcome = describe_letter(probe, letter)
            return
        for item in json.loads(record.value):  # an enriched bundle
            origin = (item.get("origin_topic"), item.get("origin_partition"),
                      item.get("origin_offset"))
            probe = by_position.get(origin)
            if probe is not None and not probe.outcome:
                probe.outcome = "accepted: stored and forwarded"
                probe.notes.append(f"stored as {item.get('source_kind')}/"
                                   f"{item.get('source_org')!r}")

    def settled() -> bool:
        return all(p.outcome for p in probes)

    def check_dropped() -> None:
        """Once the worker committed past every probe, one still without output was
        dropped (its outputs are delivered before the commit)."""
        if all(p.outcome or committed_past(settings, p) for p in probes):
            for p in probes:
                if not p.outcome:
                    p.outcome = "dropped: no output (taken for a re-delivery)"

    follow(settings, {**rejected_start, **enriched_start}, on_record, settled, check_dropped,
           deadline)
    for p in probes:
        if not p.outcome:
            p.outcome = f"no outcome within {timeout:.0f} s"

    health_after, _ = http_json(settings, "/healthz")
    counts_after = http_json(settings, "/counts", token=True)[1] or {}
    print_table(probes)
    print()
    rejected_delta = (sum((counts_after.get("rejected_by_reason") or {}).values())
                      - sum((counts_before.get("rejected_by_reason") or {}).values()))
    print(f"worker /healthz: {health_before} before, {health_after} after")
    print(f"worker /counts: reports {counts_before.get('reports')} -> "
          f"{counts_after.get('reports')}, rejections +{rejected_delta} "
          "(the simulator of `make run` adds its own)")
    ok = health_after == 200 and all(not p.outcome.startswith(("no outcome", "not sent"))
                                     for p in probes)
    return 0 if ok else 1


def print_table(probes: list[Probe]) -> None:
    rows = [("probe", "topic", "outcome", "contract says")]
    for p in probes:
        outcome = p.outcome + (f"; {', '.join(p.notes)}" if p.notes else "")
        rows.append((p.name, p.topic, outcome, p.expect))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for i, row in enumerate(rows):
        print(" | ".join(cell.ljust(widths[j]) if j < 3 else cell for j, cell in enumerate(row)))
        if i == 0:
            print("-+-".join("-" * w for w in widths) + "-+-" + "-" * 14)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for every outcome (default 120)")
    args = parser.parse_args(argv)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # refusals are expected here
    settings = get_settings()
    refused = check_loopback(settings)
    if refused:
        print(f"probe: {refused}; it only targets a local worker", file=sys.stderr)
        return 2
    return run_probes(settings, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
