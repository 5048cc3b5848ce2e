"""The short variant of `make chaos` (`benchmarks.chaos`, docs/chaos.md) on the suite's broker
and ClickHouse server: one simulated day with malformed messages produced in chunks while the
worker is SIGKILLed twice (once mid-stream, once mid-stream and again during its restart),
ClickHouse is stopped 10 s and the broker restarted, the end of the stream arriving as one
backlog. The hard guarantees must hold: every valid report stored exactly once, every bad
one dead-lettered with its reason, no alert under two ids or left open, readiness and lag
truthful during the outage, every fault recovered from within its bound. The incident
assignment against `vigie backtest` of the same lines is held to a floor (F1_FLOOR) under
the issue's target of 0.98: the full run reports the target."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.chaos import SHORT, ChaosConfig, Environment, render, run_chaos
from tests.infra.clickhouse import ClickHouseServer
from tests.infra.kafka import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

# Pairwise F1 of the live incidents against the backtest's on this stream (seed 5, one day)
# with the faults above: 0.984 to 0.990 measured over four runs. Batch boundaries still move
# a few reports between incidents, so the floor leaves room below that, and stays well above
# what two fault-free live runs used to agree on (0.954).
F1_FLOOR = 0.97


def test_short_chaos_keeps_the_hard_guarantees(
    kafka_broker: KafkaBroker,
    clickhouse_server: ClickHouseServer,
    tmp_path: Path,
) -> None:
    if kafka_broker.external or clickhouse_server.external:
        pytest.skip("the faults stop and restart the broker and ClickHouse: own ones only")
    cfg = replace(ChaosConfig(**SHORT), seed=5, timeout_s=300.0)
    env = Environment(
        bootstrap=kafka_broker.bootstrap,
        store_url=clickhouse_server.url_for(f"it_chaos_{os.getpid()}"),
        tmp=tmp_path,
        stop_clickhouse=clickhouse_server.stop,
        start_clickhouse=clickhouse_server.start,
        restart_broker=kafka_broker.restart,
    )
    result = run_chaos(cfg, env, log=print)
    table = render(result)
    print(table)
    assert result.summary["sigkills"] >= 3, table  # the second kill fault kills twice
    assert [f.fault for f in result.faults if not f.ok] == [], table
    assert all(f.recovery_s is not None for f in result.faults), table
    assert [c.check for c in result.checks if c.hard and not c.ok] == [], table
    assert result.summary["pair_f1_vs_backtest"] >= F1_FLOOR, table
