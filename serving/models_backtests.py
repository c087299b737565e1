"""Response models of /backtests: the long/flat back-test of a ticker's matured forecasts."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from serving.models import ApiModel


class BacktestRule(ApiModel):
    """The rule the back-test ran (strategy_backtest's config)."""

    rebalance: str = Field(description="`daily` (h=1 forecast) or `horizon` (every `horizon` sessions)")
    horizon: int = Field(description="Sessions each decision holds (1 when rebalancing daily)")
    cost_bps: float = Field(description="Cost per unit of turnover, in basis points")
    p_up_threshold: float


class StrategyMetrics(ApiModel):
    """quantstats' figures of one strategy's daily net returns (fractions; null = undefined)."""

    strategy: str = Field(description="`strategy`, `buy_and_hold` or `always_flat`")
    total_return: float | None
    cagr: float | None
    volatility: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float | None
    win_rate: float | None
    profit_factor: float | None
    trades: int
    turnover: float
    exposure: float


class EquityPoint(ApiModel):
    date: dt.date
    position: float
    equity: float
    buy_hold_equity: float
    drawdown: float | None
    buy_hold_drawdown: float | None


class Backtest(ApiModel):
    """The back-test of one ticker: its window, rule, metrics vs buy-and-hold, equity curves."""

    ticker: str
    first_date: dt.date
    last_date: dt.date
    sessions: int
    rule: BacktestRule
    metrics: list[StrategyMetrics]
    equity: list[EquityPoint]
