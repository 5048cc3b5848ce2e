"""The alert lifecycle taken back after a restart (`AlertManager.restore`,
`PoissonScanDetector.restore`): a hotspot goes on under its alert id, an alert of a zone gone
quiet closes, a recent closure still holds its zone back."""

from __future__ import annotations

from typing import Any

import h3
import pytest

from agents.core.detection import (
    AlertManager,
    AlertState,
    Candidate,
    DetectionConfig,
    LifecycleParams,
    PoissonScanDetector,
    RestorableDetector,
)
from schemas.alert import Alert
from tests.detection.synthetic import CENTER, H0, background, universe

ZONE = frozenset(h3.grid_disk(CENTER, 1))
PARAMS = LifecycleParams(open_threshold=10.0, close_ratio=0.6, cooldown_s=3600.0)


def stored(message: dict[str, Any]) -> AlertState:
    """A lifecycle message as the `alerts` table gives it back: `center` flattened, times
    truncated to the second (DateTime columns)."""
    center = message["center"]
    return AlertState(
        alert_id=message["alert_id"],
        version=message["version"],
        status=message["status"],
        kind=message["kind"],
        category=message["category"],
        center_lat=center["lat"],
        center_lon=center["lon"],
        radius_m=message["radius_m"],
        cells=tuple(message["cells"]),
        insee=tuple(message["insee"]),
        window_start=float(int(message["window_start"])),
        window_end=float(int(message["window_end"])),
        observed=message["observed"],
        expected=message["expected"],
        score=message["score"],
        severity=message["severity"],
        emitted_at=float(int(message["emitted_at"])),
        detector=message["detector"],
    )


def cand(score: float, observed: float = 5.0, cells: frozenset[str] = ZONE) -> Candidate:
    return Candidate("vol", CENTER, cells, frozenset({"91228"}), observed, 0.5, score,
                     0.0, 3600.0)


def opened(now: float = 0.0) -> dict[str, Any]:
    [message] = AlertManager(PARAMS).step(now, [cand(12.0)])
    assert message["status"] == "open"
    return message


def test_a_restored_alert_goes_on_under_its_id() -> None:
    first = opened()
    restarted = AlertManager(PARAMS)
    restarted.restore([stored(first)], now=600.0)
    assert restarted.step(600.0, [cand(12.0)]) == []  # the same hotspot, unchanged
    [update] = restarted.step(900.0, [cand(7.0, observed=6.0)])  # above close: stays open
    assert (update["alert_id"], update["status"], update["version"]) == (
        first["alert_id"], "update", 2)
    [closed] = restarted.step(1200.0, [cand(5.0)])
    assert (closed["alert_id"], closed["status"], closed["version"]) == (
        first["alert_id"], "closed", 3)


def test_a_restored_alert_of_a_quiet_zone_closes_with_its_last_figures() -> None:
    first = opened(30.5)
    restarted = AlertManager(PARAMS)
    restarted.restore([stored(first)], now=600.0)
    [closed] = restarted.step(600.0, [])
    assert closed == {**first, "status": "closed", "version": 2, "emitted_at": 600.0,
                      "window_start": 0.0, "window_end": 3600.0}
    Alert.model_validate(closed)
    assert restarted.open_alerts == {}


def test_a_restored_closure_holds_its_zone_back_until_the_cooldown_ends() -> None:
    first = opened()
    closed = {**first, "status": "closed", "version": 2, "emitted_at": 600.0}
    restarted = AlertManager(PARAMS)
    restarted.restore([stored(first), stored(closed)], now=900.0)  # the higher version wins
    assert restarted.open_alerts == {}
    assert restarted.step(900.0, [cand(20.0)]) == []  # cooldown (closed at 600, 3600 s)
    [reopened] = restarted.step(4300.0, [cand(20.0)])
    assert reopened["status"] == "open" and reopened["alert_id"] != first["alert_id"]
    # a closure older than the cooldown holds nothing back
    late = AlertManager(PARAMS)
    late.restore([stored(closed)], now=600.0 + 3600.0)
    assert [m["status"] for m in late.step(4300.0, [cand(20.0)])] == ["open"]


def test_restore_replaces_the_state_in_memory() -> None:
    """A worker that regains the lead forgets what it had: another one ran meanwhile."""
    mgr = AlertManager(PARAMS)
    [first] = mgr.step(0.0, [cand(12.0)])
    closed_elsewhere = {**first, "status": "closed", "version": 2, "emitted_at": 300.0}
    mgr.restore([stored(closed_elsewhere)], now=600.0)
    assert mgr.step(600.0, []) == []  # not closed a second time
    assert mgr.step(700.0, [cand(20.0)]) == []  # held back by the other worker's closure


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "opened"}, "unknown status 'opened'"),
        ({"version": 0}, "version 0 < 1"),
        ({"cells": ()}, "no cells"),
    ],
)
def test_an_alert_state_that_is_not_one_names_why(change: dict[str, Any], reason: str) -> None:
    state = stored(opened())
    fields = {name: getattr(state, name) for name in AlertState.__dataclass_fields__}
    with pytest.raises(ValueError, match=reason):
        AlertState(**{**fields, **change})


def test_the_scan_detector_restarted_mid_outbreak_keeps_one_alert() -> None:
    """The whole detector: a spree opens an alert, the detector restarts (a new instance on
    the same counts) restored from the stored messages; the spree keeps its alert id and its
    alert closes once the zone is quiet."""
    index = universe(6)
    counts = background(index, H0, 24 * 12, seed=3, daily_total=120.0)
    zone = sorted(h3.grid_disk(index.cells[40], 1))
    spree_hour = H0 + 24 * 10 + 2
    for i in range(10):
        counts.add(zone[i % len(zone)], "cambriolage", spree_hour + i // 4, 1)

    def detector() -> PoissonScanDetector:
        return PoissonScanDetector(counts, index, DetectionConfig(), fixed_threshold=12.0)

    det = detector()
    assert isinstance(det, RestorableDetector)
    messages: list[dict[str, Any]] = []
    now = (spree_hour + 1) * 3600.0
    while not any(m["category"] == "cambriolage" and set(m["cells"]) & set(zone)
                  for m in messages):
        messages += det.run(now)
        now += 300.0
        assert now < (spree_hour + 6) * 3600.0, "the spree was not detected"
    det = detector()  # the restart
    current: dict[str, dict[str, Any]] = {}
    for m in messages:
        current[m["alert_id"]] = m
    det.restore([stored(m) for m in current.values()], now)
    end = (spree_hour + 30) * 3600.0
    while now < end:
        messages += det.run(now)
        now += 300.0
    spree = [m for m in messages if m["category"] == "cambriolage" and set(m["cells"]) & set(zone)]
    assert len({m["alert_id"] for m in spree}) == 1
    assert [m["version"] for m in spree] == list(range(1, len(spree) + 1))
    assert spree[-1]["status"] == "closed"
    assert not det.manager.open_alerts or all(
        a.alert_id != spree[0]["alert_id"] for a in det.manager.open_alerts.values()
    )
