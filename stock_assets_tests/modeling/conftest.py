"""Tiny synthetic sequence data for the modeling tests (no shared data needed)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from stock_assets.datasets.windows import SequenceData, SplitConfig, build_sequences
from stock_assets.features.indicators import compute_indicators

TINY_SPLIT = SplitConfig(context_length=20, horizon=3)


def synthetic_prices(n: int, start_price: float, seed: int, ticker: str) -> pl.DataFrame:
    """A random walk with a little momentum (something for a network to learn)."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, 0.012, n)
    returns = np.empty(n)
    returns[0] = shocks[0]
    for t in range(1, n):
        returns[t] = 0.0003 + 0.25 * returns[t - 1] + shocks[t]
    close = start_price * np.exp(np.cumsum(returns))
    spread = np.abs(rng.normal(0.0, 0.006, n))
    days: list[date] = []
    day = date(2012, 1, 2)
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
            "ticker": [ticker] * n,
        }
    )


def tiny_sequences(n: int = 500, start_price: float = 100.0, seed: int = 0, ticker: str = "SYN"):
    return build_sequences(
        compute_indicators(synthetic_prices(n, start_price, seed, ticker)), TINY_SPLIT
    )


@pytest.fixture(scope="session")
def parent_data() -> SequenceData:
    return tiny_sequences(n=700, start_price=1000.0, seed=1, ticker="IDX")


@pytest.fixture(scope="session")
def child_data() -> SequenceData:
    return tiny_sequences(n=500, start_price=10.0, seed=2, ticker="CHD")
