"""streams.partition_groups: an enriched bundle is keyed by its internal partition, so an
area lands where Kafka's default partitioner sends its area key, and the records of all the
areas of one partition keep the ingest batch's order (one group, not one bundle per area)."""

from __future__ import annotations

import orjson
from aiokafka.partitioner import DefaultPartitioner

from agents.core.correlation import partition_key
from agents.ingest import bundle_by_key
from streams.partition_groups import canonical_keys, kafka_partition, partition_group_key
from tests.agents.fakes import report


def test_each_canonical_key_goes_to_its_partition() -> None:
    for n in (1, 3, 12):
        keys = canonical_keys(n)
        assert len(keys) == n
        assert [DefaultPartitioner()(k.encode(), list(range(n)), []) for k in keys] == list(
            range(n)
        )


def test_an_area_goes_where_its_area_key_went() -> None:
    group = partition_group_key(3, partition_key)
    records = [report(east_m=3_000.0 * i) for i in range(40)]
    for rec in records:
        area = partition_key(rec).encode()
        assert kafka_partition(group(rec).encode(), 3) == kafka_partition(area, 3)
    assert len({partition_key(r) for r in records}) > 3  # several areas share partitions


def test_a_partition_reads_its_areas_in_batch_order() -> None:
    group = partition_group_key(1, partition_key)
    # two areas, interleaved in time: one partition, hence one bundle in batch order
    records = [report(east_m=(0.0 if i % 2 else 40_000.0), t=60.0 * i) for i in range(6)]
    assert len({partition_key(r) for r in records}) == 2
    bundles = bundle_by_key(records, [r.to_dict() for r in records], group)
    assert len(bundles) == 1
    assert [d["report_id"] for d in orjson.loads(bundles[0][1])] == [r.report_id for r in records]
