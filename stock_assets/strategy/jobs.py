"""The strategy stage's job: one ticker's trading back-test (the run command's last stage)."""

import dagster as dg

from stock_assets.partitions import ticker_partitions

strategy_job = dg.define_asset_job(
    "strategy_job",
    selection=dg.AssetSelection.assets("strategy_backtest", "strategy_metrics"),
    partitions_def=ticker_partitions,
    description="Back-test the long/flat rule on one ticker's matured forecasts, after costs.",
)
