"""Entry points that test_concurrency.py runs in separate processes (a module, not a test file,
so that worker processes and Dagster's step processes can import it by name)."""

from __future__ import annotations

import os

import dagster as dg

from stock_assets.features.assets import price_indicators
from stock_assets.ingestion.assets import raw_prices
from stock_assets.ingestion.definitions import ticker_data_job as _ticker_data_job
from stock_assets.ingestion.sources import PriceSourceResource

SYNTHETIC_START = "2023-01-03"
SYNTHETIC_END = "2024-06-28"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
STEP_EVENTS = {"STEP_START", "STEP_SUCCESS", "ASSET_MATERIALIZATION"}


def _source() -> PriceSourceResource:
    return PriceSourceResource(
        kind="synthetic", synthetic_start=SYNTHETIC_START, synthetic_end=SYNTHETIC_END
    )


def _resources() -> dict:
    from stock_assets.resources import build_resources

    return build_resources(os.environ["STOCK_ASSETS_HOME"], price_source=_source())


def _point_at(home: str, dagster_home: str) -> None:
    os.environ["STOCK_ASSETS_HOME"] = home
    os.environ["DAGSTER_HOME"] = dagster_home


def materialize_in_own_process(home: str, dagster_home: str, ticker: str) -> tuple[str, bool, int]:
    """One run of raw_prices + price_indicators for one partition, like one run of a backfill."""
    _point_at(home, dagster_home)
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        result = dg.materialize(
            [raw_prices, price_indicators],
            selection=dg.AssetSelection.assets("raw_prices", "price_indicators"),
            partition_key=ticker,
            resources=_resources(),
            instance=instance,
            run_config=QUIET,
            raise_on_error=False,
        )
    return ticker, result.success, os.getpid()


def ticker_data_job() -> dg.JobDefinition:
    """ticker_data_job over the real assets with the multiprocess executor (steps in child
    processes, forked from a server that has already imported the assets)."""
    executor = dg.multiprocess_executor.configured(
        {
            "max_concurrent": 2,
            "start_method": {"forkserver": {"preload_modules": [__name__]}},
        }
    )
    defs = dg.Definitions(
        assets=[raw_prices, price_indicators],
        jobs=[_ticker_data_job],
        resources=_resources(),
        executor=executor,
    )
    return defs.resolve_job_def("ticker_data_job")


def execute_with_multiprocess_executor(
    home: str, dagster_home: str, tickers: list[str]
) -> list[tuple[str, bool, int, set[int]]]:
    """Run ticker_data_job for each partition: (ticker, success, run pid, step pids)."""
    _point_at(home, dagster_home)
    outcomes = []
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        job = dg.reconstructable(ticker_data_job)
        for ticker in tickers:
            with dg.execute_job(
                job, instance=instance, tags={"dagster/partition": ticker}, run_config=QUIET
            ) as result:
                step_pids = {
                    event.pid
                    for event in result.all_events
                    if event.step_key and event.event_type_value in STEP_EVENTS
                }
                outcomes.append((ticker, result.success, os.getpid(), step_pids))
    return outcomes
