"""The forecasts Dagster's daily_forecast asset wrote: the latest per ticker, or one ticker's path,
each step with its quantiles and p_up."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import AsOf, Ticker, lake
from serving.errors import ERROR_RESPONSES
from serving.lake_reader import (
    CHILD_MODEL,
    DAILY_FORECAST,
    LakeReader,
    NotMaterializedError,
    Partition,
)
from serving.schemas import finite, json_response, to_json
from serving.schemas_forecasts import ForecastPath, ForecastPoint, LatestForecast, LatestForecasts
from stock_assets.contract import P_UP, QUANTILE_COLUMNS

# A step's predictive distribution: the quantile closes and p_up (null in older partitions, whose
# missing columns the reader adds as nulls).
DISTRIBUTION_FIELDS = (*QUANTILE_COLUMNS, P_UP)


def step_distribution(row: dict[str, object]) -> dict[str, float | None]:
    return {name: finite(row[name]) for name in DISTRIBUTION_FIELDS}

router = APIRouter(prefix="/forecasts", tags=["forecasts"], responses=ERROR_RESPONSES)


def forecast_path(partition: Partition) -> ForecastPath:
    """A daily_forecast partition (one row per horizon step) as a path."""
    rows = partition.frame.sort("horizon").to_dicts()
    first = rows[0]
    return ForecastPath(
        ticker=first["ticker"],
        as_of_date=first["as_of_date"],
        last_close=first["last_close"],
        horizon=len(rows),
        model_name=first["model_name"],
        model_version=first["model_version"],
        created_at=first["created_at"],
        points=[
            ForecastPoint(
                horizon=row["horizon"],
                target_date=row["target_date"],
                predicted_close=row["predicted_close"],
                predicted_return=row["predicted_return"],
                **step_distribution(row),
            )
            for row in rows
        ],
    )


def latest_row(partition: Partition) -> LatestForecast:
    path = forecast_path(partition)
    last = path.points[-1]
    return LatestForecast(
        ticker=path.ticker,
        as_of_date=path.as_of_date,
        last_close=path.last_close,
        horizon=last.horizon,
        target_date=last.target_date,
        predicted_close=last.predicted_close,
        predicted_return=last.predicted_return,
        **last.model_dump(include=set(DISTRIBUTION_FIELDS)),
        model_name=path.model_name,
        model_version=path.model_version,
        created_at=path.created_at,
    )


def unchecked_model(reader: LakeReader, ticker: str) -> NotMaterializedError | None:
    """The 404 of a ticker that has no forecast because no model version passed its blocking
    checks (its model card says so), naming the failed checks; None for any other reason."""
    card = reader.ticker_table_or_none(CHILD_MODEL, ticker)
    if card is None:
        return None
    row = card.frame.sort("trained_at").row(-1, named=True)
    if row.get("checks_passed") is None or row.get("forecast_version") is not None:
        return None
    return NotMaterializedError(
        f"No forecast for {ticker}: no version of {row['model_name']} passed its blocking model "
        f"checks, so the daily forecast skips it (latest v{row['model_version']}: "
        f"{row.get('checks_detail') or 'failed'}). Retrain it: an unchecked model never forecasts.",
        ticker=ticker,
        asset=DAILY_FORECAST,
    )


@router.get(
    "/latest",
    response_model=LatestForecasts,
    summary="The latest forecast of every ticker (one row each)",
)
async def latest_forecasts(request: Request) -> Response:
    reader = lake(request)

    def build() -> bytes:
        found: list[Partition] = []
        missing: list[str] = []
        for ticker in reader.tickers():
            partition = reader.latest_or_none(DAILY_FORECAST, ticker)
            if partition is None:
                missing.append(ticker)
            else:
                found.append(partition)
        return reader.derive(
            ("forecasts/latest", tuple(p.identity for p in found), tuple(missing)),
            lambda: to_json(
                LatestForecasts(
                    count=len(found),
                    forecasts=[
                        reader.derive(("latest_row", p.identity), lambda p=p: latest_row(p))
                        for p in found
                    ],
                    tickers_without_forecast=missing,
                )
            ),
        )

    return json_response(reader.answer("forecasts/latest", build))


@router.get(
    "/{ticker}",
    response_model=ForecastPath,
    summary="One ticker's latest forecast path (or the one as of a past date)",
)
async def ticker_forecast(ticker: Ticker, request: Request, as_of: AsOf = None) -> Response:
    reader = lake(request)

    def build() -> bytes:
        try:
            partition = reader.latest(DAILY_FORECAST, ticker, on_or_before=as_of)
        except NotMaterializedError as missing:
            raise (unchecked_model(reader, ticker) or missing) from None
        return reader.derive(
            ("forecast", partition.identity), lambda: to_json(forecast_path(partition))
        )

    return json_response(reader.answer(("forecast", ticker, as_of), build))
