"""`agents.table_data` on a real RocksDB table store (Faust's `rocksdb://`, rocksdict driver):
the correlate agent's writes land in each record's own partition database, survive a
reopen with the changelog offset the store holds, and the entry count stays exact."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.stores.rocksdb import Store as RocksStore
from faust.types import TP

from agents.correlate import PLACES_KEY, WATERMARK_KEY, PartitionChanges, place_key
from agents.faust_agents import IncidentStates
from agents.state_journal import Write, journal_key, journal_parts, pending
from agents.table_data import RoutedRocksData, partition_of, table_data

TABLE = "vigie-incident-state"


def open_table(datadir: Path, partitions: int = 3) -> tuple[Any, RocksStore]:
    """A table on the RocksDB store as a worker that owns every partition sees it."""
    app = faust.App(
        "vigie-table-data-test",
        broker="kafka://127.0.0.1:1",
        store="rocksdb://",
        datadir=str(datadir),
        autodiscover=False,
    )
    table = app.Table(TABLE, default=None, partitions=partitions, key_type=str, value_type=None)
    store = table.data
    assert isinstance(store, RocksStore)
    changelog = table.changelog_topic.get_topic_name()
    actives = {TP(changelog, p) for p in range(partitions)}
    # the store lists the active partitions only (no broker here: no assignment)
    app.assignor.assigned_actives = lambda: actives  # type: ignore[method-assign]
    for p in range(partitions):  # as Faust's rebalance opens the assigned partitions
        store._db_for_partition(p)
    return table, store


def close(store: RocksStore) -> None:
    for db in store._dbs.values():
        db.close()
    store._dbs.clear()


@pytest.fixture
def datadir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "worker"


def raw_in(store: RocksStore, partition: int, key: str) -> bytes | None:
    value: bytes | None = store._db_for_partition(partition).get(store._encode_key(key))
    return value


async def noop_write(_partition: int, _key: str, _value: Any, _raw: bytes | None = None) -> Any:
    async def done() -> None:
        return None

    return done()


def test_records_are_routed_by_their_own_partition() -> None:
    assert partition_of("INC-1", {"_partition": 2, "version": 1}) == 2
    assert partition_of(f"{WATERMARK_KEY}/5", 1.0e9) == 5
    assert partition_of(f"{PLACES_KEY}/0", {"a": [1]}) == 0
    assert partition_of(place_key(4, "d1"), {"a": [1]}) == 4
    with pytest.raises(ValueError, match="names no partition"):
        partition_of("INC-1", {"version": 1})
    with pytest.raises(ValueError, match="names no partition"):
        partition_of(f"{WATERMARK_KEY}/x", 1.0)


def test_the_table_data_is_the_store_itself_in_memory(tmp_path: Path) -> None:
    app = faust.App(
        "vigie-table-data-mem",
        broker="kafka://127.0.0.1:1",
        store="memory://",
        datadir=str(tmp_path),
        autodiscover=False,
    )
    table = app.Table(TABLE, default=None, key_type=str, value_type=None)
    assert table_data(table) is table.data


class OffsetChangelog:
    """A changelog writer whose deliveries give each partition's next offset."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, Any]] = []
        self.next: dict[int, int] = {}

    async def write(self, partition: int, key: str, value: Any, raw: bytes | None = None) -> Any:
        self.sent.append((partition, key, value))
        offset = self.next.get(partition, 0)
        self.next[partition] = offset + 1

        async def delivered() -> Any:
            return SimpleNamespace(offset=offset)

        return delivered()


def routed(
    datadir: Path,
) -> tuple[Any, RocksStore, RoutedRocksData, OffsetChangelog, IncidentStates]:
    """A RocksDB table, its routed data and `IncidentStates` writing to an `OffsetChangelog`."""
    table, store = open_table(datadir)
    data = table_data(table)
    assert isinstance(data, RoutedRocksData)
    changelog = OffsetChangelog()
    return table, store, data, changelog, IncidentStates(data, changelog.write)


async def test_persisted_states_land_in_their_partition_and_survive_a_reopen(
    datadir: Path,
) -> None:
    table, store, data, changelog, states = routed(datadir)
    await states.persist(
        {
            0: PartitionChanges(
                states={"INC-a": {"incident_id": "INC-a", "version": 1}}, watermark=100.0
            ),
            2: PartitionChanges(
                states={
                    "INC-b": {"incident_id": "INC-b", "version": 3},
                    "INC-c": {"incident_id": "INC-c", "version": 1},
                },
                watermark=200.0,
                places={"d1": [1, 2]},
            ),
        }
    )
    topic = table.changelog_topic.get_topic_name()
    # each record is in its own partition's database, not in the current event's
    assert raw_in(store, 0, "INC-a") is not None
    assert raw_in(store, 2, "INC-a") is None
    assert raw_in(store, 2, "INC-b") is not None
    assert raw_in(store, 2, place_key(2, "d1")) is not None
    # the journal went to the changelog only; each database holds the offset of its
    # partition's last record, written with the data (a restart recovers from there)
    assert next(k for p, k, _ in changelog.sent if p == 2) == journal_key(2, 0)
    assert raw_in(store, 2, journal_key(2, 0)) is None
    assert store.persisted_offset(TP(topic, 2)) == changelog.next[2] - 1 == 4
    assert store.persisted_offset(TP(topic, 0)) == 2
    assert len(data) == 6  # 3 incidents, 2 watermarks, 1 place memory
    await states.persist({2: PartitionChanges(evicted={"INC-c"}, watermark=300.0)})
    assert raw_in(store, 2, "INC-c") is None
    assert len(data) == 5 == sum(1 for _ in data.items())
    assert store.persisted_offset(TP(topic, 2)) == 7
    close(store)

    table2, store2 = open_table(datadir)  # a restarted worker: same data directory
    again = IncidentStates(table_data(table2), noop_write)
    assert [s["incident_id"] for s in again.states_of(2)] == ["INC-b"]
    assert [s["version"] for s in again.states_of(0)] == [1]
    assert again.watermark_of(2) == 300.0
    assert again.data[place_key(2, "d1")] == [1, 2]
    assert store2.persisted_offset(TP(table2.changelog_topic.get_topic_name(), 2)) == 7
    assert len(again.data) == 5
    close(store2)


