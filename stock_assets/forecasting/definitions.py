"""Forecasting stage: daily_forecast and forecast_performance (their checks are monitoring's)."""

import dagster as dg

from stock_assets.forecasting.assets import daily_forecast
from stock_assets.forecasting.performance_asset import forecast_performance

defs = dg.Definitions(assets=[daily_forecast, forecast_performance])
