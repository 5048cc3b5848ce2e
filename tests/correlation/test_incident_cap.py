"""An incident takes at most `CorrelationConfig.max_reports` reports: a flood of reports at one
place founds new incidents instead of growing one record past Kafka's message limit (which
would stop the pipeline at its changelog or incidents topic)."""

from __future__ import annotations

from typing import Any

import orjson

from agents.core.correlation import Correlator, incident_json
from agents.core.correlation.config import CorrelationConfig
from agents.ingest import DEFAULT_MAX_MESSAGE_BYTES
from tests.correlation.test_engine import rec

# the longest ids the contract allows, in 4-byte UTF-8 characters (the changelog and the
# incidents topic carry UTF-8 JSON)
WIDE = "\U0001d54d"


def _flood(engine: Correlator, n: int, long_ids: bool = False) -> dict[str, dict[str, Any]]:
    """N citizen reports of one category at one point within minutes: one incident each
    report would join if it could. Returns incident id -> its latest version."""
    latest: dict[str, dict[str, Any]] = {}
    for i in range(n):
        rid = (WIDE * 123 + f"{i:05d}") if long_ids else None
        org = WIDE * 64 if long_ids else "citoyen"
        for version in engine.process(
            rec(east_m=(i % 7) - 3, t=i * 2.0, kind="citizen", org=org, report_id=rid)
        ):
            latest[version["incident_id"]] = version
    return latest


def _sizes(versions: dict[str, dict[str, Any]]) -> list[int]:
    return sorted((v["report_count"] for v in versions.values()), reverse=True)


def test_a_full_incident_takes_no_more_reports() -> None:
    engine = Correlator(CorrelationConfig(max_reports=5))
    assert _sizes(_flood(engine, 12)) == [5, 5, 2]
    # without the cap, the same flood is one incident
    assert _sizes(_flood(Correlator(CorrelationConfig(max_reports=10_000)), 12)) == [12]


def test_a_full_incident_fits_in_a_kafka_message_with_the_longest_ids() -> None:
    config = CorrelationConfig()
    engine = Correlator(config)
    versions = _flood(engine, config.max_reports + 20, long_ids=True)
    assert _sizes(versions) == [config.max_reports, 20]  # no report lost
    full = next(iid for iid, v in versions.items() if v["report_count"] == config.max_reports)
    state = orjson.dumps(engine.export_incident(full))  # Faust's JSON codec is orjson
    version = incident_json(versions[full])
    assert len(state) < DEFAULT_MAX_MESSAGE_BYTES, len(state)
    assert len(version) < DEFAULT_MAX_MESSAGE_BYTES, len(version)
