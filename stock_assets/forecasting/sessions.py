"""Which session the headless daily cycle forecasts: the last one each ticker's source has.

`python -m stock_assets materialize` plans its steps before it ingests anything, so the date of
its "forecasts" stage is asked of the configured price source (cheaply: a CSV's last line, the
synthetic market's end, Yahoo's last completed session), not of the lake.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from stock_assets.market_calendar import last_completed_session, last_session_on_or_before


def last_source_session(source, ticker: str) -> date | None:
    """The last session `source` (a PriceSourceResource) has for `ticker`; None if unknown."""
    from stock_assets.tickers import csv_file_name

    today = last_completed_session()
    if source.kind == "csv":
        path = Path(source.csv_dir or "") / csv_file_name(ticker)
        if not path.is_file():
            return None
        last = pl.scan_csv(path, try_parse_dates=True).select(pl.col("date").max()).collect().item()
        if last is None:
            return None
        last = last if isinstance(last, date) else date.fromisoformat(str(last)[:10])
        return last_session_on_or_before(min(last, today))
    if source.kind == "synthetic" and source.synthetic_end:
        return last_session_on_or_before(min(date.fromisoformat(source.synthetic_end), today))
    return today


def latest_forecast_dates(tickers: Sequence[str], source=None) -> dict[str, date]:
    """Ticker -> the session its daily cycle runs for (only dates that are forecast partitions)."""
    from stock_assets.partitions import FORECAST_START_DATE
    from stock_assets.resources import price_source_from_env

    source = source or price_source_from_env()
    first = date.fromisoformat(FORECAST_START_DATE)
    dates = {}
    for ticker in tickers:
        day = last_source_session(source, ticker)
        if day is not None and day >= first:
            dates[ticker] = day
    return dates
