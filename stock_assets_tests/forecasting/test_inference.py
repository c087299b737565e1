"""The point-in-time promises of a forecast, on crafted frames (no Dagster, no model registry)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import torch

from stock_assets.datasets.windows import MODEL_FEATURES, SplitConfig, build_sequences
from stock_assets.features.indicators import compute_indicators
from stock_assets.forecasting.inference import (
    FORECAST_SCHEMA,
    InputsNotReady,
    build_windows,
    empty_forecast,
    forecast_dates,
    forecast_rows,
    input_dates,
    require_price_row,
    verify_feature_rows,
    vol_features_at,
)
from stock_assets.market_calendar import trading_sessions
from stock_assets.modeling.probabilistic import fit_model_spread
from stock_assets.quantiles import QUANTILE_COLUMNS

CREATED = datetime(2024, 7, 1, 22, 0, tzinfo=UTC)


def random_walk(sessions: pl.Series, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.012, len(sessions))))
    return pl.DataFrame(
        {
            "date": sessions,
            "open": close * 0.999,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "adj_close": close,
            "volume": rng.integers(1_000_000, 3_000_000, len(sessions)),
            "ticker": "SYN",
        }
    )


@pytest.fixture(scope="module")
def prices() -> pl.DataFrame:
    return random_walk(trading_sessions(date(2023, 1, 3), date(2024, 6, 28)))


@pytest.fixture(scope="module")
def features(prices: pl.DataFrame) -> pl.DataFrame:
    """What Feast's history returns: date, ticker, close, volume, indicators, warm-up dropped."""
    return compute_indicators(prices).drop_nulls()


class Persistence(torch.nn.Module):
    """A stand-in network: returns the mean of the last window row, so inputs show in outputs."""

    horizon = 5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1, :].mean(dim=1, keepdim=True).repeat(1, self.horizon) * 0.001


def test_the_input_window_ends_on_its_date_and_never_reads_later_dates(prices):
    dates = prices["date"]
    window = input_dates(dates, date(2024, 3, 15), 60)
    assert len(window) == 60
    assert window[-1] == date(2024, 3, 15)
    assert all(d <= date(2024, 3, 15) for d in window)
    # A Saturday: the window ends on Friday's session.
    assert input_dates(dates, date(2024, 3, 16), 3)[-1] == date(2024, 3, 15)


def test_a_missing_price_row_is_an_error_never_an_older_window(prices):
    assert require_price_row(prices, date(2024, 6, 28), "SYN") == pytest.approx(prices["close"][-1])
    with pytest.raises(
        InputsNotReady, match=r"prices for 2024-07-01 not ingested yet .*ends on 2024-06-28"
    ):
        require_price_row(prices, date(2024, 7, 1), "SYN")
    gap = prices.filter(pl.col("date") != date(2024, 3, 15))
    with pytest.raises(InputsNotReady, match="no row for the session 2024-03-15"):
        require_price_row(gap, date(2024, 3, 15), "SYN")


def test_feast_rows_forward_filled_from_an_older_day_are_rejected(prices, features):
    window = features.filter(pl.col("date") <= date(2024, 6, 28)).tail(70)
    verify_feature_rows(window, prices, "SYN")  # its own rows: fine
    # Feast's TTL hands back Thursday's row for Friday when Friday was never published.
    stale = window.with_columns(
        pl.when(pl.col("date") == date(2024, 6, 28))
        .then(pl.col("close").shift(1))
        .otherwise(pl.col("close"))
        .alias("close")
    )
    with pytest.raises(InputsNotReady, match="no features of their own for 1 input dates"):
        verify_feature_rows(stale, prices, "SYN")
    missing = window.with_columns(pl.lit(None, dtype=pl.Float64).alias("close"))
    with pytest.raises(InputsNotReady, match="materialize feast_features"):
        verify_feature_rows(missing, prices, "SYN")


def test_windows_are_identical_when_every_later_row_is_corrupted(prices, features):
    data = build_sequences(features, SplitConfig(context_length=30, horizon=5), ticker="SYN")
    as_of = [date(2024, 2, 1), date(2024, 4, 30)]
    clean = build_windows(features, as_of, data.scaler, 30)
    corrupted = features.with_columns(
        [
            pl.when(pl.col("date") > date(2024, 4, 30))
            .then(pl.col(c) * 7.0 + 3.0)
            .otherwise(pl.col(c))
            .alias(c)
            for c in features.columns
            if c not in ("date", "ticker") and features.schema[c].is_float()
        ]
    )
    assert np.array_equal(clean, build_windows(corrupted, as_of, data.scaler, 30))
    assert clean.shape == (2, 30, len(MODEL_FEATURES))
    # ...and a corruption inside the window does change it (the test can see a difference).
    inside = features.with_columns(
        pl.when(pl.col("date") == date(2024, 4, 30))
        .then(pl.col("rsi_14") + 20)
        .otherwise(pl.col("rsi_14"))
        .alias("rsi_14")
    )
    assert not np.array_equal(clean[1], build_windows(inside, as_of, data.scaler, 30)[1])


