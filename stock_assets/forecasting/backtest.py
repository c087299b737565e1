"""Back-test a ticker's production model: daily_forecast + forecast_performance over a date range
in ONE Dagster run (a single-run backfill), on the project's instance.

    python -m stock_assets.forecasting.backtest AAPL 2024-01-02 2024-12-31

The same as selecting the two assets, one ticker and a date range in the UI and launching a
backfill (both assets have `BackfillPolicy.single_run()`), or, with Dagster's CLI:

    dagster asset materialize -m stock_assets.definitions -a defs \\
        --select daily_forecast,forecast_performance --partition-range "2024-01-02|AAPL...2024-12-31|AAPL"

A back-test evaluates no checks (they would judge today's model on past days and could trigger a
retrain); the per-date metrics are in forecast_performance.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import date

BACKTEST_ASSETS = ("daily_forecast", "forecast_performance")


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
        "stock_assets/backtest": ticker,
    }


def run_backtest(ticker: str, start: str, end: str) -> int:
    import dagster as dg

    from stock_assets.definitions import defs
    from stock_assets.partitions import ticker_partitions
    from stock_assets.tickers import validate_ticker

    tags = backtest_tags(ticker, start, end)  # validates the ticker and the dates first
    ticker = validate_ticker(ticker)
    instance = dg.DagsterInstance.get()
    if ticker not in instance.get_dynamic_partitions(ticker_partitions.name):
        # Registering it here would leave a partition with no data behind a typo ("APPL").
        raise ValueError(
            f"ticker {ticker} is not registered on this instance; materialize its data and model "
            f"first (python -m stock_assets materialize --tickers {ticker})"
        )
    began = time.perf_counter()
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(*BACKTEST_ASSETS).without_checks(),
        resources=defs.resources,
        instance=instance,
        tags=tags,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
    )
    seconds = time.perf_counter() - began
    print(
        f"back-test {ticker} {start}..{end}: {'ok' if result.success else 'FAILED'} in {seconds:.1f}s "
        f"(run {result.run_id})"
    )
    return 0 if result.success else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stock_assets.forecasting.backtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("ticker")
    parser.add_argument("start", help="first date, YYYY-MM-DD")
    parser.add_argument("end", help="last date, YYYY-MM-DD")
    args = parser.parse_args(argv)
    from stock_assets.cli import prepare_environment

    prepare_environment(argparse.Namespace(home=None, source=None, csv_dir=None))
    return run_backtest(args.ticker, args.start, args.end)


if __name__ == "__main__":
    sys.exit(main())
