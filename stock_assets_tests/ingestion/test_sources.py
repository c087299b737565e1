"""Price sources: every source returns the same validated frame, and every way of failing
(unknown ticker, empty or corrupt answer, unreachable vendor) is a PriceSourceError that says
what and where."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from stock_assets.ingestion.errors import PriceSourceError, UnknownTickerError
from stock_assets.ingestion.sources import (
    PRICE_SCHEMA,
    CsvPriceSource,
    PriceSourceResource,
    ShockConfig,
    SyntheticPriceSource,
    YFinancePriceSource,
    merge_incremental,
    normalize_prices,
)
from stock_assets.tickers import InvalidTickerError

HEADER = "date,open,high,low,close,adj_close,volume\n"


def _csv(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


# --- CSV --------------------------------------------------------------------------------------


def test_csv_reads_a_range_in_the_price_schema(csv_prices_dir: Path) -> None:
    prices = CsvPriceSource(csv_prices_dir).fetch("AAPL", date(2023, 3, 1), date(2023, 3, 31))
    assert dict(prices.schema) == PRICE_SCHEMA
    assert prices.height == 23  # NYSE sessions in March 2023
    assert prices["date"].min() == date(2023, 3, 1) and prices["date"].max() == date(2023, 3, 31)
    assert prices["date"].is_sorted() and prices["date"].n_unique() == prices.height
    assert prices["ticker"].unique().to_list() == ["AAPL"]


def test_csv_reads_the_index_from_gspc_csv(csv_prices_dir: Path) -> None:
    prices = CsvPriceSource(csv_prices_dir).fetch("GSPC", date(2023, 10, 1), None)
    assert date(2023, 10, 27) <= prices["date"].max() <= date(2023, 12, 31)
    assert prices["ticker"].unique().to_list() == ["GSPC"]
    assert prices["close"].min() > 3000  # ^GSPC's level, not a stock's


def test_csv_unknown_ticker(csv_prices_dir: Path) -> None:
    with pytest.raises(UnknownTickerError, match=r"csv: no file ZZZZ\.csv for ticker ZZZZ in "):
        CsvPriceSource(csv_prices_dir).fetch("ZZZZ", date(2023, 1, 3), None)


def test_csv_invalid_ticker_never_reaches_the_file_system(csv_prices_dir: Path) -> None:
    with pytest.raises(InvalidTickerError, match="'../etc'"):
        CsvPriceSource(csv_prices_dir).fetch("../etc", date(2023, 1, 3), None)


def test_csv_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(PriceSourceError, match=r"csv: price folder .*absent does not exist"):
        CsvPriceSource(tmp_path / "absent").fetch("AAPL", date(2023, 1, 3), None)


def test_csv_header_only_file_has_no_rows(tmp_path: Path) -> None:
    _csv(tmp_path, "AAPL.csv", HEADER)
    with pytest.raises(PriceSourceError, match=r"csv: .*AAPL\.csv has no rows"):
        CsvPriceSource(tmp_path).fetch("AAPL", date(2023, 1, 3), None)


def test_csv_zero_byte_file_cannot_be_parsed(tmp_path: Path) -> None:
    _csv(tmp_path, "AAPL.csv", "")
    with pytest.raises(PriceSourceError, match=r"csv: cannot parse .*AAPL\.csv"):
        CsvPriceSource(tmp_path).fetch("AAPL", date(2023, 1, 3), None)


def test_csv_unparseable_date(tmp_path: Path) -> None:
    _csv(
        tmp_path,
        "AAPL.csv",
        HEADER + "2023-01-03,1.0,2.0,0.5,1.5,1.5,100\n2023-13-45,1,2,1,1,1,9\n",
    )
    with pytest.raises(PriceSourceError, match=r"csv:AAPL\.csv: unparseable values"):
        CsvPriceSource(tmp_path).fetch("AAPL", date(2023, 1, 3), None)


def test_csv_corrupt_values(tmp_path: Path) -> None:
    _csv(
        tmp_path,
        "AAPL.csv",
        HEADER + "2023-01-03,1.0,2.0,0.5,1.5,1.5,100\n2023-01-04,abc,2,1,1,1,9\n",
    )
    with pytest.raises(PriceSourceError, match=r"csv:AAPL\.csv: unparseable values"):
        CsvPriceSource(tmp_path).fetch("AAPL", date(2023, 1, 3), None)


def test_csv_binary_garbage(tmp_path: Path) -> None:
    (tmp_path / "AAPL.csv").write_bytes(b"\x00\x01\x02 not a price file \xff\n\x00")
    with pytest.raises(PriceSourceError, match=r"^csv:"):
        CsvPriceSource(tmp_path).fetch("AAPL", date(2023, 1, 3), None)


def test_csv_missing_column(tmp_path: Path) -> None:
    _csv(tmp_path, "AAPL.csv", "date,open,high,low,close,adj_close\n2023-01-03,1,2,0.5,1.5,1.5\n")
    with pytest.raises(PriceSourceError, match=r"csv:AAPL\.csv: missing columns \['volume'\]"):
        CsvPriceSource(tmp_path).fetch("AAPL", date(2023, 1, 3), None)


def test_normalize_drops_rows_without_close_and_identical_duplicates() -> None:
    raw = pl.DataFrame(
        {
            "date": ["2023-01-04", "2023-01-03", "2023-01-05", "2023-01-04"],
            "open": [1.0, 1.0, 1.0, 1.0],
            "high": [2.0, 2.0, 2.0, 2.0],
            "low": [0.5, 0.5, 0.5, 0.5],
            "close": [1.4, 1.2, None, 1.4],
            "adj_close": [1.4, 1.2, None, 1.4],
            "volume": [40.0, 20.6, 30.0, 40.0],
        }
    )
    prices = normalize_prices(raw, "AAPL", "test")
    assert prices["date"].to_list() == [date(2023, 1, 3), date(2023, 1, 4)]
    assert prices["close"].to_list() == [1.2, 1.4]
    assert prices["volume"].to_list() == [21, 40]


def test_normalize_rejects_a_date_with_conflicting_rows() -> None:
    # Before issue #15 the last row silently won (a close of 999 replaced 1.4).
    raw = pl.DataFrame(
        {
            "date": ["2023-01-04", "2023-01-03", "2023-01-04", "2023-01-05", "2023-01-05"],
            "open": [1.0] * 5, "high": [2.0, 2.0, 1000.0, 2.0, 2.0], "low": [0.5] * 5,
            "close": [1.4, 1.2, 999.0, 1.5, 1.5], "adj_close": [1.4, 1.2, 1.4, 1.5, 1.5],
            "volume": [40.0, 20.0, 40.0, 10.0, 11.0],
        }
    )  # fmt: skip
    with pytest.raises(PriceSourceError) as raised:
        normalize_prices(raw, "AAPL", "csv:AAPL.csv")
    assert str(raised.value) == (
        "csv:AAPL.csv: 2 dates with conflicting rows: 2023-01-04 (high 2.0 vs 1000.0, close 1.4 "
        "vs 999.0); 2023-01-05 (volume 10 vs 11); nothing was written (fix the source: which bar "
        "is true cannot be guessed)."
    )


def test_merge_incremental_one_row_per_date_newest_wins() -> None:
    def frame(days: list[int], close: float) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "date": [date(2024, 1, d) for d in days],
                **{c: [close] * len(days) for c in ("open", "high", "low", "close", "adj_close")},
                "volume": [1] * len(days),
                "ticker": ["AAPL"] * len(days),
            },
            schema=PRICE_SCHEMA,
        )

    merged = merge_incremental(frame([2, 3, 4], 1.0), frame([4, 5], 2.0))
    assert merged["date"].to_list() == [date(2024, 1, d) for d in (2, 3, 4, 5)]
    assert merged["close"].to_list() == [1.0, 1.0, 2.0, 2.0]
    assert merge_incremental(None, frame([3, 2], 1.0))["date"].is_sorted()


# --- yfinance (never the network) -------------------------------------------------------------


class FakeYahooDownload:
    """Stands in for yfinance.download: records each call, answers like Yahoo (or empty)."""

    def __init__(self, answer: pd.DataFrame | None = None, error: Exception | None = None):
        self.answer = answer
        self.error = error
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, symbol: str, **kwargs) -> pd.DataFrame | None:
        self.calls.append((symbol, kwargs))
        if self.error is not None:
            raise self.error
        return self.answer


def yahoo_frame(start: str, days: int, multi_index: bool = False, adj: bool = True) -> pd.DataFrame:
    """A frame shaped like yf.download's: DatetimeIndex named Date, capitalised columns."""
    index = pd.bdate_range(start, periods=days, name="Date")
    close = 100 + np.arange(days, dtype=float)
    columns = {
        "Open": close - 0.5,
        "High": close + 1.0,
        "Low": close - 1.0,
        "Close": close,
        "Volume": np.full(days, 1_000_000, dtype=np.int64),
    }
    if adj:
        columns["Adj Close"] = close * 0.98
    frame = pd.DataFrame(columns, index=index)
    if multi_index:
        frame.columns = pd.MultiIndex.from_product(
            [frame.columns, ["AAPL"]], names=["Price", "Ticker"]
        )
    return frame


