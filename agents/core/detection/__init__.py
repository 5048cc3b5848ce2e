"""Hotspot detection: hourly incident counts, baselines, Poisson scan, alert lifecycle.

Public API: `CountStore` / `InMemoryCountStore` / `IncidentCounter` / `first_seen_of`
(counts), `CellIndex` (cells), `fit_baseline` (baselines), `calibrate` (thresholds),
`Detector` / `PoissonScanDetector` / `DetectionConfig` (detection), `AlertManager` / `AlertState`
(lifecycle).
"""

from agents.core.detection.alerts import (
    AlertManager,
    AlertState,
    Candidate,
    LifecycleParams,
    severity_of,
)
from agents.core.detection.baseline import (
    Baseline,
    BaselineParams,
    HistoryStats,
    fit_baseline,
    hour_of_week,
)
from agents.core.detection.calibration import Calibration, calibrate, null_daily_max
from agents.core.detection.cells import CellIndex
from agents.core.detection.counts import (
    CountStore,
    IncidentCounter,
    InMemoryCountStore,
    first_seen_of,
    hour_of,
)
from agents.core.detection.detector import (
    CalibrationJob,
    Calibrator,
    DetectionConfig,
    Detector,
    DetectorSchedule,
    InThreadCalibrator,
    PoissonScanDetector,
    RestorableDetector,
    run_calibration,
)
from agents.core.detection.scan import poisson_score, scan

__all__ = [
    "AlertManager",
    "AlertState",
    "Baseline",
    "BaselineParams",
    "Calibration",
    "CalibrationJob",
    "Calibrator",
    "Candidate",
    "CellIndex",
    "CountStore",
    "DetectionConfig",
    "Detector",
    "DetectorSchedule",
    "HistoryStats",
    "InMemoryCountStore",
    "InThreadCalibrator",
    "IncidentCounter",
    "LifecycleParams",
    "PoissonScanDetector",
    "RestorableDetector",
    "calibrate",
    "first_seen_of",
    "fit_baseline",
    "hour_of",
    "hour_of_week",
    "null_daily_max",
    "poisson_score",
    "run_calibration",
    "scan",
    "severity_of",
]
