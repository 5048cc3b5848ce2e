"""Scale-out on real Kafka: two workers share the partitions of one consumer group; one is
SIGKILLed mid-stream, the other takes its partitions over; nothing is lost or doubled, and
the survivor's metrics show the rebalance."""

from __future__ import annotations

import re

import pytest

from tests.infra.clickhouse import ClickHouseServer
from tests.infra.kafka import free_port
from tests.integration.test_ingest_pipeline import assert_exactly_once, wait_all_stored

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_two_workers_share_then_one_takes_over(
    pipeline_factory, clickhouse_server: ClickHouseServer, tmp_path
) -> None:
    p = pipeline_factory(clickhouse_server.url_for("it_scaleout"), sink_batch_rows="300")
    port_a, port_b = free_port(), free_port()
    a = p.worker("a.log", VIGIE_WEB_PORT=str(port_a), VIGIE_WORKER_DATA_DIR=str(tmp_path / "a"))
    b = p.worker("b.log", VIGIE_WEB_PORT=str(port_b), VIGIE_WORKER_DATA_DIR=str(tmp_path / "b"))
    a.wait_ready(120)
    b.wait_ready(120)
    total_partitions = 2 * int(p.env["VIGIE_TOPIC_PARTITIONS"])
    assigned = "vigie_consumer_assigned_partitions"

    def shared() -> bool:
        na = metric(p.metrics_text(port_a), assigned)
        nb = metric(p.metrics_text(port_b), assigned)
        return na > 0 and nb > 0 and na + nb == total_partitions

    p.wait_for(shared, 90, "both workers holding ingest partitions")
    rebalances_before = metric(p.metrics_text(port_b), "vigie_consumer_rebalances_total")

    produced = p.produce(p.simulate(days=4, seed=51))
    p.wait_for(lambda: p.scalar("SELECT count() FROM reports") > 500, 60, "first batches")
    a.kill()
    wait_all_stored(p, produced, timeout=180)
    assert_exactly_once(p, produced)

    text = p.metrics_text(port_b)
    assert metric(text, assigned) == total_partitions
    assert metric(text, "vigie_consumer_rebalances_total") > rebalances_before
