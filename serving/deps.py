"""What routes share: validated parameters as `Annotated` aliases, and the app's lake reader.

Tickers and dates are validated by pydantic while FastAPI parses the request (the rule is the
422's message), so nothing unvalidated reaches the lake reader. The reader and settings are read
from `request.app.state` rather than injected with `Depends`: FastAPI solves a sub-dependency on
every request, which measured ~20 us per request here, a seventh of a cached answer's cost.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import Path, Query, Request
from pydantic import AfterValidator, BeforeValidator

from serving.lake_reader import LakeReader
from serving.settings import Settings
from stock_assets.contract import validate_ticker

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TICKER_RULE = (
    "1-7 upper-case letters/digits starting with a letter, optionally a class suffix after '.' "
    "or '-' (AAPL, BRK-B); indexes start with '^' (^GSPC, answered as GSPC)."
)


def lake(request: Request) -> LakeReader:
    """The reader `create_app` built for this app."""
    return request.app.state.reader


def app_settings(request: Request) -> Settings:
    return request.app.state.settings


def iso_date(value: object) -> object:
    """Only YYYY-MM-DD: pydantic alone would also take '1719878400' or '2024-07-02T00:00'."""
    if isinstance(value, str):
        if not _ISO_DATE.match(value):
            raise ValueError("must be a calendar date written YYYY-MM-DD, e.g. 2024-06-28")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value} is not a calendar date") from None
    return value


Ticker = Annotated[
    str,
    Path(description=f"Ticker symbol: {TICKER_RULE}", examples=["AAPL"]),
    AfterValidator(
        validate_ticker
    ),  # returns the partition key; InvalidTickerError states the rule
]
AsOf = Annotated[
    date | None,
    Query(
        description="A past date (YYYY-MM-DD): the newest partition on or before it.",
        examples=["2024-06-28"],
    ),
    BeforeValidator(iso_date),
]
