"""ClickHouse server backend: clickhouse-driver, native protocol, columnar inserts."""

from __future__ import annotations

import calendar
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError
from clickhouse_driver.errors import ErrorCodes

from agents.ports.sql import store as statements
from agents.ports.store import StoreError
from streams.storage.common import BaseStore, check_identifier, iso_date, reader, to_dicts

DEFAULT_PORT = 9000
DEFAULT_DATABASE = "vigie"
# Server error codes that say "not now" rather than "never": the same call may succeed once
# the server, its replicas or its load recover (anything else, e.g. a bad statement or a
# missing column, is not retried for long).
TRANSIENT_CODES = frozenset({
    ErrorCodes.TIMEOUT_EXCEEDED,
    ErrorCodes.TOO_MANY_SIMULTANEOUS_QUERIES,
    ErrorCodes.NO_FREE_CONNECTION,
    ErrorCodes.SOCKET_TIMEOUT,
    ErrorCodes.NETWORK_ERROR,
    ErrorCodes.NO_ZOOKEEPER,
    ErrorCodes.MEMORY_LIMIT_EXCEEDED,
    ErrorCodes.TABLE_IS_READ_ONLY,
    ErrorCodes.TOO_MANY_PARTS,
    ErrorCodes.ALL_CONNECTION_TRIES_FAILED,
    ErrorCodes.UNKNOWN_STATUS_OF_INSERT,
    ErrorCodes.QUERY_WAS_CANCELLED,
    ErrorCodes.KEEPER_EXCEPTION,
})


class ServerStore(BaseStore):
    """`clickhouse://user:password@host:port/database[?connect_timeout=5&send_receive_timeout=30]`.

    The database is created on first use if missing. The client reconnects by itself after
    a failure: a call made while the server is down raises StoreError, the next one after
    it is back succeeds.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "clickhouse":
            raise StoreError(f"not a clickhouse:// URL: {url!r}")
        database = parts.path.lstrip("/") or DEFAULT_DATABASE
        super().__init__(url, database)
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._params: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or DEFAULT_PORT,
            "user": unquote(parts.username or "default"),
            "password": unquote(parts.password or ""),
            "connect_timeout": float(options.get("connect_timeout", 5)),
            "send_receive_timeout": float(options.get("send_receive_timeout", 30)),
            "sync_request_timeout": float(options.get("sync_request_timeout", 5)),
            "client_name": "vigie",
        }
        self._client: Client | None = None

    def _connected(self) -> Client:
        """The client bound to our database, creating the database the first time."""
        if self._client is None:
            bootstrap = Client(database="default", **self._params)
            try:
                bootstrap.execute(statements.create_database(check_identifier(self.database)))
            finally:
                bootstrap.disconnect()
            self._client = Client(database=self.database, **self._params)
        return self._client

    def _server_zone(self, client: Client) -> ZoneInfo:
        return ZoneInfo(client.connection.server_info.get_timezone())

    def _command(self, sql: str) -> None:
        self._connected().execute(sql)

    def _select(self, sql: str) -> list[dict[str, Any]]:
        client = self._connected()
        result = client.execute(sql, with_column_types=True)
        rows, columns = result
        if not columns:
            return []
        server_zone = self._server_zone(client)

        converters = [
            reader(ch_type, partial(_epoch, zone=_type_zone(ch_type) or server_zone), iso_date)
            for _, ch_type in columns
        ]
        return to_dicts([name for name, _ in columns], converters, rows)

    def _insert_columns(self, table: str, names: list[str], columns: list[list[Any]]) -> None:
        self._connected().execute(statements.insert_values(table, names), columns, columnar=True)

    def _close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None

    def _transient(self, exc: BaseException) -> bool:
        if isinstance(exc, DriverError):
            return getattr(exc, "code", None) in TRANSIENT_CODES
        return super()._transient(exc)


def _epoch(value: datetime, zone: ZoneInfo) -> int | float:
    """A DateTime read by clickhouse-driver (naive, in `zone`) → UTC epoch seconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    if value.microsecond:
        return value.timestamp()
    return calendar.timegm(value.utctimetuple())


def _type_zone(ch_type: str) -> ZoneInfo | None:
    """The zone of `DateTime('Zone')` (possibly inside Nullable/Array), else None."""
    start = ch_type.find("DateTime('")
    if start < 0:
        start = ch_type.find("DateTime64(")
        quote = ch_type.find("'", start) if start >= 0 else -1
        if quote < 0:
            return None
        return ZoneInfo(ch_type[quote + 1 : ch_type.index("'", quote + 1)])
    name_start = start + len("DateTime('")
    return ZoneInfo(ch_type[name_start : ch_type.index("'", name_start)])
