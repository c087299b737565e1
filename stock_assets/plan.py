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
    tags: tuple[tuple[str, str], ...] = ()  # run tags, e.g. a partition range (a back-test)
    checks: bool = True  # also run the assets' checks
    refit_every: int | None = None  # a walk-forward back-test: daily_forecast's refit_every

    def run_config(self) -> dict:
        """The step's op config (run config "ops"), beside the CLI's logging config."""
        if self.refit_every is None:
            return {}
        return {"daily_forecast": {"config": {"refit_every": self.refit_every}}}


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


# Sessions back-tested before the latest one, so that the performance log, its rolling metrics and
# the forecast_mape check have matured forecasts to judge right after the first run (the default
# rolling window, STOCK_ASSETS_ROLLING_WINDOW).
WARMUP_SESSIONS = 20


def warmup_range(day: date, sessions: int = WARMUP_SESSIONS) -> tuple[date, date] | None:
    """The `sessions` trading sessions before `day`, clipped to the first forecast partition."""
    from datetime import timedelta

    from stock_assets.calendar import trading_sessions
    from stock_assets.partitions import FORECAST_START_DATE

    first = max(date.fromisoformat(FORECAST_START_DATE), day - timedelta(days=2 * sessions + 10))
    before = trading_sessions(first, day - timedelta(days=1)).tail(sessions)
    return (before[0], before[-1]) if sessions > 0 and len(before) else None


def backtest_step(
    ticker: str, start: date | str, end: date | str, refit_every: int | None = None
) -> Step:
    """daily_forecast + forecast_performance of one ticker over start..end in ONE run (a
    single-run backfill, by partition-range tags), without checks like any back-test; with
    `refit_every` K, a walk-forward (a child refitted every K sessions on earlier data only).
    Validates the ticker, the dates and K."""
    from stock_assets.forecasting.backtest import BACKTEST_ASSETS, BACKTEST_TAG, backtest_tags

    if refit_every is not None and refit_every < 1:
        raise ValueError(f"--refit-every must be a positive number of sessions, got {refit_every}")
    tags = backtest_tags(ticker, start, end)
    kind = f"walk-forward (refit every {refit_every})" if refit_every else "back-test"
    return Step(
        f"{tags[BACKTEST_TAG]} {kind} {start}..{end}", BACKTEST_ASSETS, stage="forecasts",
        optional=True, tags=tuple(tags.items()), checks=False, refit_every=refit_every,
    )


def forecast_steps(
    tickers: Sequence[str],
    as_of: Mapping[str, date] | None = None,
    warmup_sessions: int = WARMUP_SESSIONS,
) -> list[Step]:
    """Per ticker: a single-run back-test of the `warmup_sessions` before the latest session (no
    checks, like any back-test), then the latest session's daily cycle: forecast, score and check
    it (daily_job's work). `as_of` defaults to the last session the price source has per ticker.
    """
    from stock_assets.forecasting.backtest import BACKTEST_ASSETS

    if as_of is None:
        from stock_assets.forecasting.sessions import latest_forecast_dates

        as_of = latest_forecast_dates(tickers)
    steps = []
    for t in tickers:
        if t not in as_of:
            continue
        warmup = warmup_range(as_of[t], warmup_sessions)
        if warmup is not None:
            steps.append(backtest_step(t, *warmup))
        steps.append(Step(
            f"{t} forecast + performance {as_of[t]}", BACKTEST_ASSETS,
            f"{as_of[t].isoformat()}|{t}", stage="forecasts", optional=True,
        ))
    return steps


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
