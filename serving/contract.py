"""The lake tables serving reads and the columns it relies on (docs/ARCHITECTURE.md, "The lake").

Why two kinds of column: a file missing a REQUIRED column is not the contract's table (a 503),
while an OPTIONAL column is one a newer pipeline adds (the probabilistic forecast's quantiles and
scores, the model card's interval metrics). A lake written before it existed still serves: the
reader adds the absent optional columns as nulls, so every route reads one shape and old
partitions answer null instead of failing.
"""

from __future__ import annotations

import polars as pl

from stock_assets.quantiles import P_UP, QUANTILE_COLUMNS

RAW_PRICES = "raw_prices"
MARKET_INDEX_PRICES = "market_index_prices"
DAILY_FORECAST = "daily_forecast"
FORECAST_PERFORMANCE = "forecast_performance"
CHILD_MODEL = "child_model"
PARENT_MODEL = "parent_model"
MODEL_HISTORY = "model_history"
AGENT_REPORT = "agent_report"
STRATEGY_BACKTEST = "strategy_backtest"
STRATEGY_METRICS = "strategy_metrics"

# Which `python -m stock_assets materialize --stages` value produces each asset (for 404 hints).
STAGE_OF_ASSET = {
    RAW_PRICES: "data",
    MARKET_INDEX_PRICES: "data",
    CHILD_MODEL: "models",
    PARENT_MODEL: "models",
    MODEL_HISTORY: "models",
    DAILY_FORECAST: "forecasts",
    FORECAST_PERFORMANCE: "forecasts",
    AGENT_REPORT: "reports",
    STRATEGY_BACKTEST: "strategy",
    STRATEGY_METRICS: "strategy",
}

MODEL_CARD_COLUMNS = (
    "ticker", "model_name", "model_version", "run_id", "strategy", "architecture", "trained_at",
    "train_start", "train_end", "test_mape_h1", "test_mape_h5", "naive_mape_h5",
    "directional_accuracy_h5", "promoted", "production_version", "decision_reason",
)  # fmt: skip
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
