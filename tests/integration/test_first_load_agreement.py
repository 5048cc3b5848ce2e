"""A first load (days of reports already in a multi-partition input topic when the worker
starts) must give the incidents `vigie backtest` gives for the same stream: results depend on
the stream, not on how fast, or in which partition order, the backlog is read.

Before, the ingest consumer drained the backlog partition by partition and bundled a batch's
records by area, so a correlator read days of one input partition, or of one area, before
the next ones, past the allowed lateness, and those reports founded incidents of their own
(the test fails there, and with partition-keyed bundles alone). With the input aligned on
message time (`agents.ingest_align`) and one bundle per internal partition
(`streams.partition_groups`), the live incidents are those of one engine per internal
partition reading the stream in its own order: what remains below 1 is that split (each
engine learns from its part only).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from agents.core.correlation.quality import score
from offline.replay import run_backtest
from streams.storage import queries
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.vigie import Pipeline

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# Pairwise F1 of the live incidents against the backtest's on the same stream (the same
# reports): what `make chaos` asks of live assignment.
MIN_AGREEMENT = 0.98


def backtest_assignment(values: list[bytes]) -> dict[str, str]:
    """report_id -> incident id of the backtest of these lines (each incident's last
    version lists its members)."""
    last: dict[str, dict[str, Any]] = {}
    for version in run_backtest(values).incidents:
        last[str(version["incident_id"])] = version
    return {rid: iid for iid, v in last.items() for rid in v["report_ids"]}


def live_assignment(p: Pipeline) -> dict[str, str]:
    rows = queries.current_incidents(p.store, status=None, limit=1_000_000)
    return {rid: r["incident_id"] for r in rows for rid in r["report_ids"]}


def test_first_load_matches_the_backtest(
    pipeline_factory: Callable[..., Pipeline], clickhouse_server: ClickHouseServer
) -> None:
    started = time.monotonic()
    # a database of its own per run (a server given by VIGIE_TEST_CLICKHOUSE_URL outlives it)
    p = pipeline_factory(clickhouse_server.url_for(f"it_first_load_{os.getpid()}"))
    messages = p.simulate(days=6, seed=17, scale=0.35)
    # the input topics exist before the worker (it would give them the same settings)
    p.broker.create_topics(
        [p.topics["partner"], p.topics["citizen"]], partitions=3, config={"retention.ms": "-1"}
    )
    produced = p.produce(messages)  # the whole backlog before the worker starts
    n_valid = len(produced.expected_valid_ids())
    produced_at = time.monotonic()
    p.worker().wait_ready(90)
    ready_at = time.monotonic()
    p.wait_for(lambda: len(live_assignment(p)) >= n_valid, 120, "every report correlated")
    done_at = time.monotonic()

    live = live_assignment(p)
    offline = backtest_assignment([m.value for m in messages])
    agreement = score(live, offline)
    print(
        f"first load: {len(messages)} messages, agreement {agreement.as_dict()}; "
        f"produced {produced_at - started:.1f} s, worker ready {ready_at - produced_at:.1f} s,"
        f" correlated {done_at - ready_at:.1f} s, total {time.monotonic() - started:.1f} s"
    )
    assert agreement.reports >= 0.99 * n_valid
    assert agreement.pairwise_f1 >= MIN_AGREEMENT, agreement.as_dict()
