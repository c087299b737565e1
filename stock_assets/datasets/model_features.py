"""Scale-free, point-in-time model features from an indicator frame.

Why scale-free: inputs are ratios and log returns, so what the parent learns on ^GSPC transfers
to a stock priced 100x differently. Every feature at date t reads that row's indicators only,
which only look back.
"""

from __future__ import annotations

import polars as pl

# Indicator columns the features below are derived from (the contract of features/indicators.py).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "date", "close", "log_ret_1d", "ret_5d", "ret_20d", "rsi_14", "macd", "macd_signal",
    "macd_hist", "sma_5", "sma_10", "sma_20", "sma_50", "ema_5", "ema_10", "ema_20", "ema_50",
    "bb_upper", "bb_middle", "bb_lower", "bb_pct_b", "atr_14", "volume_ratio_5",
    "volume_ratio_20", "realized_vol_20",
)  # fmt: skip


def _feature_expressions() -> dict[str, pl.Expr]:
    """Scale-free model features: price levels become ratios to the close."""
    close = pl.col("close")
    features: dict[str, pl.Expr] = {
        "log_ret_1d": pl.col("log_ret_1d"),
        "ret_5d": pl.col("ret_5d"),
        "ret_20d": pl.col("ret_20d"),
        "rsi_14": pl.col("rsi_14") / 100.0,
        "macd_to_close": pl.col("macd") / close,
        "macd_signal_to_close": pl.col("macd_signal") / close,
        "macd_hist_to_close": pl.col("macd_hist") / close,
    }
    for average in ("sma_5", "sma_10", "sma_20", "sma_50", "ema_5", "ema_10", "ema_20", "ema_50"):
        features[f"close_to_{average}"] = close / pl.col(average) - 1.0
    features |= {
        "bb_pct_b": pl.col("bb_pct_b"),
        "bb_width": (pl.col("bb_upper") - pl.col("bb_lower")) / pl.col("bb_middle"),
        "atr_to_close": pl.col("atr_14") / close,
        "log_volume_ratio_5": pl.col("volume_ratio_5").log(),
        "log_volume_ratio_20": pl.col("volume_ratio_20").log(),
        "realized_vol_20": pl.col("realized_vol_20"),
    }
    return features


MODEL_FEATURES: tuple[str, ...] = tuple(_feature_expressions())


def model_feature_frame(indicators: pl.DataFrame) -> pl.DataFrame:
    """`date, close` + MODEL_FEATURES, one row per trading day, warm-up rows dropped.

    Every feature at date t is computed from that row's indicators, which only look back, so
    the frame is point-in-time. Interior gaps (a non-finite ratio, e.g. zero volume) carry the
    previous value forward; a feature missing everywhere (an index without volume) becomes 0.
    """
    missing = [column for column in REQUIRED_COLUMNS if column not in indicators.columns]
    if missing:
        raise ValueError(f"indicator frame lacks columns {missing}")
    if "ticker" in indicators.columns and indicators["ticker"].n_unique() > 1:
        raise ValueError("model_feature_frame expects one ticker per frame")
    frame = (
        indicators.filter(pl.col("close").is_finite() & (pl.col("close") > 0))
        .sort("date")
        .select(
            "date",
            pl.col("close").cast(pl.Float64),
            *[expr.cast(pl.Float64).alias(name) for name, expr in _feature_expressions().items()],
        )
        .with_columns(
            pl.when(pl.col(name).is_finite()).then(pl.col(name)).otherwise(None).alias(name)
            for name in MODEL_FEATURES
        )
    )
    if frame["date"].is_duplicated().any():
        raise ValueError("indicator frame has duplicate dates")
    all_missing = [name for name in MODEL_FEATURES if frame[name].null_count() == frame.height]
    frame = frame.with_columns(pl.lit(0.0).alias(name) for name in all_missing)
    complete = frame.select(pl.all_horizontal(pl.col(MODEL_FEATURES).is_not_null()))
    first_complete = complete.to_series().arg_true()
    if first_complete.len() == 0:
        return frame.clear()
    return (
        frame.slice(first_complete[0])
        .with_columns(pl.col(MODEL_FEATURES).fill_null(strategy="forward").fill_null(0.0))
    )
