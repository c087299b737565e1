"""Strategy stage: the long/flat back-test of the forecasts (strategy_backtest, strategy_metrics)."""

import dagster as dg

from stock_assets.partitions import ticker_partitions
from stock_assets.strategy.assets import strategy_backtest

# One ticker's trading back-test over its whole performance log (the run command's last stage).
strategy_job = dg.define_asset_job(
    "strategy_job",
    selection=dg.AssetSelection.assets("strategy_backtest", "strategy_metrics"),
    partitions_def=ticker_partitions,
    description="Back-test the long/flat rule on one ticker's matured forecasts, after costs.",
)

defs = dg.Definitions(assets=[strategy_backtest], jobs=[strategy_job])
