"""The console's incident actions on real Kafka and a real ClickHouse server: marking an
incident "pris en compte" then "clos" tells every one of its reports on the feedback topic,
and `vigie feedback` reads the same transitions from the table and from the topic."""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agents.core.refdata import load_refdata
from console import TokenRegistry, create_console_app
from console.incident_actions import KafkaFeedbackPublisher, install_feedback_publisher
from schemas.feedback import FEEDBACK_FIELDS
from streams import feedback_cli
from streams.settings import Settings
from streams.storage import Store, open_store
from tests.console import rows
from tests.console.support import NOW, OP, TOKENS, run_blocking
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.kafka import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]
Client = TestClient[web.Request, web.Application]
SOURCES = [
    ("citizen", "citoyen", "k1"),
    ("citizen", "citoyen", "k2"),
    ("bailleur_social", "b", "k3"),
]


@pytest.fixture
def settings(kafka_broker: KafkaBroker, clickhouse_server: ClickHouseServer) -> Settings:
    tag = f"{os.getpid()}"
    topic = f"t{tag}.feedback.console"
    kafka_broker.create_topics([topic])
    return Settings(
        kafka_bootstrap=kafka_broker.bootstrap,
        clickhouse=clickhouse_server.url_for(f"it_feedback_console_{tag}"),
        topic_feedback=topic,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[tuple[Client, Store]]:
    store = open_store(settings.clickhouse)
    store.ensure_schema()
    incident = rows.incident("ik", NOW - 300, reports=[rid for _k, _o, rid in SOURCES])
    incident["report_source_kinds"] = [k for k, _o, _r in SOURCES]
    incident["report_source_orgs"] = [o for _k, o, _r in SOURCES]
    store.insert("incidents", [incident])
    app = create_console_app(
        store,
        refdata=load_refdata(),
        tokens=TokenRegistry.parse(TOKENS, b"s" * 32),
        run_blocking=run_blocking,
    )
    install_feedback_publisher(
        app, KafkaFeedbackPublisher(settings.kafka_bootstrap, settings.topic_feedback)
    )
    try:
        async with TestClient(TestServer(app)) as test_client:
            yield test_client, store
    finally:
        store.close()


async def test_handled_incident_tells_each_report_on_kafka(
    client: tuple[Client, Store],
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    c, _store = client
    for body in (
        {"action": "pris_en_compte", "comment": "équipage en route"},
        {"action": "clos", "outcome": "intervention", "comment": "RAS après passage"},
    ):
        response = await c.post("/api/incidents/ik/actions", headers=OP, json=body)
        answer = await response.json()
        assert response.status == 201, answer
        assert (answer["reports_notified"], answer["published"]) == (3, True)

    for _kind, _org, rid in SOURCES:
        from_topic = feedback_cli.from_topic(settings, rid)
        from_table = await run_blocking(feedback_cli.from_store, settings, rid)
        assert sorted(from_topic, key=lambda m: m["status"]) == sorted(
            from_table, key=lambda m: m["status"]
        )
        assert [m["status"] for m in feedback_cli.ordered(from_topic)] == ["pris_en_compte", "clos"]
        for message in from_topic:
            assert set(message) == FEEDBACK_FIELDS
            assert "équipage" not in orjson.dumps(message).decode()  # the note stays inside
            assert message["other_reports"] == 2 and message["incident_id"] == "ik"
        closed = next(m for m in from_topic if m["status"] == "clos")
        assert closed["outcome_label"] == "Intervention effectuée"

    # `vigie feedback`: one report's transitions from the table, the latest from the topic.
    # The test's settings are passed explicitly: `get_settings()` is cached per process, so an
    # earlier test may have cached the default bootstrap (no broker there in CI).
    capsys.readouterr()
    args = Namespace(report="k3", source="store", json=False, tail=20)
    assert await run_blocking(feedback_cli.run, args, settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["pris_en_compte", "clos"]
    assert all("bailleur_social/b/k3" in line for line in lines)
    args = Namespace(report=None, source="store", json=False, tail=4)
    assert await run_blocking(feedback_cli.run, args, settings) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
