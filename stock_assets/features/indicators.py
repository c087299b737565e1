"""Technical indicators of one ticker's daily prices, as Polars expressions.

These are the model's input features, so each is defined once, here, as a small pure function and
checked in the tests against an independent pandas/numpy implementation. Conventions:

- Every indicator is computed on `close`, which is split-adjusted but not dividend-adjusted, so
  that price-scale indicators (SMA, EMA, Bollinger, ATR) share a scale with `high`/`low` and with
  the `close` a forecast predicts. Dividend days (a ~0.5-1 % gap a quarter) are left as they are.
- EMAs are recursive (`adjust=False`: y0 = x0, y_t = a*x_t + (1-a)*y_{t-1}), like most charting
  tools; an EMA of span s uses a = 2/(s+1) and stays null until it has s observations.
- RSI and ATR use Wilder's smoothing: the same recursion with a = 1/14, null until 14 observations.
- Bollinger bands use the POPULATION standard deviation (ddof=0) of the last 20 closes, as
  Bollinger defined them; realized volatility uses the SAMPLE standard deviation (ddof=1) of the
  last 20 log returns, annualised by sqrt(252).
- Degenerate windows get their neutral value instead of NaN: RSI 50 when the price did not move
  (100 when it only rose, 0 when it only fell), %b 0.5 when the band has zero width, volume ratio
  1 when the average volume is zero. So after the warm-up every indicator is finite.
"""

from __future__ import annotations

import math

import polars as pl

INDICATOR_COLUMNS: tuple[str, ...] = (
    "ret_1d",
    "ret_5d",
    "ret_20d",
    "log_ret_1d",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "sma_5",
    "sma_10",
    "sma_20",
    "sma_50",
    "ema_5",
    "ema_10",
    "ema_20",
    "ema_50",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "bb_pct_b",
    "atr_14",
    "volume_ratio_5",
    "volume_ratio_20",
    "realized_vol_20",
)

PRICE_INPUT_COLUMNS: tuple[str, ...] = (
    "date",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "ticker",
)

# Rows at the start of a history where some indicator is still null: sma_50 needs 50 closes, so
# its first value is on row 49 (0-based). Every other indicator is ready by then.
WARMUP_ROWS: int = 49

TRADING_DAYS_PER_YEAR: int = 252


def simple_return(periods: int = 1, price: str = "close") -> pl.Expr:
    """Simple return over `periods` rows: p_t / p_{t-periods} - 1."""
    return pl.col(price) / pl.col(price).shift(periods) - 1.0


def log_return(price: str = "close") -> pl.Expr:
    """One-row log return ln(p_t / p_{t-1}): additive over time, used for volatility."""
    return (pl.col(price) / pl.col(price).shift(1)).log()


def sma(window: int, column: str = "close") -> pl.Expr:
    """Simple moving average of the last `window` rows (null until the window is full)."""
    return pl.col(column).rolling_mean(window_size=window, min_samples=window)


def ema(span: int, column: str | pl.Expr = "close") -> pl.Expr:
    """Recursive EMA with a = 2/(span+1), null until `span` observations."""
    source = pl.col(column) if isinstance(column, str) else column
    return source.ewm_mean(span=span, adjust=False, min_samples=span)


def wilder_smoothing(source: pl.Expr, period: int) -> pl.Expr:
    """Wilder's running average (a = 1/period), null until `period` observations."""
    return source.ewm_mean(alpha=1.0 / period, adjust=False, min_samples=period)


def rsi(period: int = 14, price: str = "close") -> pl.Expr:
    """Relative Strength Index 100 - 100/(1 + avg_gain/avg_loss) with Wilder smoothing."""
    change = pl.col(price).diff()
    avg_gain = wilder_smoothing(change.clip(lower_bound=0.0), period)
    avg_loss = wilder_smoothing(-change.clip(upper_bound=0.0), period)
    return (
        pl.when(avg_gain.is_null() | avg_loss.is_null())
        .then(None)
        .when(avg_loss == 0.0)
        .then(pl.when(avg_gain == 0.0).then(50.0).otherwise(100.0))
        .otherwise(100.0 - 100.0 / (1.0 + avg_gain / avg_loss))
    )


def macd(fast: int = 12, slow: int = 26, signal: int = 9, price: str = "close") -> list[pl.Expr]:
    """MACD line (EMA fast - EMA slow), its signal line (EMA of MACD) and the histogram."""
    line = ema(fast, price) - ema(slow, price)
    signal_line = ema(signal, line)
    return [
        line.alias("macd"),
        signal_line.alias("macd_signal"),
        (line - signal_line).alias("macd_hist"),
    ]


def bollinger(window: int = 20, num_std: float = 2.0, price: str = "close") -> list[pl.Expr]:
    """Bollinger bands (SMA +/- num_std population std) and %b, the close's place in the band."""
    middle = sma(window, price)
    std = pl.col(price).rolling_std(window_size=window, min_samples=window, ddof=0)
    upper = middle + num_std * std
    lower = middle - num_std * std
    width = upper - lower
    pct_b = pl.when(width == 0.0).then(0.5).otherwise((pl.col(price) - lower) / width)
    return [
        upper.alias("bb_upper"),
        middle.alias("bb_middle"),
        lower.alias("bb_lower"),
        pct_b.alias("bb_pct_b"),
    ]


