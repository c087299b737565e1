"""Back-test a ticker's production model: daily_forecast + forecast_performance over a date range
in ONE Dagster run (a single-run backfill), on the project's instance.

    python -m stock_assets backtest AAPL 2024-01-02 2024-12-31

The same as selecting the two assets, one ticker and a date range in the UI and launching a
backfill (both assets have `BackfillPolicy.single_run()`), or, with Dagster's CLI:

    dagster asset materialize -m stock_assets.definitions -a defs \\
        --select daily_forecast,forecast_performance --partition-range "2024-01-02|AAPL...2024-12-31|AAPL"

A back-test evaluates no checks (they would judge today's model on past days and could trigger a
retrain); the per-date metrics are in forecast_performance.
"""

from __future__ import annotations

from datetime import date

BACKTEST_ASSETS = ("daily_forecast", "forecast_performance")
BACKTEST_TAG = "stock_assets/backtest"  # the back-tested ticker, on the run


def backtest_tags(ticker: str, start: str | date, end: str | date) -> dict[str, str]:
    """Run tags that make one run cover `start..end` of one ticker (multi keys: "date|ticker")."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from stock_assets.tickers import validate_ticker

    ticker = validate_ticker(ticker)
    first, last = date.fromisoformat(str(start)), date.fromisoformat(str(end))
    if first > last:
        raise ValueError(f"start {first} is after end {last}")
    return {
        ASSET_PARTITION_RANGE_START_TAG: f"{first.isoformat()}|{ticker}",
        ASSET_PARTITION_RANGE_END_TAG: f"{last.isoformat()}|{ticker}",
        BACKTEST_TAG: ticker,
    }
