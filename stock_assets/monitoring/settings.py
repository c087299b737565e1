"""The monitoring thresholds, read from the environment when a check or sensor runs.

Why environment variables and not Dagster config: the same values are read by the checks inside
the daily job, by the retraining sensor and by anything that launches those runs (schedule,
sensor, UI, CLI), so one place must own them; every check shows the values it used in its metadata.
They are read at evaluation time, never at import time, so a change needs no code reload.

| variable | default | meaning |
|---|---|---|
| STOCK_ASSETS_MAPE_THRESHOLD | 0.05 | forecast_mape fails above this rolling MAPE (a fraction) |
| STOCK_ASSETS_NAIVE_MARGIN | 0.25 | ...or when MAPE > naive MAPE x (1 + this) |
| STOCK_ASSETS_MAPE_MIN_MATURED | 5 | matured forecasts needed before the rolling MAPE is used |
| STOCK_ASSETS_COVERAGE_LOW | 0.70 | interval_coverage fails when the rolling 80 % coverage is below this... |
| STOCK_ASSETS_COVERAGE_HIGH | 0.90 | ...or above this |
| STOCK_ASSETS_COVERAGE_MIN_MATURED | 40 | matured forecasts with bands needed before interval_coverage judges |
| STOCK_ASSETS_ROLLING_WINDOW | 20 | sessions of target dates in forecast_performance's rolling metrics |
| STOCK_ASSETS_DRIFT_THRESHOLD | 0.5 | feature_drift fails when this share of features drifted |
| STOCK_ASSETS_DRIFT_COLUMN_THRESHOLD | 1.5 | a feature drifted: Wasserstein distance > this x its training std |
| STOCK_ASSETS_DRIFT_WINDOW | 20 | recent sessions compared with the training window |
| STOCK_ASSETS_DRIFT_REPORTS_KEEP | 30 | Evidently HTML reports kept per ticker (~4.5 MB each) |
| STOCK_ASSETS_RETRAIN_COOLDOWN_HOURS | 24 | no second retrain of one ticker within this time |
| STOCK_ASSETS_RETRAIN_EPOCHS | unset | epochs of sensor-launched retrains (unset: the model config's) |
| STOCK_ASSETS_RETRAIN_NAIVE_TOLERANCE | unset | naive_tolerance of sensor-launched retrains: their not_worse_than_naive check and promotion gate (unset: the model config's) |
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

ENV_PREFIX = "STOCK_ASSETS_"


def _env_float(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(ENV_PREFIX + name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name}={raw!r} is not a number.") from exc
    if value < minimum:
        raise ValueError(f"{ENV_PREFIX}{name} must be >= {minimum}, got {value}.")
    return value


def _env_int(name: str, default: int, minimum: int = 1) -> int:
    return int(_env_float(name, float(default), float(minimum)))


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(f"STOCK_ASSETS_{name}", "").strip() or default
    if value not in choices:
        raise ValueError(f"STOCK_ASSETS_{name}={value!r}: choose one of {', '.join(choices)}")
    return value


def _env_set(name: str) -> bool:
    """Whether the variable holds a value (unset and blank both mean "use the default")."""
    return bool(os.environ.get(ENV_PREFIX + name, "").strip())


@dataclass(frozen=True)
class MonitoringSettings:
    """Every threshold the forecast checks and the retraining sensor use."""

    mape_threshold: float = 0.05
    naive_margin: float = 0.25
    min_matured: int = 5
    coverage_low: float = 0.70
    coverage_high: float = 0.90
    coverage_min_matured: int = 40
    rolling_window: int = 20
    drift_threshold: float = 0.5
    drift_column_threshold: float = 1.5
    drift_method: str = "wasserstein"
    drift_window: int = 20
    drift_reports_keep: int = 30
    # Which tickers get Evidently's HTML report: "auto" (every ticker when a run judges at most
    # drift_reports_all_max of them, else the drifted ones), "all", "drifted" or "none".
    drift_reports: str = "auto"
    drift_reports_all_max: int = 25
    retrain_cooldown_hours: float = 24.0
    retrain_epochs: int | None = None
    retrain_naive_tolerance: float | None = None

    @classmethod
    def from_env(cls) -> MonitoringSettings:
        return cls(
            mape_threshold=_env_float("MAPE_THRESHOLD", cls.mape_threshold),
            naive_margin=_env_float("NAIVE_MARGIN", cls.naive_margin),
            min_matured=_env_int("MAPE_MIN_MATURED", cls.min_matured),
            coverage_low=_env_float("COVERAGE_LOW", cls.coverage_low),
            coverage_high=_env_float("COVERAGE_HIGH", cls.coverage_high),
            coverage_min_matured=_env_int("COVERAGE_MIN_MATURED", cls.coverage_min_matured),
            rolling_window=_env_int("ROLLING_WINDOW", cls.rolling_window),
            drift_threshold=_env_float("DRIFT_THRESHOLD", cls.drift_threshold),
            drift_column_threshold=_env_float("DRIFT_COLUMN_THRESHOLD", cls.drift_column_threshold),
            drift_window=_env_int("DRIFT_WINDOW", cls.drift_window, minimum=5),
            drift_reports_keep=_env_int("DRIFT_REPORTS_KEEP", cls.drift_reports_keep),
            drift_reports=_env_choice("DRIFT_REPORTS", cls.drift_reports,
                                      ("auto", "all", "drifted", "none")),
            drift_reports_all_max=_env_int("DRIFT_REPORTS_ALL_MAX", cls.drift_reports_all_max),
            retrain_cooldown_hours=_env_float("RETRAIN_COOLDOWN_HOURS", cls.retrain_cooldown_hours),
            retrain_epochs=_env_int("RETRAIN_EPOCHS", 1) if _env_set("RETRAIN_EPOCHS") else None,
            retrain_naive_tolerance=(
                _env_float("RETRAIN_NAIVE_TOLERANCE", 1.0)
                if _env_set("RETRAIN_NAIVE_TOLERANCE")
                else None
            ),
        )

    def drift_report_for(self, tickers_judged: int) -> str:
        """"all", "drifted" or "none": which of a run's tickers get an HTML report."""
        if self.drift_reports != "auto":
            return self.drift_reports
        return "all" if tickers_judged <= self.drift_reports_all_max else "drifted"

    @property
    def retrain_cooldown(self) -> timedelta:
        return timedelta(hours=self.retrain_cooldown_hours)

    def as_metadata(self, *names: str) -> dict[str, Any]:
        """The named settings (all when none), for a check's metadata."""
        values = asdict(self)
        return {
            f"setting_{k}": v
            for k, v in values.items()
            if (not names or k in names) and v is not None
        }
