"""The key of an enriched bundle: one per internal-topic partition, so a bundle keeps the
event-time order of the ingest batch across the areas that share a partition.

The correlator runs one engine per partition of the internal topic, and an area (the coarse
spatial key, `agents.core.correlation.partition_key`) must always land on the same one. Keyed
by area, the ingest grouped a batch's records by area (`agents.ingest.bundle_by_key`): an
engine then read one area's records of the whole batch, then the next area's. A batch of a
backlog spans days of event time, so the second area's reports came days behind the engine's
clock, past the allowed lateness, and founded incidents of their own.

Keyed instead by a canonical key of the area's partition (the partition Kafka's default
partitioner, murmur2, gives the area key), the records of every area of one partition form
one group, in batch order: an engine reads its records in the order the ingest handed them
on (event-time order, `agents.ingest_align`). Each area still goes to one partition: the area
-> canonical key map is a function, so this holds even if the topic has another partition
count than configured (groups then merely share partitions).
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka.partitioner import murmur2

from agents.core.record import ReportRecord


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition of `key` under Kafka's default partitioner (Java client and aiokafka)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def canonical_keys(partitions: int) -> list[str]:
    """For each partition p, the first key `vigie-p<p>-<i>` (i = 0, 1, ...) that the default
    partitioner sends to p."""
    out: list[str] = []
    for p in range(partitions):
        i = 0
        while kafka_partition(f"vigie-p{p}-{i}".encode(), partitions) != p:
            i += 1
        out.append(f"vigie-p{p}-{i}")
    return out


def partition_group_key(
    partitions: int, area_key: Callable[[ReportRecord], str]
) -> Callable[[ReportRecord], str]:
    """A record's bundle key: the canonical key of the partition its area key goes to."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    keys = canonical_keys(partitions)
    by_area: dict[str, str] = {}

    def key_of(record: ReportRecord) -> str:
        area = area_key(record)
        key = by_area.get(area)
        if key is None:
            key = by_area[area] = keys[kafka_partition(area.encode(), partitions)]
        return key

    return key_of
