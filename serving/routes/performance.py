"""How the forecasts did once they matured: rolling MAPE, direction, the naive baseline, the check,
and the probabilistic scores (band coverage, pinball, Winkler, Brier vs climatology)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from serving.deps import Ticker, app_settings, lake
from serving.errors import ERROR_RESPONSES
from serving.lake_reader import CHILD_MODEL, FORECAST_PERFORMANCE, MODEL_HISTORY, Partition
from serving.routes.models import build_model_info
from serving.schemas import ModelCard, finite, json_response, to_json
from serving.schemas_performance import MapeCheck, MaturedRow, Performance, PerformancePoint
from serving.settings import Settings
from stock_assets.contract import (
    COVERAGE_ROW_COLUMNS,
    ROLLING_SCORE_COLUMNS,
    SCORE_ROW_COLUMNS,
    mape_evidence,
    mape_problems,
)

router = APIRouter(prefix="/performance", tags=["performance"], responses=ERROR_RESPONSES)


def mape_check(
    point: PerformancePoint, production: ModelCard | None, settings: Settings
) -> MapeCheck:
    """Dagster's forecast_mape rule (the contract's `mape_evidence` and `mape_problems`, which the
    check calls too) on the same evidence: serving cannot read the check's evaluations, which live
    in Dagster's event log, so it judges the partition's rolling metrics (or, before enough
    forecasts matured, the production model's test-window MAPE) with the same settings."""
    margin = 1 + settings.naive_margin
    rule = (
        f"MAPE <= {settings.mape_threshold:g} and <= naive MAPE x {margin:g} (the rolling MAPE "
        f"once at least {settings.min_rolling_n} forecasts matured, else the model's test MAPE)"
    )
    test = production.metrics if production is not None else None
    evidence = mape_evidence(
        point.rolling_n,
        point.rolling_mape,
        point.rolling_naive_mape,
        test.test_mape_h5 if test is not None else None,
        test.naive_mape_h5 if test is not None else None,
        settings.min_rolling_n,
    )
    status: Literal["passing", "failing", "insufficient_data"] = "insufficient_data"
    if evidence.mape is not None:
        failing = mape_problems(
            evidence.mape, evidence.naive_mape, settings.mape_threshold, settings.naive_margin
        )
        status = "failing" if failing else "passing"
    return MapeCheck(
        status=status,
        rule=rule,
        evidence=evidence.kind,
        mape=evidence.mape,
        naive_mape=evidence.naive_mape,
        threshold=settings.mape_threshold,
        naive_margin=settings.naive_margin,
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
        **{name: finite(first[name]) for name in ROLLING_SCORE_COLUMNS},
    )


def _matured(row: dict[str, Any]) -> MaturedRow:
    return MaturedRow(
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
        called=row["called"],
        **{name: row[name] for name in COVERAGE_ROW_COLUMNS},
        **{name: finite(row[name]) for name in SCORE_ROW_COLUMNS},
    )


def _ratio_skill(score: float | None, reference: float | None) -> float | None:
    """1 - score / reference for lower-is-better scores (null when not comparable)."""
    if score is None or reference is None or reference <= 0:
        return None
    return 1 - score / reference


def build_performance(
    latest: Partition,
    series: list[Partition],
    production: ModelCard | None,
    settings: Settings,
) -> Performance:
    point = _point(latest)
    mape, naive = point.rolling_mape, point.rolling_naive_mape
    skill = _ratio_skill(mape, naive)
    return Performance(
        ticker=latest.ticker,
        **point.model_dump(),
        beats_naive=None if skill is None else skill > 0,
        skill_vs_naive=skill,
        brier_skill=_ratio_skill(point.rolling_brier, point.rolling_brier_climatology),
        check=mape_check(point, production, settings),
        matured=[_matured(r) for r in latest.frame.sort("horizon", "as_of_date").to_dicts()],
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
        cards: tuple[Partition | None, ...] = ()
        if _point(latest).rolling_n < settings.min_rolling_n:  # the check's fallback evidence
            cards = (
                reader.ticker_table_or_none(CHILD_MODEL, ticker),
                reader.ticker_table_or_none(MODEL_HISTORY, ticker),
            )
        key = (
            "performance",
            latest.identity,
            tuple(p.identity for p in series),
            tuple(c.identity if c is not None else None for c in cards),
            *thresholds,
        )

        def production() -> ModelCard | None:
            card, history = cards or (None, None)
            return build_model_info(card, history).production if card is not None else None

        return reader.derive(
            key, lambda: to_json(build_performance(latest, series, production(), settings))
        )

    thresholds = (settings.mape_threshold, settings.naive_margin, settings.min_rolling_n)
    return json_response(reader.answer(("performance", ticker, days, *thresholds), build))
