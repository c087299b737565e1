"""Feast reads are point-in-time correct: asked about a date, history returns the values known at
that date's close and never a later one; the online store holds each ticker's latest values; and
the feast_features asset publishes what Dagster materialized."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from stock_assets.features.feature_store import FEATURE_COLUMNS, FeatureStoreResource
from stock_assets.features.indicators import INDICATOR_COLUMNS
from stock_assets.ingestion.quality import trading_sessions

FIRST, LAST = date(2024, 1, 2), date(2024, 1, 31)
CHANGE = date(2024, 1, 16)  # rsi_14 jumps from 20 to 80 on this session (a Tuesday after MLK day)
BEFORE_CHANGE = date(2024, 1, 12)  # the session before it (Friday; Monday the 15th is a holiday)


def crafted_indicators(ticker: str, offset: float) -> pl.DataFrame:
    """One row per January 2024 session; close = offset + session index, rsi_14 steps at CHANGE."""
    days = trading_sessions(FIRST, LAST)
    n = days.len()
    frame = pl.DataFrame({"date": days, "ticker": [ticker] * n})
    frame = frame.with_columns(
        close=offset + pl.int_range(n, dtype=pl.Int64).cast(pl.Float64),
        volume=pl.lit(1_000, dtype=pl.Int64),
        **{column: pl.lit(0.5) for column in INDICATOR_COLUMNS},
    )
    return frame.with_columns(
        rsi_14=pl.when(pl.col("date") >= CHANGE).then(80.0).otherwise(20.0) + offset / 1000
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, repo_root: Path):
    """A feature store in its own home with AAPL and MSFT's crafted January published once."""
    home = tmp_path_factory.mktemp("feast_home")
    store = FeatureStoreResource(repo_path=str(repo_root / "feature_repo"), home=str(home))
    table = pl.concat([crafted_indicators("AAPL", 100.0), crafted_indicators("MSFT", 300.0)])
    summary = store.publish(table)
    return store, table, summary


def test_publish_writes_the_offline_table(published) -> None:
    store, table, summary = published
    assert summary["rows"] == table.height == 2 * 21
    assert summary["tickers"] == 2
    offline = pl.read_parquet(store.offline_table)
    assert offline.height == table.height
    assert {"ticker", "event_timestamp", "created", *FEATURE_COLUMNS} == set(offline.columns)


def test_history_returns_the_value_known_at_each_close(published) -> None:
    store, _, _ = published
    history = store.history("AAPL", [BEFORE_CHANGE, CHANGE], columns=["rsi_14", "close"])
    assert history["date"].to_list() == [BEFORE_CHANGE, CHANGE]
    assert history["rsi_14"].to_list() == pytest.approx([20.1, 80.1])
    assert history["ticker"].to_list() == ["AAPL", "AAPL"]


def test_history_never_returns_a_future_value(published) -> None:
    store, table, _ = published
    asked = [
        date(2024, 1, d) for d in range(2, 32)
    ]  # every calendar day, weekends and holidays too
    history = store.history("MSFT", asked, columns=["close", "rsi_14"])
    msft = table.filter(pl.col("ticker") == "MSFT")
    for day, close, rsi in history.select("date", "close", "rsi_14").iter_rows():
        known = msft.filter(pl.col("date") <= day).tail(1)  # the latest row at or before that day
        assert close == known["close"].item(), day
        assert rsi == pytest.approx(known["rsi_14"].item()), day
    # The weekend and the holiday before CHANGE still see the old regime.
    saturday, holiday = date(2024, 1, 13), date(2024, 1, 15)
    values = dict(zip(history["date"].to_list(), history["rsi_14"].to_list(), strict=True))
    assert values[saturday] == values[holiday] == pytest.approx(20.3)


def test_history_before_the_first_row_or_past_the_ttl_is_null(published) -> None:
    store, _, _ = published
    history = store.history("AAPL", [date(2023, 12, 29), date(2024, 2, 20)], columns=["close"])
    assert history["close"].to_list() == [None, None]


def test_online_store_holds_the_latest_values(published) -> None:
    store, table, _ = published
    online = store.online(["AAPL", "MSFT"], columns=["close", "rsi_14"])
    latest = table.sort("date").group_by("ticker", maintain_order=True).last().sort("ticker")
    assert online.sort("ticker")["close"].to_list() == latest["close"].to_list()
    assert online.sort("ticker")["rsi_14"].to_list() == pytest.approx([80.1, 80.3])


def test_feast_features_publishes_what_dagster_materialized(materialize, resources) -> None:
    res = resources()
    for ticker in ("AAPL", "MSFT"):
        assert materialize(["raw_prices", "price_indicators"], res, ticker).success
    result = materialize(["feast_features"], res)
    assert result.success
    [materialization] = result.asset_materializations_for_node("feast_features")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["tickers"] == "AAPL, MSFT"

    lake, store = res["lake"], res["feature_store"]
    indicators = {t: lake.read("price_indicators", t) for t in ("AAPL", "MSFT")}
    assert metadata["dagster/row_count"] == sum(frame.height for frame in indicators.values())

    online = store.online(["AAPL", "MSFT"], columns=["close", "rsi_14"]).sort("ticker")
    assert online["close"].to_list() == [indicators[t]["close"][-1] for t in ("AAPL", "MSFT")]
    assert online["rsi_14"].to_list() == pytest.approx(
        [indicators[t]["rsi_14"][-1] for t in ("AAPL", "MSFT")]
    )
    days = indicators["AAPL"]["date"].gather([0, 100, 200]).to_list()
    history = store.history("AAPL", days, columns=["rsi_14"])
    expected = indicators["AAPL"].filter(pl.col("date").is_in(days))["rsi_14"].to_list()
    assert history["rsi_14"].to_list() == pytest.approx(expected)
