"""The ingestion stage's jobs: a ticker's (or a ticker range's) data slice, and the index's day.

Each job reaches one step into the features stage (the indicators of the prices it fetched), so a
run leaves prices and indicators consistent; Feast is republished by features' own job after.
"""

import dagster as dg

from stock_assets.contract import (
    MARKET_DATA_JOB,
    MARKET_INDEX_INDICATORS,
    MARKET_INDEX_PRICES,
    PRICE_INDICATORS,
    RAW_PRICES,
    TICKER_DATA_JOB,
)
from stock_assets.execution import INGESTION_RUN_TAGS
from stock_assets.partitions import ticker_partitions

# The per-ticker data slice: what a new ticker needs before models can use it. One partition, or a
# range of tickers in one run (the daily cycle ingests the universe that way).
ticker_data_job = dg.define_asset_job(
    TICKER_DATA_JOB,
    selection=dg.AssetSelection.assets(RAW_PRICES, PRICE_INDICATORS),
    partitions_def=ticker_partitions,
    tags=INGESTION_RUN_TAGS,
    description="Fetch prices and compute indicators: one ticker, or a ticker range in one run.",
)

# The index's day: prices, indicators and its drift check.
market_data_job = dg.define_asset_job(
    MARKET_DATA_JOB,
    selection=dg.AssetSelection.assets(MARKET_INDEX_PRICES, MARKET_INDEX_INDICATORS),
    tags=INGESTION_RUN_TAGS,
    description="Fetch ^GSPC, compute its indicators, check them for drift.",
)
