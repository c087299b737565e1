"""Point-in-time forecasts of one ticker, as plain functions over Polars frames and a network.

The promise: the forecast made "as of" date D reads only what was known at D's close. Its input
window is the last `context_length` of the ticker's trading dates on or before D, with features
from the feature store's point-in-time history; D itself must have a price row (a missing day is
an error, never a silently older window); and the Feast rows must be the ones for those very
dates: Feast forward-fills a ticker's last row for up to its TTL, so a table published before D's
prices were ingested would otherwise pass yesterday's features off as today's.

For the latest session (the live case) the window's last row is the one the Feast online store
serves (`serve_online_row`), checked against the offline row of the same date: what the model is
served online is then provably what it would have read offline (no training/serving skew).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime

import numpy as np
import polars as pl

from stock_assets.features.feature_store import SKEW_ABS_TOLERANCE, SKEW_REL_TOLERANCE
from stock_assets.market_calendar import next_sessions
from stock_assets.quantiles import P_UP, QUANTILE_COLUMNS

# The daily_forecast table (docs/ARCHITECTURE.md), one row per horizon step.
FORECAST_SCHEMA: dict[str, pl.DataType] = {
    "ticker": pl.String(),
    "as_of_date": pl.Date(),
    "target_date": pl.Date(),
    "horizon": pl.Int64(),
    "last_close": pl.Float64(),
    "predicted_return": pl.Float64(),
    "predicted_close": pl.Float64(),
    # The forecast distribution of the step's close (monotone in q) and P(close > last_close).
    **{column: pl.Float64() for column in QUANTILE_COLUMNS},
    P_UP: pl.Float64(),
    "model_name": pl.String(),
    "model_version": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
}
# Rows fetched beyond the context: model_feature_frame drops leading incomplete rows and carries
# interior gaps forward, so a few extra rows make the window equal to the one training built.
WINDOW_MARGIN = 10
CLOSE_TOLERANCE = 1e-9



class InputsNotReady(RuntimeError):
    """The inputs for a date are not there yet (prices not ingested, Feast not published)."""


class OnlineSkew(ValueError):
    """The online store serves a different row than the offline store holds for the same date."""


def empty_forecast() -> pl.DataFrame:
    """A partition with no forecast (the market was closed)."""
    return pl.DataFrame(schema=FORECAST_SCHEMA)


def require_price_row(prices: pl.DataFrame, as_of: date, ticker: str) -> float:
    """D's close from raw_prices, or InputsNotReady saying what is missing."""
    row = prices.filter(pl.col("date") == as_of)
    if row.height:
        return float(row["close"][0])
    last = prices["date"].max() if prices.height else None
    if last is None or last < as_of:
        raise InputsNotReady(
            f"{ticker}: prices for {as_of} not ingested yet (raw_prices[{ticker}] ends on {last}); "
            "materialize raw_prices, price_indicators and feast_features first."
        )
    raise InputsNotReady(
        f"{ticker}: raw_prices has no row for the session {as_of} (the source skipped it); "
        "refusing to forecast from an older window."
    )


def input_dates(price_dates: Sequence[date] | pl.Series, as_of: date, length: int) -> list[date]:
    """The last `length` of the ticker's trading dates on or before `as_of` (later dates unread)."""
    dates = pl.Series("date", list(price_dates), dtype=pl.Date)
    return dates.filter(dates <= as_of).sort().tail(length).to_list()


def verify_feature_rows(features: pl.DataFrame, prices: pl.DataFrame, ticker: str) -> None:
    """Every feature row is the one of its own date: present, and its close is that day's close.

    Feast answers a date it has no row for with the previous row (within the view's TTL), so the
    close is the witness: a forward-filled row carries an older day's close.
    """
    joined = features.select("date", pl.col("close").alias("feature_close")).join(
        prices.select("date", "close"), on="date", how="left"
    )
    missing = joined.filter(pl.col("feature_close").is_null())
    stale = joined.filter(
        pl.col("feature_close").is_not_null()
        & (
            pl.col("close").is_null()
            | (
                (pl.col("feature_close") - pl.col("close")).abs()
                > CLOSE_TOLERANCE * pl.col("close").abs()
            )
        )
    )
    if missing.height or stale.height:
        first = (missing["date"].to_list() + stale["date"].to_list())[0]
        raise InputsNotReady(
            f"{ticker}: the feature store has no features of their own for "
            f"{missing.height + stale.height} input dates (first {first}): materialize "
            "feast_features after price_indicators."
        )


def forecast_rows(
    *,
    ticker: str,
    as_of: date,
    last_close: float,
    log_returns: np.ndarray,
    model_name: str,
    model_version: str,
    created_at: datetime,
    quantile_closes: np.ndarray,
    p_up: np.ndarray,
    target_dates: Sequence[date] | None = None,
) -> pl.DataFrame:
    """One forecast as daily_forecast rows: the next H sessions after `as_of` (NYSE calendar);
    quantile_closes (H, len(QUANTILE_COLUMNS)), p_up (H,)."""
    returns = np.asarray(log_returns, dtype=np.float64).reshape(-1)
    horizon = len(returns)
    targets = list(target_dates) if target_dates is not None else next_sessions(as_of, horizon)
    quantiles = np.sort(np.asarray(quantile_closes, dtype=np.float64).reshape(horizon, -1), axis=1)
    return pl.DataFrame(
        {
            "ticker": [ticker] * horizon,
            "as_of_date": [as_of] * horizon,
            "target_date": targets,
            "horizon": list(range(1, horizon + 1)),
            "last_close": [last_close] * horizon,
            "predicted_return": returns.tolist(),
            "predicted_close": (last_close * np.exp(returns)).tolist(),
            **{column: quantiles[:, i].tolist() for i, column in enumerate(QUANTILE_COLUMNS)},
            P_UP: np.clip(np.asarray(p_up, dtype=np.float64).reshape(horizon), 0, 1).tolist(),
            "model_name": [model_name] * horizon,
            "model_version": [str(model_version)] * horizon,
            "created_at": [created_at] * horizon,
        },
        schema=FORECAST_SCHEMA,
    )


