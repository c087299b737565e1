"""Liveness with data freshness (/health) and Prometheus metrics (/metrics)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import app_settings, lake
from serving.freshness import problems, table_freshness
from serving.schemas import AssetFreshness, Health, json_response

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    summary="Liveness (always 200 while the process serves) and how fresh each table is",
)
async def health(request: Request) -> Response:
    reader, settings = lake(request), app_settings(request)
    today = settings.today()
    tables = table_freshness(reader)
    found = problems(tables, today, settings.stale_after_days)
    has_prices = bool(tables[0].latest_by_ticker)
    if not has_prices:
        found.insert(0, "raw_prices: no ticker has prices yet; materialize raw_prices")
    body = Health(
        status="ok" if not found else ("degraded" if has_prices else "no_data"),
        reference_date=today,
        stale_after_days=settings.stale_after_days,
        problems=found,
        assets=[
            AssetFreshness(
                asset=t.asset,
                tickers=len(t.latest_by_ticker),
                latest_date=t.latest_date,
                oldest_date=t.oldest_date,
                age_days=t.age_days(today),
                stale=bool(t.stale_tickers(today, settings.stale_after_days)),
                missing_tickers=t.missing_tickers,
            )
            for t in tables
        ],
    )
    return json_response(body)


@router.get(
    "/metrics",
    summary="Prometheus metrics: request counts, latency histograms, data age",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    return Response(
        content=request.app.state.metrics.render(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
