"""The daily forecast of the latest session is served its last feature row by the Feast online store
(SQLite here), checked against the offline store: same features, same forecast, and a stale or
different online row is refused as skew for that ticker alone, keeping its previous forecast.

A home of its own (synthetic market 2023-01-03..2024-06-14, AAPL and MSFT, tiny models) on a real
Dagster instance, MLflow store and embedded Feast.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import polars as pl
import pytest

from stock_assets.features.feature_store import FEATURE_COLUMNS
from stock_assets.testing import LoopHome, failures, loop_home
from stock_assets_tests.features.test_online_store import write_online
from stock_assets_tests.forecasting.test_forecast_assets import materialization_metadata

pytestmark = pytest.mark.xdist_group("online_forecast")

LAST_INGESTED = date(2024, 6, 14)
TICKERS = ["AAPL", "MSFT"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopHome]:
    root = tmp_path_factory.mktemp("online_forecast")
    with loop_home(root, synthetic_start="2023-01-03") as loop:
        loop.ingest(TICKERS, LAST_INGESTED)
        loop.train(TICKERS)
        yield loop


def feature_store(home: LoopHome):
    return home.resources()["feature_store"]


def test_the_online_store_serves_the_offline_features_of_the_latest_date(home: LoopHome):
    store = feature_store(home)
    online = store.online(TICKERS).sort("ticker")
    assert online["date"].to_list() == [LAST_INGESTED] * 2  # materialized up to the last session
    for row in online.iter_rows(named=True):
        offline = store.history(row["ticker"], [LAST_INGESTED]).row(0, named=True)
        lake = home.lake.read("price_indicators", row["ticker"]).filter(
            pl.col("date") == LAST_INGESTED
        )
        for column in FEATURE_COLUMNS:
            assert row[column] == offline[column], (row["ticker"], column)
            assert row[column] == pytest.approx(lake[column].item(), rel=1e-12)


def test_the_latest_session_is_forecast_from_the_online_row(home: LoopHome):
    # The same date forecast offline first (a back-test range: the offline store only)...
    home.backtest("AAPL", date(2024, 6, 13), LAST_INGESTED)
    offline = home.forecast("AAPL", LAST_INGESTED)
    # ...then live: the daily job for the latest session.
    result = home.daily(LAST_INGESTED, TICKERS)
    metadata = materialization_metadata(result, "daily_forecast")
    assert metadata["last_row_store"] == "online (sqlite)"
    assert metadata["online_skew"] == "none"
    assert metadata["online_read_s"] >= 0.0
    assert metadata["tickers_forecast"] == 2
    rows = [line for line in metadata["forecasts"].splitlines() if line.startswith("| AAPL")]
    assert len(rows) == 1 and "| online |" in rows[0]
    # What the online store served is what the offline store holds: the same forecast.
    live = home.forecast("AAPL", LAST_INGESTED)
    assert live.drop("created_at").equals(offline.drop("created_at"))
    assert live["created_at"][0] > offline["created_at"][0]


def test_a_past_date_is_forecast_from_the_offline_store(home: LoopHome):
    result = home.daily(date(2024, 6, 12), TICKERS)
    metadata = materialization_metadata(result, "daily_forecast")
    assert metadata["last_row_store"] == "offline (a past date: point-in-time history)"
    assert "online_skew" not in metadata and "online_read_s" not in metadata
    assert metadata["tickers_forecast"] == 2


def test_an_online_row_that_differs_from_the_offline_one_is_skew(home: LoopHome):
    home.daily(LAST_INGESTED, TICKERS)
    kept = home.forecast("AAPL", LAST_INGESTED)
    msft_before = home.forecast("MSFT", LAST_INGESTED)
    store = feature_store(home)
    [row] = store.online(["AAPL"]).drop("date").to_dicts()
    write_online(store, {**row, "rsi_14": row["rsi_14"] + 0.5}, LAST_INGESTED)

    result = home.daily(LAST_INGESTED, TICKERS)
    metadata = materialization_metadata(result, "daily_forecast")
    assert metadata["online_skew"] == "AAPL"
    assert metadata["tickers_forecast"] == 1 and metadata["tickers_skipped"] == 1
    assert metadata["last_row_store"] == "online (sqlite)"  # MSFT's, the one forecast
    assert f"AAPL | AAPL: online/offline skew on {LAST_INGESTED}: rsi_14 is" in metadata["skipped"]
    assert home.forecast("AAPL", LAST_INGESTED).equals(kept)  # the previous forecast stays
    assert home.forecast("MSFT", LAST_INGESTED)["created_at"][0] > msft_before["created_at"][0]

    # The skewed ticker alone: nothing to forecast, and the run says why.
    alone = home.daily(LAST_INGESTED, "AAPL", raise_on_error=False)
    assert not alone.success
    [message] = [m for m in failures(alone) if m.startswith("daily_forecast")]
    assert "AAPL: online/offline skew on 2024-06-14: rsi_14 is" in message

    # An older row online (the store not materialized since) is skew too.
    previous = home.lake.read("price_indicators", "AAPL").filter(pl.col("date") < LAST_INGESTED)
    day = previous["date"][-1]
    older = previous.tail(1).select("ticker", *FEATURE_COLUMNS).row(0, named=True)
    write_online(store, older, day)
    stale = materialization_metadata(home.daily(LAST_INGESTED, TICKERS), "daily_forecast")
    assert stale["online_skew"] == "AAPL"
    assert f"the online store holds {day}, the offline store {LAST_INGESTED}" in stale["skipped"]

    # feast_features materializes the online store again, and the ticker is forecast online.
    published = materialization_metadata(home.materialize(["feast_features"]), "feast_features")
    assert published["online_mismatch"] == "none"
    assert published["online_matches_offline"] == "3/3"  # AAPL, MSFT and the index
    repaired = materialization_metadata(home.daily(LAST_INGESTED, TICKERS), "daily_forecast")
    assert repaired["online_skew"] == "none" and repaired["tickers_forecast"] == 2
    assert home.forecast("AAPL", LAST_INGESTED).drop("created_at").equals(kept.drop("created_at"))