def build_windows(
    features: pl.DataFrame, as_of_dates: Sequence[date], scaler, context_length: int
) -> np.ndarray:
    """Scaled input windows, one per date, each from feature rows dated on or before it only."""
    from stock_assets.datasets.windows import latest_window

    windows = []
    for as_of in as_of_dates:
        recent = features.filter(pl.col("date") <= as_of).tail(context_length + WINDOW_MARGIN)
        windows.append(latest_window(recent, scaler, context_length, as_of))
    return np.concatenate(windows, axis=0)


def vol_features_at(
    prices: pl.DataFrame, features: pl.DataFrame, as_of_dates: Sequence[date]
) -> np.ndarray:
    """The spread model's volatility features at each date's close: close-to-close volatilities
    from the ticker's prices and the ATR ratio from its feature row, both read up to that date
    only (each is a forward recursion or a trailing window, so later rows cannot change them)."""
    from stock_assets.datasets.windows import model_feature_frame
    from stock_assets.features.volatility import volatility_features

    ordered = prices.sort("date").filter(pl.col("date") <= max(as_of_dates))
    atr = (
        model_feature_frame(features.filter(pl.col("date") <= max(as_of_dates)))
        .select("date", "atr_to_close")
    )
    joined = ordered.select("date", "close").join(atr, on="date", how="left")
    table = volatility_features(joined["close"].to_numpy(), joined["atr_to_close"].to_numpy())
    row = {day: index for index, day in enumerate(joined["date"].to_list())}
    return table[[row[day] for day in as_of_dates]]


def forecast_dates(
    *,
    ticker: str,
    as_of_dates: Sequence[date],
    prices: pl.DataFrame,
    features: pl.DataFrame,
    network,
    scaler,
    spread,
    context_length: int,
    model_name: str,
    model_version: str,
    created_at: datetime,
) -> dict[date, pl.DataFrame]:
    """Forecasts for several sessions of one ticker in one forward pass (a back-test or a day):
    the network's median log returns, and around them the spread model's quantiles and p_up.

    `prices` and `features` may extend past the dates: every window is cut at its own date.
    """
    from stock_assets.modeling.probabilistic import distribution
    from stock_assets.modeling.training import predict_returns

    if not as_of_dates:
        return {}
    last_closes = {d: require_price_row(prices, d, ticker) for d in as_of_dates}
    X = build_windows(features, as_of_dates, scaler, context_length)
    returns = predict_returns(network, X)
    closes, p_up = distribution(
        returns, spread, vol_features_at(prices, features, as_of_dates),
        np.array([last_closes[d] for d in as_of_dates]),
    )
    if not np.isfinite(returns).all():
        bad = [d for d, row in zip(as_of_dates, returns, strict=True) if not np.isfinite(row).all()]
        raise ValueError(f"{ticker}: the model predicted non-finite returns for {bad[:5]}")
    return {
        d: forecast_rows(
            ticker=ticker,
            as_of=d,
            last_close=last_closes[d],
            log_returns=row,
            model_name=model_name,
            model_version=model_version,
            created_at=created_at,
            quantile_closes=closes[i],
            p_up=p_up[i],
        )
        for i, (d, row) in enumerate(zip(as_of_dates, returns, strict=True))
    }


def _same(offline: object, online: object) -> bool:
    if offline is None or online is None:
        return offline is None and online is None
    return math.isclose(
        float(offline), float(online), rel_tol=SKEW_REL_TOLERANCE, abs_tol=SKEW_ABS_TOLERANCE
    )


def serve_online_row(
    features: pl.DataFrame, online: Mapping[str, object] | None, ticker: str, as_of: date
) -> pl.DataFrame:
    """The window with its last row (`as_of`'s) replaced by the online store's row of the ticker.

    Raises OnlineSkew, naming the date or the first differing column, when the online row is
    missing, is for another date (stale: not materialized since), or differs from the offline row
    beyond float tolerance: such a ticker is not forecast from either store.
    """
    last = features.filter(pl.col("date") == as_of)
    if last.height != 1:
        raise InputsNotReady(f"{ticker}: the offline window has no row for {as_of}.")
    if online is None or online.get("date") is None:
        raise OnlineSkew(
            f"{ticker}: online/offline skew: the online store holds no row (offline has {as_of}); "
            "materialize feast_features."
        )
    if online["date"] != as_of:
        raise OnlineSkew(
            f"{ticker}: online/offline skew: the online store holds {online['date']}, the offline "
            f"store {as_of} (the online store was not materialized since); materialize "
            "feast_features."
        )
    columns = [c for c in features.columns if c not in ("date", "ticker")]
    offline = last.row(0, named=True)
    for column in columns:
        if not _same(offline[column], online.get(column)):
            raise OnlineSkew(
                f"{ticker}: online/offline skew on {as_of}: {column} is {online.get(column)} "
                f"online and {offline[column]} offline; materialize feast_features."
            )
    served = pl.DataFrame(
        [{"date": as_of, "ticker": ticker, **{c: online[c] for c in columns}}],
        schema=features.schema,
    )
    return pl.concat([features.filter(pl.col("date") != as_of), served]).sort("date")