def test_yfinance_asks_for_the_range_and_normalizes_the_answer() -> None:
    fake = FakeYahooDownload(yahoo_frame("2024-01-02", 5))
    prices = YFinancePriceSource(download=fake).fetch("AAPL", date(2024, 1, 2), date(2024, 1, 8))
    [(symbol, kwargs)] = fake.calls
    assert symbol == "AAPL"
    assert kwargs["start"] == "2024-01-02"
    assert kwargs["end"] == "2024-01-09"  # Yahoo's end is exclusive
    assert kwargs["auto_adjust"] is False and kwargs["progress"] is False
    assert dict(prices.schema) == PRICE_SCHEMA
    assert prices["date"].to_list() == [date(2024, 1, d) for d in (2, 3, 4, 5, 8)]
    assert prices["close"].to_list() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert prices["adj_close"][0] == pytest.approx(98.0)


def test_yfinance_maps_the_index_key_to_its_symbol() -> None:
    fake = FakeYahooDownload(yahoo_frame("2024-01-02", 3))
    prices = YFinancePriceSource(download=fake).fetch("GSPC", date(2024, 1, 2), None)
    assert fake.calls[0][0] == "^GSPC"
    assert fake.calls[0][1]["end"] is None
    assert prices["ticker"].unique().to_list() == ["GSPC"]