def true_range() -> pl.Expr:
    """max(high - low, |high - prev close|, |low - prev close|); high - low on the first row."""
    previous_close = pl.col("close").shift(1)
    return pl.max_horizontal(
        pl.col("high") - pl.col("low"),
        (pl.col("high") - previous_close).abs(),
        (pl.col("low") - previous_close).abs(),
    )


def atr(period: int = 14) -> pl.Expr:
    """Average True Range: Wilder-smoothed true range."""
    return wilder_smoothing(true_range(), period)


def volume_ratio(window: int) -> pl.Expr:
    """Today's volume over its `window`-day average (1.0 when that average is zero)."""
    volume = pl.col("volume").cast(pl.Float64)
    average = volume.rolling_mean(window_size=window, min_samples=window)
    return pl.when(average == 0.0).then(1.0).otherwise(volume / average)


def realized_volatility(window: int = 20, price: str = "close") -> pl.Expr:
    """Annualised sample std of the last `window` daily log returns."""
    return log_return(price).rolling_std(
        window_size=window, min_samples=window, ddof=1
    ) * math.sqrt(TRADING_DAYS_PER_YEAR)


def indicator_expressions() -> list[pl.Expr]:
    """All INDICATOR_COLUMNS as named expressions, in that order."""
    return [
        simple_return(1).alias("ret_1d"),
        simple_return(5).alias("ret_5d"),
        simple_return(20).alias("ret_20d"),
        log_return().alias("log_ret_1d"),
        rsi(14).alias("rsi_14"),
        *macd(12, 26, 9),
        *[sma(w).alias(f"sma_{w}") for w in (5, 10, 20, 50)],
        *[ema(s).alias(f"ema_{s}") for s in (5, 10, 20, 50)],
        *bollinger(20, 2.0),
        atr(14).alias("atr_14"),
        volume_ratio(5).alias("volume_ratio_5"),
        volume_ratio(20).alias("volume_ratio_20"),
        realized_volatility(20).alias("realized_vol_20"),
    ]


def _validate_prices(prices: pl.DataFrame) -> None:
    missing = [c for c in PRICE_INPUT_COLUMNS if c not in prices.columns]
    if missing:
        raise ValueError(
            f"compute_indicators: missing columns {missing}; "
            f"expected {list(PRICE_INPUT_COLUMNS)}, got {prices.columns}."
        )
    if prices.is_empty():
        raise ValueError("compute_indicators: the price frame is empty.")
    tickers = prices["ticker"].unique().to_list()
    if len(tickers) != 1:
        raise ValueError(
            f"compute_indicators: expected one ticker per frame, got {sorted(map(str, tickers))}."
        )
    if prices["date"].null_count() or prices["date"].is_duplicated().any():
        raise ValueError("compute_indicators: dates must be unique and non-null.")
    bad = prices.filter(
        pl.any_horizontal(
            *[
                pl.col(c).is_null() | ~pl.col(c).cast(pl.Float64).is_finite() | (pl.col(c) <= 0)
                for c in ("high", "low", "close")
            ],
            pl.col("volume").is_null() | (pl.col("volume") < 0),
        )
    )
    if bad.height:
        dates = ", ".join(str(d) for d in bad["date"].sort().head(5).to_list())
        raise ValueError(
            f"compute_indicators: {bad.height} rows with a missing, non-finite or non-positive "
            f"high/low/close or a missing/negative volume (first: {dates}); "
            "run the data-quality checks upstream."
        )


def compute_indicators(prices: pl.DataFrame, drop_warmup: bool = True) -> pl.DataFrame:
    """`date, ticker, close, volume` + INDICATOR_COLUMNS for one ticker, sorted by date.

    With drop_warmup the first WARMUP_ROWS rows (where some indicator is still null) are removed,
    so every value left is finite; a history shorter than WARMUP_ROWS + 1 rows is an error then.
    """
    _validate_prices(prices)
    if drop_warmup and prices.height <= WARMUP_ROWS:
        raise ValueError(
            f"compute_indicators: {prices.height} rows is too short; indicators need "
            f"{WARMUP_ROWS + 1} rows (sma_50) before the first complete row."
        )
    frame = (
        prices.sort("date")
        .with_columns(
            pl.col("close").cast(pl.Float64),
            pl.col("high").cast(pl.Float64),
            pl.col("low").cast(pl.Float64),
            pl.col("volume").cast(pl.Int64),
        )
        .select("date", "ticker", "close", "volume", *indicator_expressions())
    )
    if drop_warmup:
        frame = frame.slice(WARMUP_ROWS)
        not_finite = frame.filter(
            pl.any_horizontal(
                *[pl.col(c).is_null() | ~pl.col(c).is_finite() for c in INDICATOR_COLUMNS]
            )
        )
        if not_finite.height:  # impossible for validated input; guards the promise to callers
            raise ValueError(
                f"compute_indicators: non-finite indicators after warm-up on "
                f"{not_finite['date'].head(5).to_list()}."
            )
    return frame
