"""Monitoring stage: the index drift check, the schedules, and the sensors of the retraining loop.

It owns no job: its schedules and sensors launch the other stages' jobs (imported from their
`jobs` modules, never from their definitions)."""

import dagster as dg

from stock_assets.features.jobs import feast_job
from stock_assets.forecasting.jobs import daily_job
from stock_assets.ingestion.jobs import market_data_job, ticker_data_job
from stock_assets.modeling.jobs import parent_retrain_job, retrain_job
from stock_assets.monitoring.checks import market_index_feature_drift
from stock_assets.monitoring.schedules import build_daily_schedule, build_monthly_retrain_schedule
from stock_assets.monitoring.sensors import (
    build_daily_ingestion_sensor,
    build_parent_children_sensor,
    build_retraining_sensor,
)

defs = dg.Definitions(
    asset_checks=[market_index_feature_drift],
    schedules=[build_daily_schedule(daily_job), build_monthly_retrain_schedule(retrain_job)],
    sensors=[
        build_retraining_sensor(retrain_job, parent_retrain_job),
        build_parent_children_sensor(parent_retrain_job, retrain_job),
        build_daily_ingestion_sensor(ticker_data_job, market_data_job, feast_job),
    ],
)
