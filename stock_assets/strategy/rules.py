"""The long/flat trading rule over matured forecasts, its daily returns after costs, and their
metrics (quantstats'): pure functions over Polars frames, so the rule is tested without Dagster.

The rule. At the close of a decision session t the forecast made there (as_of_date == t) for the
holding horizon h gives an expected simple return `predicted_close / naive_close - 1` and `p_up`.
Go long for the next h sessions when

    expected return > round-trip cost (2 x cost_bps / 10,000)   and   p_up > p_up_threshold,

flat otherwise (also when session t has no matured forecast for h). `rebalance="daily"` decides
every session with the h = 1 forecast; `rebalance="horizon"` decides every `horizon` sessions
(non-overlapping holds) with the h = horizon forecast, starting at the first session that has one.
A position change costs `cost_bps` per unit of turnover (|position_t - position_t-1|), charged on
the first session of the new position; every strategy starts flat, so buy-and-hold pays one entry,
and an open position is marked to market at the end (no exit charge).

Timing: row `date` of the daily series is the session whose close ends that row's return; its
`decision_date` is the session whose close the position was decided at. Closes come from the
performance log itself (`naive_close` at as_of_date, `actual_close` at target_date).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import polars as pl

Rebalance = Literal["daily", "horizon"]
STRATEGIES = ("strategy", "buy_and_hold", "always_flat")
RETURN_COLUMNS = {"strategy": "strategy_return", "buy_and_hold": "buy_hold_return",
                  "always_flat": "flat_return"}  # fmt: skip
METRIC_COLUMNS = (
    "total_return", "cagr", "volatility", "sharpe", "sortino", "calmar", "max_drawdown",
    "win_rate", "profit_factor", "trades", "turnover", "exposure",
)  # fmt: skip
BPS = 10_000.0


@dataclass(frozen=True)
class Rule:
    """The rule's parameters (the asset's config maps onto these)."""

    horizon: int = 5
    rebalance: Rebalance = "horizon"
    cost_bps: float = 5.0
    p_up_threshold: float = 0.5

    @property
    def hold(self) -> int:
        """Sessions a decision holds: 1 when rebalancing daily, else the horizon."""
        return 1 if self.rebalance == "daily" else self.horizon

    @property
    def cost(self) -> float:
        return self.cost_bps / BPS

    def describe(self) -> str:
        return (
            f"long/flat, {self.rebalance} rebalancing on the h={self.hold} forecast: long when "
            f"expected return > {2 * self.cost_bps:g} bp round trip and p_up > "
            f"{self.p_up_threshold:g}; {self.cost_bps:g} bp per unit of turnover"
        )


def close_series(log: pl.DataFrame) -> pl.DataFrame:
    """`date, close`: every close the log knows (naive_close at as_of, actual_close at target)."""
    closes = pl.concat(
        [
            log.select(pl.col("as_of_date").alias("date"), pl.col("naive_close").alias("close")),
            log.select(pl.col("target_date").alias("date"), pl.col("actual_close").alias("close")),
        ]
    )
    return closes.drop_nulls().unique("date", keep="first").sort("date")


def signals(log: pl.DataFrame, horizon: int) -> pl.DataFrame:
    """`decision_date, expected_return, p_up` of the forecasts of `horizon` in the log."""
    rows = log.filter(pl.col("horizon") == horizon).sort("as_of_date")
    return rows.unique("as_of_date", keep="last", maintain_order=True).select(
        pl.col("as_of_date").alias("decision_date"),
        (pl.col("predicted_close") / pl.col("naive_close") - 1).alias("expected_return"),
        (pl.col("p_up") if "p_up" in rows.columns else pl.lit(None)).cast(pl.Float64).alias("p_up"),
    )


def goes_long(expected_return: float | None, p_up: float | None, rule: Rule) -> bool:
    """The documented decision: expected return beats the round-trip cost and p_up the threshold."""
    if expected_return is None or p_up is None or math.isnan(expected_return) or math.isnan(p_up):
        return False
    return expected_return > 2 * rule.cost and p_up > rule.p_up_threshold


def daily_positions(log: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    """`date, decision_date, position, expected_return, p_up, asset_return`: one row per session
    from the first decision's next session to the last full holding period's end."""
    if log.is_empty():  # no partition yet: not even columns
        return _empty_positions()
    closes = close_series(log)
    found = signals(log, rule.hold)
    if found.is_empty() or closes.height < 2:
        return _empty_positions()
    days = closes["date"].to_list()
    price = closes["close"].to_numpy()
    by_day = {row["decision_date"]: row for row in found.iter_rows(named=True)}
    index = {day: i for i, day in enumerate(days)}
    start = min(index[d] for d in by_day if d in index)
    rows = []
    for decide in range(start, len(days) - rule.hold, rule.hold):
        signal = by_day.get(days[decide], {})
        long = goes_long(signal.get("expected_return"), signal.get("p_up"), rule)
        for i in range(decide + 1, decide + rule.hold + 1):
            rows.append(
                {
                    "date": days[i],
                    "decision_date": days[decide],
                    "position": 1.0 if long else 0.0,
                    "expected_return": signal.get("expected_return"),
                    "p_up": signal.get("p_up"),
                    "asset_return": float(price[i] / price[i - 1] - 1),
                }
            )
    return pl.DataFrame(rows, schema=_POSITION_SCHEMA) if rows else _empty_positions()


_POSITION_SCHEMA = {
    "date": pl.Date, "decision_date": pl.Date, "position": pl.Float64,
    "expected_return": pl.Float64, "p_up": pl.Float64, "asset_return": pl.Float64,
}  # fmt: skip


def _empty_positions() -> pl.DataFrame:
    return pl.DataFrame(schema=_POSITION_SCHEMA)


def apply_costs(positions: pl.DataFrame, rule: Rule) -> pl.DataFrame:
    """The daily series: positions with turnover, costs, net returns of the strategy, buy-and-hold
    and always-flat, their equity curves (start 1.0) and drawdowns (quantstats')."""
    import quantstats as qs

    cost = rule.cost
    held = pl.col("position")
    frame = positions.with_columns(
        (held - held.shift(1, fill_value=0.0)).abs().alias("turnover"),
    ).with_columns(
        (pl.col("turnover") * cost).alias("cost"),
        (held * pl.col("asset_return") - pl.col("turnover") * cost).alias("strategy_return"),
        (pl.col("asset_return") - pl.when(pl.int_range(pl.len()) == 0).then(cost).otherwise(0.0))
        .alias("buy_hold_return"),
        pl.lit(0.0).alias("flat_return"),
    ).with_columns(
        (1 + pl.col("strategy_return")).cum_prod().alias("equity"),
        (1 + pl.col("buy_hold_return")).cum_prod().alias("buy_hold_equity"),
    )
    if frame.is_empty():
        return frame.with_columns(
            pl.lit(None, pl.Float64).alias("drawdown"), pl.lit(None, pl.Float64).alias("buy_hold_drawdown")
        )
    return frame.with_columns(
        pl.Series("drawdown", qs.stats.to_drawdown_series(as_pandas(frame, "strategy_return")).to_numpy()),
        pl.Series("buy_hold_drawdown",
                  qs.stats.to_drawdown_series(as_pandas(frame, "buy_hold_return")).to_numpy()),
    )


def as_pandas(frame: pl.DataFrame, column: str) -> pd.Series:
    """A return column as the date-indexed pandas Series quantstats takes."""
    return pd.Series(
        frame[column].to_numpy(), index=pd.DatetimeIndex(frame["date"].to_list()), name=column
    )


def _finite(value: object) -> float | None:
    number = float(value)  # quantstats answers numpy scalars, NaN for undefined ratios
    return number if math.isfinite(number) else None


def return_metrics(returns: pd.Series) -> dict[str, float | None]:
    """quantstats' figures of one daily return series (None where a ratio is undefined, e.g. the
    Sharpe of an all-zero series). win_rate is quantstats': the share of non-zero days that gain."""
    import quantstats as qs

    stats = qs.stats
    with warnings.catch_warnings():  # all-zero series: quantstats warns, then answers NaN or 0
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return {
                "total_return": _finite(stats.comp(returns)),
                "cagr": _finite(stats.cagr(returns)),
                "volatility": _finite(stats.volatility(returns)),
                "sharpe": _finite(stats.sharpe(returns)),
                "sortino": _finite(stats.sortino(returns)),
                "calmar": _finite(stats.calmar(returns)),
                "max_drawdown": _finite(stats.max_drawdown(returns)),
                "win_rate": _finite(stats.win_rate(returns)),
                "profit_factor": _finite(stats.profit_factor(returns)),
            }


def metrics_table(series: pl.DataFrame, rule: Rule, ticker: str) -> pl.DataFrame:
    """One row per strategy (strategy, buy_and_hold, always_flat) over the same sessions."""
    if series.is_empty():
        return pl.DataFrame(schema=METRICS_SCHEMA)
    positions = {
        "strategy": series["position"],
        "buy_and_hold": pl.Series([1.0] * series.height),
        "always_flat": pl.Series([0.0] * series.height),
    }
    rows = []
    for name in STRATEGIES:
        held = positions[name]
        changes = (held - held.shift(1, fill_value=0.0)).abs()
        entries = ((held > 0) & (held.shift(1, fill_value=0.0) == 0)).sum()
        rows.append(
            {
                "ticker": ticker,
                "strategy": name,
                "first_date": series["date"].min(),
                "last_date": series["date"].max(),
                "sessions": series.height,
                "rebalance": rule.rebalance,
                "horizon": rule.hold,
                "cost_bps": float(rule.cost_bps),
                "p_up_threshold": float(rule.p_up_threshold),
                **return_metrics(as_pandas(series, RETURN_COLUMNS[name])),
                "trades": int(entries),
                "turnover": float(changes.sum()),
                "exposure": float(held.mean()),
            }
        )
    return pl.DataFrame(rows, schema=METRICS_SCHEMA)


METRICS_SCHEMA = {
    "ticker": pl.String, "strategy": pl.String, "first_date": pl.Date, "last_date": pl.Date,
    "sessions": pl.Int64, "rebalance": pl.String, "horizon": pl.Int64, "cost_bps": pl.Float64,
    "p_up_threshold": pl.Float64,
    **{name: pl.Float64 for name in METRIC_COLUMNS if name != "trades"}, "trades": pl.Int64,
}  # fmt: skip


def backtest(log: pl.DataFrame, rule: Rule, ticker: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(daily series, metrics table) of the rule over a ticker's performance log."""
    series = apply_costs(daily_positions(log, rule), rule).with_columns(ticker=pl.lit(ticker))
    series = series.select("ticker", *[c for c in series.columns if c != "ticker"])
    return series, metrics_table(series, rule, ticker)
