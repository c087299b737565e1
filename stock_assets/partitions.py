"""The partition definitions every per-ticker and per-day asset shares.

Defined once so that a ticker's backfill selects the same slice of every asset.
"""

from __future__ import annotations

import os

import dagster as dg

# Tickers are added at run time (watchlist sensor, the UI's "add partition", the CLI).
ticker_partitions = dg.DynamicPartitionsDefinition(name="ticker")

# Trading dates: one partition per weekday. Dagster knows no exchange calendar, so NYSE holidays
# are partitions too; the forecasting assets record "market closed" for them instead of a
# forecast. The start date is configurable to keep the date x ticker product well under Dagster's
# recommended 100k partitions per asset.
FORECAST_START_DATE = os.environ.get("STOCK_ASSETS_FORECAST_START", "2023-01-02")

trading_date_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5", start=FORECAST_START_DATE, fmt="%Y-%m-%d", end_offset=1
)

# Multi-partition keys order dimensions by name: "<date>|<ticker>".
date_ticker_partitions = dg.MultiPartitionsDefinition(
    {"date": trading_date_partitions, "ticker": ticker_partitions}
)
