"""API settings from the environment, so a container and a laptop run the same code.

| variable | default | meaning |
|---|---|---|
| SERVING_LAKE_DIR | $STOCK_ASSETS_HOME/lake (./.stock_assets/lake) | the lake Dagster writes |
| SERVING_STALE_AFTER_DAYS | 4 | calendar days a table may lag before /health calls it stale |
| SERVING_REFERENCE_DATE | today (UTC) | "today" for freshness, e.g. a demo on a fixed synthetic market |
| SERVING_MAPE_THRESHOLD | 0.05 | rolling MAPE above which /performance reports the check failing |
| SERVING_MIN_ROLLING_N | 5 | matured forecasts needed before the check is judged |
| SERVING_REVALIDATE_SECONDS | 0.1 | an answer is re-checked against the lake at most this often |
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stock_assets.settings import project_home


class Settings(BaseSettings):
    """Where the lake is and when data counts as stale; nothing secret lives here."""

    model_config = SettingsConfigDict(env_prefix="SERVING_", extra="ignore")

    project_name: str = "stock_assets API"
    lake_dir: Path = Field(
        default_factory=lambda: project_home() / "lake",
        description="The Parquet lake; defaults to $STOCK_ASSETS_HOME/lake like the pipeline.",
    )
    stale_after_days: int = Field(
        default=4, ge=1, description="Calendar days; 4 covers a weekend plus a Monday holiday."
    )
    reference_date: date | None = Field(
        default=None, description="Freshness is judged against this date instead of today (UTC)."
    )
    mape_threshold: float = Field(
        default=0.05, gt=0, description="Keep equal to the forecast_mape check's threshold."
    )
    min_rolling_n: int = Field(default=5, ge=1)
    revalidate_seconds: float = Field(
        default=0.1,
        ge=0,
        le=60,
        description="New partitions are served at most this long after they are written; 0 "
        "re-checks the lake on every request.",
    )
    cache_max_files: int = Field(default=8192, ge=16, description="Parsed Parquet files kept.")

    def today(self) -> date:
        return self.reference_date or datetime.now(UTC).date()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