def test_forecast_rows_target_the_next_sessions_and_skip_holidays():
    frame = forecast_rows(
        ticker="SYN",
        as_of=date(2024, 7, 2),
        last_close=100.0,
        log_returns=np.log([1.01, 1.02, 1.0, 0.99, 1.03]),
        model_name="stock_assets.SYN",
        model_version="3",
        created_at=CREATED,
        quantile_closes=np.tile([96.0, 97.0, 99.0, 100.0, 101.0, 103.0, 104.0], (5, 1)),
        p_up=np.full(5, 0.55),
    )
    assert frame.schema == pl.Schema(FORECAST_SCHEMA)
    assert frame["close_q05"].to_list() == [96.0] * 5 and frame["p_up"].to_list() == [0.55] * 5
    # 2024-07-04 (Independence Day) and the weekend are not sessions.
    assert frame["target_date"].to_list() == [
        date(2024, 7, 3),
        date(2024, 7, 5),
        date(2024, 7, 8),
        date(2024, 7, 9),
        date(2024, 7, 10),
    ]
    assert frame["horizon"].to_list() == [1, 2, 3, 4, 5]
    assert frame["predicted_close"].to_list() == pytest.approx([101.0, 102.0, 100.0, 99.0, 103.0])
    assert set(frame["as_of_date"].to_list()) == {date(2024, 7, 2)}
    assert frame["model_version"].to_list() == ["3"] * 5
    assert empty_forecast().height == 0 and empty_forecast().schema == frame.schema


def test_forecasts_of_several_dates_in_one_pass_equal_one_date_at_a_time(prices, features):
    data = build_sequences(features, SplitConfig(context_length=30, horizon=5), ticker="SYN")
    days = [date(2024, 5, 1), date(2024, 5, 2), date(2024, 6, 28)]
    kwargs = {
        "ticker": "SYN",
        "prices": prices,
        "features": features,
        "network": Persistence(),
        "scaler": data.scaler,
        "spread": fit_model_spread(data),
        "context_length": 30,
        "model_name": "m",
        "model_version": "1",
        "created_at": CREATED,
    }
    together = forecast_dates(as_of_dates=days, **kwargs)
    for day in days:
        alone = forecast_dates(as_of_dates=[day], **kwargs)[day]
        assert together[day].equals(alone)  # bit for bit, bands included
        assert together[day]["last_close"][0] == pytest.approx(
            prices.filter(pl.col("date") == day)["close"][0]
        )
    assert (
        together[date(2024, 5, 1)]["predicted_return"][0]
        != together[date(2024, 5, 2)]["predicted_return"][0]
    )
    for frame in together.values():
        quantiles = frame.select(QUANTILE_COLUMNS).to_numpy()
        assert np.all(np.diff(quantiles, axis=1) > 0)  # strictly monotone in q
        assert frame["close_q50"].to_list() == pytest.approx(frame["predicted_close"].to_list())
        # p_up leans the way the median moves, and the band is wider 5 sessions out than 1
        up = (frame["predicted_return"] > 0).to_numpy()
        assert np.array_equal(frame["p_up"].to_numpy() > 0.5, up)
        widths = quantiles[:, -1] - quantiles[:, 0]
        assert widths[-1] > 1.5 * widths[0]


def test_the_band_of_a_date_reads_nothing_after_it(prices, features):
    """Poisoned future: every price and feature after the forecast date multiplied by 5 leaves
    the date's volatility features, quantiles and p_up exactly as they were."""
    data = build_sequences(features, SplitConfig(context_length=30, horizon=5), ticker="SYN")
    day = date(2024, 5, 1)
    kwargs = {
        "ticker": "SYN", "as_of_dates": [day], "network": Persistence(), "scaler": data.scaler,
        "spread": fit_model_spread(data), "context_length": 30, "model_name": "m",
        "model_version": "1", "created_at": CREATED,
    }
    clean = forecast_dates(prices=prices, features=features, **kwargs)[day]

    def poison(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.when(pl.col("date") > day).then(pl.col(c) * 5.0).otherwise(pl.col(c)).alias(c)
            for c in frame.columns
            if c not in ("date", "ticker") and frame.schema[c].is_float()
        )

    poisoned = forecast_dates(prices=poison(prices), features=poison(features), **kwargs)[day]
    columns = [*QUANTILE_COLUMNS, "p_up", "predicted_close"]
    assert clean.select(columns).equals(poisoned.select(columns))
    # ...while poisoning the date itself does move the band (the test can fail).
    moved = prices.with_columns(
        pl.when(pl.col("date") >= day - timedelta(days=20)).then(pl.col("close") * 1.3)
        .otherwise(pl.col("close")).alias("close")
    )
    assert not np.allclose(
        vol_features_at(moved, features, [day]), vol_features_at(prices, features, [day])
    )
