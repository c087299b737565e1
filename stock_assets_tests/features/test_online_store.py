"""The online store serves what the offline store holds: for a ticker's latest date its online row
equals the offline point-in-time row of that date, column for column (no training/serving skew),
and a stale or different online row is caught by `serve_online_row` as skew, naming what differs.

Real Feast, embedded: the DuckDB offline store and the SQLite online store in a temporary home.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from stock_assets.features.feature_store import (
    FEATURE_COLUMNS,
    FEATURE_VIEW,
    FeatureStoreResource,
    close_timestamps,
    to_offline_table,
)
from stock_assets.forecasting.inference import OnlineSkew, serve_online_row
from stock_assets_tests.features.test_feature_store import LAST, crafted_indicators

TICKERS = ("AAPL", "MSFT")


def publish(home: Path, repo_root: Path) -> tuple[FeatureStoreResource, pl.DataFrame]:
    store = FeatureStoreResource(repo_path=str(repo_root / "feature_repo"), home=str(home))
    table = pl.concat([crafted_indicators("AAPL", 100.0), crafted_indicators("MSFT", 300.0)])
    # Values no constant test column could match by accident: every feature differs per row.
    table = table.with_columns(
        [
            (pl.col(c) + pl.int_range(pl.len()).cast(pl.Float64) * 0.001 * (i + 1)).alias(c)
            for i, c in enumerate(FEATURE_COLUMNS)
            if c not in ("close", "volume")
        ]
    )
    summary = store.publish(table)
    assert summary["online_mismatch"] == []  # read back: every latest row is served online
    return store, table


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, repo_root: Path):
    return publish(tmp_path_factory.mktemp("online_home"), repo_root)


@pytest.fixture
def fresh(tmp_path: Path, repo_root: Path):
    """A store of its own, for the tests that write a wrong row online."""
    return publish(tmp_path, repo_root)


def write_online(store: FeatureStoreResource, row: dict[str, object], day: date) -> None:
    """Put `row` (a ticker's feature values) into the online store as the row of `day`."""
    stamp = pl.select(close_timestamps(pl.lit(day))).item()
    frame = pd.DataFrame([{**row, "event_timestamp": stamp, "created": pd.Timestamp.now("UTC")}])
    store.store().write_to_online_store(FEATURE_VIEW, frame)


def offline_window(store: FeatureStoreResource, table: pl.DataFrame, ticker: str) -> pl.DataFrame:
    days = table.filter(pl.col("ticker") == ticker)["date"].tail(5).to_list()
    return store.history(ticker, days)


def online_row(store: FeatureStoreResource, ticker: str) -> dict[str, object]:
    [row] = store.online([ticker]).to_dicts()
    return row


def test_the_online_row_is_the_offline_row_of_its_date(published) -> None:
    store, table = published
    online = store.online(list(TICKERS)).sort("ticker")
    assert online["date"].to_list() == [LAST, LAST]
    for row in online.iter_rows(named=True):
        offline = store.history(row["ticker"], [row["date"]]).row(0, named=True)
        lake = table.filter((pl.col("ticker") == row["ticker"]) & (pl.col("date") == LAST))
        for column in FEATURE_COLUMNS:
            assert row[column] == offline[column] == lake[column].item(), (row["ticker"], column)
    assert online.schema["volume"] == pl.Int64


def test_a_ticker_the_online_store_never_saw_has_no_date(published) -> None:
    store, _ = published
    row = online_row(store, "NVDA")
    assert row["date"] is None and row["close"] is None


def test_the_window_served_online_is_the_offline_window(published) -> None:
    store, table = published
    for ticker in TICKERS:
        window = offline_window(store, table, ticker)
        served = serve_online_row(window, online_row(store, ticker), ticker, LAST)
        assert served.equals(window), ticker
        assert served.schema == window.schema


def test_an_online_row_of_an_older_date_is_skew(fresh) -> None:
    store, table = fresh
    older = table.filter((pl.col("ticker") == "AAPL") & (pl.col("date") < LAST)).tail(1)
    write_online(store, older.drop("date").row(0, named=True), older["date"].item())
    assert online_row(store, "AAPL")["date"] == older["date"].item()  # the store now lags
    assert store.online_mismatch(to_offline_table(table)) == ["AAPL"]
    with pytest.raises(OnlineSkew, match=r"online/offline skew: the online store holds 2024-01-30"):
        serve_online_row(
            offline_window(store, table, "AAPL"), online_row(store, "AAPL"), "AAPL", LAST
        )
    # The other ticker is untouched and still served.
    msft = offline_window(store, table, "MSFT")
    assert serve_online_row(msft, online_row(store, "MSFT"), "MSFT", LAST).equals(msft)
    # Publishing again (feast_features) repairs the online store.
    assert store.publish(table)["online_mismatch"] == []
    aapl = offline_window(store, table, "AAPL")
    assert serve_online_row(aapl, online_row(store, "AAPL"), "AAPL", LAST).equals(aapl)


@pytest.mark.parametrize(
    ("column", "change", "skew"),
    [
        ("rsi_14", 1e-6, True),  # a real difference, far below any rounding of a feature
        ("close", 0.01, True),
        ("volume", 1, True),
        ("macd", 1e-15, False),  # float noise, well inside the tolerance
    ],
)
def test_a_different_online_value_of_the_same_date_is_skew(fresh, column, change, skew) -> None:
    store, table = fresh
    latest = table.filter((pl.col("ticker") == "MSFT") & (pl.col("date") == LAST))
    row = latest.drop("date").row(0, named=True)
    row[column] = row[column] + change
    write_online(store, row, LAST)
    window = offline_window(store, table, "MSFT")
    assert store.online_mismatch(to_offline_table(table)) == (["MSFT"] if skew else [])
    if skew:
        expected = rf"skew on {LAST}: {column} is .* online and .* offline"
        with pytest.raises(OnlineSkew, match=expected):
            serve_online_row(window, online_row(store, "MSFT"), "MSFT", LAST)
    else:
        served = serve_online_row(window, online_row(store, "MSFT"), "MSFT", LAST)
        assert served[column][-1] == row[column]  # the online value is the one served


def test_a_missing_online_row_is_skew(published) -> None:
    store, table = published
    window = offline_window(store, table, "AAPL")
    with pytest.raises(OnlineSkew, match="the online store holds no row"):
        serve_online_row(window, online_row(store, "NVDA") | {"ticker": "AAPL"}, "AAPL", LAST)
    with pytest.raises(OnlineSkew, match="the online store holds no row"):
        serve_online_row(window, None, "AAPL", LAST)
