"""Where daily prices come from: Yahoo (the real default), a CSV folder, or a synthetic market.

One interface, three implementations, chosen by the `price_source` resource's config. Every source
returns the same validated frame, and an unreachable source or an empty answer is an error: an
empty success would silently stop a ticker's forecasts.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Literal, Protocol

import dagster as dg
import polars as pl
from pydantic import Field

from stock_assets.contract import PRICE_COLUMNS, PRICE_SCHEMA
from stock_assets.ingestion.corrections import drop_identical_duplicates
from stock_assets.ingestion.errors import PriceSourceError, UnknownTickerError
from stock_assets.tickers import csv_file_name, to_symbol, validate_ticker


class PriceSource(Protocol):
    """Daily OHLCV for one ticker (partition key) between two dates, both inclusive."""

    name: str

    def fetch(self, ticker: str, start: date, end: date | None) -> pl.DataFrame: ...


def normalize_prices(frame: pl.DataFrame, ticker: str, origin: str) -> pl.DataFrame:
    """Coerce a source's answer to PRICE_SCHEMA, sorted by date, one row per date.

    Rows with a missing close are dropped (Yahoo sends such rows for days it has no trade), and
    so are repeated identical rows; a date with conflicting rows, or anything else malformed,
    raises, naming the source (and the dates).
    """
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
    if missing:
        raise PriceSourceError(f"{origin}: missing columns {missing} (got {frame.columns}).")
    # Polars 2 no longer casts text to Date: ISO text (a CSV column that did not auto-parse) is
    # parsed explicitly, so a bad date is reported as unparseable rather than as a dtype error.
    day = (
        pl.col("date").str.to_date("%Y-%m-%d")
        if frame.schema["date"] == pl.String
        else pl.col("date").cast(pl.Date)
    )
    try:
        typed = frame.select(
            day,
            *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "adj_close")],
            pl.col("volume").cast(pl.Float64).round(0).cast(pl.Int64),
        )
    except pl.exceptions.PolarsError as exc:
        raise PriceSourceError(f"{origin}: unparseable values: {exc}") from exc
    typed = drop_identical_duplicates(
        typed.filter(pl.col("close").is_not_null() & pl.col("close").is_not_nan()), origin
    )
    typed = typed.sort("date").with_columns(pl.lit(ticker).alias("ticker"))
    return typed.select(PRICE_SCHEMA.keys())


class CsvPriceSource:
    """A folder of `<KEY>.csv` files in the layout of ../shared/data/prices."""

    name = "csv"

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def fetch(self, ticker: str, start: date, end: date | None) -> pl.DataFrame:
        if not self.folder.is_dir():
            raise PriceSourceError(f"csv: price folder {self.folder} does not exist.")
        path = self.folder / csv_file_name(ticker)
        if not path.is_file():
            raise UnknownTickerError(f"csv: no file {path.name} for ticker {ticker} in {self.folder}.")
        try:
            frame = pl.read_csv(path, try_parse_dates=True)
        except Exception as exc:
            raise PriceSourceError(f"csv: cannot parse {path}: {exc}") from exc
        if frame.is_empty():
            raise PriceSourceError(f"csv: {path} has no rows.")
        prices = normalize_prices(frame, ticker, f"csv:{path.name}")
        return _between(prices, start, end)


class SyntheticPriceSource:
    """A deterministic seeded market (see synthetic.py): runs with no internet and no data."""

    name = "synthetic"

    def __init__(self, market) -> None:
        self.market = market

    def fetch(self, ticker: str, start: date, end: date | None) -> pl.DataFrame:
        if start > self.market.end:  # a finite market, like a CSV file: nothing new is not an error
            self.market.prices(ticker, end=self.market.end)  # still rejects unknown tickers
            return pl.DataFrame(schema=PRICE_SCHEMA)
        prices = self.market.prices(ticker, start=start, end=end)
        return normalize_prices(prices, ticker, "synthetic")


class YFinancePriceSource:
    """Yahoo Finance through yfinance: the real default, fetched incrementally by the asset."""

    name = "yfinance"

    def __init__(self, download=None) -> None:
        # `download` is injectable so tests can stand in for Yahoo's servers (which cannot be
        # reached from CI); production uses yfinance.download.
        self._download = download

    def fetch(self, ticker: str, start: date, end: date | None) -> pl.DataFrame:
        import pandas as pd

        download = self._download
        if download is None:
            import yfinance

            download = yfinance.download
        symbol = to_symbol(ticker)
        try:
            answer = download(
                symbol,
                start=start.isoformat(),
                end=(end + timedelta(days=1)).isoformat() if end else None,
                auto_adjust=False,
                actions=False,
                progress=False,
                multi_level_index=False,
                threads=False,
            )
        except Exception as exc:
            raise PriceSourceError(f"yfinance: request for {symbol} failed: {exc}") from exc
        if answer is None or len(answer) == 0:
            raise PriceSourceError(
                f"yfinance: empty answer for {symbol} from {start} (Yahoo unreachable, unknown "
                "symbol, or no trading since); nothing was written."
            )
        if isinstance(answer.columns, pd.MultiIndex):
            answer.columns = answer.columns.get_level_values(0)
        renamed = answer.reset_index().rename(
            columns={
                "Date": "date",
                "Open": "open",
                "High": "high",
                "Low": "low",
                "Close": "close",
                "Adj Close": "adj_close",
                "Volume": "volume",
            }
        )
        if "adj_close" not in renamed.columns and "close" in renamed.columns:
            renamed["adj_close"] = renamed["close"]
        frame = pl.from_pandas(renamed[[c for c in PRICE_COLUMNS if c in renamed.columns]])
        return _between(normalize_prices(frame, ticker, f"yfinance:{symbol}"), start, end)


def _between(prices: pl.DataFrame, start: date, end: date | None) -> pl.DataFrame:
    mask = pl.col("date") >= start
    if end is not None:
        mask &= pl.col("date") <= end
    return prices.filter(mask)


class ShockConfig(dg.Config):
    """A regime shock injected into the synthetic market (tests, demos of the retraining loop)."""

    ticker: str
    date: str
    price_jump: float = -0.25
    vol_multiplier: float = 3.0
    drift_shift: float = 0.0


class PriceSourceResource(dg.ConfigurableResource):
    """Chooses and configures the price source; assets only see `fetch`."""

    kind: Literal["yfinance", "csv", "synthetic"] = "yfinance"
    csv_dir: str | None = Field(default=None, description="Folder of <TICKER>.csv files.")
    history_start: str = Field(
        default="2004-01-02", description="First date fetched for a ticker with no stored prices."
    )
    synthetic_seed: int = 7
    synthetic_start: str = "2015-01-02"
    synthetic_end: str | None = Field(
        default=None, description="Last synthetic date (default: the last NYSE session)."
    )
    synthetic_shocks: list[ShockConfig] = Field(default_factory=list)
    refetch_days: int = Field(
        default=0,
        ge=0,
        description="Re-read the last N stored days on every incremental fetch (corrections).",
    )
    synthetic_universe: int | None = Field(
        default=None,
        description="Generated universe size (the 12 named stocks, then TEC001, HLT001, ...); "
        "default: the 12 named stocks.",
    )

    def get_source(self) -> PriceSource:
        if self.kind == "csv":
            if not self.csv_dir:
                raise PriceSourceError("price_source kind 'csv' needs csv_dir.")
            return CsvPriceSource(Path(self.csv_dir))
        if self.kind == "synthetic":
            from stock_assets.ingestion.synthetic import (
                DEFAULT_UNIVERSE,
                Shock,
                SyntheticMarket,
                synthetic_universe,
            )

            universe = (
                ("GSPC", *synthetic_universe(self.synthetic_universe))
                if self.synthetic_universe
                else DEFAULT_UNIVERSE
            )
            market = SyntheticMarket(
                seed=self.synthetic_seed,
                universe=universe,
                start=date.fromisoformat(self.synthetic_start),
                end=date.fromisoformat(self.synthetic_end) if self.synthetic_end else None,
                shocks=[
                    Shock(
                        ticker=validate_ticker(s.ticker),
                        date=date.fromisoformat(s.date),
                        price_jump=s.price_jump,
                        vol_multiplier=s.vol_multiplier,
                        drift_shift=s.drift_shift,
                    )
                    for s in self.synthetic_shocks
                ],
            )
            return SyntheticPriceSource(market)
        return YFinancePriceSource()

    @property
    def first_date(self) -> date:
        return date.fromisoformat(self.history_start)


def merge_incremental(stored: pl.DataFrame | None, fetched: pl.DataFrame) -> pl.DataFrame:
    """Stored rows plus newly fetched ones: one row per date, the newest answer wins."""
    if stored is None or stored.is_empty():
        return fetched.sort("date")
    return (
        pl.concat([stored.select(fetched.columns), fetched], how="vertical_relaxed")
        .unique(subset="date", keep="last", maintain_order=True)
        .sort("date")
    )
