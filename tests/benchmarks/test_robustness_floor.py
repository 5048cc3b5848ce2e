"""bench_robustness's delay floor: when each evaluated burst's 3rd incident is first
reported, and what the alert adds to it."""

from __future__ import annotations

from typing import Any

from benchmarks import bench_robustness as b

H = 3600.0


def _outbreak(ob_id: str, start: float) -> dict[str, Any]:
    return {
        "outbreak_id": ob_id,
        "category": "cambriolage",
        "lat": 48.6,
        "lon": 2.3,
        "radius_m": 300.0,
        "start": start,
        "end": start + 6 * H,
    }


def _alert(opened: float) -> dict[str, Any]:
    return {
        "alert_id": "a1",
        "status": "open",
        "category": "cambriolage",
        "center": {"lat": 48.6, "lon": 2.3},
        "radius_m": 500.0,
        "window_start": opened - H,
        "emitted_at": opened,
    }


def test_floor_is_the_third_first_report_and_delay_is_read_over_it() -> None:
    t0 = 100 * H
    outbreaks = [_outbreak("ob-1", t0), _outbreak("ob-2", t0 + 30 * H), _outbreak("old", 0.0)]
    first_reports = {
        "ob-1": [t0 + 3 * H, t0 + 0.5 * H, t0 + 1 * H],  # 3rd first reported at 3 h
        "ob-2": [t0 + 31 * H, t0 + 32 * H],  # only 2 incidents: no floor (inf)
        "old": [H, 2 * H, 3 * H],  # before the evaluated days: left out
    }
    alerts = [_alert(t0 + 4.5 * H)]
    out = b.delay_floor(alerts, outbreaks, first_reports, eval_start=50 * H, eval_end=200 * H)
    # median of (3 h, inf) is inf: reported as None; one detected burst, 1.5 h over its floor
    assert out == {"delay_floor_h": None, "delay_over_floor_h": 1.5}
    out = b.delay_floor([], outbreaks[:1], first_reports, eval_start=50 * H, eval_end=200 * H)
    assert out == {"delay_floor_h": 3.0, "delay_over_floor_h": None}
