"""Registers the watchlist's tickers as partitions, so adding a ticker needs no code change."""

import dagster as dg

from stock_assets.partitions import ticker_partitions
from stock_assets.settings import watchlist_path
from stock_assets.tickers import InvalidTickerError, load_watchlist


def new_watchlist_tickers(wanted: list[str], registered: set[str]) -> list[str]:
    """Tickers on the watchlist that are not partitions yet, in watchlist order."""
    return [ticker for ticker in wanted if ticker not in registered]

def build_watchlist_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        name="ticker_watchlist_sensor",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds tickers listed in watchlist.yaml as partitions and ingests them once.",
    )
    def ticker_watchlist_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        path = watchlist_path()
        try:
            wanted = load_watchlist(path)
        except InvalidTickerError as exc:
            return dg.SkipReason(f"{path}: {exc}")
        registered = set(context.instance.get_dynamic_partitions(ticker_partitions.name))
        new = new_watchlist_tickers(wanted, registered)
        if not new:
            return dg.SkipReason(f"All {len(wanted)} watchlist tickers are registered.")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(partition_key=t, run_key=f"register-{t}") for t in new],
            dynamic_partitions_requests=[ticker_partitions.build_add_request(new)],
        )

    return ticker_watchlist_sensor
