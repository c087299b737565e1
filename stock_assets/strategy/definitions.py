"""Strategy stage: the long/flat back-test of the forecasts (strategy_backtest, strategy_metrics)."""

import dagster as dg

from stock_assets.strategy.assets import strategy_backtest
from stock_assets.strategy.jobs import strategy_job

defs = dg.Definitions(assets=[strategy_backtest], jobs=[strategy_job])
