"""Does trading on the forecasts make money after costs? The strategy stage's back-test, read."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import Ticker, lake
from serving.errors import ERROR_RESPONSES
from serving.lake_reader import LakeReader, NotMaterializedError, Partition
from serving.schemas import finite, json_response, to_json
from serving.schemas_backtests import Backtest, BacktestRule, EquityPoint, StrategyMetrics
from stock_assets.contract import (
    DAILY_FORECAST,
    FORECAST_PERFORMANCE,
    STRATEGY_BACKTEST,
    STRATEGY_METRICS,
    lake_file,
)

router = APIRouter(prefix="/backtests", tags=["backtests"], responses=ERROR_RESPONSES)

METRIC_FIELDS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "calmar",
                 "max_drawdown", "win_rate", "profit_factor")  # fmt: skip


def _table(reader: LakeReader, asset: str, ticker: str) -> Partition:
    """The ticker's table; an empty one (no matured forecast to trade yet) is a 404 saying so."""
    try:
        return reader.ticker_table(asset, ticker)
    except NotMaterializedError as exc:
        path = lake_file(str(reader.base_dir), asset, ticker)
        partition = reader.read(asset, path, ticker, ticker)
        if partition is not None and partition.is_empty:
            raise NotMaterializedError(
                f"The {asset} of {ticker} has no sessions: its performance log holds no matured "
                "out-of-sample forecast with a full holding period yet (materialize "
                f"{DAILY_FORECAST} and {FORECAST_PERFORMANCE}, then the strategy stage).",
                ticker=ticker,
                asset=asset,
            ) from exc
        raise


def build_backtest(metrics: Partition, series: Partition) -> Backtest:
    rows = metrics.frame.to_dicts()
    first = rows[0]
    return Backtest(
        ticker=metrics.ticker,
        first_date=first["first_date"],
        last_date=first["last_date"],
        sessions=int(first["sessions"]),
        rule=BacktestRule(
            rebalance=first["rebalance"], horizon=int(first["horizon"]),
            cost_bps=float(first["cost_bps"]), p_up_threshold=float(first["p_up_threshold"]),
        ),  # fmt: skip
        metrics=[
            StrategyMetrics(
                strategy=row["strategy"],
                **{name: finite(row[name]) for name in METRIC_FIELDS},
                trades=int(row["trades"]),
                turnover=float(row["turnover"]),
                exposure=float(row["exposure"]),
            )
            for row in rows
        ],
        equity=[
            EquityPoint(
                date=row["date"], position=row["position"], equity=row["equity"],
                buy_hold_equity=row["buy_hold_equity"], drawdown=finite(row["drawdown"]),
                buy_hold_drawdown=finite(row["buy_hold_drawdown"]),
            )  # fmt: skip
            for row in series.frame.iter_rows(named=True)
        ],
    )


@router.get(
    "/{ticker}",
    response_model=Backtest,
    summary="The long/flat back-test of a ticker's forecasts vs buy-and-hold, after costs",
)
async def ticker_backtest(ticker: Ticker, request: Request) -> Response:
    reader = lake(request)

    def build() -> bytes:
        metrics = _table(reader, STRATEGY_METRICS, ticker)
        series = _table(reader, STRATEGY_BACKTEST, ticker)
        return reader.derive(
            ("backtest", metrics.identity, series.identity),
            lambda: to_json(build_backtest(metrics, series)),
        )

    return json_response(reader.answer(("backtest", ticker), build))
