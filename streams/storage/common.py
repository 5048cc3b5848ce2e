"""What both backends share: parameter rendering, row → column conversion, result typing.

Values crossing the `Store` boundary:
- in `insert`, DateTime columns take UTC epoch seconds (int or float, truncated to the
  second) or aware `datetime`s; arrays are lists; None only for Nullable columns;
- out of `query`, DateTime values are UTC epoch seconds (int; float for DateTime64), Date
  values ISO strings `YYYY-MM-DD`, arrays lists, tuples lists, everything else native.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from clickhouse_driver.util.escape import escape_params

from agents.ports.sql import schema
from agents.ports.sql import store as statements
from agents.ports.store import StoreError, StoreUnavailable

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Converter = Callable[[Any], Any]


def check_identifier(name: str) -> str:
    """A table/column/database name, never quoted or escaped: only `[A-Za-z_][A-Za-z0-9_]*`."""
    if not _IDENTIFIER.match(name):
        raise StoreError(f"invalid identifier {name!r}")
    return name


class _UtcContext:
    """The bit of clickhouse-driver's context its escaping reads (aware datetimes → UTC)."""

    class server_info:  # mimics clickhouse-driver's attribute name
        @staticmethod
        def get_timezone() -> str:
            return "UTC"


def render(sql: str, params: Mapping[str, Any] | None) -> str:
    """Substitute `%(name)s` parameters, escaped by clickhouse-driver's own escaping.

    Without params the SQL is returned untouched (a literal `%` needs no doubling then).
    Booleans become 1/0 (ClickHouse 18.16 has no boolean literals).
    """
    if params is None:
        return sql
    prepared = {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    try:
        return str(sql % escape_params(prepared, _UtcContext))
    except (KeyError, ValueError, TypeError) as exc:
        raise StoreError(f"bad query parameters: {exc}") from exc


# ---- insert side -------------------------------------------------------------------------
def _to_epoch(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise StoreError("naive datetime given for a DateTime column (give UTC epoch seconds)")
        return int(value.timestamp())
    return int(value)


def _epochs(column: Sequence[Any]) -> list[Any]:
    try:
        return list(map(int, column))  # fast path: all numbers
    except TypeError:
        return [_to_epoch(v) for v in column]


def _is_datetime(ch_type: str) -> bool:
    inner = ch_type[len("Nullable(") : -1] if ch_type.startswith("Nullable(") else ch_type
    return inner.startswith("DateTime") and not inner.startswith("DateTime64")


def to_columns(
    rows: Sequence[Mapping[str, Any]], types: Mapping[str, str]
) -> tuple[list[str], list[list[Any]]]:
    """Rows (dicts keyed by column name, all with the same keys) → (names, columns).

    DateTime columns become int epoch seconds.
    """
    names = list(rows[0].keys())
    for name in names:
        if name not in types:
            raise StoreError(f"unknown column {name!r}")
    try:
        columns = [
            _epochs([row[name] for row in rows])
            if _is_datetime(types[name])
            else [row[name] for row in rows]
            for name in names
        ]
    except KeyError as exc:
        raise StoreError(f"row lacks column {exc.args[0]!r} (all rows need the same keys)") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise StoreError(f"bad value for a DateTime column: {exc}") from exc
    return names, columns


# ---- query side --------------------------------------------------------------------------
def reader(ch_type: str, datetime_value: Converter, date_value: Converter) -> Converter | None:
    """A converter for one result column type, or None when values are fine as they are."""
    if ch_type.startswith("Nullable("):
        inner = reader(ch_type[len("Nullable(") : -1], datetime_value, date_value)
        if inner is None:
            return None
        return lambda v: None if v is None else inner(v)
    if ch_type.startswith("Array("):
        item = reader(ch_type[len("Array(") : -1], datetime_value, date_value)
        if item is None:
            return list
        return lambda v: [item(x) for x in v]
    if ch_type.startswith("DateTime"):
        return datetime_value
    if ch_type == "Date" or ch_type == "Date32":
        return date_value
    if ch_type.startswith("Tuple("):
        return list
    return None


def to_dicts(
    names: Sequence[str], converters: Sequence[Converter | None], data: Sequence[Sequence[Any]]
) -> list[dict[str, Any]]:
    active = [(i, c) for i, c in enumerate(converters) if c is not None]
    out: list[dict[str, Any]] = []
    for raw in data:
        values = list(raw)
        for i, convert in active:
            values[i] = convert(values[i])
        out.append(dict(zip(names, values, strict=True)))
    return out


def iso_date(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


# ---- the shared store skeleton -------------------------------------------------------------
class BaseStore(ABC):
    """`Store` implementation minus the three backend primitives.

    Thread-safe: every backend call runs under one lock (neither clickhouse-driver's Client
    nor a chDB streaming insert tolerate concurrent use).
    """

    url: str
    database: str

    def __init__(self, url: str, database: str) -> None:
        self.url = url
        self.database = check_identifier(database)
        self._lock = threading.RLock()
        self._types: dict[str, dict[str, str]] = {}

    # -- backend primitives (called under the lock, raise anything; wrapped here) --
    @abstractmethod
    def _command(self, sql: str) -> None: ...

    @abstractmethod
    def _select(self, sql: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _insert_columns(self, table: str, names: list[str], columns: list[list[Any]]) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    def _transient(self, exc: BaseException) -> bool:
        """Whether a primitive's exception means "unreachable for now" (retrying later may
        succeed) rather than a bad statement or schema. Backends refine it."""
        return isinstance(exc, OSError | EOFError)

    def _failure(self, message: str, exc: BaseException) -> StoreError:
        return StoreUnavailable(message) if self._transient(exc) else StoreError(message)

    # -- Store --
    def ensure_schema(self) -> None:
        with self._lock:
            self._types.clear()
            try:
                schema.ensure_schema(self._command, self.database, self._select)
            except StoreError:
                raise
            except Exception as exc:
                raise self._failure(f"schema creation failed: {exc}", exc) from exc

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        check_identifier(table)
        if not rows:
            return
        with self._lock:
            types = self._column_types(table)
            names, columns = to_columns(rows, types)
            try:
                self._insert_columns(table, names, columns)
            except Exception as exc:
                raise self._failure(f"insert into {table} failed: {exc}", exc) from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        text = render(sql, params)
        with self._lock:
            try:
                return self._select(text)
            except Exception as exc:
                raise self._failure(f"query failed: {exc}", exc) from exc

    def ping(self) -> bool:
        try:
            return self.query(statements.PING.sql) == [{"ok": 1}]
        except StoreError:
            return False

    def close(self) -> None:
        with self._lock:
            try:
                self._close()
            except Exception as exc:
                raise StoreError(f"close failed: {exc}") from exc

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _column_types(self, table: str) -> dict[str, str]:
        types = self._types.get(table)
        if types is None:
            try:
                columns = statements.COLUMN_TYPES
                rows = self._select(
                    render(columns.sql, columns.bind(db=self.database, table=table))
                )
            except Exception as exc:
                raise self._failure(f"cannot read the columns of {table}: {exc}", exc) from exc
            if not rows:
                raise StoreError(f"no table {self.database}.{table} (run ensure_schema)")
            types = {row["name"]: row["type"] for row in rows}
            self._types[table] = types
        return types
