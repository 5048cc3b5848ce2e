"""Storage: the two ClickHouse backends of the `Store` interface; they run the statements of
`agents.ports.sql` (the DDL in `agents.ports.sql.schema`, the named queries per table).

    store = open_store("clickhouse://default:@127.0.0.1:9000/vigie")  # server
    store = open_store("chdb:///var/vigie/chdb")                      # embedded (chDB)
    store.ensure_schema()
    store.insert("reports", rows)          # dicts keyed by column; times = UTC epoch seconds
    query = incidents.GET                  # from agents.ports.sql import incidents
    store.query(query.sql, query.bind(id="inc-1", floor=0))

Read helpers shared by the CLI, console and tests live in `streams.storage.queries`.
"""

from __future__ import annotations

from agents.ports.store import Store, StoreError


def is_embedded(url: str) -> bool:
    """Whether `url` names an embedded chDB store (`chdb:`): one process per path, so no
    second process (a calibration's child, a CLI beside the worker) may open it."""
    return url.startswith("chdb:")


def open_store(url: str) -> Store:
    """A store for `url`:

    - `clickhouse://user:password@host:port/database` → ServerStore (clickhouse-driver,
      native protocol, default port 9000, database created if missing);
    - `chdb:///absolute/path` or `chdb://relative/path`, optional `?database=NAME` →
      EmbeddedStore (chDB; only one process may open a path, one path per process).

    Raises StoreError for an unknown scheme or a chDB path that cannot be opened; a server
    that is down is not an error here (the first call raises, `ping()` returns False).
    """
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "clickhouse":
        from streams.storage.server import ServerStore

        return ServerStore(url)
    if scheme == "chdb":
        from streams.storage.embedded import EmbeddedStore

        return EmbeddedStore(url)
    raise StoreError(f"unsupported store URL {url!r} (clickhouse://... or chdb://...)")


__all__ = ["Store", "StoreError", "is_embedded", "open_store"]
