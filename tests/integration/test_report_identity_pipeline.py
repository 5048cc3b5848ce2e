"""Report identity end to end, on real Kafka and a real store (ClickHouse 18.16 server and
chDB): a `vigie worker` started on a database whose `reports` is keyed by `report_id` alone
migrates it, then takes in two sources' reports with one id (a citizen message cannot take a
police id in advance), drops exact re-deliveries, dead-letters an id re-used with other
content, and publishes incidents that list each report's source."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.core.record import rfc3339
from offline.simulator.engine import SimMessage
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.vigie import Pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

ROOT = Path(__file__).resolve().parents[2]
PARTNER, CITIZEN = "vigie.reports.partner.v1", "vigie.reports.citizen.v1"
REUSED = "id_reused_with_different_content"

# Runs in a subprocess with VIGIE_CLICKHOUSE set (a chDB directory is one process's at a
# time): creates `reports` as released before the identity key, with one stored report.
SEED_OLD_DATABASE = """
import os, sys
from agents.ports.sql import schema
from streams.storage import open_store
store = open_store(os.environ["VIGIE_CLICKHOUSE"])
db = store.database
store._command(f"DROP DATABASE IF EXISTS {db}")  # a test database of an earlier run
store._command(f"CREATE DATABASE {db}")
ddl = schema.REPORTS_TABLE.replace("{table}", "reports")
ddl = ddl.replace("ORDER BY (report_id, source_kind, source_org)", "ORDER BY report_id")
ddl = ddl.replace("content_hash String DEFAULT '',", "")
store._command(" ".join(ddl.split()).format(db=db))
row = dict(zip(sys.argv[1::2], sys.argv[2::2]))
store.insert("reports", [{**row, "source_channel": None, "occurred_at": float(row["occurred_at"]),
    "reported_at": float(row["occurred_at"]), "lat": 48.629, "lon": 2.441, "accuracy_m": 20.0,
    "insee": "91228", "severity": None, "contact_hash": None, "description_hash": None,
    "description_len": 0, "origin_topic": "old", "origin_partition": 0, "origin_offset": 0,
    "commune": "Evry-Courcouronnes", "jurisdiction": "csp-evry", "precision": "point",
    "h3_r7": "", "h3_r8": "", "h3_r9": ""}])
