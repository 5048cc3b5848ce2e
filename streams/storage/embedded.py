"""Embedded ClickHouse backend: a chDB session on a directory.

URL forms: `chdb:///absolute/path` or `chdb://relative/path` (relative to the current
directory), optional `?database=NAME` (default `vigie`).

chDB is single-process: only ONE process may open a given path at a time, and within a
process chDB runs one embedded server, so all open stores must share the same path (a
second path can be opened only once every store on the first one is closed).

Inserts are synchronous: `async_insert=0` is set explicitly (chDB turns it on by default),
on the session and in every INSERT, so rows are written (a MergeTree part on disk) and
visible when `insert` returns.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from chdb import session as chdb_session

from agents.ports.sql import store as statements
from agents.ports.store import StoreError
from streams.storage.common import BaseStore, reader, to_dicts

DEFAULT_DATABASE = "vigie"

# Session-wide settings: synchronous inserts, machine-friendly JSON output.
_SESSION_SETTINGS = (
    "SET async_insert = 0",
    "SET date_time_output_format = 'unix_timestamp'",
    "SET output_format_json_quote_64bit_integers = 0",
    "SET output_format_json_quote_denormals = 0",
)


def parse_chdb_url(url: str) -> tuple[str, str]:
    """`chdb:///abs/path?database=x` → (absolute path, database)."""
    parts = urlsplit(url)
    if parts.scheme != "chdb":
        raise StoreError(f"not a chdb:// URL: {url!r}")
    raw = parts.netloc + parts.path
    if not raw:
        raise StoreError(f"chdb URL without a path: {url!r}")
    database = parse_qs(parts.query).get("database", [DEFAULT_DATABASE])[-1]
    return os.path.abspath(raw), database


def _datetime_value(value: Any) -> int | float:
    # date_time_output_format=unix_timestamp prints "1700000000" (or "1700000000.123").
    text = str(value)
    return float(text) if "." in text else int(text)


class EmbeddedStore(BaseStore):
    """A chDB session on one directory (see the module docstring for the URL and limits)."""

    def __init__(self, url: str) -> None:
        path, database = parse_chdb_url(url)
        super().__init__(url, database)
        self.path = path
        os.makedirs(path, exist_ok=True)
        self._session: Any = None
        try:
            self._session = chdb_session.Session(f"{path}?async_insert=0")  # type: ignore[no-untyped-call]
            for stmt in _SESSION_SETTINGS:
                self._session.query(stmt)
            self._session.query(statements.create_database(self.database))
            self._session.query(statements.use(self.database))
        except Exception as exc:
            if self._session is not None:
                self._session.close()  # release the path (one chDB path per process)
                self._session = None
            raise StoreError(f"cannot open chDB at {path}: {exc}") from exc

    def _live(self) -> Any:
        if self._session is None:
            raise StoreError("store is closed")
        return self._session

    def _command(self, sql: str) -> None:
        self._live().query(sql)

    def _select(self, sql: str) -> list[dict[str, Any]]:
        raw = self._live().query(sql, "JSONCompact").bytes()
        if not raw:
            return []  # a statement without a result set (DDL, INSERT ... SELECT)
        result = orjson.loads(raw)
        meta = result["meta"]
        converters = [reader(col["type"], _datetime_value, str) for col in meta]
        return to_dicts([col["name"] for col in meta], converters, result["data"])

    def _insert_columns(self, table: str, names: list[str], columns: list[list[Any]]) -> None:
        # JSONColumns built by orjson: ~10x faster than JSONEachRow for the same rows.
        payload = orjson.dumps(dict(zip(names, columns, strict=True)))
        inserter = self._live().send_insert(statements.insert_sync(table, names), "JSONColumns")
        try:
            inserter.append(payload)
        except BaseException:
            inserter.cancel()
            raise
        inserter.finish()

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
