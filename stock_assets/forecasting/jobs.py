"""The forecasting stage's job: one trading date, every ticker (a panel run)."""

import dagster as dg

from stock_assets.execution import DAILY_RUN_TAGS

daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.assets("daily_forecast", "forecast_performance"),
    tags=DAILY_RUN_TAGS,
    description="Forecast every ticker for one session (or the tickers of the run's stock_assets/tickers tag), score the forecasts that matured, check both.",
)
