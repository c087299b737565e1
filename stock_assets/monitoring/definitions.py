"""Monitoring stage: the index drift check, the daily job and schedule, the retraining loop."""

import dagster as dg

from stock_assets.execution import DAILY_RUN_TAGS, INGESTION_RUN_TAGS
from stock_assets.ingestion.definitions import ticker_data_job
from stock_assets.modeling.definitions import parent_retrain_job, retrain_job
from stock_assets.monitoring.checks import market_index_feature_drift
from stock_assets.monitoring.schedules import build_daily_schedule, build_monthly_retrain_schedule
from stock_assets.monitoring.sensors import (
    build_daily_ingestion_sensor,
    build_parent_children_sensor,
    build_retraining_sensor,
)

# One trading date, every ticker (a panel run): forecast, score, and the forecast checks.
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.assets("daily_forecast", "forecast_performance"),
    tags=DAILY_RUN_TAGS,
    description="Forecast every ticker for one session (or the tickers of the run's stock_assets/tickers tag), score the forecasts that matured, check both.",
)

# The index's day: prices, indicators and its drift check.
market_data_job = dg.define_asset_job(
    "market_data_job",
    selection=dg.AssetSelection.assets("market_index_prices", "market_index_indicators"),
    tags=INGESTION_RUN_TAGS,
    description="Fetch ^GSPC, compute its indicators, check them for drift.",
)

# Every ticker's indicators into Feast, after the day's ingestion.
feast_job = dg.define_asset_job(
    "feast_job",
    selection=dg.AssetSelection.assets("feast_features"),
    tags=INGESTION_RUN_TAGS,
    description="Republish every ticker's indicators to Feast.",
)

defs = dg.Definitions(
    asset_checks=[market_index_feature_drift],
    jobs=[daily_job, market_data_job, feast_job],
    schedules=[build_daily_schedule(daily_job), build_monthly_retrain_schedule(retrain_job)],
    sensors=[
        build_retraining_sensor(retrain_job, parent_retrain_job),
        build_parent_children_sensor(parent_retrain_job, retrain_job),
        build_daily_ingestion_sensor(ticker_data_job, market_data_job, feast_job),
    ],
)
