"""GET /drift/{ticker}: the feature_drift check's Evidently HTML report, latest or of one date.

Read-only: the check writes `lake/drift_reports/<TICKER>/<YYYY-MM-DD>.html` (the layout is
stock_assets.contract.paths') and keeps the newest few per ticker; this route returns a file's
bytes as they are. The HTML is Evidently's, with its own scripts: it is served with a
sandboxing Content-Security-Policy so it runs in an origin of its own, away from the API's.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BeforeValidator

from serving.deps import Ticker, iso_date, lake
from serving.errors import ERROR_RESPONSES
from serving.lake_errors import NotMaterializedError
from stock_assets.contract import (
    DAILY_FORECAST,
    DRIFT_REPORTS,
    FEATURE_DRIFT,
    drift_report_dates,
    drift_report_path,
)

router = APIRouter(prefix="/drift", tags=["drift"], responses=ERROR_RESPONSES)

ReportDate = Annotated[
    date | None,
    Query(description="The report of exactly this date (YYYY-MM-DD); default: the newest.",
          examples=["2024-07-03"]),
    BeforeValidator(iso_date),
]
SANDBOX = "sandbox allow-scripts allow-popups allow-downloads"


def _missing(ticker: str, as_of: date | None, dates: list[str]) -> NotMaterializedError:
    if not dates:
        detail = (
            f"No drift report for {ticker} yet: the {FEATURE_DRIFT} check writes one each time it "
            f"runs on {DAILY_FORECAST} for {ticker} (materialize {DAILY_FORECAST}, e.g. `python -m "
            f"stock_assets materialize --tickers {ticker} --stages forecasts`)."
        )
    else:
        detail = (
            f"No drift report for {ticker} on {as_of}: reports kept are {dates[0]}..{dates[-1]} "
            f"({len(dates)} dates; older ones are pruned, see STOCK_ASSETS_DRIFT_REPORTS_KEEP)."
        )
    return NotMaterializedError(detail, ticker=ticker, asset=DRIFT_REPORTS)


@router.get(
    "/{ticker}",
    response_class=Response,
    summary="The Evidently feature-drift report (HTML) of the newest date, or of `as_of`",
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}},
                     "description": "Evidently's HTML report; X-Report-Date names its date."}},
)
async def drift_report(ticker: Ticker, request: Request, as_of: ReportDate = None) -> Response:
    reader = lake(request)
    if not reader.is_known(ticker):
        raise reader.unknown_ticker(ticker)
    dates = drift_report_dates(reader.base_dir, ticker)
    key = dates[-1] if as_of is None and dates else (as_of.isoformat() if as_of else None)
    if key is None or key not in dates:
        raise _missing(ticker, as_of, dates)
    try:
        body = drift_report_path(reader.base_dir, ticker, key).read_bytes()
    except FileNotFoundError:  # pruned between the listing and the read
        raise _missing(ticker, as_of, drift_report_dates(reader.base_dir, ticker)) from None
    return Response(
        content=body,
        media_type="text/html; charset=utf-8",
        headers={"X-Report-Date": key, "Content-Security-Policy": SANDBOX,
                 "Cache-Control": "no-cache"},
    )
