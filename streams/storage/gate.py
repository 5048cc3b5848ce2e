"""A store whose schema is ensured before the first call goes through.

The worker starts without ClickHouse (its web pages answer, `/readyz` says why it is not
ready): the schema is checked by a start-up task that waits for the server, and until it
succeeded every call of a stage or the console checks it first. A call made while
ClickHouse is down fails like any other (`StoreUnavailable`) and is retried by its caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.ports.store import Store, StoreUnavailable


class _GatedStore:
    """`Store` wrapper whose `insert` and `query` pass `_gate()` first; the rest delegates."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url

    def _gate(self) -> None:
        raise NotImplementedError

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._gate()
        self.inner.insert(table, rows)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self._gate()
        return self.inner.query(sql, params)

    def ping(self) -> bool:
        return self.inner.ping()

    def close(self) -> None:
        self.inner.close()


class SchemaFirstStore(_GatedStore):
    """`Store` wrapper: `ensure_schema()` runs (once it succeeded, never again) before the
    first `insert` or `query`."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.schema_ready = False

    def ensure_schema(self) -> None:
        self.inner.ensure_schema()
        self.schema_ready = True

    def _gate(self) -> None:
        if not self.schema_ready:
            self.ensure_schema()


class SchemaReadyStore(_GatedStore):
    """`Store` wrapper for a second connection to the same ClickHouse (the detector's): its
    calls go through only once `schema` (the worker's main store) has ensured the schema, and
    it never creates or migrates the schema itself (one schema run per worker); before that a
    call fails as unavailable, and its caller retries later."""

    def __init__(self, inner: Store, schema: SchemaFirstStore) -> None:
        super().__init__(inner)
        self.schema = schema

    def ensure_schema(self) -> None:
        self._gate()

    def _gate(self) -> None:
        if not self.schema.schema_ready:
            raise StoreUnavailable(
                "clickhouse schema not ready yet (the worker's start-up task creates or checks it)"
            )
