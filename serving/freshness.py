"""How old the served data is, judged per table from the lake alone (shared by /health and /metrics).

The stalest ticker decides: one ticker whose forecasts stopped a week ago is a problem even when
the others are current. Ages are calendar days, so the threshold must cover a long weekend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date

from serving.lake_reader import (
    AGENT_REPORT,
    DAILY_FORECAST,
    FORECAST_PERFORMANCE,
    RAW_PRICES,
    LakeLookupError,
    LakeReader,
)

# Forecasts must exist for every ticker; performance and reports appear later in a ticker's life.
REQUIRED = (RAW_PRICES, DAILY_FORECAST)
OPTIONAL = (FORECAST_PERFORMANCE, AGENT_REPORT)


@dataclass
class TableFreshness:
    asset: str
    latest_by_ticker: dict[str, date] = field(default_factory=dict)
    missing_tickers: list[str] = field(default_factory=list)
    newest_write: float | None = None  # epoch seconds of the newest file

    @property
    def latest_date(self) -> date | None:
        return max(self.latest_by_ticker.values(), default=None)

    @property
    def oldest_date(self) -> date | None:
        return min(self.latest_by_ticker.values(), default=None)

    def age_days(self, today: date) -> int | None:
        oldest = self.oldest_date
        return None if oldest is None else (today - oldest).days

    def stale_tickers(self, today: date, stale_after_days: int) -> list[str]:
        return sorted(
            t for t, d in self.latest_by_ticker.items() if (today - d).days > stale_after_days
        )


def table_freshness(reader: LakeReader) -> list[TableFreshness]:
    tickers = reader.tickers()
    prices = TableFreshness(RAW_PRICES)
    for ticker in tickers:
        try:
            partition = reader.prices(ticker)
        except LakeLookupError:
            continue
        prices.latest_by_ticker[ticker] = reader.derive(
            ("last_date", partition.identity), lambda p=partition: p.frame["date"].max()
        )
        mtime = partition.signature[1] / 1e9
        prices.newest_write = max(prices.newest_write or mtime, mtime)
    tables = [prices]
    for asset in (DAILY_FORECAST, *OPTIONAL):
        table = TableFreshness(asset)
        for ticker in tickers:
            dates = reader.dates(asset, ticker)
            if dates:
                table.latest_by_ticker[ticker] = date.fromisoformat(dates[-1])
            else:
                table.missing_tickers.append(ticker)
        table.newest_write = reader.newest_file_mtime(asset, tickers)
        tables.append(table)
    return tables


def problems(tables: list[TableFreshness], today: date, stale_after_days: int) -> list[str]:
    """Sentences saying what is missing or late, empty when all is well."""
    found: list[str] = []
    for table in tables:
        if table.asset in REQUIRED and table.missing_tickers:
            found.append(f"{table.asset}: not materialized for {', '.join(table.missing_tickers)}")
        stale = table.stale_tickers(today, stale_after_days)
        if stale:
            found.append(
                f"{table.asset}: {', '.join(stale)} older than {stale_after_days} days "
                f"(oldest {table.oldest_date})"
            )
    return found


def write_age_seconds(table: TableFreshness, now: float | None = None) -> float | None:
    if table.newest_write is None:
        return None
    return max(0.0, (now if now is not None else time.time()) - table.newest_write)
