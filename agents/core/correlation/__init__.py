"""Incident correlation: merge the reports of one real incident, lifecycle, confidence.

    from agents.core.correlation import Correlator, incident_json, partition_key
    engine = Correlator()                    # CorrelationConfig() defaults
    for version in engine.process(record):   # an enriched ReportRecord
        publish(incident_json(version))      # version: dict with the ClickHouse columns
    engine.advance(watermark)                # closures when the stream clock moves on
    engine.export_incident(iid)              # JSON-serialisable state, for a Faust table
    engine.drain_evicted()                   # ids to delete from that table
    Correlator().restore(states, watermark)  # rebuild after a restart

Modules: `config` (parameters), `engine` (matching, lifecycle), `incident` (the typed
state, its changelog dict and its version dict), `index` (the look-ups that find candidate
incidents), `confidence`, `spatial` (distances, search grid, partition key), `output`
(contract JSON), `quality` (clustering scores for `vigie eval`).
"""

from agents.core import native

# the compiled build of the hot modules, when it was made from these very sources
# (`agents.core.native`): before any of them is imported
native.activate(__path__)

from agents.core.correlation.confidence import confidence, source_weight  # noqa: E402
from agents.core.correlation.config import ClassParams, CorrelationConfig  # noqa: E402
from agents.core.correlation.engine import Correlator  # noqa: E402
from agents.core.correlation.incident import (  # noqa: E402
    VERSION_KEYS,
    CommuneAt,
    Incident,
    Member,
    StateDict,
)
from agents.core.correlation.output import incident_json, incident_model  # noqa: E402
from agents.core.correlation.spatial import DEFAULT_PARTITION_RES, partition_key  # noqa: E402

__all__ = [
    "DEFAULT_PARTITION_RES",
    "VERSION_KEYS",
    "ClassParams",
    "CommuneAt",
    "CorrelationConfig",
    "Correlator",
    "Incident",
    "Member",
    "StateDict",
    "confidence",
    "incident_json",
    "incident_model",
    "partition_key",
    "source_weight",
]
