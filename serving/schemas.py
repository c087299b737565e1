"""The API's response bodies: typed, documented in the OpenAPI schema, each with an example.

Routes build these from lake partitions and cache the serialized JSON per set of source files, so
a hot endpoint costs a dictionary lookup, not a Parquet read and a serialization. This module holds
the shared base and the small bodies; forecasts and history are in `serving.schemas_forecasts`,
performance in `serving.schemas_performance`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field


class ApiModel(BaseModel):
    # MLflow versions are numbers in some tables and strings in others: always answer strings.
    model_config = ConfigDict(coerce_numbers_to_str=True, protected_namespaces=())


def finite(value: object) -> float | None:
    """JSON has no NaN: missing metrics are null."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def to_json(model: BaseModel) -> bytes:
    """Serialize with pydantic's Rust serializer; routes cache these bytes."""
    return model.__pydantic_serializer__.to_json(model)


def json_response(body: bytes | BaseModel, status_code: int = 200) -> Response:
    """A JSON response FastAPI sends as is (no second validation of a model already built)."""
    content = body if isinstance(body, bytes) else to_json(body)
    return Response(content=content, status_code=status_code, media_type="application/json")


# -- errors ------------------------------------------------------------------------------------


class ErrorBody(ApiModel):
    """Every 4xx/5xx the API returns: a sentence for a person, a code for a program."""

    detail: str
    error: Literal[
        "unknown_ticker", "not_materialized", "invalid_parameter", "not_found",
        "method_not_allowed", "data_unavailable", "internal_error", "rate_limited",
        "unauthorized",
    ]  # fmt: skip
    ticker: str | None = None
    asset: str | None = None
    errors: list[dict[str, object]] | None = Field(
        default=None, description="Per-parameter validation failures (422 only)."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "No daily_forecast for AAPL yet: materialize daily_forecast for "
                    "AAPL (e.g. `python -m stock_assets materialize --tickers AAPL --stages "
                    "forecasts`).",
                    "error": "not_materialized",
                    "ticker": "AAPL",
                    "asset": "daily_forecast",
                }
            ]
        }
    )


# -- tickers -----------------------------------------------------------------------------------


class TickerSummary(ApiModel):
    ticker: str = Field(description="Partition key: the symbol, or the index without '^'.")
    last_price_date: dt.date
    price_rows: int
    has_production_model: bool
    production_version: str | None
    latest_forecast_date: dt.date | None


class TickerList(ApiModel):
    count: int
    tickers: list[TickerSummary]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "count": 1,
                    "tickers": [
                        {
                            "ticker": "AAPL",
                            "last_price_date": "2024-06-28",
                            "price_rows": 374,
                            "has_production_model": True,
                            "production_version": "3",
                            "latest_forecast_date": "2024-06-28",
                        }
                    ],
                }
            ]
        }
    )


# -- models ------------------------------------------------------------------------------------


class ModelMetrics(ApiModel):
    """Test-window metrics; MAPEs are fractions (0.027 = 2.7 %) like /performance's."""

    test_mape_h1: float | None
    test_mape_h5: float | None
    naive_mape_h5: float | None
    directional_accuracy_h5: float | None = Field(description="A share, 0..1.")
    network_test_mape_h5: float | None = Field(
        default=None,
        description="The trained network's own MAPE, before any fallback to persistence.",
    )
    test_coverage_80_h5: float | None = Field(
        default=None,
        description="Share of test-window closes at horizon 5 inside the model's 80 % band "
        "(nominal 0.8); null on cards older than the probabilistic forecast.",
    )
    test_winkler_80_h5: float | None = Field(
        default=None,
        description="The model's 80 % interval (Winkler) score at horizon 5, as a fraction of "
        "the actual close: lower is better.",
    )
    baseline_winkler_80_h5: float | None = Field(
        default=None, description="The best volatility baseline's test_winkler_80_h5."
    )
    best_vol_baseline: str | None = Field(
        default=None,
        description="The volatility baseline that scored baseline_winkler_80_h5 (e.g. rw_ewma).",
    )


