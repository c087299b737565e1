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
import os
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
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
TINY_MODEL = {
    "epochs": 2,
    "hidden_size": 8,
    "num_layers": 1,
    "batch_size": 64,
    "seed": 7,
    "use_tuned_params": False,
    "naive_tolerance": 10.0,
    "interval_tolerance": 10.0,
}


class Loop:
    """The code location's assets and jobs on one home, with the synthetic market's last day."""

    def __init__(self, home: Path):
        import dagster as dg

        from stock_assets.definitions import defs

        self.home = home
        self.defs = defs
        self.assets = [*defs.assets, *defs.asset_checks]
        self.instance = dg.DagsterInstance.get()

    def resources(self, end: date) -> dict:
        from stock_assets.ingestion.sources import PriceSourceResource
        from stock_assets.resources import build_resources

        source = PriceSourceResource(
            kind="synthetic", synthetic_start=SYNTHETIC_START, synthetic_end=end.isoformat()
        )
        return build_resources(self.home, price_source=source)

    def materialize(
        self, selection, end: date, partition_key=None, ops=None, tags=None, checks=True
    ):
        import dagster as dg

        chosen = dg.AssetSelection.assets(*selection)
        result = dg.materialize(
            self.assets,
            selection=chosen if checks else chosen.without_checks(),
            partition_key=partition_key,
            resources=self.resources(end),
            instance=self.instance,
            run_config={**QUIET, "ops": {k: {"config": v} for k, v in (ops or {}).items()}},
            tags=tags,
            raise_on_error=False,
        )
        if not result.success:
            raise SystemExit(f"bench_daily: {selection} {partition_key or ''} failed")
        return result

    def ingest(self, tickers: list[str], end: date) -> dict[str, float]:
        spent = {}
        began = time.perf_counter()
        self.materialize(["market_index_prices", "market_index_indicators"], end)
        spent["^GSPC prices + indicators + drift check"] = time.perf_counter() - began
        from stock_assets.compat import partition_range_tags

        began = time.perf_counter()
        order = self.instance.get_dynamic_partitions("ticker")
        self.materialize(["raw_prices", "price_indicators"], end,
                         tags=partition_range_tags(order[0], order[-1]))
        spent[f"{len(tickers)} tickers' prices + indicators (one run)"] = time.perf_counter() - began
        began = time.perf_counter()
        self.materialize(["feast_features"], end)
        spent["Feast publish"] = time.perf_counter() - began
        return spent

    def daily(self, day: date, tickers: list[str]) -> float:
        job = self.defs.resolve_job_def("daily_job")
        began = time.perf_counter()
        result = job.execute_in_process(
            partition_key=day.isoformat(), instance=self.instance, run_config=QUIET,
            raise_on_error=False,
        )
        if not result.success:
            raise SystemExit(f"bench_daily: daily_job {day} failed")
        return time.perf_counter() - began

    def backtest(self, ticker: str, start: date, end: date, last_day: date) -> float:
        from stock_assets.forecasting.backtest import BACKTEST_ASSETS, backtest_tags

        began = time.perf_counter()
        self.materialize(
            BACKTEST_ASSETS, last_day, tags=backtest_tags(ticker, start, end), checks=False
        )
        return time.perf_counter() - began


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

    from stock_assets.calendar import (
        is_session,
        last_session_on_or_before,
        trading_sessions,
    )

    day = date.fromisoformat(args.day)
    if not is_session(day):
        raise SystemExit(f"{day} is not an NYSE session")
    previous = last_session_on_or_before(day - timedelta(days=1))
    tickers = list(args.tickers)
    home = Path(tempfile.mkdtemp(prefix="bench_daily_"))
    (home / "dagster_home").mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster_home" / "dagster.yaml")
    os.environ.update(
        STOCK_ASSETS_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster_home"),
        STOCK_ASSETS_PRICE_SOURCE="synthetic",
        STOCK_ASSETS_SYNTHETIC_END=previous.isoformat(),
    )
    for name in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE", "STOCK_ASSETS_ENV"):
        os.environ.pop(name, None)
    try:
        from stock_assets.partitions import ticker_partitions

        loop = Loop(home)
        loop.instance.add_dynamic_partitions(ticker_partitions.name, tickers)
        print(
            f"bench_daily: {len(tickers)} tickers + ^GSPC, synthetic market {SYNTHETIC_START}..{day}, home {home}"
        )
        began = time.perf_counter()
        loop.ingest(tickers, previous)
        loop.materialize(
            ["market_index_sequences", "parent_model"], previous, ops={"parent_model": TINY_MODEL}
        )
        for ticker in tickers:
            loop.materialize(
                ["training_sequences", "child_model"],
                previous,
                ticker,
                ops={"child_model": TINY_MODEL},
            )
        window = trading_sessions(previous - timedelta(days=45), previous).to_list()[-30:]
        for ticker in tickers:
            loop.backtest(ticker, window[0], previous, previous)
        print(
            f"setup (data up to {previous}, tiny models, 30-session back-tests): "
            f"{time.perf_counter() - began:.1f}s, not timed"
        )

        # 1 + 2: the daily cycle for `day`.
        ingest = loop.ingest(tickers, day)
        forecast = loop.daily(day, tickers)
        cycle = sum(ingest.values()) + forecast
        print(f"\ndaily cycle for {day}, {len(tickers)} tickers + ^GSPC, through Dagster:")
        for label, seconds in ingest.items():
            print(f"  {label:<52} {seconds:6.1f}s")
        print(
            f"  {f'{len(tickers)} daily_job runs (forecast, score, 2 checks)':<52} {forecast:6.1f}s"
        )
        print(
            f"  {'total':<52} {cycle:6.1f}s  (target < {TARGET_SECONDS:.0f}s: "
            f"{'met' if cycle < TARGET_SECONDS else 'MISSED'})"
        )

        # 3: a one-year back-test of one ticker in one run.
        ticker = tickers[0]
        start = day - timedelta(days=365)
        seconds = loop.backtest(ticker, start, day, day)
        runs = loop.instance.get_runs_count()
        weekdays = sum(
            1 for i in range((day - start).days + 1) if (start + timedelta(days=i)).weekday() < 5
        )
        print(
            f"\none-year back-test of {ticker} ({start}..{day}, {weekdays} date partitions x 2 assets, "
            f"one run): {seconds:.1f}s  (target < {TARGET_SECONDS:.0f}s: "
            f"{'met' if seconds < TARGET_SECONDS else 'MISSED'})"
        )
        print(f"runs on the instance: {runs}")
        return 0 if cycle < TARGET_SECONDS and seconds < TARGET_SECONDS else 1
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
