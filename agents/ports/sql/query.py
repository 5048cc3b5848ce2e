"""`Query`: one named statement of the catalogue, with the parameters it takes and the columns
it returns."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_PARAMETER = re.compile(r"%\((\w+)\)s")

# Storage setting of the tables the pipeline reads by id on every batch (`reports`: the
# ingest's re-delivery check; `report_feedback`: the transitions already recorded;
# `incidents`: a late report's incidents). Ids are random strings, so the k ids of one
# lookup fall in k different granules of every part, and ClickHouse reads those granules
# whole: with the default 8,192-row granules, a lookup read about the whole table until it
# held millions of rows, a cost per batch growing with every day stored. 256-row granules
# bound it to about k x 256 rows per part, for a primary index of one entry per 256 rows
# (a few hundred KiB per million rows). ClickHouse cannot alter the granularity of an
# existing table: one created before keeps 8,192 (docs/sre.md, "Lookup tables").
LOOKUP_SETTINGS = "SETTINGS index_granularity = 256"


@dataclass(frozen=True, slots=True, eq=False)
class Query:
    """A named statement.

    - `name`: `<module>.<constant or builder>` of the catalogue (e.g. `reports.COUNT`);
    - `sql`: the text; values only ever travel as `%(name)s` parameters, escaped by the store;
    - `columns`: the columns of its result, in order (empty: no result set); None for a
      `SELECT *`: every column of `table`;
    - `table`: the table it mainly reads or writes;
    - `bound`: parameter values its builder fixed itself (the filters it rendered).
    """

    name: str
    sql: str
    columns: tuple[str, ...] | None
    table: str
    bound: Mapping[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> frozenset[str]:
        """The names of the `%(name)s` parameters in the text."""
        return frozenset(_PARAMETER.findall(self.sql))

    def bind(self, **values: Any) -> dict[str, Any]:
        """Every parameter of the query: `values` and those its builder bound. Raises
        ValueError naming any parameter that is missing or that the text does not take, so
        that a renamed parameter fails before the query is sent."""
        merged = {**self.bound, **values}
        missing = sorted(self.params - merged.keys())
        unknown = sorted(merged.keys() - self.params)
        if missing or unknown:
            raise ValueError(
                f"query {self.name}: missing parameters {missing}, unknown parameters {unknown}"
            )
        return merged


def where(conditions: list[str]) -> str:
    """` WHERE a AND b`, or "" without conditions."""
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def since_clause(column: str, active: bool) -> str:
    """` WHERE column >= since` (parameter `since`: UTC epoch seconds) when `active`."""
    return f" WHERE {column} >= toDateTime(%(since)s)" if active else ""


def latest(table: str, key: str) -> str:
    """Condition keeping only the max-version rows of each id (FINAL then folds replays).

    Needed because ClickHouse 18.16 applies WHERE (moved to PREWHERE) BEFORE FINAL, and
    pushes it into a `(SELECT ... FINAL)` subquery too: `FROM incidents FINAL WHERE
    status = 'open'` returns the stale open version of a closed incident there. This form
    is correct whatever the order.
    """
    return f"({key}, version) IN (SELECT {key}, max(version) FROM {table} GROUP BY {key})"


def current_versions(
    name: str,
    *,
    table: str,
    key: str,
    filters: tuple[str, ...],
    since_column: str | None,
    order: str,
) -> Query:
    """The current (highest) version of each id of a versioned table, `filters` columns equal
    to their parameter of the same name, `since_column >= since` when given; parameter
    `limit`."""
    conditions = [latest(table, key)]
    conditions += [f"{column} = %({column})s" for column in filters]
    if since_column is not None:
        conditions.append(f"{since_column} >= toDateTime(%(since)s)")
    sql = (
        f"SELECT * FROM {table} FINAL WHERE {' AND '.join(conditions)}"
        f" ORDER BY {order} LIMIT %(limit)s"
    )
    return Query(name, sql, None, table)


def select_final(
    name: str,
    table: str,
    columns: tuple[str, ...],
    conditions: list[str],
    bound: dict[str, Any],
    tail: str = "",
    select: str | None = None,
) -> Query:
    """`SELECT columns FROM table FINAL WHERE conditions tail` as a named query (`select`:
    the select list when it is not just the column names)."""
    return Query(
        name,
        f"SELECT {select or ', '.join(columns)} FROM {table} FINAL{where(conditions)}{tail}",
        columns,
        table,
        bound,
    )
