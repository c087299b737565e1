"""The strategy stage's job: one ticker's trading back-test (the run command's last stage)."""

import dagster as dg

from stock_assets.contract import STRATEGY_BACKTEST, STRATEGY_JOB, STRATEGY_METRICS
from stock_assets.partitions import ticker_partitions

strategy_job = dg.define_asset_job(
    STRATEGY_JOB,
    selection=dg.AssetSelection.assets(STRATEGY_BACKTEST, STRATEGY_METRICS),
    partitions_def=ticker_partitions,
    description="Back-test the long/flat rule on one ticker's matured forecasts, after costs.",
)
