"""The test groups of `make test` (tests/infra/xdist_groups.py): a test on the broker goes to the
broker's group (the server with it), one on the server alone to the server's, the browser
tests to theirs, any other to its module's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.infra.xdist_groups import SERVICE_GROUPS, group_of


@dataclass
class FakeItem:
    nodeid: str
    markers: set[str] = field(default_factory=set)
    fixturenames: list[str] = field(default_factory=list)

    def get_closest_marker(self, name: str) -> Any:
        return name if name in self.markers else None


@pytest.mark.parametrize(
    ("markers", "fixtures", "group"),
    [
        ({"kafka", "clickhouse"}, [], "services:kafka"),
        (set(), ["kafka_broker", "clickhouse_server"], "services:kafka"),
        (set(), ["pipeline_factory"], "services:kafka"),
        (set(), ["faust_worker", "tmp_path"], "services:kafka"),
        ({"clickhouse"}, [], "services:clickhouse"),
        (set(), ["clickhouse_server", "tmp_path"], "services:clickhouse"),
        ({"browser"}, ["tmp_path"], "browser"),
        (set(), ["tmp_path"], "tests/x/test_a.py"),
    ],
)
def test_group_of(markers: set[str], fixtures: list[str], group: str) -> None:
    item = FakeItem("tests/x/test_a.py::test_one[1]", markers, fixtures)
    assert group_of(item) == group  # type: ignore[arg-type]
    assert (group in SERVICE_GROUPS) == (group.startswith("services"))
