"""The FastAPI app: `create_app()` wires settings, the lake reader, routers, errors and metrics.

    uvicorn serving.main:app --host 0.0.0.0 --port 8000

The app reads the lake only; it never imports the pipeline's training or Dagster code.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from serving.apikey import ApiKeyMiddleware
from serving.errors import install_error_handlers
from serving.lake_reader import LakeReader
from serving.metrics import Metrics
from serving.microcache import MicroCache
from serving.ratelimit import RateLimitMiddleware, RateLimits
from serving.routes import (
    backtests,
    dashboard,
    drift,
    forecasts,
    health,
    history,
    models,
    performance,
    reports,
    tickers,
)
from serving.settings import Settings, get_settings

DESCRIPTION = """
Read-only access to what the stock_assets Dagster pipeline materialized: the latest forecasts,
actual prices with forecasts overlaid, forecast performance, models and agent reports.

Data appears as soon as Dagster writes a partition (no restart). A 404 says whether the ticker is
unknown or which asset to materialize; a 422 states the rule a parameter broke.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings (e.g. a temporary lake)."""
    settings = settings or get_settings()
    app = FastAPI(
        title=settings.project_name,
        description=DESCRIPTION,
        version="0.1.0",
        openapi_tags=[
            {"name": "tickers", "description": "Tickers with data in the lake."},
            {"name": "forecasts", "description": "daily_forecast partitions."},
            {"name": "history", "description": "Prices with forecasts overlaid, for charts."},
            {"name": "performance", "description": "forecast_performance: matured forecasts."},
            {"name": "models", "description": "child_model cards and promotion history."},
            {"name": "reports", "description": "agent_report partitions."},
            {"name": "backtests", "description": "strategy_backtest: the forecasts traded."},
            {"name": "drift", "description": "The feature_drift check's Evidently reports."},
            {"name": "health", "description": "Liveness, data freshness, Prometheus metrics."},
        ],
    )
    app.state.settings = settings
    app.state.reader = LakeReader(
        settings.lake_dir,
        max_files=settings.cache_max_files,
        revalidate_seconds=settings.revalidate_seconds,
    )
    app.state.metrics = Metrics(app.state.reader, settings)
    install_error_handlers(app)
    # Hot routers first: FastAPI matches included routers in order.
    routers = (forecasts, tickers, history, performance, models, reports, backtests, drift, health,
               dashboard)
    for module in routers:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    # Outermost first: metrics (everything is counted, 401s, 429s and cached answers too), rate
    # limits (wrong keys are limited like any request), the API key, then the micro-cache.
    app.add_middleware(MicroCache, seconds=settings.revalidate_seconds if settings.microcache else 0,
                       stats=app.state.metrics.cache)
    key = settings.api_key.get_secret_value() if settings.api_key else None
    app.add_middleware(ApiKeyMiddleware, key=key)
    if settings.rate_limit_enabled:
        app.state.rate_limits = RateLimits(
            settings.rate_limit_default, settings.rate_limits, settings.rate_limit_storage
        )
        app.add_middleware(RateLimitMiddleware, limits=app.state.rate_limits)
    app.state.metrics.instrument(app)
    return app


app = create_app()
