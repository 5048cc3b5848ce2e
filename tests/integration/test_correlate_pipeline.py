"""Correlation on real Kafka and ClickHouse: incident versions on the topic, the current state
in ClickHouse without double counting, and a SIGKILLed worker resuming from its changelog."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from streams.storage import queries
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.vigie import Pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def current(p: Pipeline) -> list[dict]:
    return queries.current_incidents(p.store, status=None, limit=100_000)


def all_merged(p: Pipeline, n_valid: int) -> bool:
    rows = current(p)
    return sum(r["report_count"] for r in rows) >= n_valid


def test_incident_versions_on_topic_and_current_state_in_clickhouse(
    pipeline_factory, clickhouse_server: ClickHouseServer
) -> None:
    p = pipeline_factory(clickhouse_server.url_for("it_correlate"))
    p.worker().wait_ready(90)
    produced = p.produce(p.simulate(days=1, seed=41))
    n_valid = len(produced.expected_valid_ids())
    p.wait_for(lambda: all_merged(p, n_valid), 120, "every report merged into an incident")

    rows = current(p)
    members = [rid for r in rows for rid in r["report_ids"]]
    assert len(members) == len(set(members)), "a report counted in two current incidents"
    assert set(members) == produced.expected_valid_ids()
    assert len(rows) < n_valid, "nothing was merged"
    assert any(r["report_count"] >= 3 and len(set(r["source_kinds"])) >= 2 for r in rows)

    # The topic holds every version; the last one of each id is ClickHouse's current state.
    versions = p.read_topic("incidents", expect=sum(r["version"] for r in rows), timeout=60)
    last: dict[str, dict] = {}
    seen: dict[str, list[int]] = defaultdict(list)
    for record in versions:
        message = json.loads(record.value)
        assert record.key.decode() == message["incident_id"]
        seen[message["incident_id"]].append(message["version"])
        if message["version"] >= last.get(message["incident_id"], {}).get("version", 0):
            last[message["incident_id"]] = message
    assert set(last) == {r["incident_id"] for r in rows}
    for row in rows:
        assert last[row["incident_id"]]["version"] == row["version"]
        assert sorted(last[row["incident_id"]]["report_ids"]) == sorted(row["report_ids"])
    assert all(sorted(set(v)) == list(range(1, max(v) + 1)) for v in seen.values())


def test_killed_worker_resumes_incidents_from_its_changelog(
    pipeline_factory, clickhouse_server: ClickHouseServer
) -> None:
    p = pipeline_factory(clickhouse_server.url_for("it_correlate_kill"))
    messages = p.simulate(days=1, seed=42)
    half = len(messages) // 2
    first, second = messages[:half], messages[half:]
    worker = p.worker("first.log")
    worker.wait_ready(90)
    produced = p.produce(first)
    before_kill = produced.expected_valid_ids()
    p.wait_for(lambda: all_merged(p, len(before_kill)), 120, "first half merged")
    # the first half committed (Faust commits every second), so the restart cannot replay it
    p.wait_for(lambda: p.caught_up(p.env["VIGIE_APP_ID"], ["enriched"]), 30,
               "the first half committed")
    worker.kill()

    p.worker("second.log").wait_ready(120)
    produced = p.produce(second, produced)
    n_valid = len(produced.expected_valid_ids())
    p.wait_for(lambda: all_merged(p, n_valid), 120, "second half merged")

    rows = current(p)
    members = [rid for r in rows for rid in r["report_ids"]]
    assert len(members) == len(set(members)) == n_valid
    # Incidents holding reports from both sides of the kill prove the engine was restored
    # from the changelog (the first half was committed, so it is not replayed).
    spanning = [r for r in rows if set(r["report_ids"]) & before_kill
                and set(r["report_ids"]) - before_kill]
    assert spanning, "no incident continued across the restart"
    # ... and so was its chronic-place memory (a record per partition in the same changelog)
    restored = [json.loads(line) for line in (p.tmp / "second.log").read_text().splitlines()
                if '"correlator ready"' in line]
    assert restored and sum(r["places"] for r in restored) > 0, restored
