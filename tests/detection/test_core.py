"""Unit tests of the detection core on synthetic counts."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import h3
import numpy as np
import pytest

from agents.core.detection import (
    AlertManager,
    Candidate,
    DetectionConfig,
    HistoryStats,
    IncidentCounter,
    InMemoryCountStore,
    LifecycleParams,
    PoissonScanDetector,
    calibrate,
    first_seen_of,
    fit_baseline,
    hour_of,
    hour_of_week,
    poisson_score,
    severity_of,
)
from agents.core.detection.counts import incident_cell
from agents.core.detection.scan import ScanResult
from schemas.alert import Alert
from schemas.enums import CATEGORIES
from tests.detection.synthetic import CENTER, H0, background, universe

PARIS = ZoneInfo("Europe/Paris")


def test_poisson_score_matches_formula() -> None:
    c = np.array([0.0, 1.0, 5.0, 10.0])
    b = np.array([1.0, 2.0, 1.0, 2.5])
    s = poisson_score(c, b)
    assert s[0] == 0.0 and s[1] == 0.0  # C <= B scores 0
    assert s[2] == pytest.approx(5 * math.log(5) + 1 - 5)
    assert s[3] == pytest.approx(10 * math.log(4) + 2.5 - 10)


def test_hour_of_week_is_local_and_dst_correct() -> None:
    # 2024-03-31 02:00 CET -> 03:00 CEST: the UTC hour 01:00 is local 03:00 on Sunday.
    before = hour_of(datetime(2024, 3, 31, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp())
    after = before + 1
    assert hour_of_week(before) == 6 * 24 + 1  # Sunday 01h local (CET)
    assert hour_of_week(after) == 6 * 24 + 3  # Sunday 03h local (CEST): 02h never happens
    monday = datetime(2024, 7, 1, 0, 0, tzinfo=PARIS).timestamp()
    assert hour_of_week(hour_of(monday)) == 0


def test_incident_counter_counts_incidents_once_and_moves_on_new_version() -> None:
    store = InMemoryCountStore()
    seen: list[tuple[str, str]] = []
    counter = IncidentCounter(store, lambda cell, insee: seen.append((cell, insee)))
    other = h3.grid_ring(CENTER, 2)[0]
    t = H0 * 3600.0 + 100
    base = {"incident_id": "i1", "category": "rodeo", "first_occurred_at": t, "insee": "91228"}
    counter.observe({**base, "version": 1, "h3_r8": CENTER})
    counter.observe({**base, "version": 2, "h3_r8": CENTER})  # five reports, one event
    counter.observe({**base, "version": 2, "h3_r8": CENTER})  # re-delivered version
    assert store.window_counts(H0, H0 + 1) == [(CENTER, "rodeo", H0, 1)]
    # a later version moved the incident one hour earlier and to another cell
    counter.observe({**base, "version": 3, "h3_r8": other, "first_occurred_at": t - 3600})
    counter.observe({**base, "version": 1, "h3_r8": CENTER})  # stale version ignored
    assert store.window_counts(H0 - 1, H0 + 1) == [(other, "rodeo", H0 - 1, 1)]
    # no h3_r8 field: derived from lat/lon
    lat, lon = h3.cell_to_latlng(CENTER)
    counter.observe(
        {
            "incident_id": "i2",
            "version": 1,
            "category": "vol",
            "lat": lat,
            "lon": lon,
            "first_occurred_at": t,
        }
    )
    assert (CENTER, "vol", H0, 1) in store.window_counts(H0, H0 + 1)
    assert len(counter) == 2 and seen[0] == (CENTER, "91228")
    # counted when first seen (the stream clock of its first version), for good
    late = {"incident_id": "i3", "category": "vol", "h3_r8": CENTER, "first_occurred_at": t}
    counter.observe({**late, "version": 1}, seen_at=t + 5 * 3600)
    counter.observe({**late, "version": 2, "h3_r8": other, "first_occurred_at": t - 7200})
    assert (other, "vol", H0 + 5, 1) in store.window_counts(H0 + 5, H0 + 6)
    assert store.changes_since(store.revision() - 2) == [
        (CENTER, "vol", H0 + 5, -1),
        (other, "vol", H0 + 5, 1),
    ]
    # a version tells when it was first seen: `first_seen_at` (what the live SQL counts by),
    # else a version 1's `updated_at`; a later version's `updated_at` does not
    v1 = {**late, "incident_id": "i4", "version": 1, "updated_at": t + 2 * 3600}
    assert first_seen_of(v1, seen_at=t + 9 * 3600) == t + 2 * 3600
    assert first_seen_of({**v1, "version": 2}, seen_at=t + 9 * 3600) == t + 9 * 3600
    assert first_seen_of({**v1, "version": 2}) is None
    assert first_seen_of({**v1, "version": 2, "first_seen_at": t + 60.0}) == t + 60.0
    counter.observe(v1, seen_at=t + 9 * 3600)
    assert (CENTER, "vol", H0 + 2, 1) in store.window_counts(H0 + 2, H0 + 3)


def test_incident_counter_leaves_out_incidents_known_only_by_their_commune() -> None:
    """A commune-only incident sits at its commune's representative point: not a place, so
    not counted per cell (see `incident_cell`) until a version locates it; then it counts in
    the hour it was first seen, as `incident_hours.LIVE_COUNTS` does."""
    store = InMemoryCountStore()
    counter = IncidentCounter(store)
    other = h3.grid_ring(CENTER, 2)[0]
    t = H0 * 3600.0 + 100
    commune = {
        "category": "cambriolage",
        "h3_r8": CENTER,
        "first_occurred_at": t,
        "first_seen_at": t,
        "precision": "commune",
    }
    counter.observe({**commune, "incident_id": "c1", "version": 1})
    counter.observe({**commune, "incident_id": "c2", "version": 1})
    assert store.window_counts(H0, H0 + 1) == []
    # c2 is located by its version 2, three hours later: counted where it is, when first seen
    counter.observe(
        {
            **commune,
            "incident_id": "c2",
            "version": 2,
            "h3_r8": other,
            "precision": "point",
            "first_seen_at": t,
        }
    )
    counter.observe({**commune, "incident_id": "c2", "version": 1})  # stale: ignored
    assert store.window_counts(H0, H0 + 1) == [(other, "cambriolage", H0, 1)]
    assert incident_cell({**commune, "precision": "point"}) == CENTER
    assert incident_cell(commune) == ""


def test_baseline_shrinks_sparse_cells_and_keeps_chronic_spots() -> None:
    index = universe(8)
    spot = index.cells[10]
    store = background(index, H0, 24 * 21, seed=3, chronic=((spot, "trafic_stupefiants", 6.0),))
    stats = HistoryStats.from_rows(store.window_counts(H0, H0 + 24 * 21), H0, H0 + 24 * 21)
    base = fit_baseline(stats, index)
    ci = CATEGORIES.index("trafic_stupefiants")
    # the chronic spot keeps (most of) its own high rate: it is baseline, not a hotspot
    assert base.rate[ci, 10] * 24 > 4.5
    # every cell gets a positive expectation, and total expectation matches the history
    assert (base.rate > 0).all()
    total_obs = sum(stats.cell_counts.values()) / stats.hours
    assert base.rate.sum() == pytest.approx(total_obs, rel=0.1)
    assert 0.05 <= base.alpha_cell <= 100
    # profiles have mean 1
    assert np.allclose(base.profile.mean(axis=1), 1.0)


def test_cold_start_spreads_department_rates_by_weight() -> None:
    index = universe(3)
    index.weight[0] = 9.0  # e.g. population
    stats = HistoryStats(H0, H0)  # no history
    base = fit_baseline(stats, index)
    ci = CATEGORIES.index("cambriolage")
    daily = base.rate[ci].sum() * 24
    assert daily == pytest.approx(25.0)  # the configured cold-start rate
    assert base.rate[ci, 0] > 5 * base.rate[ci, 1]


def _detector(store: InMemoryCountStore, index, **kw) -> PoissonScanDetector:  # type: ignore[no-untyped-def]
    cfg = DetectionConfig(calibration_days=30, **kw)
    return PoissonScanDetector(store, index, cfg)


def test_detects_injected_outbreak_and_runs_lifecycle() -> None:
    index = universe(10)
    spot = index.cells[50]
    store = background(index, H0, 24 * 28, seed=5, chronic=((spot, "trafic_stupefiants", 8.0),))
    det = _detector(store, index)
    start = (H0 + 24 * 21) * 3600.0
    cal = det.calibrate(start)
    assert cal.threshold >= 6.0 and len(cal.daily_max) == 30
    # the twins of the null (clumping) raise the threshold over the pure Poisson null
    poisson = calibrate(
        det.baseline,  # type: ignore[arg-type]
        index,
        false_alerts_per_day=1.0,
        start_hour=hour_of(start),
        days=30,
        windows=det.config.windows,
        ks=det.config.ks,
        min_observed=det.config.min_observed,
        min_threshold=0.0,
    )
    twins = calibrate(
        det.baseline,  # type: ignore[arg-type]
        index,
        false_alerts_per_day=1.0,
        start_hour=hour_of(start),
        days=30,
        windows=det.config.windows,
        ks=det.config.ks,
        min_observed=det.config.min_observed,
        min_threshold=0.0,
        clumping=det.config.calibration_clumping,
    )
    assert poisson.threshold < twins.threshold
    # a burglary spree over a cell and its neighbours, 8 incidents in 4 hours on day 24
    ob_hour = H0 + 24 * 24 + 2
    zone = sorted(h3.grid_disk(index.cells[200], 1))
    for i in range(8):
        store.add(zone[i % len(zone)], "cambriolage", ob_hour + i // 2, 1)
    messages = []
    now = start
    while now < (H0 + 24 * 28) * 3600.0:
        messages += det.run(now)
        now += 300.0
    spree = [m for m in messages if m["category"] == "cambriolage" and set(m["cells"]) & set(zone)]
    assert spree, "the outbreak was not detected"
    first = spree[0]
    assert first["status"] == "open"
    assert first["emitted_at"] - ob_hour * 3600 <= 3 * 3600  # within 3 hours of its start
    assert spree[-1]["status"] == "closed"
    ids = {m["alert_id"] for m in spree}
    assert len(ids) == 1  # overlapping zones collapsed, no re-open during cooldown
    versions = [m["version"] for m in spree]
    assert versions == sorted(versions) and versions[0] == 1
    for m in spree:
        Alert.model_validate(m)
    # chronic spot is never alerted
    assert not [m for m in messages if spot in m["cells"] and m["category"] == "trafic_stupefiants"]
    # false alerts (not the spree) stay near the calibrated rate (target 1/day, 7 days)
    false_opens = {m["alert_id"] for m in messages if m["alert_id"] not in ids}
    assert len(false_opens) <= 14


def test_null_stream_false_alert_rate_is_near_target() -> None:
    index = universe(10)
    store = background(index, H0, 24 * 35, seed=11)
    det = _detector(store, index, false_alerts_per_day=0.5)
    now = (H0 + 24 * 21) * 3600.0
    opens = 0
    while now < (H0 + 24 * 35) * 3600.0:
        opens += sum(m["status"] == "open" for m in det.run(now))
        now += 600.0
    assert opens / 14 <= 1.5  # target 0.5/day; generous for a 14-day sample
    # a stricter target gives a higher threshold
    strict = _detector(store, index, false_alerts_per_day=0.1).calibrate(now).threshold
    assert strict > det.threshold


def _cand(score: float, cells: set[str], observed: float = 5.0) -> Candidate:
    return Candidate(
        "vol",
        sorted(cells)[0],
        frozenset(cells),
        frozenset({"91228"}),
        observed,
        0.5,
        score,
        0.0,
        3600.0,
    )


def test_alert_manager_hysteresis_cooldown_and_collapse() -> None:
    a = set(h3.grid_disk(CENTER, 1))
    b = set(h3.grid_disk(h3.grid_ring(CENTER, 1)[0], 1))  # overlaps a
    far = set(h3.grid_disk(h3.grid_ring(CENTER, 6)[0], 1))
    mgr = AlertManager(LifecycleParams(open_threshold=10.0, close_ratio=0.6, cooldown_s=3600))
    out = mgr.step(0.0, [_cand(12.0, a), _cand(11.0, b), _cand(8.0, far)])
    assert [m["status"] for m in out] == ["open"]  # a+b collapse; far is below open
    assert set(out[0]["cells"]) == a | b and out[0]["score"] == 12.0
    alert_id = out[0]["alert_id"]
    assert mgr.step(60.0, [_cand(12.0, a), _cand(11.0, b)]) == []  # unchanged: no update
    upd = mgr.step(120.0, [_cand(7.0, a, observed=6.0)])  # below open, above close: stays
    assert [(m["status"], m["version"]) for m in upd] == [("update", 2)]
    closed = mgr.step(180.0, [_cand(5.0, a)])  # below close threshold
    assert [(m["alert_id"], m["status"], m["version"]) for m in closed] == [(alert_id, "closed", 3)]
    assert mgr.step(240.0, [_cand(20.0, a)]) == []  # cooldown
    reopened = mgr.step(4000.0, [_cand(20.0, a)])
    assert [m["status"] for m in reopened] == ["open"] and reopened[0]["alert_id"] != alert_id
    assert severity_of(10.0, 10.0) == 1 and severity_of(40.0, 10.0) == 3
    assert severity_of(1e6, 10.0) == 5


def _rows(r: ScanResult) -> list[tuple[int, int, float]]:
    return list(zip(r.category.tolist(), r.center.tolist(), r.score.tolist(), strict=True))


def test_incremental_scan_equals_full_scan() -> None:
    index = universe(8)
    store = background(index, H0, 24 * 16, seed=7)
    det = _detector(store, index)
    det.set_threshold(10.0)
    now = (H0 + 24 * 14) * 3600.0 + 1200.0
    det.scan_now(now)
    rng = np.random.default_rng(0)
    changed_any = False
    for step in range(40):
        now += 600.0
        if step % 3:
            cell = index.cells[int(rng.integers(len(index)))]
            store.add(cell, "vol", hour_of(now), 1)
        inc = det.scan_now(now, full=False)  # zones around the new incident (or all: new hour)
        full = det.scan_now(now)
        # every zone the incremental scan looked at has its full-scan score, and every zone
        # it skipped has not gone up since it was last scanned (no new incident in it)
        got = {(int(c), int(z)): float(s) for c, z, s in _rows(inc)}
        ref = {(int(c), int(z)): float(s) for c, z, s in _rows(full)}
        for key, score in got.items():
            assert score == pytest.approx(ref[key])
        if step % 3 and hour_of(now) == hour_of(now - 600.0):
            # every zone around the new incident that holds enough incidents to score (the
            # others are left out of both scans) was rescanned, and only those near it
            vol, pos = CATEGORIES.index("vol"), index.position(cell)
            assert pos is not None
            around = set(index.rings(2)[pos].tolist())
            near = {key for key in ref if key[0] == vol and key[1] in around}
            assert near <= set(got)
            assert set(got) <= near
            changed_any = changed_any or bool(near)
    assert changed_any


def test_cold_start_stays_silent_while_learning_or_catching_up() -> None:
    """A fresh deployment (little history) or a history still being loaded must not flood
    the ops room: no alert until the stored history covers `min_history_days` and reaches
    the end of the fit window; then the same spike alerts."""
    index = universe(6)
    cfg = DetectionConfig(min_history_days=7.0)
    zone = sorted(h3.grid_disk(index.cells[40], 1))

    def spike(store: InMemoryCountStore, hour: int) -> None:
        for i in range(10):
            store.add(zone[i % len(zone)], "cambriolage", hour, 1)

    # learning: 3 days of history
    store = background(index, H0, 24 * 3, seed=2)
    det = PoissonScanDetector(store, index, cfg, fixed_threshold=8.0)
    now_h = H0 + 24 * 3
    spike(store, now_h)
    assert det.run(now_h * 3600.0 + 1800.0) == [] and det.learning and not det.ready
    # the history grows past 7 days: the next run refits, is ready, and the spike alerts
    background(index, now_h + 1, 24 * 6, seed=3, store=store)
    now_h += 24 * 6 + 1
    spike(store, now_h)
    out = det.run(now_h * 3600.0 + 1800.0)
    assert det.ready and not det.learning
    assert [m for m in out if m["category"] == "cambriolage" and set(m["cells"]) & set(zone)]

    # catching up: the history stops 5 days before the clock (still being loaded)
    store = background(index, H0, 24 * 10, seed=4)
    det = PoissonScanDetector(store, index, cfg, fixed_threshold=8.0)
    now_h = H0 + 24 * 15
    assert det.run(now_h * 3600.0) == [] and not det.ready and not det.learning
    background(index, H0 + 24 * 10, 24 * 5, seed=5, store=store)  # the rest arrives
    spike(store, now_h)
    out = det.run(now_h * 3600.0 + 1800.0)
    assert det.ready
    assert [m for m in out if m["category"] == "cambriolage" and set(m["cells"]) & set(zone)]
