"""Response models of /backtests: the long/flat back-test of a ticker's matured forecasts."""

from __future__ import annotations

import datetime as dt

from pydantic import ConfigDict, Field

from serving.schemas import ApiModel


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

    model_config = ConfigDict(
        coerce_numbers_to_str=True,
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "ticker": "AAPL", "first_date": "2024-01-02", "last_date": "2024-12-31",
                    "sessions": 250,
                    "rule": {"rebalance": "horizon", "horizon": 5, "cost_bps": 5.0,
                             "p_up_threshold": 0.5},
                    "metrics": [
                        {"strategy": "strategy", "total_return": 0.081, "cagr": 0.082,
                         "volatility": 0.15, "sharpe": 0.6, "sortino": 0.9, "calmar": 0.7,
                         "max_drawdown": -0.11, "win_rate": 0.53, "profit_factor": 1.1,
                         "trades": 14, "turnover": 27.0, "exposure": 0.46},
                    ],
                    "equity": [
                        {"date": "2024-01-02", "position": 1.0, "equity": 0.9987,
                         "buy_hold_equity": 0.9987, "drawdown": -0.0013,
                         "buy_hold_drawdown": -0.0013},
                    ],
                }
            ]
        },
    )

    ticker: str
    first_date: dt.date
    last_date: dt.date
    sessions: int
    rule: BacktestRule
    metrics: list[StrategyMetrics]
    equity: list[EquityPoint]
