"""Statements the store implementations (`streams.storage`) run for themselves: database,
inserts, liveness, column types. Identifiers are checked by the caller
(`[A-Za-z_][A-Za-z0-9_]*`), never quoted here."""

from __future__ import annotations

from collections.abc import Sequence

from agents.ports.sql.query import Query

# Liveness: one row {"ok": 1}.
PING = Query("store.PING", "SELECT 1 AS ok", ("ok",), "system")

# The columns (name, type) of table `table` of database `db`, for typed inserts.
COLUMN_TYPES = Query(
    "store.COLUMN_TYPES",
    "SELECT name, type FROM system.columns WHERE database = %(db)s AND table = %(table)s",
    ("name", "type"),
    "system",
)


def create_database(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {database}"


def use(database: str) -> str:
    return f"USE {database}"


def insert_values(table: str, names: Sequence[str]) -> str:
    """A columnar insert over the native protocol (the values follow the statement)."""
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES"


def insert_sync(table: str, names: Sequence[str]) -> str:
    """A streamed insert, written before it returns (chDB turns asynchronous inserts on by
    default); the rows follow in the caller's format."""
    return f"INSERT INTO {table} ({', '.join(names)}) SETTINGS async_insert = 0"
