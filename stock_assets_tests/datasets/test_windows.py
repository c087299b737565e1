"""Windows, splits and scalers: scale-free, chronological, leakage-free, storable."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import numpy as np
import polars as pl
import pytest

from stock_assets.datasets.windows import (
    MODEL_FEATURES,
    SequenceData,
    SplitConfig,
    build_sequences,
    latest_window,
    model_feature_frame,
)
from stock_assets.features.indicators import compute_indicators

CONFIG = SplitConfig(context_length=20, horizon=3, val_sessions=40, test_sessions=40)


def synthetic_prices(n: int = 500, start_price: float = 100.0, seed: int = 0) -> pl.DataFrame:
    """A random-walk OHLCV history on consecutive weekdays."""
    rng = np.random.default_rng(seed)
    close = start_price * np.exp(np.cumsum(rng.normal(0.0003, 0.012, n)))
    spread = np.abs(rng.normal(0.0, 0.006, n))
    days: list[date] = []
    day = date(2010, 1, 4)
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return pl.DataFrame(
        {
            "date": days,
            "open": np.r_[close[0], close[:-1]],
            "high": close * (1 + spread),
            "low": close * (1 - spread),
            "close": close,
            "adj_close": close,
            "volume": rng.integers(1_000_000, 5_000_000, n),
            "ticker": ["SYN"] * n,
        }
    )


@pytest.fixture(scope="module")
def indicators() -> pl.DataFrame:
    return compute_indicators(synthetic_prices())


def test_features_are_scale_free(indicators: pl.DataFrame) -> None:
    prices = synthetic_prices()
    scaled_prices = prices.with_columns(pl.col("open", "high", "low", "close", "adj_close") * 100)
    base = model_feature_frame(indicators).select(MODEL_FEATURES).to_numpy()
    hundredfold = model_feature_frame(compute_indicators(scaled_prices)).select(MODEL_FEATURES)
    assert len(MODEL_FEATURES) == 21
    np.testing.assert_allclose(hundredfold.to_numpy(), base, rtol=1e-9, atol=1e-12)


def test_split_is_chronological_with_a_gap_of_at_least_the_horizon(
    indicators: pl.DataFrame,
) -> None:
    data = build_sequences(indicators, CONFIG)
    dates = model_feature_frame(indicators)["date"].to_list()
    row = {day: index for index, day in enumerate(dates)}
    horizon = CONFIG.horizon
    parts = [data.anchor_dates_train, data.anchor_dates_val, data.anchor_dates_test]
    for anchors in parts:
        assert np.all(np.diff(anchors.astype("int64")) > 0)
    for earlier, later in pairwise(parts):
        last_target_row = row[earlier[-1].astype(object)] + horizon
        first_target_row = row[later[0].astype(object)] + 1
        # trading days strictly between one part's last target and the next part's first
        assert first_target_row - last_target_row - 1 >= horizon
    # 451 complete rows -> 429 windows: 40 test, 40 val, 2 x 5 dropped for the gaps, 339 train
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (339, 40, 40)
    assert data.X_train.shape == (339, 20, 21) and data.y_train.shape == (339, 3)
    assert data.X_train.dtype == np.float32 and data.y_test.dtype == np.float32
    assert data.boundaries.train_last_target < data.boundaries.val_first_anchor
    assert data.boundaries.val_last_target < data.boundaries.test_first_anchor


@pytest.mark.parametrize("n_prices", [500, 1500])
def test_training_ends_a_fixed_span_before_the_latest_price(n_prices: int) -> None:
    """However long the history, training targets end val + test + 2 gaps sessions before the
    latest price (128 with the defaults), not a fraction of the history back."""
    frame = model_feature_frame(compute_indicators(synthetic_prices(n_prices)))
    data = build_sequences(compute_indicators(synthetic_prices(n_prices)), CONFIG)
    dates = frame["date"].to_list()
    after = len(dates) - 1 - dates.index(data.boundaries.train_last_target)
    assert after == CONFIG.sessions_after_training == 2 * (3 + 3 - 1) + 40 + 40
    assert SplitConfig().sessions_after_training == 128
    assert data.future_close_val.shape == (40, 3)
    np.testing.assert_allclose(
        np.log(data.future_close_val / data.anchor_close_val[:, None]), data.y_val, rtol=1e-5
    )


def test_scaler_is_fitted_on_training_rows_only(indicators: pl.DataFrame) -> None:
    cutoff = build_sequences(indicators, CONFIG).boundaries.train_last_target
    # Poison everything after the training part: a scaler that saw it would have a huge mean.
    poisoned = indicators.with_columns(
        pl.when(pl.col("date") > cutoff)
        .then(pl.col("rsi_14") + 1e6)
        .otherwise(pl.col("rsi_14"))
        .alias("rsi_14")
    )
    data = build_sequences(poisoned, CONFIG)
    features = model_feature_frame(poisoned)
    train_rows = features.filter(pl.col("date") <= cutoff).select(MODEL_FEATURES).to_numpy()
    all_rows = features.select(MODEL_FEATURES).to_numpy()
    rsi = MODEL_FEATURES.index("rsi_14")

    np.testing.assert_allclose(data.scaler.mean_, train_rows.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(data.scaler.scale_, train_rows.std(axis=0), rtol=1e-12)
    assert data.scaler.n_samples_seen_ == len(train_rows) == 339 + 20 - 1 + 3
    assert data.scaler.mean_[rsi] < 1.0  # rsi/100 of the clean part
    assert all_rows.mean(axis=0)[rsi] > 1000.0  # the poison is really there
    assert np.abs(data.X_train).max() < 20  # train windows never hold poisoned rows
    assert data.X_test[:, :, rsi].min() > 1000  # test windows do, scaled by train statistics


def test_targets_are_log_returns_that_rebuild_the_exact_prices(indicators: pl.DataFrame) -> None:
    data = build_sequences(indicators, CONFIG)
    frame = model_feature_frame(indicators)
    close = dict(zip(frame["date"].to_list(), frame["close"].to_list()))
    dates = frame["date"].to_list()
    anchor = data.anchor_dates_test[0].astype(object)
    index = dates.index(anchor)
    expected = [np.log(close[dates[index + k]] / close[anchor]) for k in (1, 2, 3)]
    np.testing.assert_allclose(data.y_test[0], expected, rtol=1e-6)
    assert data.anchor_close_test[0] == close[anchor]
    assert list(data.future_close_test[0]) == [close[dates[index + k]] for k in (1, 2, 3)]

    rebuilt = data.anchor_close_test[:, None] * np.exp(data.y_test.astype(np.float64))
    np.testing.assert_allclose(rebuilt, data.future_close_test, rtol=1e-6)


def test_window_ends_on_its_anchor_day(indicators: pl.DataFrame) -> None:
    data = build_sequences(indicators, CONFIG)
    frame = model_feature_frame(indicators)
    anchor = data.anchor_dates_val[3].astype(object)
    rows = frame.filter(pl.col("date") <= anchor).tail(CONFIG.context_length)
    expected = data.scaler.transform(rows.select(MODEL_FEATURES).to_numpy())
    np.testing.assert_allclose(data.X_val[3], expected, rtol=1e-5, atol=1e-6)


def test_target_standardisation_comes_from_training_targets(indicators: pl.DataFrame) -> None:
    data = build_sequences(indicators, CONFIG)
    np.testing.assert_allclose(data.target_mean, data.y_train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(data.target_scale, data.y_train.std(axis=0), rtol=1e-5)


def test_sequence_data_round_trips_through_npz(indicators: pl.DataFrame, tmp_path) -> None:
    data = build_sequences(indicators, CONFIG)
    loaded = SequenceData.load(data.save(tmp_path / "syn.npz"))
    for name in ("X_train", "y_train", "X_test", "anchor_dates_test", "future_close_test"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(data, name))
    assert loaded.boundaries == data.boundaries
    assert (loaded.ticker, loaded.feature_names, loaded.gap) == ("SYN", MODEL_FEATURES, 3)
    np.testing.assert_array_equal(loaded.scaler.mean_, data.scaler.mean_)
    rows = np.ones((2, len(MODEL_FEATURES)))
    np.testing.assert_array_equal(loaded.scaler.transform(rows), data.scaler.transform(rows))
    with np.load(tmp_path / "syn.npz", allow_pickle=False) as archive:
        assert "meta" in archive.files


def test_too_little_history_is_a_clear_error() -> None:
    short = compute_indicators(synthetic_prices(n=150))  # 101 rows after the 49-row warm-up
    with pytest.raises(ValueError, match="give 0 training windows .* at least 212 rows"):
        build_sequences(short, SplitConfig())
    just_enough = compute_indicators(synthetic_prices(n=49 + 212))
    assert len(build_sequences(just_enough, SplitConfig()).y_train) == 20


def test_gap_shorter_than_the_horizon_is_refused(indicators: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="leak"):
        build_sequences(indicators, SplitConfig(context_length=20, horizon=5, gap=2))


def test_missing_indicator_columns_are_named(indicators: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="atr_14"):
        model_feature_frame(indicators.drop("atr_14"))


def test_latest_window_reads_nothing_after_as_of(indicators: pl.DataFrame) -> None:
    data = build_sequences(indicators, CONFIG)
    as_of = data.anchor_dates_test[10].astype(object)
    poisoned = indicators.with_columns(
        pl.when(pl.col("date") > as_of).then(pl.col("close") * 50).otherwise(pl.col("close"))
    )
    window = latest_window(poisoned, data.scaler, CONFIG.context_length, as_of=as_of)
    assert window.shape == (1, 20, 21) and window.dtype == np.float32
    # the same window the test split holds for that anchor
    np.testing.assert_allclose(window[0], data.X_test[10], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="need 20"):
        latest_window(indicators, data.scaler, 20, as_of=indicators["date"][5])
