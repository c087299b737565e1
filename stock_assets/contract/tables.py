"""The lake tables' columns, types and units, and the columns serving/ relies on.

Units, one per kind of number (a column's name says which when it could be read two ways):
- prices (`open` ... `close`, `last_close`, `predicted_close`, `close_qNN`, `naive_close`,
  `actual_close`): the ticker's quote currency, split- but not dividend-adjusted (`adj_close` is
  both); `volume`: shares.
- errors and shares (`ape`, `naive_ape`, `rolling_*`, `coverage*`, `p_up`, `drift_share`,
  strategy returns): fractions, 0.05 = 5 %.
- EXCEPT the model cards' MAPE columns (`test_mape_h1`, `test_mape_h5`, `naive_mape_h5`,
  `network_test_mape_h5`, `champion_mape_h5`), which are percent, as MLflow logs them:
  `card_mape_fraction` converts. A card's `_h5` columns hold the last forecast step, i.e. the
  configured horizon H (5 by default), whatever H is.

Why two kinds of column for serving: a file missing a REQUIRED column is not the contract's table
(a 503), while an OPTIONAL column is one a newer pipeline adds (the probabilistic forecast's
quantiles and scores, the model card's interval metrics). A lake written before it existed still
serves: the reader adds the absent optional columns as nulls, so every route reads one shape.
"""

from __future__ import annotations

import math

import polars as pl

from stock_assets.contract.names import (
    AGENT_REPORT,
    CHILD_MODEL,
    DAILY_FORECAST,
    FORECAST_PERFORMANCE,
    MARKET_INDEX_PRICES,
    MODEL_HISTORY,
    PARENT_MODEL,
    RAW_PRICES,
    STRATEGY_BACKTEST,
    STRATEGY_METRICS,
)

# -- the probabilistic forecast's names ------------------------------------------------------
QUANTILES: tuple[float, ...] = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
# daily_forecast's predicted close at each quantile: close_q05 ... close_q95 (monotone in q).
QUANTILE_COLUMNS: tuple[str, ...] = tuple(f"close_q{round(q * 100):02d}" for q in QUANTILES)
# Central intervals by nominal coverage in percent: (lower column, upper column).
INTERVALS: dict[int, tuple[str, str]] = {
    50: ("close_q25", "close_q75"),
    80: ("close_q10", "close_q90"),
    90: ("close_q05", "close_q95"),
}
# The probability that a step's close ends above the forecast's last close.
P_UP = "p_up"

# -- raw_prices / market_index_prices -----------------------------------------------------------
PRICE_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "adj_close": pl.Float64(),
    "volume": pl.Int64(),
    "ticker": pl.String(),
}
# What a price source must answer (before the ticker column is added).
PRICE_COLUMNS: tuple[str, ...] = ("date", "open", "high", "low", "close", "adj_close", "volume")

# -- model cards (child_model, parent_model, model_history) -------------------------------------
CARD_MAPE_PERCENT = 100.0  # the cards' MAPE columns are percent (see the module docstring)


