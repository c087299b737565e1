"""Which model version serves a ticker, how it scored, and every promotion decision before it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from serving.deps import Ticker, lake
from serving.errors import ERROR_RESPONSES
from serving.lake_reader import CHILD_MODEL, MODEL_HISTORY, Partition
from serving.schemas import (
    ModelCard,
    ModelInfo,
    ModelMetrics,
    finite,
    json_response,
    to_json,
)
from stock_assets.contract import CARD_INTERVAL_COLUMNS, card_mape_fraction

router = APIRouter(prefix="/models", tags=["models"], responses=ERROR_RESPONSES)


def model_card(row: dict[str, Any]) -> ModelCard:
    """A card row as the API answers it: MAPEs as fractions (cards keep MLflow's percent)."""
    return ModelCard(
        model_name=row["model_name"],
        model_version=row["model_version"],
        run_id=row["run_id"],
        strategy=row["strategy"],
        architecture=row["architecture"],
        trained_at=row["trained_at"],
        train_start=row["train_start"],
        train_end=row["train_end"],
        metrics=ModelMetrics(
            test_mape_h1=card_mape_fraction(row["test_mape_h1"]),
            test_mape_h5=card_mape_fraction(row["test_mape_h5"]),
            naive_mape_h5=card_mape_fraction(row["naive_mape_h5"]),
            directional_accuracy_h5=finite(row["directional_accuracy_h5"]),
            network_test_mape_h5=card_mape_fraction(row.get("network_test_mape_h5")),
            # Interval metrics are fractions already (coverage a share, Winkler of the close).
            **{name: finite(row[name]) for name in CARD_INTERVAL_COLUMNS},
            best_vol_baseline=row["best_vol_baseline"],
        ),
        promoted=bool(row["promoted"]),
        decision_reason=row["decision_reason"],
        # Cards written before the fallback existed lack the column: they never fell back.
        persistence_fallback=bool(row.get("persistence_fallback") or False),
    )


def build_model_info(card: Partition, history: Partition | None) -> ModelInfo:
    latest_row = card.frame.sort("trained_at").row(-1, named=True)
    rows = history.frame.sort("trained_at").to_dicts() if history is not None else [latest_row]
    cards = [model_card(row) for row in rows]
    production_version = latest_row["production_version"]
    production_version = None if production_version is None else str(production_version)
    production = next(
        (c for c in reversed(cards) if c.model_version == production_version),
        None,
    )
    latest = model_card(latest_row)
    if production is None and latest.model_version == production_version:
        production = latest
    return ModelInfo(
        ticker=card.ticker,
        model_name=latest.model_name,
        production_version=production_version,
        production=production,
        latest=latest,
        history=cards,
    )


@router.get(
    "/{ticker}",
    response_model=ModelInfo,
    summary="Production version, when it was trained, its metrics and the promotion history",
)
async def ticker_model(ticker: Ticker, request: Request) -> Response:
    reader = lake(request)

    def build() -> bytes:
        card = reader.ticker_table(CHILD_MODEL, ticker)
        history = reader.ticker_table_or_none(MODEL_HISTORY, ticker)
        key = ("model", card.identity, history.identity if history is not None else None)
        return reader.derive(key, lambda: to_json(build_model_info(card, history)))

    return json_response(reader.answer(("model", ticker), build))
