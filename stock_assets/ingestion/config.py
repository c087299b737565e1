"""Run config of the price assets: how far back to re-read, and when a price move is suspicious."""

import dagster as dg
from pydantic import Field

from stock_assets.contract import MARKET_INDEX_PRICES, RAW_PRICES
from stock_assets.ingestion.quality import DEFAULT_JUMP_MULTIPLE


class PriceFetchConfig(dg.Config):
    """Per-run options of the price assets."""

    refetch_days: int | None = Field(
        default=None, ge=0,
        description="re-read the last N stored days (corrections); None: the resource's setting",
    )  # fmt: skip
    jump_multiple: float = Field(
        default=DEFAULT_JUMP_MULTIPLE, gt=0,
        description="a close move beyond this x recent volatility, not in adj_close, is flagged",
    )  # fmt: skip


def refetch_run_config(refetch_days: int) -> dict[str, dict]:
    """The run config ("ops") that makes both price assets re-read their last `refetch_days` days."""
    config = {"config": {"refetch_days": refetch_days}}
    return {RAW_PRICES: config, MARKET_INDEX_PRICES: config}
