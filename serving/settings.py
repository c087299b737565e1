"""API settings from the environment, so a container and a laptop run the same code.

The forecast_mape thresholds are the pipeline's own variables and defaults (the lake contract's,
`stock_assets.contract.rules`, equal to MonitoringSettings'; the contract tests
check), not SERVING_ ones: /performance judges the same rule as the Dagster check, so the two
cannot be configured apart.

| variable | default | meaning |
|---|---|---|
| SERVING_LAKE_DIR | $STOCK_ASSETS_HOME/lake (./.stock_assets/lake) | the lake Dagster writes |
| SERVING_STALE_AFTER_DAYS | 4 | calendar days a table may lag before /health calls it stale |
| SERVING_REFERENCE_DATE | today (UTC) | "today" for freshness, e.g. a demo on a fixed synthetic market |
| STOCK_ASSETS_MAPE_THRESHOLD | 0.05 | forecast_mape fails above this MAPE (a fraction) |
| STOCK_ASSETS_NAIVE_MARGIN | 0.25 | ...and its margin over naive persistence's MAPE |
| STOCK_ASSETS_MAPE_MIN_MATURED | 5 | matured forecasts needed before the rolling MAPE is judged |
| SERVING_REVALIDATE_SECONDS | 0.1 | an answer is re-checked against the lake at most this often |
| SERVING_RATE_LIMIT_ENABLED | true | per-client, per-route rate limits (serving/ratelimit.py) |
| SERVING_RATE_LIMIT_DEFAULT | 6000/minute | each client's limit on each route (slowapi/limits syntax) |
| SERVING_RATE_LIMITS | {"/drift/{ticker}": "60/minute"} | per-route overrides, JSON: route template -> limit |
| SERVING_RATE_LIMIT_STORAGE | memory:// | where counts live; per process, so use redis://... with several workers |
| STOCK_ASSETS_API_KEY | unset | when set, every route but /health, / and /static needs it (serving/apikey.py) |
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from stock_assets.contract import default_lake_dir
from stock_assets.contract import rules as mape_rule


class Settings(BaseSettings):
    """Where the lake is, when data counts as stale, how much a client may ask, and the API key."""

    # populate_by_name: the monitoring thresholds are read from STOCK_ASSETS_* variables (their
    # aliases) and can still be passed by field name, as tests do.
    model_config = SettingsConfigDict(env_prefix="SERVING_", extra="ignore", populate_by_name=True)

    project_name: str = "stock_assets API"
    lake_dir: Path = Field(
        default_factory=default_lake_dir,
        description="The Parquet lake; defaults to $STOCK_ASSETS_HOME/lake like the pipeline.",
    )
    stale_after_days: int = Field(
        default=4, ge=1, description="Calendar days; 4 covers a weekend plus a Monday holiday."
    )
    reference_date: date | None = Field(
        default=None, description="Freshness is judged against this date instead of today (UTC)."
    )
    mape_threshold: float = Field(
        default=mape_rule.MAPE_THRESHOLD,
        ge=0,
        validation_alias=mape_rule.MAPE_THRESHOLD_ENV,
        description="forecast_mape fails above this rolling MAPE (a fraction: 0.05 = 5 %).",
    )
    naive_margin: float = Field(
        default=mape_rule.NAIVE_MARGIN,
        ge=0,
        validation_alias=mape_rule.NAIVE_MARGIN_ENV,
        description="...or above naive persistence's MAPE x (1 + this).",
    )
    min_rolling_n: int = Field(
        default=mape_rule.MAPE_MIN_MATURED,
        ge=1,
        validation_alias=mape_rule.MAPE_MIN_MATURED_ENV,
        description="Matured forecasts needed before the rolling MAPE is judged; below it the "
        "production model's test-window MAPE is.",
    )
    revalidate_seconds: float = Field(
        default=0.1,
        ge=0,
        le=60,
        description="New partitions are served at most this long after they are written; 0 "
        "re-checks the lake on every request.",
    )
    cache_max_files: int = Field(default=8192, ge=16, description="Parsed Parquet files kept.")
    microcache: bool = Field(
        default=True,
        description="Answer a URL answered 200 within `revalidate_seconds` again without routing "
        "or validation (serving/microcache.py).",
    )

    rate_limit_enabled: bool = Field(
        default=True, description="Answer 429 (with Retry-After) to a client over its limit."
    )
    rate_limit_default: str = Field(
        default="6000/minute",
        description="Each client's limit on each route: 100 requests a second, far above the "
        "dashboard's one call per ticker per page load, far below what one client can send.",
    )
    rate_limits: dict[str, str] = Field(
        # A drift report is ~4.5 MB of HTML: a person reads a few, a script could pull thousands.
        default_factory=lambda: {"/drift/{ticker}": "60/minute"},
        description="Route template -> limit, replacing the default on that route.",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="limits' storage URI; memory:// counts per process (one uvicorn worker).",
    )
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias="STOCK_ASSETS_API_KEY",
        description="When set, requests need it in `X-API-Key` (or `Authorization: Bearer`).",
    )

    def today(self) -> date:
        return self.reference_date or datetime.now(UTC).date()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
