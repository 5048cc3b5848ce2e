"""Quality scoring of alerts against ground-truth outbreaks (pure)."""

from __future__ import annotations

from agents.core.detection.quality import OutbreakTruth, compatible, evaluate


def _alert(
    aid: str,
    cat: str,
    lat: float,
    lon: float,
    at: float,
    status: str = "open",
    radius: float = 500.0,
) -> dict[str, object]:
    return {
        "alert_id": aid,
        "status": status,
        "category": cat,
        "center": {"lat": lat, "lon": lon},
        "radius_m": radius,
        "window_start": at - 3600,
        "emitted_at": at,
    }


def test_evaluate_counts_detections_delays_and_false_alerts() -> None:
    day = 86400.0
    obs = [
        OutbreakTruth("ob1", "cambriolage", 48.63, 2.44, 500, 10 * day, 11 * day),
        OutbreakTruth("ob2", "incendie", 48.70, 2.30, 400, 12 * day, 12.5 * day),
        OutbreakTruth("ob0", "vol", 48.60, 2.20, 400, 5 * day, 5.5 * day),  # before eval
    ]
    alerts = [
        _alert("a1", "cambriolage", 48.631, 2.441, 10 * day + 1800),  # true, 30 min delay
        _alert("a1", "cambriolage", 48.631, 2.441, 11 * day, "closed"),
        _alert("a2", "degradation", 48.701, 2.301, 12 * day + 7200),  # compatible, 2 h
        _alert("a3", "cambriolage", 48.90, 2.10, 10 * day),  # far away: false
        _alert("a4", "vol", 48.63, 2.44, 13 * day),  # right place, too late: false
        _alert("a5", "cambriolage", 48.63, 2.44, 3 * day),  # opened before eval: ignored
    ]
    rep = evaluate(alerts, obs, eval_start=7 * day, eval_end=14 * day)
    assert rep.outbreaks == 2 and rep.detected == 2 and rep.detected_share == 1.0
    assert sorted(rep.delays_s) == [1800.0, 7200.0]
    assert rep.median_delay_s == 4500.0
    assert rep.alerts_opened == 4 and rep.false_alerts == 2
    assert rep.false_alerts_per_day == 2 / 7
    assert compatible("vol", "cambriolage") and not compatible("rodeo", "cambriolage")
    missed = evaluate(alerts[2:], obs, eval_start=7 * day, eval_end=14 * day)
    assert missed.missed == ["ob1"] and missed.detected_share == 0.5
