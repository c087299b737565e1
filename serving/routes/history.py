"""Actual closes with the forecasts overlaid: what a chart of one ticker needs in one request."""

from __future__ import annotations

from typing import Annotated

import polars as pl
from fastapi import APIRouter, Query, Request, Response

from serving.deps import Ticker, lake
from serving.errors import ERROR_RESPONSES
from serving.lake_reader import DAILY_FORECAST, FORECAST_PERFORMANCE, Partition
from serving.routes.forecasts import forecast_path
from serving.schemas import json_response, to_json
from serving.schemas_forecasts import History, MaturedForecast, PricePoint

router = APIRouter(prefix="/history", tags=["history"], responses=ERROR_RESPONSES)

MAX_DAYS = 2000


def build_history(
    prices: Partition, days: int, forecast: Partition | None, matured: list[Partition]
) -> History:
    recent = prices.frame.select("date", "close").sort("date").tail(days)
    one_step = (
        pl.concat([p.frame.filter(pl.col("horizon") == 1) for p in matured], how="diagonal_relaxed")
        if matured
        else None
    )
    return History(
        ticker=prices.ticker,
        days=days,
        closes=[PricePoint(date=d, close=c) for d, c in recent.iter_rows()],
        forecast=forecast_path(forecast) if forecast is not None else None,
        matured=[]
        if one_step is None
        else [
            MaturedForecast(
                target_date=row["target_date"],
                as_of_date=row["as_of_date"],
                predicted_close=row["predicted_close"],
                actual_close=row["actual_close"],
                covered_80=row["covered_80"],
            )
            for row in one_step.sort("target_date").to_dicts()
        ],
    )


@router.get(
    "/{ticker}",
    response_model=History,
    summary="Recent actual closes with the latest forecast path and matured forecasts",
)
async def ticker_history(
    ticker: Ticker,
    request: Request,
    days: Annotated[
        int, Query(ge=1, le=MAX_DAYS, description="Trading sessions of closes to return.")
    ] = 120,
) -> Response:
    reader = lake(request)

    def build() -> bytes:
        prices = reader.prices(ticker)
        first = reader.derive(
            ("window_start", prices.identity, days),
            lambda: prices.frame["date"].sort().tail(days)[0],
        )
        forecast = reader.latest_or_none(DAILY_FORECAST, ticker)
        matured = reader.between(FORECAST_PERFORMANCE, ticker, first)
        key = (
            "history",
            prices.identity,
            days,
            forecast.identity if forecast is not None else None,
            tuple(p.identity for p in matured),
        )
        return reader.derive(key, lambda: to_json(build_history(prices, days, forecast, matured)))

    return json_response(reader.answer(("history", ticker, days), build))
