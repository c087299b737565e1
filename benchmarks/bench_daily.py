"""Time the daily loop through Dagster: one day's cycle for every ticker, and a one-year back-test.

Why: the daily cycle (ingest the day -> forecast -> score -> checks) must finish for all 13 tickers
(12 stocks + ^GSPC) in under 60 s on 2 cores, and a user's one-year back-test of one ticker (a
single-run backfill of daily_forecast + forecast_performance) in under 60 s too.

Setup, not timed: a fresh home and SQLite instance, the synthetic market up to the day before,
tiny parent and child models, and a 30-session back-test per ticker so the performance log has a
rolling window. Timed, each through in-process Dagster runs on that instance, as the CLI does:

    1. ingest the day: ^GSPC (prices, indicators, drift check), every ticker in ONE run (a
       single-run backfill over the ticker partitions: prices, indicators, quality rules), then
       the Feast publish;
    2. ONE daily job run for every ticker (daily_forecast + feature_drift, forecast_performance +
       forecast_mape + interval_coverage), as the schedule launches it;
    3. one ticker's daily_forecast + forecast_performance over a year, in one run.

    python benchmarks/bench_daily.py [--day 2024-06-28] [--tickers AAPL MSFT ...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_SECONDS = 60.0
SYNTHETIC_START = "2019-01-02"


def timed(action, *args, **kwargs) -> float:
    """Seconds one harness call took (it raises, naming the failed steps, if the run failed)."""
    began = time.perf_counter()
    action(*args, **kwargs)
    return time.perf_counter() - began


def ingest(loop, tickers: list[str], end: date) -> dict[str, float]:
    """The ingestion sensor's runs for one day, each timed: ^GSPC, every ticker in ONE run, Feast."""
    return {
        "^GSPC prices + indicators + drift check": timed(
            loop.materialize, ["market_index_prices", "market_index_indicators"], end=end
        ),
        f"{len(tickers)} tickers' prices + indicators (one run)": timed(
            loop.materialize, ["raw_prices", "price_indicators"], end=end,
            tags=loop.range_tags(tickers),
        ),
        "Feast publish": timed(loop.materialize, ["feast_features"], end=end),
    }


def main() -> int:
    from stock_assets.ingestion.synthetic import DEFAULT_UNIVERSE

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--day", default="2024-06-28", help="the session of the timed daily cycle")
    parser.add_argument(
        "--tickers", nargs="*", default=[t for t in DEFAULT_UNIVERSE if t != "GSPC"]
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from stock_assets.market_calendar import (
        is_session,
        last_session_on_or_before,
        trading_sessions,
    )

    day = date.fromisoformat(args.day)
    if not is_session(day):
        raise SystemExit(f"{day} is not an NYSE session")
    previous = last_session_on_or_before(day - timedelta(days=1))
    tickers = list(args.tickers)
    root = Path(tempfile.mkdtemp(prefix="bench_daily_"))
    from stock_assets.testing import loop_home

    try:
        with loop_home(
            root, SYNTHETIC_START, instance_yaml=REPO / "dagster.yaml",
            STOCK_ASSETS_SYNTHETIC_END=previous.isoformat(),
        ) as loop:
            print(
                f"bench_daily: {len(tickers)} tickers + ^GSPC, synthetic market "
                f"{SYNTHETIC_START}..{day}, home {loop.home}"
            )
            began = time.perf_counter()
            loop.ingest(tickers, previous, one_run=True)
            loop.train(tickers)
            window = trading_sessions(previous - timedelta(days=45), previous).to_list()[-30:]
            for ticker in tickers:
                loop.backtest(ticker, window[0], previous, checks=False)
            print(
                f"setup (data up to {previous}, tiny models, 30-session back-tests): "
                f"{time.perf_counter() - began:.1f}s, not timed"
            )
            return timed_cycle(loop, day, tickers)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def timed_cycle(loop, day: date, tickers: list[str]) -> int:
    """The timed part: one day's cycle for every ticker, then one ticker's one-year back-test."""
    # 1 + 2: the daily cycle for `day`.
    spent = ingest(loop, tickers, day)
    forecast = timed(loop.daily, day)
    cycle = sum(spent.values()) + forecast
    print(f"\ndaily cycle for {day}, {len(tickers)} tickers + ^GSPC, through Dagster:")
    for label, seconds in spent.items():
        print(f"  {label:<52} {seconds:6.1f}s")
    print(f"  {'one daily_job run (forecast, score, 3 checks)':<52} {forecast:6.1f}s")
    print(
        f"  {'total':<52} {cycle:6.1f}s  (target < {TARGET_SECONDS:.0f}s: "
        f"{'met' if cycle < TARGET_SECONDS else 'MISSED'})"
    )

    # 3: a one-year back-test of one ticker in one run.
    ticker = tickers[0]
    start = day - timedelta(days=365)
    seconds = timed(loop.backtest, ticker, start, day, checks=False)
    weekdays = sum(
        1 for i in range((day - start).days + 1) if (start + timedelta(days=i)).weekday() < 5
    )
    print(
        f"\none-year back-test of {ticker} ({start}..{day}, {weekdays} date partitions x 2 assets, "
        f"one run): {seconds:.1f}s  (target < {TARGET_SECONDS:.0f}s: "
        f"{'met' if seconds < TARGET_SECONDS else 'MISSED'})"
    )
    print(f"runs on the instance: {loop.instance.get_runs_count()}")
    return 0 if cycle < TARGET_SECONDS and seconds < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
