"""Test groups for pytest-xdist (`make test` runs `-n 2 --dist loadgroup`).

- Every test on the real Kafka broker or ClickHouse server (markers `kafka`, `clickhouse`, or
  one of `SERVICE_FIXTURES`) runs in one worker, in collection order: one broker and one
  server for the run, as in a serial run, and the tests that stop, kill or restart them
  never disturb a test of another worker.
- The browser tests form another group (one Chromium at a time).
- Every other module is a group of its own: its module-scoped fixtures are built once.

xdist's own `loadgroup` reads `xdist_group` marks by rewriting node ids, which pytest 9 no
longer lets it do; instead each worker writes the group of every test it collected to a file
(`ENV_FILE`, set by the controller before the workers start) and the controller's scheduler
reads it when it distributes the groups, the largest (the service tests) first. Without
xdist, or without `--dist loadgroup`, nothing changes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

ENV_FILE = "VIGIE_TEST_XDIST_GROUPS"
SERVICE_FIXTURES = frozenset(
    {"kafka_broker", "clickhouse_server", "pipeline_factory", "faust_worker"}
)


def group_of(item: pytest.Item) -> str:
    if (
        item.get_closest_marker("kafka")
        or item.get_closest_marker("clickhouse")
        or SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
    ):
        return "services"
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

    return GroupScheduling(config, log)
