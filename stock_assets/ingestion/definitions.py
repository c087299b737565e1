"""Ingestion stage: raw prices per ticker and for the index, their checks, the watchlist sensor."""

import dagster as dg

from stock_assets.execution import INGESTION_RUN_TAGS
from stock_assets.ingestion.assets import market_index_prices, raw_prices
from stock_assets.ingestion.sensors import build_watchlist_sensor
from stock_assets.partitions import ticker_partitions

# The per-ticker data slice: what a new ticker needs before models can use it. One partition, or a
# range of tickers in one run (the daily cycle ingests the universe that way).
ticker_data_job = dg.define_asset_job(
    "ticker_data_job",
    selection=dg.AssetSelection.assets("raw_prices", "price_indicators"),
    partitions_def=ticker_partitions,
    tags=INGESTION_RUN_TAGS,
    description="Fetch prices and compute indicators: one ticker, or a ticker range in one run.",
)

defs = dg.Definitions(
    assets=[raw_prices, market_index_prices],
    jobs=[ticker_data_job],
    sensors=[build_watchlist_sensor(ticker_data_job)],
)
