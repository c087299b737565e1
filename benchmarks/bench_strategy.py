"""Does trading on the forecasts make money after costs? The long/flat rule vs buy-and-hold per
ticker, at 0, 5 and 10 bp, from a materialized home's performance log.

Why a home: the rule is judged on the forecasts the pipeline really made and scored (the
`forecast_performance` lake files), with the same code the `strategy_backtest` asset runs
(`stock_assets.strategy.rules`). Out-of-sample forecasts only (in_sample rows are dropped, as the
asset does by default). Produce a log first, e.g. a walk-forward back-test per ticker:

    python -m stock_assets backtest AAPL 2023-01-03 2023-10-27 --refit-every 63
    python benchmarks/bench_strategy.py [--home PATH] [--tickers AAPL MSFT] [--rebalance daily]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from stock_assets.lake import LakeResource
from stock_assets.settings import project_home
from stock_assets.strategy.assets import performance_log
from stock_assets.strategy.rules import Rule, backtest
from stock_assets.tickers import load_watchlist

REPO = Path(__file__).resolve().parents[1]
MAIN_TICKERS = tuple(load_watchlist(REPO / "watchlist.yaml"))
COSTS_BPS = (0.0, 5.0, 10.0)
SHOWN = ("total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "win_rate",
         "profit_factor", "trades", "turnover", "exposure")  # fmt: skip


def ticker_rows(lake: LakeResource, ticker: str, horizon: int, rebalance: str) -> pl.DataFrame:
    """The metrics of strategy and buy-and-hold of one ticker at each cost."""
    log = performance_log(lake, ticker)
    if log.is_empty():
        return pl.DataFrame()
    if "in_sample" in log.columns:
        log = log.filter(~pl.col("in_sample").fill_null(False))
    tables = []
    for cost in COSTS_BPS:
        _, metrics = backtest(log, Rule(horizon, rebalance, cost, 0.5), ticker)
        tables.append(metrics.filter(pl.col("strategy") != "always_flat"))
    return pl.concat(tables) if tables else pl.DataFrame()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="default: $STOCK_ASSETS_HOME")
    parser.add_argument("--tickers", nargs="+", default=list(MAIN_TICKERS))
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--rebalance", choices=["daily", "horizon"], default="horizon")
    args = parser.parse_args()
    home = (args.home or project_home()).resolve()
    lake = LakeResource(base_dir=str(home / "lake"))
    tables, missing = [], []
    for ticker in args.tickers:
        rows = ticker_rows(lake, ticker, args.horizon, args.rebalance)
        (tables.append(rows) if rows.height else missing.append(ticker))
    if missing:
        print(f"no out-of-sample performance log under {home / 'lake'} for: {', '.join(missing)}")
    if not tables:
        print("nothing to back-test: materialize daily_forecast + forecast_performance first "
              "(see this file's docstring).")
        return 1
    table = pl.concat(tables)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=220, float_precision=3):
        print(table.select("ticker", "cost_bps", "strategy", "first_date", "last_date", "sessions",
                           *SHOWN))  # fmt: skip
    wide = table.pivot("strategy", index=["ticker", "cost_bps"], values="total_return")
    beats = wide.filter(pl.col("strategy") > pl.col("buy_and_hold"))
    for cost in COSTS_BPS:
        at = wide.filter(pl.col("cost_bps") == cost)
        won = beats.filter(pl.col("cost_bps") == cost).height
        print(f"{cost:g} bp: the strategy beats buy-and-hold's total return on {won} of "
              f"{at.height} tickers (median strategy {at['strategy'].median():+.3f}, "
              f"buy-and-hold {at['buy_and_hold'].median():+.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
