"""The detector's own store connection and store thread.

A detector run reads every incident hour of its window and holds its store for a while
(about half a second, several seconds under load); on the store thread shared with ingest
and correlate, their inserts and dedup lookups would queue behind it (issue #22, p99
latency). So the detector gets a second connection to the same ClickHouse and its own
thread: the server store opens a second native connection; chDB opens a second connection
to the same path of the one engine in the process, which chDB runs in parallel with the
first. The schema stays the main store's job: this connection waits for it
(`SchemaReadyStore`) and never runs the schema or its migrations itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from agents.ports.blocking import StoreThread
from agents.ports.store import Store, StoreError
from streams.storage import open_store
from streams.storage.gate import SchemaFirstStore, SchemaReadyStore

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DetectorStore:
    """The detector's store (gated on the main store's schema) and the thread it runs on."""

    store: Store
    thread: StoreThread

    def close(self) -> None:
        """Stop the thread, then close the connection (before the main store: for chDB the
        engine stops with the last connection)."""
        self.thread.close()
        try:
            self.store.close()
        except StoreError as exc:
            log.warning("detector store not closed cleanly", extra={"error": type(exc).__name__})


def open_detector_store(
    main: SchemaFirstStore, opener: Callable[[str], Store] = open_store
) -> DetectorStore:
    """A second connection to `main`'s ClickHouse, with its own thread."""
    return DetectorStore(
        SchemaReadyStore(opener(main.url), main), StoreThread(name="vigie-detect-store")
    )
