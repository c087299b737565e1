"""What a full headless refresh materializes, in data-flow order (used by `python -m stock_assets`).

Each stage adds its steps here; a step whose assets are not in the code location yet is skipped,
so the run command stays true while stages land one by one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date


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


def forecast_steps(tickers: Sequence[str], as_of: Mapping[str, date] | None = None) -> list[Step]:
    """The latest session's daily cycle per ticker: forecast, score and check it (daily_job's work).

    `as_of` defaults to the last session the configured price source has for each ticker.
    """
    if as_of is None:
        from stock_assets.forecasting.sessions import latest_forecast_dates

        as_of = latest_forecast_dates(tickers)
    return [
        Step(f"{t} forecast + performance {as_of[t]}", ("daily_forecast", "forecast_performance"),
             f"{as_of[t].isoformat()}|{t}", stage="forecasts", optional=True)
        for t in tickers
        if t in as_of
    ]


def report_steps(tickers: Sequence[str], as_of: Mapping[str, date] | None = None) -> list[Step]:
    """The agent report per ticker on the session the forecasts stage forecast (same dates)."""
    if as_of is None:
        from stock_assets.forecasting.sessions import latest_forecast_dates

        as_of = latest_forecast_dates(tickers)
    return [
        Step(f"{t} agent report {as_of[t]}", ("agent_report",), f"{as_of[t].isoformat()}|{t}",
             stage="reports", optional=True)
        for t in tickers
        if t in as_of
    ]


def plan_steps(tickers: Sequence[str]) -> list[Step]:
    return [
        *data_steps(tickers), *model_steps(tickers), *forecast_steps(tickers),
        *report_steps(tickers),
    ]
