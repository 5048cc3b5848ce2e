"""`vigie feedback --report ID`: the status transitions a report's reporter was told
(`docs/contract-v1.md`, *Feedback to reporters*); without `--report`, the latest
transitions on the topic (`--tail N`). A report's come from ClickHouse `report_feedback` or, with
`--from topic` (and when the running worker holds the embedded chDB, one process per path),
from the feedback topic itself (read from the start; a compacted topic may have dropped the
older transitions of a report once its segments were cleaned: the table keeps every one)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import orjson

from agents.ports.sql import feedback as sql
from streams.settings import Settings, get_settings
from streams.storage import StoreError, is_embedded, open_store

STATUS_ORDER = {"recu": 0, "rejete": 0, "rattache": 1, "pris_en_compte": 2, "clos": 3}


def from_store(settings: Settings, report_id: str) -> list[dict[str, Any]]:
    store = open_store(settings.clickhouse)
    try:
        query = sql.OF_REPORT
        rows = store.query(query.sql, query.bind(id=report_id))
    finally:
        store.close()
    return [orjson.loads(row["payload"]) for row in rows]


def from_topic(
    settings: Settings, report_id: str | None, timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """Every message of the feedback topic about `report_id` (None: every report), in the
    order read, duplicates (a replay's, the same `feedback_id`) dropped."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        partitions = consumer.partitions_for_topic(settings.topic_feedback) or set()
        tps = [TopicPartition(settings.topic_feedback, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        seen: dict[str, dict[str, Any]] = {}
        remaining = {tp for tp in tps if end[tp] > 0}
        for record in consumer:
            tp = TopicPartition(record.topic, record.partition)
            if record.value is not None:
                message = orjson.loads(record.value)
                if report_id is None or message.get("report_id") == report_id:
                    seen.setdefault(message["feedback_id"], message)
            if record.offset + 1 >= end[tp]:
                remaining.discard(tp)
            if not remaining:
                break
    finally:
        consumer.close()
    return list(seen.values())


def ordered(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        messages,
        key=lambda m: (m["source_kind"], m["source_org"], m["at"], STATUS_ORDER[m["status"]]),
    )


def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """`settings` defaults to the process's (`VIGIE_*`, read once and cached)."""
    settings = settings if settings is not None else get_settings()
    source = args.source
    messages: list[dict[str, Any]]
    if args.report is None:  # the latest transitions of any report, from the topic
        latest = sorted(from_topic(settings, None), key=lambda m: m["at"])
        messages = latest[-args.tail :] if args.tail > 0 else []
        return show(messages, args.json, "no feedback on the topic yet")
    if source == "store":
        try:
            messages = from_store(settings, args.report)
        except StoreError:
            if not is_embedded(settings.clickhouse):
                raise
            source = "topic"  # the running worker holds the embedded chDB
    if source == "topic":
        messages = from_topic(settings, args.report)
    return show(ordered(messages), args.json, f"no feedback for report {args.report} ({source})")


def show(messages: list[dict[str, Any]], as_json: bool, none: str) -> int:
    if as_json:
        print(json.dumps(messages, indent=2, ensure_ascii=False))
        return 0
    if not messages:
        print(none, file=sys.stderr)
        return 1
    for m in messages:
        extra = []
        if m.get("other_reports") is not None:
            extra.append(f"others={m['other_reports']}")
        for field in ("reason", "outcome", "incident_id"):
            if m.get(field):
                extra.append(f"{field}={m[field]}")
        print(
            f"{m['at']}  {m['status']:<14} {m['source_kind']}/{m['source_org']}/{m['report_id']}  "
            f"{m['message']}" + (f"  [{' '.join(extra)}]" if extra else "")
        )
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("feedback", help="show the feedback transitions of a report")
    parser.add_argument("--report", help="the report_id (every source's)")
    parser.add_argument(
        "--tail",
        type=int,
        default=20,
        help="without --report: the last N transitions on the topic (default 20)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        choices=("store", "topic"),
        default="store",
        help="read ClickHouse (default; the topic when the worker holds the embedded chDB)"
        " or the feedback topic",
    )
    parser.add_argument("--json", action="store_true", help="print the messages as JSON")
    parser.set_defaults(func=run)
