"""How the forecasts did once they matured: rolling MAPE, direction, the naive baseline, the check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from serving.deps import Ticker, app_settings, lake
from serving.errors import ERROR_RESPONSES
from serving.lake_reader import FORECAST_PERFORMANCE, Partition
from serving.models import (
    MapeCheck,
    MaturedRow,
    Performance,
    PerformancePoint,
    finite,
    json_response,
    to_json,
)
from serving.settings import Settings

router = APIRouter(prefix="/performance", tags=["performance"], responses=ERROR_RESPONSES)


def mape_check(rolling_mape: float | None, rolling_n: int, settings: Settings) -> MapeCheck:
    """The forecast_mape rule, judged from the lake (serving cannot see Dagster's check runs)."""
    rule = (
        f"rolling MAPE <= {settings.mape_threshold:g} once at least "
        f"{settings.min_rolling_n} forecasts matured"
    )
    if rolling_mape is None or rolling_n < settings.min_rolling_n:
        status = "insufficient_data"
    else:
        status = "passing" if rolling_mape <= settings.mape_threshold else "failing"
    return MapeCheck(
        status=status,
        rule=rule,
        threshold=settings.mape_threshold,
        min_rolling_n=settings.min_rolling_n,
    )


def _point(partition: Partition) -> PerformancePoint:
    first = partition.frame.row(0, named=True)
    return PerformancePoint(
        date=partition.key,
        rolling_mape=finite(first["rolling_mape"]),
        rolling_naive_mape=finite(first["rolling_naive_mape"]),
        rolling_directional_accuracy=finite(first["rolling_directional_accuracy"]),
        rolling_n=int(first["rolling_n"] or 0),
    )


def build_performance(
    latest: Partition, series: list[Partition], settings: Settings
) -> Performance:
    point = _point(latest)
    mape, naive = point.rolling_mape, point.rolling_naive_mape
    comparable = mape is not None and naive is not None and naive > 0
    return Performance(
        ticker=latest.ticker,
        date=point.date,
        rolling_mape=mape,
        rolling_naive_mape=naive,
        rolling_directional_accuracy=point.rolling_directional_accuracy,
        rolling_n=point.rolling_n,
        beats_naive=(mape < naive) if comparable else None,  # type: ignore[operator]
        skill_vs_naive=(1 - mape / naive) if comparable else None,  # type: ignore[operator]
        check=mape_check(mape, point.rolling_n, settings),
        matured=[
            MaturedRow(
                as_of_date=row["as_of_date"],
                target_date=row["target_date"],
                horizon=row["horizon"],
                predicted_close=row["predicted_close"],
                actual_close=row["actual_close"],
                naive_close=row["naive_close"],
                ape=finite(row["ape"]),
                naive_ape=finite(row["naive_ape"]),
                direction_hit=row["direction_hit"],
                in_sample=row["in_sample"],
                model_version=row["model_version"],
            )
            for row in latest.frame.sort("horizon", "as_of_date").to_dicts()
        ],
        series=[_point(p) for p in series],
    )


@router.get(
    "/{ticker}",
    response_model=Performance,
    summary="Rolling MAPE, directional accuracy, the naive baseline and the MAPE check",
)
async def ticker_performance(
    ticker: Ticker,
    request: Request,
    days: Annotated[
        int, Query(ge=1, le=2000, description="Dated points of the rolling-metric series.")
    ] = 60,
) -> Response:
    reader, settings = lake(request), app_settings(request)

    def build() -> bytes:
        latest = reader.latest(FORECAST_PERFORMANCE, ticker)
        series = reader.recent(FORECAST_PERFORMANCE, ticker, days)
        key = ("performance", latest.identity, tuple(p.identity for p in series), *thresholds)
        return reader.derive(key, lambda: to_json(build_performance(latest, series, settings)))

    thresholds = (settings.mape_threshold, settings.min_rolling_n)
    return json_response(reader.answer(("performance", ticker, days, *thresholds), build))
