"""Agents stage: the daily report per (date, ticker), its quality check, and the sensor that writes
it after each daily run (resources are bound in stock_assets/definitions.py)."""

import dagster as dg

from stock_assets.agents.assets import agent_report
from stock_assets.agents.sensors import build_daily_report_sensor, reports_job
from stock_assets.forecasting.jobs import daily_job

defs = dg.Definitions(
    assets=[agent_report],
    jobs=[reports_job],
    sensors=[build_daily_report_sensor(daily_job)],
)
