"""A crafted performance log: known closes and forecasts, so the rule's positions are known."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

import polars as pl

# Ten sessions' closes: up, up, down, up, down, down, up, up, up, down.
CLOSES = (100.0, 101.0, 102.0, 99.0, 100.0, 98.0, 97.0, 99.0, 100.0, 103.0, 102.0)


def sessions(count: int, first: date = date(2024, 1, 1)) -> list[date]:
    """`count` weekdays from `first` (a Monday)."""
    days, day = [], first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def crafted_log(
    closes: Sequence[float],
    forecast: Callable[[int, int], tuple[float, float]],
    horizons: Sequence[int] = (1, 2, 3),
    ticker: str = "AAPL",
) -> pl.DataFrame:
    """forecast_performance rows for every (as_of i, horizon h) with i + h inside `closes`;
    forecast(i, h) -> (expected simple return, p_up)."""
    days = sessions(len(closes))
    rows = []
    for i in range(len(closes)):
        for h in horizons:
            if i + h >= len(closes):
                continue
            expected, p_up = forecast(i, h)
            rows.append(
                {
                    "ticker": ticker, "as_of_date": days[i], "target_date": days[i + h],
                    "horizon": h, "predicted_close": closes[i] * (1 + expected),
                    "actual_close": closes[i + h], "naive_close": closes[i], "p_up": p_up,
                    "in_sample": False,
                }
            )  # fmt: skip
    return pl.DataFrame(rows)


def perfect(closes: Sequence[float]) -> Callable[[int, int], tuple[float, float]]:
    """A forecaster that knows the future: the true h-session return, p_up 0.9 / 0.1."""

    def forecast(i: int, h: int) -> tuple[float, float]:
        change = closes[i + h] / closes[i] - 1
        return change, 0.9 if change > 0 else 0.1

    return forecast
