"""The tickers the lake has prices for, how recent they are, and whether a model serves them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import lake
from serving.lake_reader import CHILD_MODEL, DAILY_FORECAST, LakeLookupError, Partition
from serving.schemas import TickerList, TickerSummary, json_response, to_json

router = APIRouter(prefix="/tickers", tags=["tickers"])


def production_version(card: Partition | None) -> str | None:
    if card is None:
        return None
    value = card.frame.sort("trained_at")["production_version"][-1]
    return None if value is None else str(value)


def ticker_summary(
    prices: Partition, card: Partition | None, forecast: Partition | None
) -> TickerSummary:
    version = production_version(card)
    return TickerSummary(
        ticker=prices.ticker,
        last_price_date=prices.frame["date"].max(),
        price_rows=prices.frame.height,
        has_production_model=version is not None,
        production_version=version,
        latest_forecast_date=forecast.key if forecast is not None else None,
    )


@router.get(
    "", response_model=TickerList, summary="Tickers with data, their last price date, models"
)
async def list_tickers(request: Request) -> Response:
    reader = lake(request)

    def build() -> bytes:
        sources = []
        for ticker in reader.tickers():
            try:
                prices = reader.prices(ticker)
            except LakeLookupError:  # removed since the folder was listed
                continue
            card = reader.ticker_table_or_none(CHILD_MODEL, ticker)
            forecast = reader.latest_or_none(DAILY_FORECAST, ticker)
            sources.append((prices, card, forecast))
        key = ("tickers", tuple(tuple(p.identity if p else None for p in s) for s in sources))
        return reader.derive(
            key,
            lambda: to_json(
                TickerList(count=len(sources), tickers=[ticker_summary(*s) for s in sources])
            ),
        )

    return json_response(reader.answer("tickers", build))
