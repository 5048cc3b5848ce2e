"""The one home of Vigie's SQL: every statement, named, per table.

- `schema`: the DDL (tables, views, migrations) and `ensure_schema`;
- `reports`, `rejected`, `incidents`, `incident_hours`, `alerts`, `actions` (alert_actions):
  the queries on each table; `changes`: the console's cross-table change fingerprint;
- `audit`: the console's audit trail (`audit_events`) and its append-only action check;
- `store`: what the store implementations run for themselves (database, inserts, ping);
- `merges`: the ClickHouse server's own record of its parts and merges (`system.part_log`).

A query is a `Query` (name, text, result columns, main table): a constant when its text is
fixed, a builder function (`Query` out) when filters shape it. Values only ever travel as
`%(name)s` parameters, escaped by the store; `Query.bind` checks that a call gives exactly
the parameters the text takes. Identifiers (tables, columns) are constants of this package.
Nothing outside it holds SQL (tests/architecture/test_sql_home.py); every query runs on
ClickHouse 18.16 and chDB in tests/storage/test_sql_catalogue.py.

Versioned tables (incidents, alerts) hold every version of an id: the current state is the
highest version, selected with `(id, version) IN (SELECT id, max(version) ...)`, correct on
ClickHouse 18.16 (which applies WHERE before FINAL) and chDB alike; tables whose duplicates
are identical are read with FINAL.

Stdlib only (a ports module: importable by the stages, the console, the runtime and the
tools alike).
"""

from agents.ports.sql.query import Query
from agents.ports.sql.scope import Scope

__all__ = ["Query", "Scope"]
