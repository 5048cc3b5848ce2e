"""Realistic Essonne report stream with ground truth (demo and test data of the project).

    from offline.simulator import SimulationConfig, simulate, write_jsonl
    sim = simulate(SimulationConfig(days=7, seed=3))
    write_jsonl(sim, "reports.jsonl", "truth.jsonl")

See `config.SimulationConfig` for every parameter, `engine.SimMessage` for a message.
"""

from offline.simulator.config import CategoryProfile, SimulationConfig, default_categories
from offline.simulator.engine import SimMessage, Simulation, simulate
from offline.simulator.messages import GEO_REASONS, TOPIC_CITIZEN, TOPIC_PARTNER
from offline.simulator.output import SinkStats, paced, produce_kafka, write_jsonl
from offline.simulator.world import ReportingWorld, apply_world, draw_world

__all__ = [
    "GEO_REASONS",
    "TOPIC_CITIZEN",
    "TOPIC_PARTNER",
    "CategoryProfile",
    "ReportingWorld",
    "SimMessage",
    "Simulation",
    "SimulationConfig",
    "SinkStats",
    "apply_world",
    "default_categories",
    "draw_world",
    "paced",
    "produce_kafka",
    "simulate",
    "write_jsonl",
]
