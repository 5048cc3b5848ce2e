"""The incident-state table's local data when Faust keeps it in RocksDB (`rocksdb://`).

Faust's RocksDB store keeps one database per changelog partition and picks it from the
*current event*: `store[key] = value` writes to the database of the partition of the event
being processed, and a read looks there first. The correlate agent takes a batch of events
from several partitions and persists every partition's states afterwards, so the current
event says nothing about where a state belongs. `RoutedRocksData` is the same mapping routed
by the state's own partition instead: an incident state carries `_partition`, the per-partition
records (`__watermark__/<p>`, `__places__/<p>`, `__estimates__/<p>`) end with it. A key that
names no partition is refused (`ValueError`), never written to a guessed one.

It also keeps the entry count per partition database (counted once when a database is first
seen, then kept up to date on each write), so the state-size gauge set after every batch does
not walk the whole store.

It relies on the store's internals of the pinned faust-streaming (`_dbs`,
`_db_for_partition`, `_encode_key`/`_encode_value`/`_decode_value`, `_visible_keys`,
`_key_index`); tests/agents/test_table_data.py runs it on a real RocksDB store.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, MutableMapping, Sequence
from typing import Any

from faust.stores.rocksdb import Store as RocksStore
from rocksdict import WriteBatch

# part of RocksDB's memory -> the database property that measures it
ROCKSDB_MEMORY = {
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "block_cache": "rocksdb.block-cache-usage",
    "table_readers": "rocksdb.estimate-table-readers-mem",
}


def partition_of(key: str, value: Any) -> int:
    """The table partition a record belongs to (see the module docstring)."""
    if isinstance(value, dict) and isinstance(value.get("_partition"), int):
        return int(value["_partition"])
    named = named_partition(key)
    if named is None:
        raise ValueError(f"table key {key!r} names no partition")
    return named


def named_partition(key: str) -> int | None:
    """The partition a per-partition key ends with (`__<name>__/.../<p>`), else None."""
    if key.startswith("__"):
        _, sep, tail = key.rpartition("/")
        if sep and tail.isdigit():
            return int(tail)
    return None


class RoutedRocksData(MutableMapping[str, Any]):
    """`faust.stores.rocksdb.Store` as a mapping whose writes go to each record's partition."""

    def __init__(self, store: Any) -> None:
        self.store = store
        # partition -> (id of its open database, entries in it); a database reopened after a
        # rebalance (a new object, filled by changelog recovery) is counted again
        self._counts: dict[int, tuple[int, int]] = {}
        # incident id -> its partition (from `incident_keys` and the writes): a read goes to
        # one database, not to each in turn (Faust's own key index keeps 10,000 keys)
        self._where: dict[str, int] = {}

    def _count(self, partition: int, db: Any) -> int:
        known = self._counts.get(partition)
        if known is not None and known[0] == id(db):
            return known[1]
        n = sum(1 for _ in self.store._visible_keys(db))
        self._counts[partition] = (id(db), n)
        return n

    def _adjust(self, partition: int, db: Any, delta: int) -> None:
        known = self._counts.get(partition)
        if known is not None and known[0] == id(db):
            self._counts[partition] = (known[0], known[1] + delta)

    def __getitem__(self, key: str) -> Any:
        raw_key = self.store._encode_key(key)
        partition = named_partition(key)
        if partition is None:
            partition = self._where.get(key)
        db = self.store._dbs.get(partition) if partition is not None else None
        raw = db.get(raw_key) if db is not None else None
        if raw is None and named_partition(key) is None:  # Faust's key index, else every db
            found = self.store._get_bucket_for_key(raw_key)
            raw = None if found is None else found.value
        if raw is None:
            raise KeyError(key)
        return self.store._decode_value(raw)

    def __setitem__(self, key: str, value: Any) -> None:
        self.write_batch(partition_of(key, value), [(key, self.store._encode_value(value))], None)

    def holds(self, partition: int) -> bool:
        """`partition`'s database is open: assigned and not revoked since (Faust's
        `revoke_partitions` drops it without closing it; opening it again beside the
        dropped handle can find RocksDB's lock taken)."""
        return partition in self.store._dbs

    def write_batch(self, partition: int, items: Sequence[tuple[str, bytes | None]],
                    offset: int | None) -> None:
        """Write values already encoded by the table's codec (None: delete) to `partition`'s
        database in one atomic RocksDB write, with the changelog `offset` they reach (the
        store's persisted offset, where a restart's recovery resumes; None: unchanged)."""
        if not self.store.use_rocksdict:  # python-rocksdb: not pinned, not supported
            raise RuntimeError("the table store's RocksDB driver must be rocksdict")
        db = self.store._db_for_partition(partition)
        self._count(partition, db)  # a database first seen is counted before the change
        batch = WriteBatch(raw_mode=True)  # the driver Faust uses (`rocksdict`): raw bytes
        delta = 0
        seen: dict[bytes, bool] = {}  # raw key -> held after the writes so far
        for key, raw in items:
            raw_key = self.store._encode_key(key)
            held = seen[raw_key] if raw_key in seen else db.get(raw_key) is not None
            if raw is None:
                if held:
                    batch.delete(raw_key)
                    delta -= 1
                self._where.pop(key, None)
                self.store._key_index.pop(raw_key, None)
            else:
                batch.put(raw_key, raw)
                delta += 0 if held else 1
                self.store._key_index[raw_key] = partition
                if named_partition(key) is None:
                    self._where[key] = partition
            seen[raw_key] = raw is not None
        if offset is not None:
            batch.put(self.store.offset_key, str(offset).encode())
        db.write(batch)
        self._adjust(partition, db, delta)

    def __delitem__(self, key: str) -> None:
        raw_key = self.store._encode_key(key)
        self._where.pop(key, None)
        found = False
        for partition, db in list(self.store._dbs.items()):
            if db.get(raw_key) is not None:
                db.delete(raw_key)
                self._adjust(partition, db, -1)
                found = True
        if not found:
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.store.keys())

    def __len__(self) -> int:
        return sum(self._count(p, db) for p, db in list(self.store._dbs.items()))

    def incident_keys(self) -> dict[int, dict[str, None]]:
        """partition -> the incident ids in its database (keys only, values not decoded:
        `IncidentStates` then reads each state once)."""
        keys: dict[int, dict[str, None]] = {}
        for partition, db in list(self.store._dbs.items()):
            ids = keys.setdefault(partition, {})
            for raw in self.store._visible_keys(db):
                key = self.store._decode_key(raw)
                if isinstance(key, str) and not key.startswith("__"):
                    ids[key] = None
                    self._where[key] = partition
        return keys

    def memory_bytes(self) -> dict[str, int]:
        """What RocksDB holds in memory over this worker's partition databases, by part:
        `memtables` (writes not yet flushed), `block_cache` (blocks read back), and
        `table_readers` (index and filter blocks of the files)."""
        out = dict.fromkeys(ROCKSDB_MEMORY, 0)
        for db in list(self.store._dbs.values()):
            for part, prop in ROCKSDB_MEMORY.items():
                value = db.property_int_value(prop)
                out[part] += int(value or 0)
        return out

    def items(self) -> ItemsView[str, Any]:
        items: ItemsView[str, Any] = self.store.items()  # one pass, no lookup per key
        return items


def table_data(table: Any) -> MutableMapping[str, Any]:
    """The mapping the correlate agent reads and writes: the table's own data, routed by
    partition when it is Faust's RocksDB store."""
    data: MutableMapping[str, Any] = table.data
    return RoutedRocksData(data) if isinstance(data, RocksStore) else data
