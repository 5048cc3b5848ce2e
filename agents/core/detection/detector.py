"""Detectors: a small protocol and the expectation-based Poisson scan detector."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from agents.core.detection.alerts import (
    AlertManager,
    AlertState,
    Candidate,
    LifecycleParams,
    Message,
)
from agents.core.detection.baseline import Baseline, BaselineParams, HistoryStats, fit_baseline
from agents.core.detection.calibration import (
    Calibration,
    calibrate,
    episodes,
    event_scores,
    observed_daily_max,
    observed_day_clusters,
)
from agents.core.detection.cells import CellIndex
from agents.core.detection.counts import CountRow, CountStore, hour_of
from agents.core.detection.scan import (
    DEFAULT_KS,
    DEFAULT_WINDOWS,
    FloatArray,
    IntArray,
    ScanResult,
)
from agents.core.detection.scanner import WindowScanner
from schemas.enums import CATEGORIES


class Detector(Protocol):
    """Anything that turns counts into alert lifecycle messages (scan, CUSUM, Kulldorff...).

    `run(now)` is called every few seconds/minutes on one worker with the detector's clock
    (wall clock live, stream clock in a backtest) and returns the messages to publish.
    """

    name: str

    def run(self, now: float) -> list[Message]: ...


@runtime_checkable
class RestorableDetector(Detector, Protocol):
    """A detector whose alert state can be taken back from the stored alerts after a restart
    or a change of the worker that runs it (see `AlertManager.restore`)."""

    @property
    def cooldown_s(self) -> float:
        """How long a closed alert holds its zone back (what `restore` needs of the past)."""
        ...

    def restore(self, alerts: Iterable[AlertState], now: float) -> None: ...

    def schedule(self) -> DetectorSchedule | None:
        """When the detector last fitted and calibrated, and the threshold it uses: what a
        restarted detector takes back (`restore_schedule`); None before it is calibrated."""
        ...

    def restore_schedule(self, schedule: DetectorSchedule) -> None: ...


@dataclass(frozen=True, slots=True)
class DetectorSchedule:
    """The detector's fit and calibration times (its clock, epoch seconds) and its current
    threshold. A detector fits its baseline every `refit_every_s` and calibrates every
    `recalibrate_every_s` from its first ready run, and a calibration depends on the history
    and the hour it runs at: a restarted detector that recalibrated at its own first run
    would alert on another threshold than an uninterrupted one (`make chaos` saw 3 to 8 of
    the backtest's 8 hotspots alerted live across runs with SIGKILLs). Taking this back, it
    refits on the window of the stored fit and keeps the stored threshold until the next
    calibration falls due, at the times an uninterrupted detector would."""

    fit_at: float
    calibrated_at: float
    threshold: float


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    ks: tuple[int, ...] = DEFAULT_KS
    min_observed: float = 3.0  # a zone needs at least this many incidents to alert
    false_alerts_per_day: float = 1.0  # target for the whole served area
    calibration_days: int = 24  # simulated null days
    calibration_period_s: float = 900.0  # simulated run period (live runs every 300 s)
    calibration_clumping: float = 0.05  # share of null incidents with a twin (see calibration)
    calibration_seed: int = 0
    # the simulated null's weight, in days, against the history's observed days (see
    # `calibration`); 0: the observed days alone once there are any
    calibration_prior_days: float = 2.0
    calibration_folds: int = 4  # cross-fitting: a fold of history days is left out of its fit
    # the observed days' quantile read is at this share of the target's (robust to outbreak
    # days, see `calibration.blended_threshold`)
    calibration_low_share: float = 0.5
    calibration_observed: bool = True  # False: the simulated null alone (former behaviour)
    # > 0: the threshold is also raised until the history's days open at most
    # `false_alerts_per_day` distinct clusters a day, a cluster scoring this many times the
    # threshold or more being taken for a real outbreak, with the weaker clusters of its
    # event around it (`calibration.cluster_rate_threshold`, `calibration.event_scores`)
    calibration_cluster_reach: float = 2.0
    # the cluster-rate threshold holds `false_alerts_per_day` as a bound: the history's
    # clusters at the threshold must leave this probability that the period until the next
    # calibration opens at most that many a day (`calibration.allowed_history_clusters`:
    # the rate's uncertainty from few history days plus the period's own scatter, reached
    # along the null clusters' score tail, `calibration.promise_margin`); 0: as a mean over
    # the history (a mean of 1 a day is more than 7 in 40 % of weeks)
    calibration_promise: float = 0.9
    # at most this many incidents of one (cell, category, hour) count (0: all), see
    # `calibration.episodes`: with 1, the incidents of one event split by the correlation
    # into one bucket count as one; it also caps a real spree's busiest buckets (later alerts)
    episode_cap: int = 0
    min_threshold: float = 6.0
    close_ratio: float = 0.6  # close below close_ratio * open threshold
    cooldown_s: float = 6 * 3600.0
    history_days: float = 56.0  # history used to fit baselines
    min_history_days: float = 7.0  # no alert before the history covers this much (learning)
    fit_lag_hours: int = 24  # the most recent hours are left out of the fit
    refit_every_s: float = 86400.0
    recalibrate_every_s: float = 7 * 86400.0
    baseline: BaselineParams = field(default_factory=BaselineParams)


@dataclass(frozen=True, slots=True)
class CalibrationJob:
    """What a calibration reads: the fitted baseline, the cells, the last fit's history rows
    and their window, the settings, and the hour it runs at. `run_calibration` is a pure
    function of it, so the runtime may compute it away from the worker (a `Calibrator`).
    `history` None: the rows are for the calibrator to read from the store, those of the fit
    window (`stats.start_hour` to `stats.end_hour`), see `PoissonScanDetector`."""

    baseline: Baseline
    index: CellIndex
    history: list[CountRow] | None
    stats: HistoryStats | None
    config: DetectionConfig
    start_hour: int


def run_calibration(job: CalibrationJob) -> Calibration:
    """The threshold calibration of `job` (`calibration.calibrate`): the history's own days,
    read as their daily maxima and their distinct clusters, blended with a simulated null."""
    if job.history is None:
        raise ValueError("the calibration job holds no history rows: its calibrator reads them")
    cfg = job.config
    observed: list[float] = []
    clusters: list[list[float]] = []
    events: list[list[float]] | None = None
    if cfg.calibration_observed and cfg.calibration_cluster_reach > 0:
        observed, clusters, events = observed_day_clusters_of(job, cfg.min_threshold)
    elif cfg.calibration_observed:
        observed = observed_daily_max_of(job)
    return calibrate(
        job.baseline,
        job.index,
        false_alerts_per_day=cfg.false_alerts_per_day,
        start_hour=job.start_hour,
        days=cfg.calibration_days,
        windows=cfg.windows,
        ks=cfg.ks,
        min_observed=cfg.min_observed,
        min_threshold=cfg.min_threshold,
        period_s=cfg.calibration_period_s,
        clumping=cfg.calibration_clumping,
        seed=cfg.calibration_seed,
        observed=observed,
        prior_days=cfg.calibration_prior_days,
        low_share=cfg.calibration_low_share,
        episode_cap=cfg.episode_cap,
        observed_clusters=clusters,
        cluster_reach=cfg.calibration_cluster_reach,
        horizon_days=cfg.recalibrate_every_s / 86400.0,
        promise=cfg.calibration_promise,
        observed_events=events,
    )


class Calibrator(Protocol):
    """Computes a calibration: `InThreadCalibrator` (`run_calibration` in the caller's
    thread) by default; the worker hands it to a child process
    (`streams.calibration_process`) so that its CPU burst and its memory stay out of the
    process that serves reports."""

    @property
    def reads_history(self) -> bool:
        """It reads the history's rows itself: the job's `history` is then None when the
        detector was fitted from the store's totals, and the detector does not read them."""

    def __call__(self, job: CalibrationJob) -> Calibration: ...


@dataclass(frozen=True)
class InThreadCalibrator:
    """`Calibrator` computing in the caller's thread (`compute`, `run_calibration` unless
    given) from the job's own history rows."""

    compute: Callable[[CalibrationJob], Calibration] = run_calibration

    @property
    def reads_history(self) -> bool:
        return False

    def __call__(self, job: CalibrationJob) -> Calibration:
        return self.compute(job)


IN_THREAD = InThreadCalibrator()


def observed_daily_max_of(job: CalibrationJob) -> list[float]:
    """The daily maximum score of every whole day of the job's history (the hours before
    each day that its windows need included), each scored against a baseline fitted without
    its fold of days (days d, d + F, d + 2F... with F folds), then in the order of the days.
    Rebuilt from the stored counts at each calibration: nothing to keep across restarts."""
    cfg = job.config
    folds = history_folds(job)
    out = np.zeros(sum(len(days) for days, *_ in folds))
    for days, starts, baseline, rows, f in folds:
        out[days] = observed_daily_max(
            baseline,
            job.index,
            rows,
            day_starts=starts,
            windows=cfg.windows,
            ks=cfg.ks,
            min_observed=cfg.min_observed,
            period_s=cfg.calibration_period_s,
            seed=cfg.calibration_seed + f,
            episode_cap=cfg.episode_cap,
        )
    return [float(x) for x in out]


def observed_day_clusters_of(
    job: CalibrationJob, floor: float
) -> tuple[list[float], list[list[float]], list[list[float]]]:
    """`observed_daily_max_of` (the same values) and its days, each as the scores of its
    distinct clusters scoring at least `floor` (`calibration.observed_day_clusters`) and as
    their event scores across consecutive days (`calibration.event_scores`)."""
    cfg = job.config
    folds = history_folds(job)
    n = sum(len(days) for days, *_ in folds)
    maxima = np.zeros(n)
    scores: list[FloatArray] = [np.zeros(0) for _ in range(n)]
    places: list[IntArray] = [np.zeros(0, dtype=np.int64) for _ in range(n)]
    for days, starts, baseline, rows, f in folds:
        maxima[days], clusters, at = observed_day_clusters(
            baseline,
            job.index,
            rows,
            day_starts=starts,
            windows=cfg.windows,
            ks=cfg.ks,
            min_observed=cfg.min_observed,
            floor=floor,
            period_s=cfg.calibration_period_s,
            seed=cfg.calibration_seed + f,
            episode_cap=cfg.episode_cap,
        )
        for d, day_scores, day_places in zip(days, clusters, at, strict=True):
            scores[d], places[d] = day_scores, day_places
    events = event_scores(scores, places, job.index.rings(max(cfg.ks)))
    return (
        [float(x) for x in maxima],
        [d.tolist() for d in scores],
        [e.tolist() for e in events],
    )


def history_folds(
    job: CalibrationJob,
) -> list[tuple[list[int], list[int], Baseline, list[CountRow], int]]:
    """The whole days of the job's history by cross-fitting fold: (the days' numbers and
    start hours, the baseline fitted without them, the stored rows they need, the fold). The
    days of fold f are d, d + F, d + 2F... (F folds)."""
    stats, history = job.stats, job.history
    if stats is None or history is None:
        return []
    cfg = job.config
    lead = max(cfg.windows) - 1
    starts = list(range(stats.end_hour - 24, stats.start_hour + lead - 1, -24))[::-1]
    folds = max(1, min(cfg.calibration_folds, len(starts)))
    if len(starts) < 2:
        return []  # a fold left out would leave no history to fit
    out: list[tuple[list[int], list[int], Baseline, list[CountRow], int]] = []
    for f in range(folds):
        days = list(range(f, len(starts), folds))
        held = [(starts[d], starts[d] + 24) for d in days]
        fold_stats = HistoryStats.from_rows(history, stats.start_hour, stats.end_hour, held)
        baseline = fit_baseline(fold_stats, job.index, cfg.baseline)
        lo, hi = starts[days[0]] - lead, starts[days[-1]] + 24
        rows = [r for r in history if lo <= r[2] < hi]
        out.append((days, [starts[d] for d in days], baseline, rows, f))
    return out


class PoissonScanDetector:
    """Baselines + Poisson scan + alert lifecycle over a `CountStore`.

    Fits its baseline from the store's history on the first run and every `refit_every_s`
    (from the window's totals when the store sums them, `counts.TotalsCountStore`; its rows
    are then read only to calibrate),
    calibrates its threshold on the first run and every `recalibrate_every_s` from the
    history's own daily maxima blended with a simulated null (`calibration`; or uses
    `fixed_threshold`), through `calibrator` (`run_calibration` where it is called unless
    the runtime gives another place to compute it).

    Cold start: the detector stays silent while it is *learning* (the stored history covers
    less than `min_history_days`) or while its last fit saw an incomplete history (the
    latest first-seen hour was before the end of the fit window: history still being
    loaded); it refits once the history is long enough, on every run while catching up,
    then recalibrates once ready. `ready` tells which, for metrics and health.

    Runs are incremental: window counts follow the store's changes (`changes_since`, when the
    store has it; else they are re-read each run), every zone is scanned at the first run of
    each hour, and in between only the zones around cells that received incidents since the
    previous run and the zones of open alerts (the other scores can only have gone down,
    see `scan.WindowScanner`). A run with no new incident and no open alert does nothing.
    """

    name = "poisson_scan"

    def __init__(
        self,
        store: CountStore,
        index: CellIndex | None = None,
        config: DetectionConfig | None = None,
        *,
        fixed_threshold: float | None = None,
        calibrator: Calibrator = IN_THREAD,
    ) -> None:
        self.store = store
        self.index = index if index is not None else CellIndex()
        self.config = config or DetectionConfig()
        self.baseline: Baseline | None = None
        self.calibration: Calibration | None = None
        self._fixed = fixed_threshold
        self._calibrator = calibrator
        self._stats: HistoryStats | None = None
        # the rows of the last fit; None: fitted from the store's totals
        # (`counts.TotalsCountStore`), read at the next calibration
        self._history: list[CountRow] | None = []
        self._raw: dict[tuple[int, int, int], int] = {}  # incidents per windowed bucket
        self._fit_at = -np.inf
        self._calibrated_at = -np.inf
        self._restored: DetectorSchedule | None = None  # taken back at the next run
        self._fit_cells = -1
        self._fit_complete = False
        self.learning = True
        self._scanner: WindowScanner | None = None
        self._revision: int | None = None
        self._full_due = True
        self._cat_pos = {c: i for i, c in enumerate(CATEGORIES)}
        self._zones: dict[tuple[int, int], tuple[frozenset[str], frozenset[str]]] = {}
        self._zones_version = -1
        threshold = fixed_threshold if fixed_threshold is not None else np.inf
        self.manager = AlertManager(
            LifecycleParams(float(threshold), self.config.close_ratio, self.config.cooldown_s)
        )

    # -- hooks ---------------------------------------------------------------------------
    def observe_cell(self, cell: str, insee: str) -> None:
        """`IncidentCounter` hook: learn the cell universe and each cell's commune."""
        self.index.ensure(cell, insee)

    @property
    def threshold(self) -> float:
        return self.manager.params.open_threshold

    # -- fitting ---------------------------------------------------------------------------
    def refit(self, now: float) -> Baseline:
        cfg = self.config
        end = hour_of(now) - cfg.fit_lag_hours
        start = end - int(cfg.history_days * 24)
        span = self.store.span()
        if span is not None:
            start = max(start, span[0])
        end = max(start, end)
        # the fit is complete when the stored history reaches the end of its window
        self._fit_complete = span is not None and span[1] >= end - 1
        self.learning = self._too_short(span, now)
        totals = getattr(self.store, "window_totals", None)
        if totals is not None:  # the store sums the window: its rows wait for a calibration
            cells, hours = totals(start, end)
            self._history = None
            self._stats = HistoryStats.from_totals(cells, hours, start, end)
        else:
            self._history = self.store.window_counts(start, end)
            self._stats = HistoryStats.from_rows(self._history, start, end)
        self._fit_at = now
        return self._refit_from_stats()

    def _refit_from_stats(self) -> Baseline:
        assert self._stats is not None
        cfg = self.config
        self.baseline = fit_baseline(self._stats, self.index, cfg.baseline)
        self._fit_cells = len(self.index)
        self._scanner = WindowScanner(
            self.baseline.zone_rates(self.index, cfg.ks),
            self.baseline.profile,
            self.index.rings(max(cfg.ks)),
            ks=cfg.ks,
            windows=cfg.windows,
            min_observed=cfg.min_observed,
        )
        self._revision = None  # reload the windows
        return self.baseline

    def calibrate(self, now: float) -> Calibration:
        if self.baseline is None or self._fit_cells != len(self.index):
            self.refit(now)
        self.calibration = self._calibrator(self.calibration_job(now))
        self._calibrated_at = now
        self.set_threshold(self.calibration.threshold)
        return self.calibration

    def calibration_job(self, now: float) -> CalibrationJob:
        """What a calibration at `now` reads (the last fit's baseline and history)."""
        assert self.baseline is not None and self._stats is not None
        history = self._history
        if history is None and not self._calibrator.reads_history:
            # fitted from the store's totals: read the fit window's rows
            history = self.store.window_counts(self._stats.start_hour, self._stats.end_hour)
        return CalibrationJob(self.baseline, self.index, history, self._stats,
                              self.config, hour_of(now))

    def set_threshold(self, threshold: float) -> None:
        p = self.manager.params
        self.manager.params = LifecycleParams(threshold, p.close_ratio, p.cooldown_s, p.detector)
        self._full_due = True

    @property
    def cooldown_s(self) -> float:
        return self.manager.params.cooldown_s

    def restore(self, alerts: Iterable[AlertState], now: float) -> None:
        """Take the alert lifecycle's state back from the stored alerts (`AlertManager.restore`);
        the next run rescans every zone."""
        self.manager.restore(alerts, now)
        self._full_due = True

    def schedule(self) -> DetectorSchedule | None:
        if self._restored is not None:  # not taken back yet: still the stored one
            return self._restored
        if self._fixed is not None or not math.isfinite(self._calibrated_at):
            return None
        return DetectorSchedule(float(self._fit_at), float(self._calibrated_at), self.threshold)

    def restore_schedule(self, schedule: DetectorSchedule) -> None:
        """Take back a stored schedule (`DetectorSchedule`) at the next run, before any fit
        or calibration of the detector's own."""
        self._restored = schedule

    def _take_back(self, s: DetectorSchedule, now: float) -> bool:
        """Refit on the window of the latest fit an uninterrupted detector would have made
        (the stored one plus whole `refit_every_s` periods) and use the stored threshold
        until the stored calibration is `recalibrate_every_s` old. False (nothing kept) when
        the schedule cannot be this store's: from the detector's future, a threshold that is
        not a positive number, or a fit that was not ready on the stored history."""
        if (self._fixed is not None or not s.fit_at <= now or not s.calibrated_at <= now
                or not math.isfinite(s.threshold) or s.threshold <= 0.0):
            return False
        # the latest refit an uninterrupted detector would have made by `now`
        period = self.config.refit_every_s
        self.refit(s.fit_at + max(0.0, (now - s.fit_at) // period) * period)
        if not self.ready:
            self.baseline = None  # start over from `now`, as without a stored schedule
            return False
        self._calibrated_at = s.calibrated_at
        self.set_threshold(s.threshold)
        return True

    # -- running ---------------------------------------------------------------------------
    def _too_short(self, span: tuple[int, int] | None, now: float) -> bool:
        """The stored history (first/last hour) covers less than `min_history_days`."""
        return span is None or hour_of(now) - span[0] < self.config.min_history_days * 24

    @property
    def ready(self) -> bool:
        """Fitted on a complete history at least `min_history_days` long: alerts may open."""
        return self.baseline is not None and self._fit_complete and not self.learning

    def _maintain(self, now: float) -> None:
        cfg = self.config
        if self._restored is not None:
            restored, self._restored = self._restored, None
            self._take_back(restored, now)
        if self.learning and self.baseline is not None and self._too_short(self.store.span(), now):
            return  # still learning: nothing to alert on, the next fit waits
        catching_up = self.baseline is not None and not self._fit_complete
        if (
            self.baseline is None
            or now - self._fit_at >= cfg.refit_every_s
            or catching_up
            or self.learning
        ):
            was_ready = self.ready
            self.refit(now)
            if self._fixed is None and self.ready and not was_ready:
                self.calibrate(now)  # the threshold of a partial history is not worth keeping
        if self._fixed is None and now - self._calibrated_at >= cfg.recalibrate_every_s:
            self.calibrate(now)

    def _add_rows(self, scanner: WindowScanner, rows: list[CountRow]) -> None:
        pos, cat_pos, n_cells = self.index.position, self._cat_pos, self._fit_cells
        cap, raw = self.config.episode_cap, self._raw
        kept: list[tuple[int, int, int, int]] = []
        for cell, cat, h, n in rows:
            ci = cat_pos.get(cat)
            p = pos(cell)
            # cells first seen since the last fit wait for the next one
            if ci is not None and p is not None and p < n_cells:
                if cap:  # the change of the bucket's episode count
                    key = (ci, p, h)
                    was = raw.get(key, 0)
                    raw[key] = was + n
                    n = episodes(was + n, cap) - episodes(was, cap)
                    if not n:
                        continue
                kept.append((ci, p, h, n))
        if kept:
            arr = np.asarray(kept, dtype=np.int64)
            scanner.add_many(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3].astype(np.float64))

    def _sync(self, hour: int) -> tuple[WindowScanner, bool]:
        """Bring the window counts to the store's state; True when every zone must be
        rescanned (new hour, reload, new threshold)."""
        scanner = self._scanner
        assert scanner is not None
        delta_of = getattr(self.store, "changes_since", None)
        rows = None
        if self._revision is not None and delta_of is not None:
            rows = delta_of(self._revision)
        full = self._full_due or hour != scanner.hour
        if rows is None:  # (re)load the whole windows
            revision = self.store.revision()
            scanner.reset(hour)
            self._raw.clear()
            start = hour - max(self.config.windows) + 1
            span = self.store.span()
            end = max(hour, span[1]) + 1 if span is not None else hour + 1
            self._add_rows(scanner, self.store.window_counts(start, end))  # future: kept aside
            full = True
        else:
            revision = self.store.revision()
            if hour != scanner.hour:
                scanner.advance(hour)
                oldest = hour - max(self.config.windows) + 1
                self._raw = {k: v for k, v in self._raw.items() if k[2] >= oldest}
            self._add_rows(scanner, rows)
        self._revision = revision
        self._full_due = False
        return scanner, full

    def scan_now(self, now: float, *, full: bool = True) -> ScanResult:
        """The scan at `now`: every zone with `full`, else only the zones around the cells
        that changed since the previous scan and the zones of open alerts."""
        self._maintain(now)
        scanner, must = self._sync(hour_of(now))
        if full or must:
            return scanner.scan_all(now)
        near = set(scanner.changed)
        pos = self.index.position
        for alert in self.manager.open_alerts.values():
            ci = self._cat_pos[alert.category]
            for cell in alert.cells:
                p = pos(cell)
                if p is not None and p < self._fit_cells:
                    near.add((ci, p))
        return scanner.scan_near(now, near)

    def _zone(self, center: int, k: int) -> tuple[frozenset[str], frozenset[str]]:
        """Known cells of the zone (center, k) and their communes (cached per index
        version)."""
        if self._zones_version != self.index.version:
            self._zones.clear()
            self._zones_version = self.index.version
        zone = self._zones.get((center, k))
        if zone is None:
            cells = self.index.zone_cells(center, k)
            pos, insee = self.index.position, self.index.insee
            zone = (frozenset(cells), frozenset(insee[pos(c) or 0] for c in cells))
            self._zones[(center, k)] = zone
        return zone

    def run(self, now: float) -> list[Message]:
        self._maintain(now)
        if not self.ready:
            return []  # learning or catching up: no alert on a baseline not worth it yet
        if self.manager.expire_cooldowns(now):
            self._full_due = True  # a zone held back by a cooldown may open now
        scanner = self._scanner
        if (
            scanner is not None
            and not self._full_due
            and hour_of(now) == scanner.hour
            and not self.manager.open_alerts
            and self._revision == self.store.revision()
        ):
            return []  # nothing new: no score went up, no open alert to follow
        result = self.scan_now(now, full=False)
        close = self.manager.params.close_threshold
        candidates: list[Candidate] = []
        hour = hour_of(now)
        for i in np.nonzero(result.score >= close)[0]:
            center = int(result.center[i])
            k = self.config.ks[int(result.k_idx[i])]
            w = self.config.windows[int(result.w_idx[i])]
            cells, insee = self._zone(center, k)
            candidates.append(
                Candidate(
                    category=CATEGORIES[int(result.category[i])],
                    center_cell=self.index.cells[center],
                    cells=cells,
                    insee=insee,
                    observed=float(result.observed[i]),
                    expected=float(result.expected[i]),
                    score=float(result.score[i]),
                    window_start=float((hour - w + 1) * 3600),
                    window_end=float(now),
                )
            )
        if not candidates and not self.manager.open_alerts:
            return []
        return self.manager.step(now, candidates)
