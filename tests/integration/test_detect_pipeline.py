"""Hotspot detection on real Kafka and ClickHouse: two weeks of simulated history, then a
burglary spree in one neighbourhood within the last hour; the leader's detector publishes an
alert on the alerts topic within one detection period of the data supporting it."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import orjson
import pytest

from offline.simulator.engine import SimMessage
from tests.infra.clickhouse import ClickHouseServer

pytestmark = [pytest.mark.kafka, pytest.mark.clickhouse]

CENTRE = (48.6245, 2.4290)  # Évry-Courcouronnes
PERIOD_S = 5.0


def spree(now: float, n: int = 9) -> list[SimMessage]:
    """`n` distinct burglaries (distinct records of one police station never merge) within
    ~250 m, in the last 50 minutes."""
    out = []
    for i in range(n):
        occurred = now - 3000 + i * 300
        lat = CENTRE[0] + 0.0008 * ((i % 3) - 1)
        lon = CENTRE[1] + 0.0011 * ((i // 3) - 1)
        body = {
            "report_id": f"PN-csp-evry-spree-{int(now)}-{i}",
            "source": {"kind": "police_nationale", "org": "csp-evry", "channel": "api"},
            "category": "cambriolage",
            "occurred_at": datetime.fromtimestamp(occurred).astimezone().isoformat(),
            "reported_at": datetime.fromtimestamp(occurred + 120).astimezone().isoformat(),
            "location": {"lat": lat, "lon": lon, "accuracy_m": 10},
        }
        out.append(SimMessage(topic="vigie.reports.partner.v1", key=body["report_id"].encode(),
                              value=orjson.dumps(body), timestamp_ms=int((occurred + 120) * 1000),
                              truth={"report_id": body["report_id"],
                                     "expected_reject_reason": None}))
    return out


def test_outbreak_raises_alert_within_one_detection_period(
    pipeline_factory, clickhouse_server: ClickHouseServer
) -> None:
    p = pipeline_factory(clickhouse_server.url_for("it_detect"),
                         detect_interval_seconds=str(PERIOD_S))
    start = (datetime.now() - timedelta(days=14)).replace(microsecond=0)
    history = p.simulate(days=13.9, seed=61, start=start.isoformat(), outbreaks=0)
    worker = p.worker()
    worker.wait_ready(90)
    produced = p.produce(history)
    n_valid = len(produced.expected_valid_ids())
    p.wait_for(lambda: p.scalar("SELECT count() FROM reports FINAL") >= n_valid, 180,
               "history stored")
    # Let the detector fit and calibrate on the history (its first run), then settle.
    stored_at = time.time()

    def ran_since(t: float) -> bool:
        text = p.metrics_text()
        line = next((x for x in text.splitlines()
                     if x.startswith("vigie_detector_last_success_timestamp_seconds ")), "")
        return bool(line) and float(line.split()[-1]) > t

    p.wait_for(lambda: ran_since(stored_at), 240, "a detector run over the history")
    # the threshold it calibrated on the history is exported, as stored in its schedule
    exported = next(float(x.split()[-1]) for x in p.metrics_text().splitlines()
                    if x.startswith("vigie_detector_threshold "))
    stored_threshold = p.scalar(
        "SELECT argMax(threshold, updated_at) FROM detector_schedules")
    assert exported == pytest.approx(stored_threshold) and exported >= 6.0  # min_threshold
    settled = time.time()
    p.wait_for(lambda: ran_since(settled), 180, "the next detector run")
    alerts_before = len(p.read_topic("alerts", expect=10_000, timeout=3))

    now = time.time()
    p.produce(spree(now), produced)
    p.wait_for(lambda: p.scalar(
        "SELECT count() FROM incidents WHERE category = 'cambriolage' "
        "AND first_occurred_at >= toDateTime(%(t)s)", t=int(now - 3600)) >= 9, 60,
        "spree incidents stored")
    supported_at = time.time()
    deadline = supported_at + 60
    found = None
    while time.time() < deadline and found is None:
        for record in p.read_topic("alerts", expect=alerts_before + 1, timeout=2)[alerts_before:]:
            alert = json.loads(record.value)
            if alert["category"] == "cambriolage" and alert["status"] == "open":
                found = (alert, time.time())
    detector_lines = [line for line in p.metrics_text().splitlines()
                      if line.startswith(("vigie_detector", "vigie_alerts"))]
    assert found is not None, f"no alert for the spree\n{detector_lines}\n{worker.tail(40)}"
    alert, seen_at = found
    # Published within one detection period (plus one run) of the supporting data.
    assert seen_at - supported_at <= 2 * PERIOD_S + 10
    assert alert["observed"] >= 3 and alert["observed"] > alert["expected"]
    assert "91228" in alert["insee"] or any(i.startswith("91") for i in alert["insee"])
    stored = p.store.query("SELECT alert_id, status FROM alerts FINAL WHERE alert_id = %(a)s",
                           {"a": alert["alert_id"]})
    assert stored
    # every line the worker wrote, Faust's own start-up and rebalance lines included, is
    # one JSON object (log shippers parse them)
    written = [line for line in worker.log_path.read_text().splitlines() if line.strip()]
    not_json = []
    for line in written:
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            not_json.append(line)
    assert len(written) > 20 and not not_json, not_json[:5]