def card_mape_fraction(value: object) -> float | None:
    """A model card's MAPE (percent) as the fraction every other table uses; None if not finite."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number / CARD_MAPE_PERCENT if math.isfinite(number) else None


MODEL_CARD_COLUMNS = (
    "ticker", "model_name", "model_version", "run_id", "strategy", "architecture", "trained_at",
    "train_start", "train_end", "test_mape_h1", "test_mape_h5", "naive_mape_h5",
    "directional_accuracy_h5", "promoted", "production_version", "decision_reason",
)  # fmt: skip

# -- agent_report -------------------------------------------------------------------------------
# The contract's columns, then the critic's outcome and the model version the report was about.
REPORT_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "as_of_date": pl.Date(),
    "stance": pl.String(),
    "confidence": pl.String(),
    "rationale": pl.String(),
    "markdown": pl.String(),
    "author": pl.String(),
    "cache_hit": pl.Boolean(),
    "critic_rounds": pl.Int64(),
    "critic_approved": pl.Boolean(),
    "model_version": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
}

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    RAW_PRICES: ("date", "close"),
    MARKET_INDEX_PRICES: ("date", "close"),
    DAILY_FORECAST: (
        "ticker", "as_of_date", "target_date", "horizon", "last_close", "predicted_return",
        "predicted_close", "model_name", "model_version", "created_at",
    ),
    FORECAST_PERFORMANCE: (
        "as_of_date", "target_date", "horizon", "predicted_close", "actual_close", "naive_close",
        "ape", "naive_ape", "direction_hit", "in_sample", "model_version", "rolling_mape",
        "rolling_naive_mape", "rolling_directional_accuracy", "rolling_n",
    ),
    CHILD_MODEL: MODEL_CARD_COLUMNS,
    PARENT_MODEL: MODEL_CARD_COLUMNS,
    MODEL_HISTORY: MODEL_CARD_COLUMNS,
    STRATEGY_BACKTEST: (
        "date", "decision_date", "position", "asset_return", "turnover", "cost",
        "strategy_return", "buy_hold_return", "equity", "buy_hold_equity", "drawdown",
        "buy_hold_drawdown",
    ),
    STRATEGY_METRICS: (
        "strategy", "first_date", "last_date", "sessions", "rebalance", "horizon", "cost_bps",
        "p_up_threshold", "total_return", "cagr", "volatility", "sharpe", "sortino", "calmar",
        "max_drawdown", "win_rate", "profit_factor", "trades", "turnover", "exposure",
    ),
    AGENT_REPORT: (
        "as_of_date", "stance", "confidence", "rationale", "markdown", "author", "cache_hit",
        "created_at",
    ),
}  # fmt: skip

# forecast_performance's per-row scores of the probabilistic forecast, and its rolling scores
# (repeated on every row, like rolling_mape). Fractions / shares, all nullable.
COVERAGE_ROW_COLUMNS = ("covered_50", "covered_80", "covered_90")
SCORE_ROW_COLUMNS = ("pinball", "winkler_80", "winkler_90", P_UP, "brier", "brier_climatology",
                     "ase")  # fmt: skip
ROLLING_SCORE_COLUMNS = (
    "rolling_coverage_50", "rolling_coverage_80", "rolling_coverage_90", "rolling_pinball",
    "rolling_winkler_80", "rolling_winkler_90", "rolling_brier", "rolling_brier_climatology",
    "rolling_skill", "rolling_mase", "rolling_call_rate", "rolling_hit_rate",
)  # fmt: skip
# The model card's interval metrics (test window, last horizon step).
CARD_INTERVAL_COLUMNS = ("test_coverage_80_h5", "test_winkler_80_h5", "baseline_winkler_80_h5")

_FLOAT, _BOOL, _STR = pl.Float64(), pl.Boolean(), pl.String()
_CARD_OPTIONAL: dict[str, pl.DataType] = {
    **dict.fromkeys(CARD_INTERVAL_COLUMNS, _FLOAT),
    "best_vol_baseline": _STR,
    # The blocking checks' outcome and the version forecasts come from (null: none passed).
    "checks_passed": _BOOL,
    "checks_detail": _STR,
    "forecast_version": _STR,
}
OPTIONAL_COLUMNS: dict[str, dict[str, pl.DataType]] = {
    DAILY_FORECAST: dict.fromkeys((*QUANTILE_COLUMNS, P_UP), _FLOAT),
    FORECAST_PERFORMANCE: {
        **dict.fromkeys(COVERAGE_ROW_COLUMNS, _BOOL),
        **dict.fromkeys(SCORE_ROW_COLUMNS, _FLOAT),
        "called": _BOOL,
        **dict.fromkeys(ROLLING_SCORE_COLUMNS, _FLOAT),
    },
    CHILD_MODEL: _CARD_OPTIONAL,
    PARENT_MODEL: _CARD_OPTIONAL,
    MODEL_HISTORY: _CARD_OPTIONAL,
}


def missing_required(asset: str, frame: pl.DataFrame) -> list[str]:
    """The contract's columns `frame` lacks (a file that is not the asset's table)."""
    return [c for c in REQUIRED_COLUMNS.get(asset, ()) if c not in frame.columns]


def with_optional_columns(asset: str, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every optional column of `asset` it lacks added as typed nulls."""
    absent = {c: t for c, t in OPTIONAL_COLUMNS.get(asset, {}).items() if c not in frame.columns}
    if not absent:
        return frame
    return frame.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in absent.items())
