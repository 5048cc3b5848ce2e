"""In-memory stand-ins for the worker's I/O: a `Store`, Kafka sends, the changelog, a clock.

No Kafka, no ClickHouse: the agents run on Faust's `test_context` channels and these record
every confirmed write, so tests assert what a real worker would have written.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import h3
import orjson

from agents.core.correlation import partition_key
from agents.core.record import ReportRecord
from agents.ingest import bundle_by_key
from agents.ports.sql import reports
from agents.ports.sql.query import Query
from agents.ports.store import StoreError

LAT0, LON0 = 48.6290, 2.4410  # Évry-Courcouronnes
T0 = 1_710_748_800.0  # 2024-03-18 08:00 UTC
M_PER_DEG = 111_320.0

# The ingest's look-ups of `reports` by report id (`FakeStore.reports_lookup`).
REPORT_LOOKUPS: dict[str, Query] = {q.sql: q for q in (reports.STORED_KEYS, reports.STORED_ORIGINS)}


class FakeStore:
    """`agents.ports.store.Store` in memory; `fail_inserts` makes every insert raise."""

    url = "memory://fake"

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.fail_inserts = False
        self.insert_attempts = 0
        self.inserts: list[tuple[str, int]] = []  # (table, rows) of each insert that landed

    def ensure_schema(self) -> None:
        return None

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.insert_attempts += 1
        if self.fail_inserts:
            raise StoreError(f"insert into {table} refused (test)")
        self.rows.setdefault(table, []).extend(dict(r) for r in rows)
        self.inserts.append((table, len(rows)))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return []

    def reports_lookup(
        self, sql: str, params: Mapping[str, Any] | None
    ) -> tuple[Query, list[dict[str, Any]]] | None:
        """The answer to one of the ingest's look-ups of `reports` (`REPORT_LOOKUPS`) from
        the rows inserted into `reports`, as the table would give it (every identity with
        one of the ids asked, the query's columns), with the query; None for another query."""
        query = REPORT_LOOKUPS.get(sql)
        if query is None:
            return None
        assert params is not None
        ids = params["ids"]
        return query, [
            {k: row[k] for k in query.columns or ()}
            for row in self.rows.get("reports", [])
            if row["report_id"] in ids
        ]

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        return None


@dataclass
class FakeKafka:
    """`SendFn` that records (topic, key, value); each delivery is confirmed at once."""

    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        self.sent.append((topic, key, value))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    def on(self, topic: str) -> list[tuple[bytes | None, dict[str, Any]]]:
        return [(k, orjson.loads(v)) for t, k, v in self.sent if t == topic]


@dataclass
class FakeChangelog:
    """The correlate agent's changelog writer: each write returns its delivery, and
    `on_confirm` is called when the agent awaits one (a test snapshots there what must not
    have happened yet, e.g. acks); while `gate` is set and not open, deliveries wait (a
    slow broker)."""

    writes: list[tuple[int, str, Any]] = field(default_factory=list)
    confirmed: int = 0
    on_confirm: Callable[[], None] | None = None
    gate: asyncio.Event | None = None

    async def write(
        self, partition: int, key: str, value: Any, raw: bytes | None = None
    ) -> Awaitable[None]:
        self.writes.append((partition, key, value))
        return self._deliver()

    async def _deliver(self) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.confirmed += 1
        if self.on_confirm is not None:
            self.on_confirm()


async def run_inline(fn: Callable[..., Any], *args: Any) -> Any:
    """`run_blocking` without the store thread."""
    return fn(*args)


_seq = 0


def report(*, kind: str = "citizen", org: str = "citoyen", east_m: float = 0.0,
           t: float = 0.0, category: str = "cambriolage",
           contact: str | None = None) -> ReportRecord:
    """An enriched record `east_m` metres east of the origin, `t` seconds after T0."""
    global _seq
    _seq += 1
    lat = LAT0
    lon = LON0 + east_m / (M_PER_DEG * math.cos(math.radians(LAT0)))
    r9 = h3.latlng_to_cell(lat, lon, 9)
    return ReportRecord(
        report_id=f"AG-{_seq:06d}", source_kind=kind, source_org=org, source_channel=None,
        category=category, occurred_at=T0 + t, reported_at=T0 + t + 60.0, lat=lat, lon=lon,
        accuracy_m=20.0, insee="91228", severity=None, contact_hash=contact,
        description_hash=None, description_len=0, commune="Évry-Courcouronnes",
        jurisdiction="csp-evry", precision="point", h3_r7=h3.cell_to_parent(r9, 7),
        h3_r8=h3.cell_to_parent(r9, 8), h3_r9=r9,
    )


def bundle(*records: ReportRecord) -> tuple[bytes, bytes]:
    """(key, value) of the one enriched-topic message the ingest stage makes of `records`."""
    messages = bundle_by_key(records, [r.to_dict() for r in records], partition_key)
    assert len(messages) == 1, "the records must share one partition key"
    key, value = messages[0]
    return key.encode(), value
