"""The monitoring thresholds: one group of the project's settings (`stock_assets.settings`).

Why settings and not Dagster config: the same values are read by the checks inside the daily job,
by the retraining sensor and by anything that launches those runs (schedule, sensor, UI, CLI), so
one place must own them; every check shows the values it used in its metadata. They are parsed
once per process with the rest of the settings (`get_settings().monitoring`), never at import time.
This module imports neither Dagster nor `stock_assets.settings`, so serving can read the defaults.

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
| STOCK_ASSETS_DRIFT_METHOD | wasserstein | Evidently's per-column stattest |
| STOCK_ASSETS_DRIFT_WINDOW | 20 | recent sessions compared with the training window (at least 5) |
| STOCK_ASSETS_DRIFT_REPORTS | auto | which tickers get an Evidently HTML report: auto, all, drifted, none |
| STOCK_ASSETS_DRIFT_REPORTS_ALL_MAX | 25 | auto: every ticker when a run judges at most this many |
| STOCK_ASSETS_DRIFT_REPORTS_KEEP | 30 | Evidently HTML reports kept per ticker (~4.5 MB each) |
| STOCK_ASSETS_RETRAIN_COOLDOWN_HOURS | 24 | no second retrain of one ticker within this time |
| STOCK_ASSETS_RETRAIN_EPOCHS | unset | epochs of sensor-launched retrains (unset: the model config's) |
| STOCK_ASSETS_RETRAIN_NAIVE_TOLERANCE | unset | naive_tolerance of sensor-launched retrains: their not_worse_than_naive check and promotion gate (unset: the model config's) |
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "STOCK_ASSETS_"

# The settings groups' shared parsing rules (stock_assets.settings uses the same): blank means
# "the default", values are stripped, every field is named by its full variable (errors name it).
GROUP_CONFIG = SettingsConfigDict(
    env_prefix=ENV_PREFIX,
    env_ignore_empty=True,
    str_strip_whitespace=True,
    validate_by_name=True,
    validate_by_alias=True,
    frozen=True,
    extra="ignore",
)


def var(name: str) -> str:
    """The full variable name of a project setting: STOCK_ASSETS_ + name."""
    return ENV_PREFIX + name


class SettingsGroup(BaseSettings):
    """A group of settings: blank values (unset, "" or spaces) mean the field's default; paths
    are absolute."""

    model_config = GROUP_CONFIG

    @model_validator(mode="before")
    @classmethod
    def _blank_is_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @field_validator("*")
    @classmethod
    def _absolute(cls, value: Any) -> Any:
        """Folders and files as absolute paths, so a child process reads the same ones."""
        return value.expanduser().resolve() if isinstance(value, Path) else value


class MonitoringSettings(SettingsGroup):
    """Every threshold the forecast checks and the retraining sensor use."""

    mape_threshold: float = Field(0.05, ge=0, validation_alias=var("MAPE_THRESHOLD"))
    naive_margin: float = Field(0.25, ge=0, validation_alias=var("NAIVE_MARGIN"))
    min_matured: int = Field(5, ge=1, validation_alias=var("MAPE_MIN_MATURED"))
    coverage_low: float = Field(0.70, ge=0, validation_alias=var("COVERAGE_LOW"))
    coverage_high: float = Field(0.90, ge=0, validation_alias=var("COVERAGE_HIGH"))
    coverage_min_matured: int = Field(40, ge=1, validation_alias=var("COVERAGE_MIN_MATURED"))
    rolling_window: int = Field(20, ge=1, validation_alias=var("ROLLING_WINDOW"))
    drift_threshold: float = Field(0.5, ge=0, validation_alias=var("DRIFT_THRESHOLD"))
    drift_column_threshold: float = Field(
        1.5, ge=0, validation_alias=var("DRIFT_COLUMN_THRESHOLD")
    )
    drift_method: str = Field("wasserstein", validation_alias=var("DRIFT_METHOD"))
    drift_window: int = Field(20, ge=5, validation_alias=var("DRIFT_WINDOW"))
    drift_reports_keep: int = Field(30, ge=1, validation_alias=var("DRIFT_REPORTS_KEEP"))
    # Which tickers get Evidently's HTML report: "auto" (every ticker when a run judges at most
    # drift_reports_all_max of them, else the drifted ones), "all", "drifted" or "none".
    drift_reports: Literal["auto", "all", "drifted", "none"] = Field(
        "auto", validation_alias=var("DRIFT_REPORTS")
    )
    drift_reports_all_max: int = Field(25, ge=1, validation_alias=var("DRIFT_REPORTS_ALL_MAX"))
    retrain_cooldown_hours: float = Field(
        24.0, ge=0, validation_alias=var("RETRAIN_COOLDOWN_HOURS")
    )
    retrain_epochs: int | None = Field(None, ge=1, validation_alias=var("RETRAIN_EPOCHS"))
    retrain_naive_tolerance: float | None = Field(
        None, ge=1.0, validation_alias=var("RETRAIN_NAIVE_TOLERANCE")
    )

    @classmethod
    def from_env(cls) -> MonitoringSettings:
        """The process's monitoring settings (`get_settings().monitoring`, parsed once)."""
        from stock_assets.settings import get_settings

        return get_settings().monitoring

    @classmethod
    def default(cls, name: str) -> Any:
        """A threshold's default, for code that shows it without reading the environment."""
        return cls.model_fields[name].default

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
        return {
            f"setting_{k}": v
            for k, v in self.model_dump().items()
            if (not names or k in names) and v is not None
        }
