"""Back-test a ticker's production model: daily_forecast + forecast_performance over a date range
in ONE Dagster run (a single-run backfill), on the project's instance.

    python -m stock_assets backtest AAPL 2024-01-02 2024-12-31

The same as selecting the two assets, one ticker and a date range in the UI and launching a
backfill (both assets have `BackfillPolicy.single_run()`), or, with Dagster's CLI:

    dagster asset materialize -m stock_assets.definitions -a defs \\
        --select daily_forecast,forecast_performance --partition-range "2024-01-02...2024-12-31"

with the run tag `stock_assets/tickers=AAPL` (the UI's launch dialog takes tags), so only AAPL's
files are written.

A back-test evaluates no checks (they would judge today's model on past days and could trigger a
retrain); the per-date metrics are in forecast_performance.
"""

from __future__ import annotations

from datetime import date

from stock_assets.contract import DAILY_FORECAST, FORECAST_PERFORMANCE

BACKTEST_ASSETS = (DAILY_FORECAST, FORECAST_PERFORMANCE)
BACKTEST_TAG = "stock_assets/backtest"  # the back-tested ticker, on the run


def backtest_tags(ticker: str, start: str | date, end: str | date) -> dict[str, str]:
    """Run tags that make one run cover the dates `start..end` of one ticker."""
    from stock_assets.compat import partition_range_tags
    from stock_assets.partitions import tickers_tag
    from stock_assets.tickers import validate_ticker

    ticker = validate_ticker(ticker)
    first, last = date.fromisoformat(str(start)), date.fromisoformat(str(end))
    if first > last:
        raise ValueError(f"start {first} is after end {last}")
    return {
        **partition_range_tags(first.isoformat(), last.isoformat()),
        **tickers_tag([ticker]),
        BACKTEST_TAG: ticker,
    }
