"""Test groups for pytest-xdist (`make test` runs `-n 2 --dist loadgroup`).

- The tests on the real services form two groups, each in one worker, in collection order:
  those on the Kafka broker (marker `kafka` or one of `KAFKA_FIXTURES`, and the ClickHouse
  server with it when they need one), `services:kafka`; those on the ClickHouse server alone
  (marker `clickhouse` or its fixture), `services:clickhouse`. The broker and the server are
  session fixtures, so each worker that runs such a group starts its own (free ports, its
  own directory): the tests that stop, kill or restart them never disturb a test of another
  worker. The two groups are handed out before any other, so that neither starts late (the
  broker group is the run's critical path).
- The browser tests form another group (one Chromium at a time).
- Every other module is a group of its own: its module-scoped fixtures are built once.

xdist's own `loadgroup` reads `xdist_group` marks by rewriting node ids, which pytest 9 no
longer lets it do; instead each worker writes the group of every test it collected to a file
(`ENV_FILE`, set by the controller before the workers start) and the controller's scheduler
reads it when it distributes the groups, the largest (the service tests) first. Without
xdist, or without `--dist loadgroup`, nothing changes.

At the end the controller prints the time each worker and the slowest groups spent in their
tests, so the run's critical path (CI must stay under 20 min) is read off every CI log.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

ENV_FILE = "VIGIE_TEST_XDIST_GROUPS"
KAFKA_FIXTURES = frozenset({"kafka_broker", "pipeline_factory", "faust_worker"})
SERVICE_GROUPS = ("services:kafka", "services:clickhouse")  # handed out first, in this order


def group_of(item: pytest.Item) -> str:
    fixtures = set(getattr(item, "fixturenames", ()))
    if item.get_closest_marker("kafka") or KAFKA_FIXTURES & fixtures:
        return "services:kafka"
    if item.get_closest_marker("clickhouse") or "clickhouse_server" in fixtures:
        return "services:clickhouse"
    if item.get_closest_marker("browser"):
        return "browser"
    return item.nodeid.split("::", 1)[0]


def _loadgroup(config: pytest.Config) -> bool:
    return config.getoption("dist", "no") == "loadgroup" and bool(
        config.getoption("numprocesses", None)
    )


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not _loadgroup(config):
        return
    handle, path = tempfile.mkstemp(prefix="vigie-xdist-groups-", suffix=".json")
    os.close(handle)
    os.environ[ENV_FILE] = path  # the workers, started after this, inherit it


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not _loadgroup(config):
        return
    path = os.environ.pop(ENV_FILE, "")
    if path:
        Path(path).unlink(missing_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = os.environ.get(ENV_FILE)
    if not path or not hasattr(config, "workerinput"):
        return
    # every worker collects the same tests: each writes the same map (atomically)
    groups = {item.nodeid: group_of(item) for item in items}
    worker = str(config.workerinput.get("workerid", "gw"))
    partial = Path(f"{path}.{worker}")
    partial.write_text(json.dumps(groups))
    partial.replace(path)


_TIMES: dict[tuple[str, str], float] = {}  # (worker, nodeid) -> seconds, on the controller


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    node = getattr(report, "node", None)  # set by xdist on the controller's copy of a report
    if node is None:
        return
    worker = str(getattr(getattr(node, "gateway", None), "id", "?"))
    key = (worker, report.nodeid)
    _TIMES[key] = _TIMES.get(key, 0.0) + float(report.duration)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or not _TIMES:
        return
    path = os.environ.get(ENV_FILE, "")
    try:
        groups: dict[str, str] = json.loads(Path(path).read_text() or "{}") if path else {}
    except (OSError, ValueError):
        groups = {}
    by_worker: dict[str, float] = {}
    by_group: dict[str, float] = {}
    for (worker, nodeid), seconds in _TIMES.items():
        by_worker[worker] = by_worker.get(worker, 0.0) + seconds
        group = groups.get(nodeid) or nodeid.split("::", 1)[0]
        by_group[group] = by_group.get(group, 0.0) + seconds
    terminalreporter.write_sep("=", "time in tests per worker and slowest groups")
    for worker, seconds in sorted(by_worker.items()):
        terminalreporter.write_line(f"{worker}: {seconds:.0f} s")
    for group, seconds in sorted(by_group.items(), key=lambda kv: -kv[1])[:8]:
        terminalreporter.write_line(f"{seconds:7.0f} s  {group}")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if not _loadgroup(config):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        """LoadScope over the groups the workers wrote (a module when a test is missing)."""

        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                # read once, when the workers have collected (scheduling starts after that)
                self.groups = json.loads(Path(os.environ[ENV_FILE]).read_text() or "{}")
            return self.groups.get(nodeid) or nodeid.split("::", 1)[0]

        def _assign_work_unit(self, node: Any) -> None:
            # xdist queues the groups by their number of tests; the service groups go first
            for group in reversed(SERVICE_GROUPS):
                if group in self.workqueue:
                    self.workqueue.move_to_end(group, last=False)
            super()._assign_work_unit(node)

    return GroupScheduling(config, log)
