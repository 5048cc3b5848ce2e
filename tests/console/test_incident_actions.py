"""Marking an incident handled in the console: the action is recorded, every report of the
incident gets its `pris_en_compte` / `clos` feedback once, published before it is recorded,
and a retry after a publication failure sends the same bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agents.core.refdata import RefData
from console import TokenRegistry, create_console_app
from console.incident_actions import install_feedback_publisher
from schemas.feedback import FEEDBACK_FIELDS, Feedback
from streams.storage import Store
from tests.console import rows
from tests.console.support import NOW, OP, TOKENS, VIEW, Recorder, get_json, run_blocking

Client = TestClient[web.Request, web.Application]
SOURCES = [("citizen", "citoyen", "c1"), ("citizen", "citoyen", "c2"), ("transport", "sncf", "t1")]
NOTE = "Patrouille sur place, M. Martin prévenu"  # an operators' note: never sent out
ACTION_ID = "6f0c1f7e-5d2a-4b8e-9a41-0c9f3e2d7b11"


class FeedbackRecorder:
    """A feedback publisher that records what it was given (or fails on demand)."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []
        self.attempts: list[list[tuple[bytes, bytes]]] = []
        self.fail = False

    async def __call__(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        self.attempts.append(list(records))
        if self.fail:
            raise ConnectionError("broker down")
        self.records.extend(records)


@pytest.fixture
async def client(seeded: Store, refdata: RefData) -> AsyncIterator[tuple[Client, FeedbackRecorder]]:
    incident = rows.incident("ifb", NOW - 300, reports=[rid for _k, _o, rid in SOURCES])
    incident["report_source_kinds"] = [kind for kind, _o, _r in SOURCES]
    incident["report_source_orgs"] = [org for _k, org, _r in SOURCES]
    seeded.insert("incidents", [incident])
    app = create_console_app(
        seeded,
        refdata=refdata,
        tokens=TokenRegistry.parse(TOKENS, b"s" * 32),
        action_publisher=Recorder(),
        poll_seconds=0.2,
        run_blocking=run_blocking,
    )
    publisher = FeedbackRecorder()
    install_feedback_publisher(app, publisher)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, publisher


async def post(c: Client, body: dict[str, Any], headers: dict[str, str] = OP) -> Any:
    response = await c.post("/api/incidents/ifb/actions", headers=headers, json=body)
    return response.status, await response.json()


def feedback_rows(store: Store, status: str) -> list[dict[str, Any]]:
    return store.query(
        "SELECT report_id, source_kind, source_org, feedback_id, payload"
        " FROM report_feedback FINAL WHERE status = %(s)s ORDER BY report_id",
        {"s": status},
    )


async def test_acknowledge_then_close_tells_every_report_once(
    client: tuple[Client, FeedbackRecorder], seeded: Store
) -> None:
    c, published = client
    status, body = await post(c, {"action": "pris_en_compte", "comment": NOTE}, VIEW)
    assert status == 403 and body["error"] == "forbidden"
    status, body = await post(c, {"action": "clos", "comment": NOTE})  # no outcome
    assert status == 400 and "issue" in body["message"]
    status, _ = await post(
        c, {"action": "pris_en_compte", "outcome": "sans_suite", "comment": NOTE}
    )
    assert status == 400  # an outcome closes only
    assert not published.attempts and not feedback_rows(seeded, "pris_en_compte")

    status, body = await post(c, {"action": "pris_en_compte", "comment": NOTE})
    assert status == 201, body
    assert (body["reports"], body["reports_notified"], body["published"]) == (3, 3, True)
    keys = [orjson.loads(k) for k, _v in published.records]
    assert sorted(keys) == sorted([list(s) for s in SOURCES])
    for _k, value in published.records:
        message = orjson.loads(value)
        assert set(message) == FEEDBACK_FIELDS and b"Martin" not in value
        parsed = Feedback.model_validate(message)
        assert parsed.status == "pris_en_compte" and parsed.incident_id == "ifb"
        assert parsed.other_reports == 2
    rows_ = feedback_rows(seeded, "pris_en_compte")
    assert [r["report_id"] for r in rows_] == ["c1", "c2", "t1"]
    assert sorted(r["payload"].encode() for r in rows_) == sorted(v for _k, v in published.records)

    # acknowledged again (another operator, another action): the reports were told already
    status, body = await post(c, {"action": "pris_en_compte", "comment": "vu aussi"})
    assert (status, body["reports_notified"]) == (201, 0)
    assert len(published.records) == 3

    # closing while Kafka is down: the action is kept, nothing recorded as told, 502
    published.fail = True
    close = {"action": "clos", "outcome": "interpellation", "comment": NOTE, "action_id": ACTION_ID}
    status, body = await post(c, close)
    assert status == 502 and body["error"] == "publish_failed"
    assert not feedback_rows(seeded, "clos")
    failed = published.attempts[-1]
    published.fail = False
    status, body = await post(c, close)  # the retry the 502 asks for
    assert (status, body["reports_notified"]) == (201, 3)
    assert published.records[3:] == failed  # the same bytes
    closed = [orjson.loads(v) for _k, v in published.records[3:]]
    assert {(m["outcome"], m["outcome_label"]) for m in closed} == {
        ("interpellation", "Interpellation")
    }
    assert len(feedback_rows(seeded, "clos")) == 3
    status, body = await post(c, close)  # and once more: recorded, nothing left to tell
    assert (status, body["reports_notified"]) == (201, 0)
    status, body = await post(c, {**close, "outcome": "sans_suite"})
    assert status == 409
    actions = seeded.query("SELECT action, outcome FROM incident_actions FINAL ORDER BY at, action")
    assert sorted((a["action"], a["outcome"]) for a in actions) == [
        ("clos", "interpellation"),
        ("pris_en_compte", ""),
        ("pris_en_compte", ""),
    ]


async def test_the_summary_counts_the_share_of_reports_told_in_time(
    client: tuple[Client, FeedbackRecorder], seeded: Store
) -> None:
    c, _ = client
    summary = await get_json(c, "/api/summary")
    assert summary["feedback"] == {
        "days": 7,
        "reports_1h": 0,
        "within_1h": None,
        "reports_24h": 0,
        "within_24h": None,
    }
    t = int(NOW)

    def row(rid: str, status: str, at: int) -> dict[str, Any]:
        return {
            "feedback_id": (rid + status).ljust(32, "0")[:32],
            "source_kind": "citizen",
            "source_org": "citoyen",
            "report_id": rid,
            "status": status,
            "at": at,
            "reason": "",
            "incident_id": "",
            "other_reports": -1,
            "outcome": "",
            "payload": "{}",
            "recorded_at": at,
        }

    seeded.insert(
        "report_feedback",
        [
            row("a", "recu", t - 7200),
            row("a", "rattache", t - 6000),  # told within the hour
            row("b", "recu", t - 7200),
            row("b", "clos", t - 1000),  # told, 2 h later
            row("c", "recu", t - 30 * 3600),  # never told more
            row("d", "recu", t - 600),  # its hour is not over: not counted yet
        ],
    )
    summary = await get_json(c, "/api/summary")
    assert summary["feedback"] == {
        "days": 7,
        "reports_1h": 3,
        "within_1h": round(1 / 3, 4),
        "reports_24h": 1,
        "within_24h": 0.0,
    }
