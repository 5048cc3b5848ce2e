"""Webhook delivery end to end: the real `vigie worker` on the real broker and a real
ClickHouse server, POSTing to real HTTP receivers (`scripts/webhook_receiver.py`, which
verifies signatures with its own code) that fail, hang, are down, restart; `openssl`
checks a signature once more; an operator replays parked deliveries with `vigie webhooks`;
a worker killed with SIGKILL mid-delivery loses nothing (duplicates only, same id and body).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from agents.core.delivery import ALERT_FIELDS, INCIDENT_FIELDS, ObjectKind, delivery_id
from agents.core.partners import (
    Contact,
    Credentials,
    DeliveryKind,
    Partner,
    PartnerKind,
    Perimeter,
    Subscription,
)
from agents.ports import partner_registry
from agents.ports.sql import webhooks as sql
from schemas.alert import Alert, AlertCenter, AlertStatus
from schemas.enums import Category, IncidentStatus, SourceKind
from schemas.incident import Incident
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.kafka import free_port
from tests.infra.vigie import Pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

ROOT = Path(__file__).resolve().parents[2]
RECEIVER = ROOT / "scripts" / "webhook_receiver.py"
T0 = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
WEBHOOK_ENV = {
    "VIGIE_WEBHOOKS_ENABLED": "true",
    "VIGIE_WEBHOOK_ALLOW_HTTP_LOOPBACK": "true",
    "VIGIE_WEBHOOK_MAX_ATTEMPTS": "4",
    "VIGIE_WEBHOOK_BACKOFF_SECONDS": "0.3",
    "VIGIE_WEBHOOK_BACKOFF_MAX_SECONDS": "1",
    "VIGIE_WEBHOOK_TIMEOUT_SECONDS": "1.5",
    "VIGIE_WEBHOOK_POLL_SECONDS": "0.3",
}


class Receiver:
    """`scripts/webhook_receiver.py` as a subprocess on a loopback port."""

    def __init__(self, tmp: Path, name: str, secret: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.secret_file = tmp / f"{name}.secret"
        self.secret_file.write_text(secret)
        self.log = tmp / f"{name}.log"
        self.out = tmp / f"{name}.out"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self, *options: str) -> Receiver:
        with self.out.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(RECEIVER),
                    "--port",
                    str(self.port),
                    "--secret-file",
                    str(self.secret_file),
                    "--log",
                    str(self.log),
                    "--log-bodies",
                    *options,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while b"webhook receiver on" not in self.out.read_bytes():
            assert self.process.poll() is None, self.out.read_text()
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def lines(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def answers(self, did: str) -> list[Any]:
        return [
            line["answer"]
            for line in self.lines()
            if line["delivery_id"] == did and line["answer"] != "received"
        ]


def partner(
    org: str,
    url: str,
    secret: str,
    kinds: set[DeliveryKind],
    categories: frozenset[str] = frozenset(),
) -> Partner:
    return Partner(
        org=org,
        name=org,
        kind=PartnerKind.POLICE_MUNICIPALE,
        perimeter=Perimeter(communes=frozenset({"91228"})),
        contact=Contact(webhook_url=url),
        subscriptions=(Subscription(frozenset(kinds), categories),),
        version=1,
        updated_at=T0,
        updated_by="test",
        credentials=Credentials(webhook_secret=secret),
    )


def incident(iid: str, insee: str = "91228", category: Category = Category.VOL) -> bytes:
    return (
        Incident(
            incident_id=iid,
            version=1,
            status=IncidentStatus.OPEN,
            category=category,
            report_ids=["r-1"],
            report_count=1,
            source_kinds=[SourceKind.CITIZEN],
            first_occurred_at=T0,
            last_occurred_at=T0,
            lat=48.63,
            lon=2.44,
            insee=insee,
            commune="Évry-Courcouronnes",
            h3="881fb46701fffff",
            confidence=0.7,
            report_source_kinds=[SourceKind.CITIZEN],
            report_source_orgs=["citizen-app"],
        )
        .model_dump_json()
        .encode()
    )


def alert(aid: str) -> bytes:
    return (
        Alert(
            alert_id=aid,
            status=AlertStatus.OPEN,
            category=Category.VOL,
            center=AlertCenter(lat=48.6, lon=2.4),
            radius_m=500,
            cells=["881fb46701fffff"],
            insee=["91228"],
            window_start=T0,
            window_end=T0,
            observed=8,
            expected=2,
            score=9,
            severity=3,
            emitted_at=T0,
        )
        .model_dump_json()
        .encode()
    )


def produce(p: Pipeline, messages: list[tuple[str, str, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=p.broker.bootstrap, acks="all")
    try:
        for topic, key, value in messages:
            producer.send(p.topics[topic], key=key.encode(), value=value).get(timeout=30)
    finally:
        producer.close()


def setup(p: Pipeline, *partners: Partner) -> None:
    p.store.ensure_schema()
    for entry in partners:
        partner_registry.write(p.store, entry)


def states(p: Pipeline) -> dict[str, int]:
    return {r["last_event"]: int(r["n"]) for r in p.store.query(sql.STATES.sql)}


def cli(p: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vigie.cli", "webhooks", *args],
        env={**os.environ, **p.env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def openssl_signature(secret: str, stamp: str, body: bytes) -> str:
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret],
        input=stamp.encode() + b"." + body,
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().split()[-1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_retries_timeouts_parking_and_replay(
    pipeline_factory: Any, clickhouse_server: ClickHouseServer, tmp_path: Path
) -> None:
    p: Pipeline = pipeline_factory(clickhouse_server.url_for("it_webhooks_retries"))
    flaky = Receiver(tmp_path, "flaky", "flaky-secret-" + "x" * 32)
    late = Receiver(tmp_path, "late", "late-secret-" + "y" * 32)  # down until the replay
    setup(
        p,
        partner(
            "p-ok",
            flaky.url,
            "flaky-secret-" + "x" * 32,
            {DeliveryKind.INCIDENT},
            frozenset({"vol"}),
        ),
        partner("p-late", late.url, "late-secret-" + "y" * 32, {DeliveryKind.ALERT}),
    )
    flaky.start("--fail-first", "2", "--hang-first", "1")
    worker = p.worker(**WEBHOOK_ENV)
    worker.wait_ready(120)
    produce(
        p,
        [
            ("incidents", "inc-1", incident("inc-1")),
            ("incidents", "inc-out", incident("inc-out", insee="91001")),  # outside the perimeter
            ("incidents", "inc-rodeo", incident("inc-rodeo", category=Category.RODEO)),
            ("alerts", "al-1", alert("al-1")),
        ],
    )
    inc_id = delivery_id("p-ok", ObjectKind.INCIDENT, "inc-1", 1)
    al_id = delivery_id("p-late", ObjectKind.ALERT, "al-1", 1)

    # 500, 500, no answer (timeout), then 200: four attempts of one delivery, same id
    p.wait_for(lambda: 200 in flaky.answers(inc_id), 90, "the incident delivered")
    assert flaky.answers(inc_id) == [500, 500, "hang", 200]
    assert {line["delivery_id"] for line in flaky.lines()} == {inc_id}  # nothing else
    last = [line for line in flaky.lines() if line["answer"] == 200][-1]
    assert all(line["verified"] for line in flaky.lines())
    body = base64.b64decode(last["body_b64"])
    stamp, sig = (part.split("=", 1)[1] for part in last["signature"].split(","))
    assert openssl_signature("flaky-secret-" + "x" * 32, stamp, body) == sig
    document = json.loads(body)
    assert document["delivery_id"] == inc_id and document["kind"] == "incident"
    assert set(document["data"]) <= set(INCIDENT_FIELDS)
    assert "report_ids" not in document["data"] and "citizen-app" not in body.decode()

    # the alert's receiver is down: 4 refused connections, then parked
    p.wait_for(lambda: states(p).get("parked") == 1, 90, "the alert parked")
    listed = cli(p, "list-parked")
    assert listed.returncode == 0, listed.stderr
    assert al_id in listed.stdout and "p-late" in listed.stdout
    log = [
        (int(e["seq"]), e["event"])
        for e in p.store.query(sql.EVENTS_OF.sql, sql.EVENTS_OF.bind(id=al_id))
    ]
    assert log == [
        (0, "queued"),
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "failed"),
        (5, "parked"),
    ]

    late.start()
    assert late.lines() == []  # parked: not retried on its own
    replayed = cli(p, "replay", "--partner", "p-late")
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {al_id}" in replayed.stdout
    p.wait_for(lambda: 200 in late.answers(al_id), 60, "the replayed alert delivered")
    [line] = [x for x in late.lines() if x["answer"] == 200]
    assert line["verified"]
    data = json.loads(base64.b64decode(line["body_b64"]))["data"]
    assert set(data) <= set(ALERT_FIELDS) and data["alert_id"] == "al-1"
    p.wait_for(lambda: states(p) == {"delivered": 2}, 30, "both delivered in the outbox")
    again = cli(p, "replay", al_id)
    assert again.returncode == 1 and "not parked" in again.stderr

    text = p.metrics_text()
    for series in (
        'vigie_webhook_attempts_total{outcome="http_error"} 2.0',
        'vigie_webhook_attempts_total{outcome="timeout"} 1.0',
        'vigie_webhook_attempts_total{outcome="connection_error"} 4.0',
        'vigie_webhook_deliveries_total{outcome="parked"} 1.0',
        'vigie_webhook_deliveries_total{outcome="delivered"} 2.0',
        'vigie_webhook_deliveries_total{outcome="queued"} 2.0',
    ):
        assert series in text, series
    logged = worker.output()
    assert "webhook delivery parked" in logged and al_id in logged
    assert "flaky-secret" not in logged and "late-secret" not in logged  # never logged
    flaky.kill()
    late.kill()


def test_kill_9_mid_delivery_loses_nothing(
    pipeline_factory: Any, clickhouse_server: ClickHouseServer, tmp_path: Path
) -> None:
    p: Pipeline = pipeline_factory(clickhouse_server.url_for("it_webhooks_kill"))
    secret = "kill-secret-" + "z" * 32
    slow = Receiver(tmp_path, "slow", secret)
    setup(p, partner("p-kill", slow.url, secret, {DeliveryKind.INCIDENT}))
    slow.start("--delay", "2")
    env = {**WEBHOOK_ENV, "VIGIE_WEBHOOK_TIMEOUT_SECONDS": "10"}
    worker = p.worker(**env)
    worker.wait_ready(120)
    ids = [f"inc-k{i}" for i in range(12)]
    produce(p, [("incidents", iid, incident(iid)) for iid in ids])
    expected = {delivery_id("p-kill", ObjectKind.INCIDENT, iid, 1) for iid in ids}

    p.wait_for(
        lambda: any(x["answer"] == "received" for x in slow.lines()), 90, "a delivery in flight"
    )
    worker.kill()  # SIGKILL while the receiver holds its answers
    in_flight = {x["delivery_id"] for x in slow.lines() if x["answer"] == "received"}
    p.worker(log_name="worker-restarted.log", **env).wait_ready(120)

    def answered() -> set[str]:
        return {x["delivery_id"] for x in slow.lines() if x["answer"] == 200}

    p.wait_for(lambda: answered() >= expected, 120, "every delivery after the restart")
    lines = slow.lines()
    assert {x["delivery_id"] for x in lines} == expected
    assert all(x["verified"] for x in lines)
    received: dict[str, list[Any]] = {}
    for x in lines:
        if x["answer"] == "received":
            received.setdefault(x["delivery_id"], []).append(x)
    # what was in flight at the kill came again, with the same id and the same body
    for did in in_flight:
        assert len(received[did]) >= 2, did
    for did, copies in received.items():
        assert len({x["body_b64"] for x in copies}) == 1, did
    p.wait_for(lambda: states(p) == {"delivered": 12}, 60, "the outbox says delivered")
    slow.kill()


def test_operator_replays_through_the_worker_holding_chdb(
    pipeline_factory: Any, tmp_path: Path
) -> None:
    """With the embedded store the worker holds chDB: `vigie webhooks` goes through the
    worker's local API (loopback, local token)."""
    p: Pipeline = pipeline_factory(f"chdb://{tmp_path}/chdb")
    secret = "chdb-secret-" + "w" * 32
    down = Receiver(tmp_path, "down", secret)
    setup(p, partner("p-chdb", down.url, secret, {DeliveryKind.ALERT}))
    p.store.close()  # one process at a time opens a chDB directory
    p._store = None
    p.worker(**{**WEBHOOK_ENV, "VIGIE_WEBHOOK_MAX_ATTEMPTS": "2"}).wait_ready(120)
    produce(p, [("alerts", "al-c", alert("al-c"))])
    did = delivery_id("p-chdb", ObjectKind.ALERT, "al-c", 1)

    def listed() -> bool:
        done = cli(p, "list-parked", "--partner", "p-chdb")
        return done.returncode == 0 and did in done.stdout

    p.wait_for(listed, 90, "the alert parked, listed through the worker")
    log = cli(p, "log", did)
    assert log.returncode == 0 and "parked" in log.stdout and "connection_error" in log.stdout
    down.start()
    replayed = cli(p, "replay", did)
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed {did}" in replayed.stdout
    p.wait_for(lambda: 200 in down.answers(did), 60, "the replayed alert delivered")
    assert cli(p, "list-parked").stdout.strip().endswith("0 parked deliveries")
    down.kill()
