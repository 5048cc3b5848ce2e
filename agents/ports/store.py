"""The one storage interface that both ClickHouse backends implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class StoreError(RuntimeError):
    """An insert or query failed (server down, bad SQL...). Callers retry or crash."""


class StoreUnavailable(StoreError):
    """The store could not be reached or is temporarily overloaded (connection refused or
    lost, timeout): the same call may succeed later, so callers wait it out."""


class Store(Protocol):
    """ClickHouse, either a server (clickhouse-driver) or embedded (chDB).

    `insert` returns only once the rows are durably written (confirmed), else raises
    StoreError. `query` takes pyformat parameters (`%(name)s`), escaped client-side by
    clickhouse-driver's own escaping in both backends, and returns rows as dicts.
    """

    url: str

    def ensure_schema(self) -> None: ...

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...