def test_yfinance_multi_level_columns_and_missing_adj_close() -> None:
    fake = FakeYahooDownload(yahoo_frame("2024-01-02", 3, multi_index=True, adj=False))
    prices = YFinancePriceSource(download=fake).fetch("AAPL", date(2024, 1, 2), None)
    assert prices.height == 3
    assert prices["adj_close"].to_list() == prices["close"].to_list()


def test_yfinance_clips_rows_outside_the_range() -> None:
    fake = FakeYahooDownload(yahoo_frame("2024-01-02", 10))
    prices = YFinancePriceSource(download=fake).fetch("AAPL", date(2024, 1, 4), date(2024, 1, 5))
    assert prices["date"].to_list() == [date(2024, 1, 4), date(2024, 1, 5)]


@pytest.mark.parametrize("answer", [pd.DataFrame(), None])
def test_yfinance_empty_answer_is_an_error(answer: pd.DataFrame | None) -> None:
    fake = FakeYahooDownload(answer)
    with pytest.raises(PriceSourceError, match=r"yfinance: empty answer for AAPL from 2024-01-02"):
        YFinancePriceSource(download=fake).fetch("AAPL", date(2024, 1, 2), None)
    assert len(fake.calls) == 1


def test_yfinance_request_failure_is_an_error() -> None:
    fake = FakeYahooDownload(error=ConnectionError("DNS lookup failed"))
    with pytest.raises(
        PriceSourceError, match=re.escape("yfinance: request for ^GSPC failed: DNS lookup")
    ):
        YFinancePriceSource(download=fake).fetch("GSPC", date(2024, 1, 2), None)


def test_yfinance_invalid_ticker_is_never_sent() -> None:
    fake = FakeYahooDownload(yahoo_frame("2024-01-02", 3))
    with pytest.raises(InvalidTickerError):
        YFinancePriceSource(download=fake).fetch("aapl", date(2024, 1, 2), None)
    assert fake.calls == []


# --- synthetic and the resource ---------------------------------------------------------------


def test_synthetic_source_via_the_resource_is_deterministic(synthetic_source) -> None:
    source = synthetic_source.get_source()
    assert isinstance(source, SyntheticPriceSource)
    first = source.fetch("AAPL", date(2024, 1, 2), date(2024, 6, 28))
    again = synthetic_source.get_source().fetch("AAPL", date(2024, 1, 2), date(2024, 6, 28))
    assert first.equals(again)
    assert dict(first.schema) == PRICE_SCHEMA
    assert first["date"].min() == date(2024, 1, 2) and first["date"].max() == date(2024, 6, 28)
    assert first.height == 124  # NYSE sessions in the first half of 2024


def test_synthetic_unknown_ticker(synthetic_source) -> None:
    with pytest.raises(UnknownTickerError, match="synthetic: unknown ticker 'ZZZZ'"):
        synthetic_source.get_source().fetch("ZZZZ", date(2024, 1, 2), None)


def test_synthetic_shock_from_resource_config() -> None:
    resource = PriceSourceResource(
        kind="synthetic",
        synthetic_start="2024-01-02",
        synthetic_end="2024-03-28",
        synthetic_shocks=[ShockConfig(ticker="MSFT", date="2024-02-01", price_jump=-0.25)],
    )
    prices = resource.get_source().fetch("MSFT", date(2024, 1, 2), None)
    closes = dict(zip(prices["date"].to_list(), prices["close"].to_list(), strict=True))
    assert np.log(closes[date(2024, 2, 1)] / closes[date(2024, 1, 31)]) == pytest.approx(-0.25)


def test_csv_kind_needs_a_folder() -> None:
    with pytest.raises(PriceSourceError, match="needs csv_dir"):
        PriceSourceResource(kind="csv").get_source()


def test_resource_chooses_the_source(csv_prices_dir: Path) -> None:
    assert isinstance(
        PriceSourceResource(kind="csv", csv_dir=str(csv_prices_dir)).get_source(), CsvPriceSource
    )
    assert isinstance(PriceSourceResource(kind="yfinance").get_source(), YFinancePriceSource)
    assert PriceSourceResource(history_start="2010-01-04").first_date == date(2010, 1, 4)
