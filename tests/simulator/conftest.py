from __future__ import annotations

from dataclasses import dataclass

import pytest

from offline.simulator import SimMessage, SimulationConfig, simulate


@dataclass
class Run:
    sim: object
    messages: list[SimMessage]
    incidents: dict[str, dict[str, object]]


def run(config: SimulationConfig) -> Run:
    sim = simulate(config)
    messages = list(sim)
    incidents = {
        str(m.incident_truth["incident_id"]): m.incident_truth
        for m in messages
        if m.incident_truth is not None
    }
    return Run(sim, messages, incidents)


@pytest.fixture(scope="session")
def essonne_run() -> Run:
    """Two weeks of Essonne at default rates (spans the 31 March 2024 DST switch)."""
    return run(SimulationConfig(start="2024-03-25", days=14, seed=11, outbreaks=4))
