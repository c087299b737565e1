"""Ingestion stage: raw prices per ticker and for the index, their checks, their jobs, the
watchlist sensor."""

import dagster as dg

from stock_assets.ingestion.assets import market_index_prices, raw_prices
from stock_assets.ingestion.jobs import market_data_job, ticker_data_job
from stock_assets.ingestion.sensors import build_watchlist_sensor

__all__ = ["defs", "market_data_job", "ticker_data_job"]

defs = dg.Definitions(
    assets=[raw_prices, market_index_prices],
    jobs=[ticker_data_job, market_data_job],
    sensors=[build_watchlist_sensor(ticker_data_job)],
)
