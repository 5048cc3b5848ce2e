"""Check, before Faust opens its tables, that the RocksDB table store on disk was built from
the changelog the broker now holds.

Each partition database keeps the changelog offset it holds, and Faust trusts it: on a fresh
broker or a recreated, empty changelog its consistency check does not fire (it only compares
a non-zero offset with a non-zero high-water mark) and the worker silently resumes incident
state from another deployment's history; on a recreated changelog shorter than the stored
offset it raises `ConsistencyError` at every start. The tables directory records where it
came from (`changelog-origin.json`: the Kafka cluster id and each changelog topic's id) when
first used; at start the guard compares that marker and the stored offsets with the broker
and, if they do not match, renames the directory to `<dir>.stale-<UTC time>` (kept for
inspection, never deleted) so Faust rebuilds the tables from the changelog.

When the broker cannot be asked within a bounded time the store is kept as it is (one
warning): a dependency outage never wipes state.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from streams.settings import Settings

log = logging.getLogger(__name__)
_C = TypeVar("_C")  # a kafka-python client class

MARKER = "changelog-origin.json"
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
OFFSET_KEY = b"__faust\0offset__"  # where Faust's RocksDB store keeps a partition's offset

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ChangelogOrigin:
    """The broker cluster and changelog topic incarnations a store was built from (an id
    is None when the broker does not tell it, or the topic does not exist yet)."""

    cluster_id: str | None
    topic_ids: Mapping[str, str | None] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"cluster_id": self.cluster_id, "topic_ids": dict(self.topic_ids)}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str) -> ChangelogOrigin:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("marker is not a JSON object")
        cluster = raw.get("cluster_id")
        topics = raw.get("topic_ids", {})
        if cluster is not None and not isinstance(cluster, str):
            raise ValueError("cluster_id is not a string")
        if not isinstance(topics, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in topics.items()
        ):
            raise ValueError("topic_ids is not an object of strings")
        return cls(cluster, dict(topics))

    def merged(self, newer: ChangelogOrigin) -> ChangelogOrigin:
        """This origin with the ids `newer` knows and this one did not (a changelog created
        after the marker was first written)."""
        ids = dict(self.topic_ids)
        for topic, tid in newer.topic_ids.items():
            if ids.get(topic) is None:
                ids[topic] = tid
        return ChangelogOrigin(self.cluster_id or newer.cluster_id, ids)


class Reason(Enum):
    """Why a store is kept or set aside."""

    NO_STORE = "no_store"  # nothing on disk yet
    MATCH = "match"  # marker and offsets agree with the broker
    ADOPTED = "adopted"  # no marker (a store older than the guard), offsets agree
    CLUSTER_CHANGED = "cluster_changed"
    TOPIC_RECREATED = "topic_recreated"
    OFFSET_BEYOND_END = "offset_beyond_end"


STALE = frozenset({Reason.CLUSTER_CHANGED, Reason.TOPIC_RECREATED, Reason.OFFSET_BEYOND_END})


@dataclass(frozen=True, slots=True)
class Decision:
    reason: Reason
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stale(self) -> bool:
        return self.reason in STALE


def decide(
    marker: ChangelogOrigin | None,
    observed: ChangelogOrigin,
    stored: Mapping[TopicPartition, int],
    end_offsets: Mapping[TopicPartition, int],
) -> Decision:
    """Keep or set aside a store. `stored`: the offset each partition database holds (the
    last changelog record it applied); `end_offsets`: the changelog's end offset per
    partition (a partition or topic missing from it counts as empty)."""
    if not stored:
        return Decision(Reason.NO_STORE)
    if marker is not None:
        if marker.cluster_id and observed.cluster_id and marker.cluster_id != observed.cluster_id:
            return Decision(
                Reason.CLUSTER_CHANGED, {"stored": marker.cluster_id, "broker": observed.cluster_id}
            )
        for topic, tid in sorted(marker.topic_ids.items()):
            now = observed.topic_ids.get(topic)
            if tid and now and tid != now:
                return Decision(
                    Reason.TOPIC_RECREATED, {"topic": topic, "stored": tid, "broker": now}
                )
    for (topic, partition), offset in sorted(stored.items()):
        end = end_offsets.get((topic, partition), 0)
        if offset >= end:  # the record at `offset` is not (or no longer) in the changelog
            return Decision(
                Reason.OFFSET_BEYOND_END,
                {"topic": topic, "partition": partition, "stored": offset, "end": end},
            )
    return Decision(Reason.MATCH if marker is not None else Reason.ADOPTED)


@dataclass(frozen=True, slots=True)
class BrokerView:
    origin: ChangelogOrigin
    end_offsets: Mapping[TopicPartition, int]


def observe(
    bootstrap: str, client_id: str, topics: Iterable[str], timeout_s: float
) -> BrokerView | None:
    """The cluster id, the topics' ids and their end offsets, or None when the broker does
    not answer within about `timeout_s` (never raises a Kafka error)."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTP
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    servers = [s.strip() for s in bootstrap.split(",") if s.strip()]
    timeout_ms = max(1000, int(timeout_s * 1000))
    names = sorted(set(topics))
    if not any(_accepts(server, min(timeout_s, 2.0)) for server in servers):
        # refused at once (the client would retry until its timeout): not a broker outage
        # worth waiting for here, the worker starts not ready and Faust keeps retrying
        log.warning("table store not checked: no broker", extra={"bootstrap": bootstrap})
        return None
    common: dict[str, Any] = {
        "bootstrap_servers": servers,
        "client_id": client_id,
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
    }
    admin = _connect(KafkaAdminClient, common)
    if admin is None:
        return None
    try:
        cluster = admin.describe_cluster().get("cluster_id")
        described = admin.describe_topics(names) if names else []
    except (KafkaError, OSError) as exc:
        log.warning("table store not checked: broker did not answer", extra={"error": repr(exc)})
        return None
    finally:
        admin.close()
    ids: dict[str, str | None] = {}
    partitions: list[Any] = []
    for t in described:
        if t.get("error_code", 0) != 0 or t.get("name") not in names:
            continue  # e.g. the changelog does not exist yet: no id, empty
        tid = str(t["topic_id"]) if t.get("topic_id") is not None else None
        ids[t["name"]] = None if tid == ZERO_UUID else tid
        partitions += [KafkaTP(t["name"], p["partition_index"]) for p in t.get("partitions", [])]
    ends: dict[TopicPartition, int] = {}
    if partitions:
        consumer = _connect(KafkaConsumer, {**common, "enable_auto_commit": False})
        if consumer is None:
            return None
        try:
            got = consumer.end_offsets(partitions)
        except (KafkaError, OSError) as exc:
            log.warning("table store not checked: end offsets not read", extra={"error": repr(exc)})
            return None
        finally:
            consumer.close()
        ends = {(tp.topic, tp.partition): int(off) for tp, off in got.items()}
    return BrokerView(ChangelogOrigin(cluster, {n: ids.get(n) for n in names}), ends)


