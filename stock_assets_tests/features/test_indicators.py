"""Indicators against an independent pandas/numpy reference, hand-computed values, and warm-up."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from stock_assets.features.indicators import (
    INDICATOR_COLUMNS,
    WARMUP_ROWS,
    atr,
    bollinger,
    compute_indicators,
    ema,
    log_return,
    macd,
    realized_volatility,
    rsi,
    simple_return,
    sma,
    true_range,
    volume_ratio,
)


def _prices_dir() -> Path:
    here = Path(__file__).resolve()
    root = next(p for p in here.parents if (p / "pyproject.toml").is_file())
    return root.parent / "shared" / "data" / "prices"


def _real_prices(ticker: str) -> pl.DataFrame:
    path = _prices_dir() / f"{ticker}.csv"
    if not path.is_file():
        pytest.skip(f"real price data not found at {path} (../shared/data/prices is absent)")
    return pl.read_csv(path, try_parse_dates=True).with_columns(pl.lit(ticker).alias("ticker"))


def _synthetic_prices(ticker: str) -> pl.DataFrame:
    from stock_assets.ingestion.synthetic import SyntheticMarket

    market = SyntheticMarket(seed=11, start=date(2018, 1, 2), end=date(2021, 12, 31))
    return market.prices(ticker)


def _frame(close: list[float], **columns: list[float]) -> pl.DataFrame:
    """A one-ticker price frame on consecutive days; high/low/open default to close."""
    n = len(close)
    return pl.DataFrame(
        {
            "date": [date(2024, 1, 1) + timedelta(days=i) for i in range(n)],
            "open": columns.get("open", close),
            "high": columns.get("high", close),
            "low": columns.get("low", close),
            "close": close,
            "adj_close": close,
            "volume": columns.get("volume", [1_000] * n),
            "ticker": ["TEST"] * n,
        },
        schema_overrides={"volume": pl.Int64},
    )


def reference_indicators(prices: pd.DataFrame) -> pd.DataFrame:
    """The same indicators written directly with pandas ewm/rolling (not sharing any code)."""
    close, high, low = prices["close"], prices["high"], prices["low"]
    volume = prices["volume"].astype(float)
    ref: dict[str, pd.Series] = {}
    values = close.to_numpy()
    for periods in (1, 5, 20):
        change = np.full(len(values), np.nan)
        change[periods:] = values[periods:] / values[:-periods] - 1.0
        ref[f"ret_{periods}d"] = pd.Series(change)
    ref["log_ret_1d"] = np.log(close).diff()

    delta = close.diff()
    avg_gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    avg_loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    ref["rsi_14"] = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)

    line = (
        close.ewm(span=12, adjust=False, min_periods=12).mean()
        - close.ewm(span=26, adjust=False, min_periods=26).mean()
    )
    ref["macd"] = line
    ref["macd_signal"] = line.ewm(span=9, adjust=False, min_periods=9).mean()
    ref["macd_hist"] = line - ref["macd_signal"]
    for window in (5, 10, 20, 50):
        ref[f"sma_{window}"] = close.rolling(window).mean()
    for span in (5, 10, 20, 50):
        ref[f"ema_{span}"] = close.ewm(span=span, adjust=False, min_periods=span).mean()

    middle = close.rolling(20).mean()
    std = close.rolling(20).std(ddof=0)
    ref["bb_upper"] = middle + 2 * std
    ref["bb_middle"] = middle
    ref["bb_lower"] = middle - 2 * std
    ref["bb_pct_b"] = (close - ref["bb_lower"]) / (ref["bb_upper"] - ref["bb_lower"])

    previous = close.shift(1)
    true_ranges = pd.concat(
        [high - low, (high - previous).abs(), (low - previous).abs()], axis=1
    ).max(axis=1)
    ref["atr_14"] = true_ranges.ewm(alpha=1 / 14, adjust=False, min_periods=14).mean()
    for window in (5, 20):
        ref[f"volume_ratio_{window}"] = volume / volume.rolling(window).mean()
    ref["realized_vol_20"] = np.log(close).diff().rolling(20).std(ddof=1) * np.sqrt(252)
    return pd.DataFrame({name: ref[name].to_numpy() for name in INDICATOR_COLUMNS})


# --- against the reference on real and synthetic data ------------------------------------------


REAL_TICKERS = (
    "GSPC",
    "AAPL",
    "AMZN",
    "GOOGL",
    "JNJ",
    "JPM",
    "META",
    "MSFT",
    "NVDA",
    "PG",
    "TSLA",
    "UNH",
    "XOM",
)


@pytest.mark.parametrize(
    "source", [*(f"real:{t}" for t in REAL_TICKERS), "synthetic:AAPL", "synthetic:GSPC"]
)
def test_every_indicator_matches_the_pandas_reference(source: str) -> None:
    kind, ticker = source.split(":")
    prices = _real_prices(ticker) if kind == "real" else _synthetic_prices(ticker)
    ours = compute_indicators(prices, drop_warmup=False)
    expected = reference_indicators(prices.sort("date").to_pandas())
    assert len(ours) == len(expected) == prices.height
    for name in INDICATOR_COLUMNS:
        actual = ours[name].to_numpy().astype(float)
        wanted = expected[name].to_numpy()
        np.testing.assert_array_equal(np.isnan(actual), np.isnan(wanted), err_msg=name)
        # 1e-9 relative. The 1e-10 absolute floor only matters where a value is near zero: %b
        # next to the lower band is a ratio of two differences (worst case measured over all 13
        # real files: JNJ, 0.44 of that floor beyond the relative tolerance).
        np.testing.assert_allclose(actual, wanted, rtol=1e-9, atol=1e-10, err_msg=name)


def test_all_real_tickers_are_finite_after_warmup() -> None:
    files = sorted(_prices_dir().glob("*.csv"))
    if not files:
        pytest.skip(f"real price data not found at {_prices_dir()}")
    for path in files:
        prices = pl.read_csv(path, try_parse_dates=True).with_columns(
            pl.lit(path.stem).alias("ticker")
        )
        result = compute_indicators(prices)
        assert result.height == prices.height - WARMUP_ROWS, path.stem
        values = result.select(INDICATOR_COLUMNS).to_numpy()
        assert np.isfinite(values).all(), path.stem


# --- hand-computed values on tiny series ---------------------------------------------------------


def test_returns_of_100_to_110() -> None:
    out = pl.DataFrame({"close": [100.0, 110.0]}).select(
        simple_return(1).alias("r"), log_return().alias("lr")
    )
    assert out["r"].to_list()[0] is None
    assert out["r"][1] == pytest.approx(0.1, rel=1e-15)
    assert out["lr"][1] == pytest.approx(math.log(1.1), rel=1e-15)


def test_multi_period_return() -> None:
    out = pl.DataFrame({"close": [100.0, 50.0, 80.0, 120.0]}).select(simple_return(3).alias("r"))
    assert out["r"].to_list() == [None, None, None, pytest.approx(0.2)]


def test_rsi_of_a_strictly_rising_series_is_100_and_falling_is_0() -> None:
    rising = pl.DataFrame({"close": [float(i) for i in range(1, 31)]})
    up = rising.select(rsi(14).alias("rsi"))["rsi"]
    down = rising.select(pl.col("close").reverse()).select(rsi(14).alias("rsi"))["rsi"]
    assert up.head(14).null_count() == 14  # 13 diffs are not enough for a 14-period average
    assert up.slice(14).to_list() == [100.0] * 16
    assert down.slice(14).to_list() == [0.0] * 16


def test_rsi_of_a_flat_series_is_neutral_50() -> None:
    out = pl.DataFrame({"close": [5.0] * 20}).select(rsi(14).alias("rsi"))["rsi"]
    assert out.slice(14).to_list() == [50.0] * 6


def test_rsi_wilder_recursion_by_hand() -> None:
    # period 2 (alpha 1/2). diffs: +1, -0.5, +1. gains 1, 0, 1 -> averages 1, 0.5, 0.75;
    # losses 0, 0.5, 0 -> 0, 0.25, 0.125. RSI = 100 - 100 / (1 + gain / loss).
    out = pl.DataFrame({"close": [1.0, 2.0, 1.5, 2.5]}).select(rsi(2).alias("rsi"))["rsi"]
    assert out[0] is None and out[1] is None
    assert out[2] == pytest.approx(100 - 100 / 3, rel=1e-12)
    assert out[3] == pytest.approx(100 - 100 / 7, rel=1e-12)


def test_sma_and_ema_by_hand() -> None:
    frame = pl.DataFrame({"close": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    out = frame.select(sma(5).alias("sma"), ema(3).alias("ema"))
    assert out["sma"].to_list() == [None] * 4 + [3.0, 4.0]
    # span 3 -> alpha 0.5: 1, 1.5, 2.25, 3.125, 4.0625, 5.03125 (null until 3 observations)
    assert out["ema"].to_list() == [None, None, 2.25, 3.125, 4.0625, 5.03125]


def test_macd_of_a_constant_price_is_zero() -> None:
    out = pl.DataFrame({"close": [42.0] * 40}).select(macd())
    assert out["macd"].drop_nulls().to_list() == [0.0] * 15
    assert out["macd_signal"].drop_nulls().to_list() == [0.0] * 7  # ready on row 25 + 8 = 33
    assert out["macd_hist"].null_count() == 33


def test_bollinger_by_hand_with_population_std() -> None:
    close = [float(i) for i in range(1, 21)]
    out = pl.DataFrame({"close": close}).select(bollinger(20, 2.0))
    std = math.sqrt((20**2 - 1) / 12)  # population std of 1..20
    assert out["bb_middle"][19] == pytest.approx(10.5)
    assert out["bb_upper"][19] == pytest.approx(10.5 + 2 * std, rel=1e-12)
    assert out["bb_lower"][19] == pytest.approx(10.5 - 2 * std, rel=1e-12)
    assert out["bb_pct_b"][19] == pytest.approx((20 - (10.5 - 2 * std)) / (4 * std), rel=1e-12)


def test_bollinger_of_a_flat_price_puts_close_in_the_middle() -> None:
    out = pl.DataFrame({"close": [7.0] * 20}).select(bollinger())
    assert out.row(19) == (7.0, 7.0, 7.0, 0.5)


def test_atr_of_a_constant_range_series() -> None:
    close = [10.0] * 30
    frame = _frame(close, high=[11.0] * 30, low=[9.0] * 30)
    out = frame.select(atr(14).alias("atr"))["atr"]
    assert out.head(13).null_count() == 13
    assert out.slice(13).to_list() == pytest.approx([2.0] * 17, rel=1e-15)


def test_true_range_uses_the_previous_close_on_a_gap() -> None:
    frame = _frame([10.0, 14.0], high=[10.5, 15.0], low=[9.5, 13.0])
    # day 2: high - low = 2, |15 - 10| = 5, |13 - 10| = 3 -> 5; day 1 has no previous close.
    assert frame.select(true_range().alias("tr"))["tr"].to_list() == [1.0, 5.0]


def test_volume_ratio_by_hand() -> None:
    frame = _frame([1.0] * 5, volume=[1, 1, 1, 1, 6])
    out = frame.select(volume_ratio(5).alias("vr"))["vr"]
    assert out.to_list() == [None] * 4 + [3.0]  # mean of 1,1,1,1,6 is 2
    zero = _frame([1.0] * 5, volume=[0] * 5).select(volume_ratio(5).alias("vr"))["vr"]
    assert zero[4] == 1.0


def test_realized_vol_of_constant_growth_is_zero_and_scales_by_sqrt_252() -> None:
    steady = pl.DataFrame({"close": [100.0 * 1.01**i for i in range(25)]})
    assert steady.select(realized_volatility(20).alias("v"))["v"][24] == pytest.approx(0, abs=1e-12)
    # alternating +-10 % log moves: sample std of 20 values (10 of each sign) = 0.1 * sqrt(20/19)
    log_close = np.cumsum([0.0] + [0.1 if i % 2 == 0 else -0.1 for i in range(20)])
    zigzag = pl.DataFrame({"close": np.exp(log_close)})
    expected = 0.1 * math.sqrt(20 / 19) * math.sqrt(252)
    assert zigzag.select(realized_volatility(20).alias("v"))["v"][20] == pytest.approx(expected)


# --- compute_indicators: shape, warm-up, errors --------------------------------------------------


def _random_walk(n: int, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    return _frame(
        close.tolist(),
        open=(close * 1.001).tolist(),
        high=(close * 1.02).tolist(),
        low=(close * 0.98).tolist(),
        volume=rng.integers(1_000, 5_000, n).tolist(),
    )


def test_output_columns_types_and_order() -> None:
    result = compute_indicators(_random_walk(80))
    assert result.columns == ["date", "ticker", "close", "volume", *INDICATOR_COLUMNS]
    assert result.schema["date"] == pl.Date
    assert result.schema["volume"] == pl.Int64
    assert all(result.schema[c] == pl.Float64 for c in INDICATOR_COLUMNS)
    assert len(INDICATOR_COLUMNS) == 24 and len(set(INDICATOR_COLUMNS)) == 24


def test_warmup_is_49_rows_set_by_sma_50() -> None:
    prices = _random_walk(120)
    full = compute_indicators(prices, drop_warmup=False)
    incomplete = full.select(pl.any_horizontal(pl.col(INDICATOR_COLUMNS).is_null()))
    assert incomplete.to_series().to_list() == [True] * WARMUP_ROWS + [False] * (120 - WARMUP_ROWS)
    assert WARMUP_ROWS == 49
    assert full["sma_50"].slice(0, 49).null_count() == 49 and full["sma_50"][49] is not None
    trimmed = compute_indicators(prices)
    assert trimmed.height == 120 - WARMUP_ROWS
    assert trimmed["date"][0] == prices["date"][WARMUP_ROWS]
    assert trimmed.equals(full.slice(WARMUP_ROWS))
    values = trimmed.select(INDICATOR_COLUMNS).to_numpy()
    assert np.isfinite(values).all()


def test_unsorted_input_is_sorted_by_date() -> None:
    prices = _random_walk(70)
    shuffled = prices.sample(fraction=1.0, shuffle=True, seed=1)
    assert not shuffled["date"].is_sorted()
    result = compute_indicators(shuffled)
    assert result["date"].is_sorted()
    assert result.equals(compute_indicators(prices))


def test_missing_columns_raise() -> None:
    with pytest.raises(ValueError, match=r"missing columns \['high', 'low'\]"):
        compute_indicators(_random_walk(60).drop("high", "low"))


def test_empty_input_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        compute_indicators(_random_walk(60).clear())


def test_too_short_history_raises_with_warmup_but_not_without() -> None:
    short = _random_walk(WARMUP_ROWS)
    with pytest.raises(ValueError, match="too short"):
        compute_indicators(short)
    assert compute_indicators(short, drop_warmup=False).height == WARMUP_ROWS


def test_several_tickers_in_one_frame_raise() -> None:
    prices = _random_walk(60)
    mixed = pl.concat([prices, prices.with_columns(pl.lit("OTHER").alias("ticker"))])
    with pytest.raises(ValueError, match="one ticker"):
        compute_indicators(mixed)


@pytest.mark.parametrize(
    ("column", "value"), [("close", 0.0), ("close", float("nan")), ("low", None), ("high", -1.0)]
)
def test_unusable_prices_raise(column: str, value: float | None) -> None:
    prices = _random_walk(60)
    broken = prices.with_columns(
        pl.when(pl.int_range(pl.len()) == 30).then(value).otherwise(pl.col(column)).alias(column)
    )
    with pytest.raises(ValueError, match=str(prices["date"][30])):
        compute_indicators(broken)


def test_duplicated_dates_raise() -> None:
    prices = _random_walk(60)
    with pytest.raises(ValueError, match="unique"):
        compute_indicators(pl.concat([prices, prices.tail(1)]))
