"""The partition definitions every per-ticker and per-day asset shares, and the ticker selection of
a run of the daily (panel) assets.

Defined once so that a ticker's backfill selects the same slice of every asset.

Why the daily assets are partitioned by date only (a panel), not date x ticker: at 500 tickers and
10 years of sessions a date x ticker product is ~1.3 million partitions per asset, an order of
magnitude past Dagster's guidance (~100k; the UI and SQLite fail well before). One partition per
trading date holds every ticker's rows for that date, so an asset stays at ~2,600 partitions per
10 years whatever the universe. Per-ticker work stays per-ticker underneath: the lake keeps one file
per (ticker, date), and a run computes only the tickers named by its `stock_assets/tickers` tag
(default: every registered ticker), so backfilling or adding ONE ticker writes only that ticker's
files and leaves every other ticker's files untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

# The tag and its builder and parser are the contract's; re-exported for the assets and the CLI.
from stock_assets.contract import TICKER_PARTITIONS, TICKERS_TAG, parse_tickers_tag, tickers_tag  # noqa: F401

# Tickers are added at run time (watchlist sensor, the UI's "add partition", the CLI).
ticker_partitions = dg.DynamicPartitionsDefinition(name=TICKER_PARTITIONS)

# Trading dates: one partition per weekday. Dagster knows no exchange calendar, so NYSE holidays
# are partitions too; the forecasting assets record "market closed" for them instead of a
# forecast.
# The first date partition is a constant, not a setting: it is part of the graph's identity, and a
# code server, a daemon and a run worker that read different values would disagree about which
# partitions exist. Changing it is a code change, reviewed like any change to the graph.
FORECAST_START_DATE = "2023-01-02"

trading_date_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5", start=FORECAST_START_DATE, fmt="%Y-%m-%d", end_offset=1
)

# Weekday partitions in 10 years: the size of every date-partitioned asset, whatever the universe.
WEEKDAYS_PER_10_YEARS = 2609


def run_tickers(context: dg.AssetExecutionContext) -> list[str]:
    """The tickers this panel run computes: its tag's, else every registered ticker (sorted).

    A tagged ticker that is not registered is an error (a typo would otherwise write a lake
    folder no asset partition knows).
    """
    registered = context.instance.get_dynamic_partitions(ticker_partitions.name)
    chosen = parse_tickers_tag(context.run.tags.get(TICKERS_TAG))
    if chosen is None:
        return sorted(registered)
    unknown = sorted(set(chosen) - set(registered))
    if unknown:
        raise dg.Failure(
            f"{TICKERS_TAG} names tickers that are not registered: {', '.join(unknown)} "
            "(add the ticker partition and materialize its data and model first).",
            allow_retries=False,
        )
    return chosen


def date_keys(keys: Sequence[str]) -> list[str]:
    """Sorted date partition keys (YYYY-MM-DD) of a run's partition keys."""
    return sorted(str(k) for k in keys)