async def test_a_partition_revoked_before_its_held_states_are_written_gets_them_in_the_changelog(
    datadir: Path,
) -> None:
    """Faust drops a revoked partition's database before the agent's store clock writes
    what it held (`StoreClock`, during the rebalance): the states go to the changelog,
    where the partition's next owner recovers them from, and the database is not opened
    again beside the dropped handle (RocksDB's lock)."""
    table, store, _data, changelog, states = routed(datadir)
    topic = table.changelog_topic.get_topic_name()
    dropped = store._dbs.pop(1)  # what `revoke_partitions` does
    await states.persist({
        1: PartitionChanges(states={"INC-r": {"incident_id": "INC-r", "version": 2}},
                            watermark=50.0),
        0: PartitionChanges(states={"INC-k": {"incident_id": "INC-k", "version": 1}}),
    })
    assert {k for p, k, _ in changelog.sent if p == 1} >= {"INC-r", f"{WATERMARK_KEY}/1"}
    assert 1 not in store._dbs and dropped.get(store._encode_key("INC-r")) is None
    assert raw_in(store, 0, "INC-k") is not None  # a partition still held: written
    store._dbs[1] = dropped
    assert store.persisted_offset(TP(topic, 1)) is None  # recovery starts before them
    close(store)


async def test_a_journal_recovered_from_the_changelog_is_written_again_then_dropped(
    datadir: Path,
) -> None:
    """A kill after a batch's journal and part of its writes reached the changelog, before
    the local write: the restart's recovery brings them back (Faust writes the records as
    they are); `settle` writes the whole batch again and drops the journal's local copy."""
    _table, store, data, _changelog, states = routed(datadir)
    await states.persist(
        {1: PartitionChanges(states={"INC-a": {"incident_id": "INC-a", "v": 1}}, watermark=1.0)}
    )
    writes = [
        Write.of("INC-a", {"incident_id": "INC-a", "v": 2, "_partition": 1}),
        Write.of("INC-b", {"incident_id": "INC-b", "v": 1, "_partition": 1}),
        Write.of(f"{WATERMARK_KEY}/1", 2.0),
    ]
    head = journal_parts("tok", writes, 10_000)[0]
    # what recovery put back: the journal and the first write only
    data.write_batch(1, [(journal_key(1, 0), head.raw), ("INC-a", writes[0].raw)], None)
    assert pending(data.get, 1) is not None
    resent = OffsetChangelog()
    restarted = IncidentStates(data, resent.write)
    await restarted.settle([1])
    assert [k for _, k, _ in resent.sent] == [
        journal_key(1, 0),
        "INC-a",
        "INC-b",
        f"{WATERMARK_KEY}/1",
    ]
    assert [s["v"] for s in restarted.states_of(1)] == [2, 1]
    assert restarted.watermark_of(1) == 2.0
    assert data.get(journal_key(1, 0)) is None and pending(data.get, 1) is None
    await restarted.settle([1])  # once per assignment
    assert len(resent.sent) == 4
    close(store)


def test_a_missing_key_is_a_key_error_and_the_count_follows_overwrites(datadir: Path) -> None:
    table, store = open_table(datadir)
    data = table_data(table)
    assert data.get("INC-x") is None
    with pytest.raises(KeyError):
        del data["INC-x"]
    data["INC-x"] = {"_partition": 1, "version": 1}
    data["INC-x"] = {"_partition": 1, "version": 2}  # an overwrite is not a new entry
    assert len(data) == 1
    assert data["INC-x"]["version"] == 2
    assert data.pop("INC-x")["version"] == 2
    assert len(data) == 0
    close(store)


def test_rocksdb_memory_is_read_per_part_and_grows_with_unflushed_writes(datadir: Path) -> None:
    table, store = open_table(datadir)
    data = table_data(table)
    assert isinstance(data, RoutedRocksData)
    data["INC-0"] = {"_partition": 0, "version": 0}
    before = data.memory_bytes()
    assert set(before) == {"memtables", "block_cache", "table_readers"}
    for i in range(2_000):
        data[f"INC-{i}"] = {"_partition": i % 3, "members": ["x" * 200]}
    after = data.memory_bytes()
    assert after["memtables"] >= before["memtables"] + 2_000 * 200
    close(store)
