"""The forecasting stage's job: one trading date, every ticker (a panel run)."""

import dagster as dg

from stock_assets.contract import DAILY_FORECAST, DAILY_JOB, FORECAST_PERFORMANCE
from stock_assets.execution import DAILY_RUN_TAGS

daily_job = dg.define_asset_job(
    DAILY_JOB,
    selection=dg.AssetSelection.assets(DAILY_FORECAST, FORECAST_PERFORMANCE),
    tags=DAILY_RUN_TAGS,
    description="Forecast every ticker for one session (or the tickers of the run's stock_assets/tickers tag), score the forecasts that matured, check both.",
)