def _connect(factory: Callable[..., _C], kwargs: dict[str, Any]) -> _C | None:
    """A Kafka client from `factory(**kwargs)`; None (logged) when no broker answers."""
    from kafka.errors import KafkaError

    try:
        return factory(**kwargs)
    except (KafkaError, OSError) as exc:
        log.warning("table store not checked: no broker", extra={"error": repr(exc)})
        return None


def _accepts(server: str, timeout_s: float) -> bool:
    """Whether `host:port` accepts a TCP connection within `timeout_s`."""
    host, _, port = server.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout_s):
            return True
    except (OSError, ValueError):
        return False


def stored_offsets(tables_dir: Path, changelogs: Mapping[str, str]) -> dict[TopicPartition, int]:
    """The offset each partition database under `tables_dir` holds, keyed by its changelog
    partition (`changelogs`: table name -> changelog topic). Read-only; Faust has not opened
    the databases yet."""
    from rocksdict import AccessType, Options, Rdict

    found: dict[TopicPartition, int] = {}
    for table, topic in changelogs.items():
        for path in sorted(tables_dir.glob(f"{table}-*.db")):
            suffix = path.name[len(table) + 1 : -len(".db")]
            if not suffix.isdigit():
                continue
            try:
                db = Rdict(
                    str(path), options=Options(raw_mode=True), access_type=AccessType.read_only()
                )
            except Exception as exc:  # rocksdict raises bare exceptions; Faust will say more
                log.warning(
                    "table database not readable", extra={"path": str(path), "error": repr(exc)}
                )
                continue
            try:
                raw = db.get(OFFSET_KEY)
            finally:
                db.close()
            if raw is not None:
                found[(topic, int(suffix))] = int(raw)
    return found


def read_marker(tables_dir: Path) -> ChangelogOrigin | None:
    path = tables_dir / MARKER
    try:
        return ChangelogOrigin.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # unreadable: as if absent, the offsets still count
        log.warning("table store marker unreadable", extra={"path": str(path), "error": repr(exc)})
        return None


def write_marker(tables_dir: Path, origin: ChangelogOrigin) -> None:
    tables_dir.mkdir(parents=True, exist_ok=True)
    tmp = tables_dir / (MARKER + ".tmp")
    tmp.write_text(origin.to_json() + "\n", encoding="utf-8")
    tmp.replace(tables_dir / MARKER)


def set_aside(tables_dir: Path, now: float | None = None) -> Path:
    """Rename the tables directory out of Faust's way; returns the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    target = tables_dir.with_name(f"{tables_dir.name}.stale-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = tables_dir.with_name(f"{tables_dir.name}.stale-{stamp}-{n}")
    tables_dir.rename(target)
    return target


def guard_tables(
    tables_dir: Path,
    changelogs: Mapping[str, str],
    bootstrap: str,
    client_id: str,
    timeout_s: float = 10.0,
) -> Decision | None:
    """Check the store under `tables_dir` against the broker, set it aside if stale, and
    record the changelog origin; None when the broker could not be asked (store kept)."""
    view = observe(bootstrap, client_id, changelogs.values(), timeout_s)
    if view is None:
        return None
    marker = read_marker(tables_dir)
    stored = stored_offsets(tables_dir, changelogs) if tables_dir.is_dir() else {}
    decision = decide(marker, view.origin, stored, view.end_offsets)
    if decision.stale:
        moved = set_aside(tables_dir)
        log.warning(
            "table store set aside: it does not match the changelog, tables are "
            "rebuilt from the changelog",
            extra={"reason": decision.reason.value, **decision.detail, "moved_to": str(moved)},
        )
        marker = None
    origin = view.origin if marker is None else marker.merged(view.origin)
    write_marker(tables_dir, origin)
    if not decision.stale:
        log.info(
            "table store matches the changelog",
            extra={"reason": decision.reason.value, "partitions": len(stored)},
        )
    return decision


def guard_app_tables(app: Any, settings: Settings) -> Decision | None:
    """`guard_tables` for the app's declared tables (RocksDB store only), before Faust
    starts them."""
    if settings.table_store != "rocksdb" or not app.tables:
        return None
    changelogs = {
        name: table.changelog_topic.get_topic_name() for name, table in app.tables.items()
    }
    return guard_tables(
        Path(app.conf.tabledir),
        changelogs,
        settings.kafka_bootstrap,
        f"{settings.app_id}-table-guard",
    )
