"""What a full headless refresh materializes, in data-flow order (used by `python -m stock_assets`).

Each stage adds its steps here; a step whose assets are not in the code location yet is skipped,
so the run command stays true while stages land one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One in-process materialization: some assets, at most one partition."""

    label: str
    assets: tuple[str, ...]
    partition_key: str | None = None
    stage: str = "data"
    optional: bool = False  # skipped when its assets are not in the code location


def data_steps(tickers: Sequence[str]) -> list[Step]:
    return [
        Step("^GSPC prices + indicators", ("market_index_prices", "market_index_indicators")),
        *[Step(f"{t} prices + indicators", ("raw_prices", "price_indicators"), t) for t in tickers],
        Step("Feast offline table + online store", ("feast_features",)),
    ]


def model_steps(tickers: Sequence[str]) -> list[Step]:
    return [
        Step("^GSPC sequences + parent model", ("market_index_sequences", "parent_model"),
             stage="models", optional=True),
        *[
            Step(f"{t} sequences + child model", ("training_sequences", "child_model"), t,
                 stage="models", optional=True)
            for t in tickers
        ],
    ]


def plan_steps(tickers: Sequence[str]) -> list[Step]:
    return [*data_steps(tickers), *model_steps(tickers)]