print(store.query(schema.sorting_key(db, "reports").sql)[0]["key"])
store.close()
"""

# Prints the tables' rows this test checks, as JSON (same subprocess reason).
READ_TABLES = """
import json, os
from streams.storage import open_store
store = open_store(os.environ["VIGIE_CLICKHOUSE"])
print(json.dumps({
    "key": store.query("SELECT sorting_key AS k FROM system.tables"
                       " WHERE database = currentDatabase() AND name = 'reports'")[0]["k"],
    "reports": store.query("SELECT source_kind, source_org, report_id, category, content_hash"
                           " FROM reports FINAL ORDER BY report_id, source_kind, source_org"),
    "rejected": store.query("SELECT reason, source_kind, source_org, report_id FROM rejected"
                            " FINAL"),
    "incidents": store.query("SELECT incident_id, report_ids, report_source_kinds,"
                             " report_source_orgs FROM incidents FINAL"),
}))
store.close()
"""


def run_python(p: Pipeline, code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], env={**p.env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


EVRY, MASSY = (48.629, 2.441), (48.730, 2.271)


def report(report_id: str, kind: str, org: str, at: float, *, category: str = "cambriolage",
           place: tuple[float, float] = EVRY, east: float = 0.0) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "source": {"kind": kind, "org": org},
        "category": category,
        "occurred_at": rfc3339(at),
        "reported_at": rfc3339(at + 60),
        "location": {"lat": place[0], "lon": place[1] + east, "accuracy_m": 20},
    }


def sim(topic: str, body: dict[str, Any], ts: float) -> SimMessage:
    return SimMessage(topic, body["report_id"].encode(), orjson.dumps(body), int(ts * 1000), {})


@pytest.mark.parametrize("backend", ["server", "chdb"])
def test_identity_end_to_end_on_a_migrated_database(
    pipeline_factory: Any, clickhouse_server: ClickHouseServer, tmp_path: Path, backend: str
) -> None:
    url = (clickhouse_server.url_for("it_identity") if backend == "server"
           else f"chdb://{tmp_path}/chdb")
    p: Pipeline = pipeline_factory(url)
    now = time.time()
    t = now - 1800
    # stored before the upgrade: csp-evry's report 000042 (no content hash)
    old_key = run_python(p, SEED_OLD_DATABASE, "report_id", "000042", "source_kind",
                         "police_nationale", "source_org", "csp-evry", "category", "vol",
                         "occurred_at", str(t - 3600))
    assert old_key.strip() == "report_id"

    worker = p.worker()
    worker.wait_ready(120)
    police = report("PN-777", "police_nationale", "csp-evry", t)
    messages = [
        # a citizen message sent first with the police station's next id
        sim(CITIZEN, report("PN-777", "citizen", "citoyen", t - 60, east=0.0003), now - 5),
        sim(PARTNER, police, now - 4),
        sim(PARTNER, report("000042", "police_nationale", "csp-massy", t, place=MASSY), now - 3),
        # csp-evry's 000042 again: the stored row has no hash, a re-delivery as before
        sim(PARTNER, report("000042", "police_nationale", "csp-evry", t - 3600,
                            category="vol"), now - 3),
        sim(PARTNER, police, now - 2),  # exact re-delivery
        sim(PARTNER, {**police, "category": "vol"}, now - 1),  # the id re-used: dead letter
    ]
    p.produce(messages)

    letters = p.read_topic("rejected", expect=1, timeout=90)
    assert len(letters) == 1
    letter = json.loads(letters[0].value)
    assert letter["reason"] == REUSED
    assert (letter["source_kind"], letter["source_org"], letter["report_id"]) == (
        "police_nationale", "csp-evry", "PN-777")
    assert base64.b64decode(letter["original_b64"]) == messages[-1].value

    p.wait_for(lambda: p.http_json("/counts")["reports"] >= 4, 90, "4 reports stored")
    versions = [json.loads(r.value) for r in p.read_topic("incidents", expect=3, timeout=90)]
    members = {(k, o, i) for v in versions for k, o, i in zip(
        v["report_source_kinds"], v["report_source_orgs"], v["report_ids"], strict=True)}
    assert members == {
        ("citizen", "citoyen", "PN-777"),
        ("police_nationale", "csp-evry", "PN-777"),
        ("police_nationale", "csp-massy", "000042"),
    }
    assert all(len(v["report_ids"]) == len(v["report_source_orgs"]) for v in versions)
    # the citizen's and the police station's PN-777 merge into one incident (same place)
    assert any(v["report_ids"] == ["PN-777", "PN-777"] for v in versions)
    p.wait_for(lambda: "vigie_reports_redelivered_dropped_total 2.0" in p.metrics_text(), 30,
               "2 re-deliveries counted (PN-777 sent twice, 000042 stored before the upgrade)")
    assert worker.stop() == 0

    tables = json.loads(run_python(p, READ_TABLES))
    assert tables["key"] == "report_id, source_kind, source_org"
    assert [(r["source_kind"], r["source_org"], r["report_id"], r["category"])
            for r in tables["reports"]] == [
        ("police_nationale", "csp-evry", "000042", "vol"),
        ("police_nationale", "csp-massy", "000042", "cambriolage"),
        ("citizen", "citoyen", "PN-777", "cambriolage"),
        ("police_nationale", "csp-evry", "PN-777", "cambriolage"),
    ]
    hashes = [r["content_hash"] for r in tables["reports"]]
    assert hashes[0] == "" and all(len(h) == 32 for h in hashes[1:])
    assert tables["rejected"] == [{"reason": REUSED, "source_kind": "police_nationale",
                                   "source_org": "csp-evry", "report_id": "PN-777"}]
    assert any(sorted(r["report_source_kinds"]) == ["citizen", "police_nationale"]
               and r["report_ids"] == ["PN-777", "PN-777"] for r in tables["incidents"])
