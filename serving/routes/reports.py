"""The agent team's latest written report on a ticker (when the agent_report asset exists)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.deps import AsOf, Ticker, lake
from serving.errors import ERROR_RESPONSES
from serving.lake_reader import AGENT_REPORT, Partition
from serving.schemas import Report, json_response, to_json

router = APIRouter(prefix="/reports", tags=["reports"], responses=ERROR_RESPONSES)


def build_report(partition: Partition) -> Report:
    row = partition.frame.sort("created_at").row(-1, named=True)
    return Report(
        ticker=partition.ticker,
        as_of_date=row["as_of_date"],
        stance=row["stance"],
        confidence=row["confidence"],
        rationale=row["rationale"],
        markdown=row["markdown"],
        author=row["author"],
        cache_hit=bool(row["cache_hit"]),
        created_at=row["created_at"],
    )


@router.get(
    "/{ticker}",
    response_model=Report,
    summary="The latest agent report on a ticker (or the one as of a past date)",
)
async def ticker_report(ticker: Ticker, request: Request, as_of: AsOf = None) -> Response:
    reader = lake(request)

    def build() -> bytes:
        partition = reader.latest(AGENT_REPORT, ticker, on_or_before=as_of)
        return reader.derive(
            ("report", partition.identity), lambda: to_json(build_report(partition))
        )

    return json_response(reader.answer(("report", ticker, as_of), build))
