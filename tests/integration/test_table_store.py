"""The worker's table state in RocksDB under its data directory (`VIGIE_TABLE_STORE=rocksdb`,
the default), on real Kafka and ClickHouse: a restart reads only the changelog's tail (the
store holds the offset it has), and its correlator resumes the incidents from the store."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from agents.faust_agents import CHANGELOG_TOPIC_CONFIGS
from benchmarks.bench_restart import recovery_reads
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.vigie import Pipeline
from tests.integration.test_correlate_pipeline import all_merged, current
from tests.integration.test_topics import topic_configs_of

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]


def test_a_restarted_worker_reads_the_changelog_tail_and_resumes_from_its_store(
    pipeline_factory: Callable[[str], Pipeline], clickhouse_server: ClickHouseServer
) -> None:
    p = pipeline_factory(clickhouse_server.url_for("it_table_store"))
    messages = p.simulate(days=0.5, seed=43)
    half = len(messages) // 2
    first = p.worker("first.log")
    first.wait_ready(90)
    produced = p.produce(messages[:half])
    before = produced.expected_valid_ids()
    p.wait_for(lambda: all_merged(p, len(before)), 120, "first half merged")
    time.sleep(2)  # the last batch's changelog writes, confirmed after its incidents
    first.stop()

    second = p.worker("second.log")
    second.wait_ready(90)
    replayed, written = recovery_reads(second.output())
    assert written > 0, "no changelog recovery logged"
    # memory:// replays every record; the store holds what was confirmed before SIGTERM
    # (everything, once the worker was idle), so the restart reads at most a stray tail
    assert replayed * 4 <= written, (replayed, written)

    produced = p.produce(messages[half:], produced)
    n_valid = len(produced.expected_valid_ids())
    p.wait_for(lambda: all_merged(p, n_valid), 120, "second half merged")
    rows = current(p)
    members = [rid for r in rows for rid in r["report_ids"]]
    assert len(members) == len(set(members)) == n_valid
    # incidents that continued across the restart: their states came from the store
    assert any(set(r["report_ids"]) & before and set(r["report_ids"]) - before for r in rows)
    restored = [
        json.loads(line) for line in second.output().splitlines() if '"correlator ready"' in line
    ]
    assert restored and sum(r["incidents"] for r in restored) > 0, restored
    # the changelog was created compacted, with the settings that keep it bounded
    changelog = f"{p.env['VIGIE_APP_ID']}-vigie-incident-state-changelog"
    configs = topic_configs_of(p.broker.bootstrap, [changelog])[changelog]
    assert configs["cleanup.policy"] == "compact"
    assert {k: configs.get(k) for k in CHANGELOG_TOPIC_CONFIGS} == CHANGELOG_TOPIC_CONFIGS