class ModelCard(ApiModel):
    model_name: str
    model_version: str
    run_id: str | None
    strategy: str | None
    architecture: str | None
    trained_at: dt.datetime
    train_start: dt.date | None
    train_end: dt.date | None
    metrics: ModelMetrics
    promoted: bool
    decision_reason: str | None
    persistence_fallback: bool = Field(
        default=False,
        description="True when the network was worse than naive persistence on the test window "
        "and this version forecasts persistence (no change) instead.",
    )


class ModelInfo(ApiModel):
    ticker: str
    model_name: str
    production_version: str | None
    production: ModelCard | None = Field(description="The card of the version in production.")
    latest: ModelCard = Field(description="The most recently trained candidate.")
    history: list[ModelCard] = Field(description="Every card, oldest first: promotion history.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticker": "AAPL",
                    "model_name": "stock_assets.AAPL",
                    "production_version": "1",
                    "production": None,
                    "latest": {
                        "model_name": "stock_assets.AAPL",
                        "model_version": "1",
                        "run_id": "4b1f0c",
                        "strategy": "fine_tune",
                        "architecture": "lstm",
                        "trained_at": "2024-06-28T20:00:00Z",
                        "train_start": "2023-01-03",
                        "train_end": "2024-03-28",
                        "metrics": {
                            "test_mape_h1": 0.012,
                            "test_mape_h5": 0.027,
                            "naive_mape_h5": 0.029,
                            "directional_accuracy_h5": 0.55,
                            "network_test_mape_h5": 0.027,
                            "test_coverage_80_h5": 0.78,
                            "test_winkler_80_h5": 0.061,
                            "baseline_winkler_80_h5": 0.066,
                            "best_vol_baseline": "rw_ewma",
                        },
                        "promoted": True,
                        "decision_reason": "no production model yet; challenger MAPE 2.7000% is "
                        "within naive persistence's 2.9000%",
                        "persistence_fallback": False,
                    },
                    "history": [],
                }
            ]
        }
    )


# -- reports -----------------------------------------------------------------------------------


class Report(ApiModel):
    ticker: str
    as_of_date: dt.date
    stance: Literal["BULLISH", "BEARISH", "NEUTRAL"]
    confidence: Literal["High", "Medium", "Low"]
    rationale: str
    markdown: str
    author: str
    cache_hit: bool
    created_at: dt.datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ticker": "AAPL",
                    "as_of_date": "2024-06-28",
                    "stance": "BULLISH",
                    "confidence": "Medium",
                    "rationale": "The 5-day path rises 1.5% and the model beats the naive baseline.",
                    "markdown": "# AAPL\n...",
                    "author": "deterministic-analyst",
                    "cache_hit": False,
                    "created_at": "2024-06-28T21:10:00Z",
                }
            ]
        }
    )


# -- health ------------------------------------------------------------------------------------


class AssetFreshness(ApiModel):
    asset: str
    tickers: int = Field(description="Tickers with at least one partition.")
    latest_date: dt.date | None = Field(description="The newest date over all tickers.")
    oldest_date: dt.date | None = Field(description="The stalest ticker's newest date.")
    age_days: int | None = Field(
        description="Calendar days from oldest_date to the reference date."
    )
    stale: bool
    missing_tickers: list[str] = Field(description="Tickers with prices but no partition here.")


class Health(ApiModel):
    status: Literal["ok", "degraded", "no_data"]
    reference_date: dt.date
    stale_after_days: int
    problems: list[str]
    assets: list[AssetFreshness]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "degraded",
                    "reference_date": "2024-07-01",
                    "stale_after_days": 4,
                    "problems": ["daily_forecast: not materialized for MSFT"],
                    "assets": [
                        {
                            "asset": "daily_forecast",
                            "tickers": 1,
                            "latest_date": "2024-06-28",
                            "oldest_date": "2024-06-28",
                            "age_days": 3,
                            "stale": False,
                            "missing_tickers": ["MSFT"],
                        }
                    ],
                }
            ]
        }
    )
