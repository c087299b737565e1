"""Forecasting stage: daily_forecast and forecast_performance, and the daily job that runs them
(their checks are monitoring's; the schedule that launches the job is too)."""

import dagster as dg

from stock_assets.forecasting.assets import daily_forecast
from stock_assets.forecasting.jobs import daily_job
from stock_assets.forecasting.performance_asset import forecast_performance

defs = dg.Definitions(assets=[daily_forecast, forecast_performance], jobs=[daily_job])
