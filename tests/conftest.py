from __future__ import annotations

from typing import Any

import pytest

from agents.ports import metrics as metrics_module

pytest_plugins = [
    "tests.infra.clickhouse",
    "tests.infra.kafka",
    "tests.infra.vigie",
    "tests.infra.xdist_groups",
]


class MetricsSince:
    """The process's metrics as seen by one test: `sample()` answers how much a series moved
    since the test started (the registry is process-wide, as in every Prometheus client, so
    tests compare deltas instead of rebuilding it); every other attribute is the module's."""

    def __init__(self) -> None:
        self._before = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in metrics_module.REGISTRY.collect()
            for sample in family.samples
        }

    def sample(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return metrics_module.sample(name, **labels) - self._before.get(key, 0.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(metrics_module, name)


@pytest.fixture
def metrics() -> MetricsSince:
    return MetricsSince()
