"""Feedback to reporters on real Kafka and ClickHouse, across a SIGKILL of the worker
mid-stream and a replay of the whole input by another consumer group: every transition once
in `report_feedback` (one row, one `feedback_id`, per report and status), and on the topic
at least once, a repeat being the same bytes; no message carries a field outside the
contract's."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from schemas.feedback import FEEDBACK_FIELDS
from streams.storage import queries
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.vigie import Pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

Identity = tuple[str, str, str]


def rows_of(p: Pipeline, status: str, final: bool = True) -> list[dict[str, Any]]:
    return p.store.query(
        "SELECT source_kind, source_org, report_id, feedback_id, payload FROM report_feedback"
        + (" FINAL" if final else "")
        + " WHERE status = %(s)s",
        {"s": status},
    )


def identities(rows: list[dict[str, Any]]) -> list[Identity]:
    return [(r["source_kind"], r["source_org"], r["report_id"]) for r in rows]


def expected_rattache(p: Pipeline) -> set[Identity]:
    """The reports of the incidents that hold more than one (current versions)."""
    out: set[Identity] = set()
    for row in queries.current_incidents(p.store, status=None, limit=100_000):
        if row["report_count"] >= 2:
            kinds, orgs = row["report_source_kinds"], row["report_source_orgs"]
            out.update(zip(kinds, orgs, row["report_ids"], strict=True))
    return out


def expected_rejete(p: Pipeline) -> set[Identity]:
    """Readable identities of rejected messages that are not reports taken in."""
    rejected = p.store.query(
        "SELECT DISTINCT source_kind, source_org, report_id FROM rejected FINAL"
        " WHERE report_id != '' AND source_kind != '' AND source_org != ''"
        " AND reason != 'id_reused_with_different_content'"
    )
    taken = set(identities(p.store.query("SELECT source_kind, source_org, report_id FROM reports")))
    return {k for k in identities(rejected) if len(k[2]) <= 128 and k not in taken}


def read_feedback(p: Pipeline, topic: str) -> list[Any]:
    """Every message on the topic up to its end offsets at the time of the call (the
    messages of every row already in `report_feedback`: a row is written only once its
    message is delivered)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=p.broker.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        tps = [TopicPartition(topic, n) for n in sorted(consumer.partitions_for_topic(topic))]
        assert tps, f"no topic {topic}"
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"{topic} not read to {end} within 60 s"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def check_once(p: Pipeline, topic: str, valid_ids: set[str]) -> list[Any]:
    """Each transition once in the table, every message of the topic one of them (a repeat
    byte for byte the same), within the contract's fields; returns the topic's records."""
    # the table: one row per (report, status) and one feedback_id, whatever was replayed
    for status in ("recu", "rejete", "rattache"):
        final = rows_of(p, status)
        assert len(final) == len(set(identities(final))), status
        ids: dict[Identity, set[str]] = defaultdict(set)
        for row in rows_of(p, status, final=False):
            ids[(row["source_kind"], row["source_org"], row["report_id"])].add(row["feedback_id"])
        assert all(len(v) == 1 for v in ids.values()), f"{status}: a transition told twice"
    recu = set(identities(rows_of(p, "recu")))
    assert {rid for _k, _o, rid in recu} == valid_ids
    assert set(identities(rows_of(p, "rejete"))) == expected_rejete(p)
    assert set(identities(rows_of(p, "rattache"))) == expected_rattache(p)

    # the topic: every recorded transition, a repeat (a replay's) byte for byte the same
    stored = {
        r["feedback_id"]: r["payload"].encode()
        for s in ("recu", "rejete", "rattache")
        for r in rows_of(p, s)
    }
    records = read_feedback(p, topic)
    by_id: dict[str, set[bytes]] = defaultdict(set)
    for record in records:
        message = orjson.loads(record.value)
        assert set(message) == FEEDBACK_FIELDS  # nothing outside the contract's allow-list
        assert orjson.loads(record.key) == [
            message["source_kind"],
            message["source_org"],
            message["report_id"],
        ]
        by_id[message["feedback_id"]].add(record.value)
    unstored = sorted(set(by_id) - set(stored))
    assert not unstored, "sent but not recorded: " + "; ".join(
        orjson.loads(next(iter(by_id[fid]))).__repr__() for fid in unstored[:5]
    )
    assert set(by_id) == set(stored)
    differing = {fid: values for fid, values in by_id.items() if values != {stored[fid]}}
    assert not differing, "a transition sent with other bytes than stored: " + "; ".join(
        describe(stored[fid], values) for fid, values in list(differing.items())[:5]
    )
    return records


def describe(stored: bytes, sent: set[bytes]) -> str:
    """Which fields of the messages sent under one `feedback_id` differ from the stored row's."""
    row = orjson.loads(stored)
    diffs = []
    for value in sent - {stored}:
        message = orjson.loads(value)
        fields = {f: (row.get(f), message.get(f)) for f in FEEDBACK_FIELDS}
        diffs.append({f: pair for f, pair in fields.items() if pair[0] != pair[1]})
    return f"{row['status']} {row['feedback_id']}: (stored, sent) {diffs}"


def feedback_end(p: Pipeline, topic: str) -> int:
    """The number of messages ever written to the topic (the sum of its end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=p.broker.bootstrap)
    try:
        tps = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def settled(
    p: Pipeline, topic: str, app_id: str, quiet_s: float = 3.0, timeout_s: float = 240.0
) -> int:
    """The number of messages on the topic once the worker of `app_id` has read and
    committed all its input (ingest, then the correlation of what ingest forwarded; a stage
    acks a batch once its feedback is delivered and stored) and the topic has then not grown
    for `quiet_s`."""
    p.wait_for(
        lambda: (
            p.caught_up(f"{app_id}-ingest", ["partner", "citizen"])
            and p.caught_up(app_id, ["enriched"])
        ),
        timeout_s,
        f"{app_id} caught up with its input",
    )
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = feedback_end(p, topic)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return n
        time.sleep(0.5)
    raise AssertionError(f"the feedback topic kept growing ({last} messages)")


def wait_all_told(p: Pipeline, n_valid: int, timeout_s: float = 300.0) -> None:
    """Until every report is told `recu` and merged, and every merged one `rattache`."""
    state: dict[str, int] = {}

    def done() -> bool:
        incidents = queries.current_incidents(p.store, status=None, limit=100_000)
        state["recu"] = len(rows_of(p, "recu"))
        state["merged"] = sum(r["report_count"] for r in incidents)
        state["rattache_missing"] = len(
            expected_rattache(p) - set(identities(rows_of(p, "rattache")))
        )
        return (
            state["recu"] >= n_valid
            and state["merged"] >= n_valid
            and not state["rattache_missing"]
        )

    try:
        p.wait_for(done, timeout_s, "every report told recu and merged")
    except AssertionError as exc:
        raise AssertionError(f"{state} of {n_valid} valid reports; {unmerged(p)}\n{exc}") from None


def unmerged(p: Pipeline) -> str:
    """Where the stored reports that no current incident version lists are: listed by an
    older version only (replaced), or by none (never merged, or merged and not stored)."""
    current: set[str] = set()
    for row in queries.current_incidents(p.store, status=None, limit=100_000):
        current.update(row["report_ids"])
    ever: set[str] = set()
    for row in p.store.query("SELECT report_ids FROM incidents"):
        ever.update(row["report_ids"])
    stored = {r["report_id"] for r in p.store.query("SELECT DISTINCT report_id FROM reports")}
    missing = stored - current
    app_id = p.env["VIGIE_APP_ID"]
    return (f"{len(missing)} stored reports in no current version, {len(missing & ever)} of"
            f" them in an older one; e.g. {sorted(missing)[:3]}; the correlator has"
            f" {'' if p.caught_up(app_id, ['enriched']) else 'not '}committed its whole input")


def test_each_transition_once_across_a_sigkill_and_a_replay(
    pipeline_factory: Callable[..., Pipeline], clickhouse_server: ClickHouseServer
) -> None:
    topic = f"t{os.getpid()}.feedback.kill"
    p = pipeline_factory(
        clickhouse_server.url_for("it_feedback_kill"), sink_batch_rows="300", topic_feedback=topic
    )
    messages = p.simulate(days=3, seed=23)
    worker = p.worker("first.log")
    worker.wait_ready(90)
    produced = p.produce(messages)
    n_valid = len(produced.expected_valid_ids())
    p.wait_for(lambda: p.scalar("SELECT count() FROM report_feedback") > 300, 90, "feedback")
    worker.kill()  # SIGKILL, mid-stream
    told = p.scalar("SELECT count() FROM report_feedback FINAL WHERE status = 'recu'")
    assert told < n_valid, "the kill did not land mid-stream"

    p.worker("second.log").wait_ready(120)
    wait_all_told(p, n_valid)

    first = check_once(p, topic, produced.expected_valid_ids())

    # a replay: another consumer group reads every input again from the start, and its
    # correlation (an empty changelog) merges every report again. Reports stored and
    # rejections told are not told again; each incident's merges are, as the same bytes.
    p.workers[-1].kill()
    replay_id = p.env["VIGIE_APP_ID"] + "-replay"
    replay = p.worker("replay.log", VIGIE_APP_ID=replay_id)
    replay.wait_ready(120)
    settled(p, topic, replay_id)
    again = check_once(p, topic, produced.expected_valid_ids())
    repeats = len(again) - len(first)
    assert repeats > 0, "the replay told nothing again: it did not replay"
    print(f"feedback messages {len(first)} then {len(again)} after the replay")
