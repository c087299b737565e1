"""What a full headless refresh launches, in data-flow order (used by `python -m stock_assets`).

The plan is a list of stages, each a list of launches of the code location's REAL jobs (the same
jobs the UI, the schedules and the sensors launch), so there is no second list of asset selections
to keep in step. Launches within a stage are independent and run in parallel (see launcher.py);
stages run one after another, because each reads what the one before wrote.

    data       market_data_job (^GSPC) + ticker_data_job over ticker ranges (one run per range)
    feast      feast_job
    tuning     tuning_job: a few more trials of the parent's Optuna study (--tuning-trials, 0: none)
    parent     parent_retrain_job (with the study's best trial; the children inherit its optimiser)
    children   retrain_job, one run per ticker
    forecasts  daily_job over the warm-up sessions (one single-run back-test, no checks), then
               daily_job for the latest session (checks on), per chunk of tickers
    reports    reports_job for the latest session, per chunk of tickers
    strategy   strategy_job, one run per ticker (its trading back-test over the performance log)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from stock_assets.contract import (
    DAILY_FORECAST,
    DAILY_JOB,
    FEAST_JOB,
    MARKET_DATA_JOB,
    MARKET_INDEX_PRICES,
    MODEL_HYPERPARAMETERS,
    PARENT_RETRAIN_JOB,
    RAW_PRICES,
    REPORTS_JOB,
    RETRAIN_JOB,
    STRATEGY_JOB,
    TICKER_DATA_JOB,
    TUNING_JOB,
)

STAGES = ("data", "models", "forecasts", "reports", "strategy")


@dataclass(frozen=True)
class Launch:
    """One run of a real job: at most one partition key, or a range by tags."""

    label: str
    job: str
    partition_key: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    ops: tuple[tuple[str, tuple[tuple[str, object], ...]], ...] = ()  # op -> config items

    def run_config(self) -> dict:
        return {"ops": {op: {"config": dict(items)} for op, items in self.ops}} if self.ops else {}


@dataclass(frozen=True)
class Stage:
    name: str  # progress label
    group: str  # one of STAGES (what --stages selects)
    launches: tuple[Launch, ...] = field(default_factory=tuple)


def chunks(items: Sequence[str], parts: int) -> list[list[str]]:
    """`items` cut into at most `parts` contiguous, nearly equal chunks (none empty)."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return [c for c in out if c]


def _range_tags(first: str, last: str) -> tuple[tuple[str, str], ...]:
    from stock_assets.compat import partition_range_tags

    return tuple(partition_range_tags(first, last).items())


def data_stages(
    order: Sequence[str], tickers: Sequence[str], workers: int, refetch_days: int = 0
) -> list[Stage]:
    """^GSPC, then the tickers in contiguous ranges of the instance's partition order; with
    `refetch_days`, both re-read their last N stored days and report corrections."""
    wanted = [t for t in order if t in set(tickers)]
    index_ops = ((MARKET_INDEX_PRICES, (("refetch_days", refetch_days),)),) if refetch_days else ()
    ticker_ops = ((RAW_PRICES, (("refetch_days", refetch_days),)),) if refetch_days else ()
    launches = [Launch("^GSPC prices + indicators", MARKET_DATA_JOB, ops=index_ops)]
    for chunk in _contiguous_chunks(order, wanted, workers):
        label = f"{_names(chunk)} prices + indicators"
        launches.append(Launch(label, TICKER_DATA_JOB, tags=_range_tags(chunk[0], chunk[-1]),
                               ops=ticker_ops))
    return [
        Stage("data", "data", tuple(launches)),
        Stage("feast", "data", (Launch("Feast offline table + online store", FEAST_JOB),)),
    ]


def _names(chunk: Sequence[str]) -> str:
    return chunk[0] if len(chunk) == 1 else f"{chunk[0]}..{chunk[-1]} ({len(chunk)} tickers)"


def _contiguous_chunks(order: Sequence[str], wanted: Sequence[str], parts: int) -> list[list[str]]:
    """Chunks of `wanted` that are contiguous runs of `order` (a partition range covers every
    partition between its ends, so a gap in the selection splits a range)."""
    runs: list[list[str]] = []
    chosen = set(wanted)
    for ticker in order:
        if ticker in chosen:
            if runs and runs[-1][-1] == order[order.index(ticker) - 1]:
                runs[-1].append(ticker)
            else:
                runs.append([ticker])
    per_run = max(1, parts // max(1, len(runs)))
    return [chunk for run in runs for chunk in chunks(run, per_run)]


# On a parent run whose children the same plan trains next: parent_retrain_children_sensor then
# leaves it alone (else a first run with the daemon up would train every child twice).
CHILDREN_IN_PLAN_TAG = ("stock_assets/children", "trained by the same plan")


def tuning_stages(trials: int | None = None) -> list[Stage]:
    """The parent's Optuna study, `trials` more trials (None: model_hyperparameters' defaults,
    a few trials within its timeout; 0: no tuning stage, the models train with the study's best so
    far). An explicit number of trials runs them all: the default timeout is lifted."""
    if trials is not None and trials < 0:
        raise ValueError(f"--tuning-trials must be at least 0, got {trials}")
    if trials == 0:
        return []
    config = (("n_trials", trials), ("timeout_s", None))
    ops = ((MODEL_HYPERPARAMETERS, config),) if trials is not None else ()
    label = f"^GSPC Optuna study (+{trials} trials)" if trials else "^GSPC Optuna study"
    return [Stage("tuning", "models", (Launch(label, TUNING_JOB, ops=ops),))]


def model_stages(tickers: Sequence[str]) -> list[Stage]:
    return [
        Stage("parent", "models", (Launch("^GSPC sequences + parent model", PARENT_RETRAIN_JOB,
                                          tags=(CHILDREN_IN_PLAN_TAG,)),)),
        Stage(
            "children", "models",
            tuple(Launch(f"{t} sequences + child model", RETRAIN_JOB, t) for t in tickers),
        ),
    ]


# Sessions back-tested before the latest one, so that the performance log, its rolling metrics and
# the forecast_mape check have matured forecasts to judge right after the first run (the default
# rolling window, STOCK_ASSETS_ROLLING_WINDOW).
WARMUP_SESSIONS = 20


def warmup_range(day: date, sessions: int = WARMUP_SESSIONS) -> tuple[date, date] | None:
    """The `sessions` trading sessions before `day`, clipped to the first forecast partition."""
    from stock_assets.market_calendar import trading_sessions
    from stock_assets.partitions import FORECAST_START_DATE

    first = max(date.fromisoformat(FORECAST_START_DATE), day - timedelta(days=2 * sessions + 10))
    before = trading_sessions(first, day - timedelta(days=1)).tail(sessions)
    return (before[0], before[-1]) if sessions > 0 and len(before) else None


def backtest_launch(
    ticker: str, start: date | str, end: date | str, refit_every: int | None = None
) -> Launch:
    """daily_job (daily_forecast + forecast_performance) of one ticker over start..end in ONE run
    (a single-run backfill by partition-range tags), without checks like any back-test; with
    `refit_every` K, a walk-forward (a child refitted every K sessions on earlier data only).
    Validates the ticker, the dates and K."""
    from stock_assets.forecasting.backtest import BACKTEST_TAG, backtest_tags

    if refit_every is not None and refit_every < 1:
        raise ValueError(f"--refit-every must be a positive number of sessions, got {refit_every}")
    tags = backtest_tags(ticker, start, end)
    kind = f"walk-forward (refit every {refit_every})" if refit_every else "back-test"
    ops = ((DAILY_FORECAST, (("refit_every", refit_every),)),) if refit_every else ()
    return Launch(f"{tags[BACKTEST_TAG]} {kind} {start}..{end}", DAILY_JOB,
                  tags=tuple(tags.items()), ops=ops)


def _by_date(as_of: Mapping[str, date]) -> dict[date, list[str]]:
    groups: dict[date, list[str]] = {}
    for ticker, day in sorted(as_of.items()):
        groups.setdefault(day, []).append(ticker)
    return groups


def forecast_stages(
    as_of: Mapping[str, date], workers: int, warmup_sessions: int = WARMUP_SESSIONS
) -> list[Stage]:
    """Per latest date and chunk of tickers: a back-test of the `warmup_sessions` before it (no
    checks, like any back-test), then the date's daily cycle: forecast, score and check."""
    from stock_assets.partitions import tickers_tag

    warmups, latest = [], []
    for day, group in sorted(_by_date(as_of).items()):
        for chunk in chunks(group, workers):
            names = _names(chunk)
            selected = tuple(tickers_tag(chunk).items())
            warmup = warmup_range(day, warmup_sessions)
            if warmup is not None:
                warmups.append(Launch(
                    f"{names} warm-up back-test {warmup[0]}..{warmup[1]}", DAILY_JOB,
                    tags=(*_range_tags(warmup[0].isoformat(), warmup[1].isoformat()), *selected),
                ))
            latest.append(Launch(f"{names} forecast + performance {day}", DAILY_JOB,
                                 day.isoformat(), tags=selected))
    stages = [Stage("warm-up", "forecasts", tuple(warmups))] if warmups else []
    return [*stages, Stage("forecasts", "forecasts", tuple(latest))]


def report_stages(as_of: Mapping[str, date], workers: int) -> list[Stage]:
    """The agent reports of the session the forecasts stage forecast (same dates and chunks)."""
    from stock_assets.partitions import tickers_tag

    launches = []
    for day, group in sorted(_by_date(as_of).items()):
        for chunk in chunks(group, workers):
            names = _names(chunk)
            launches.append(Launch(f"{names} agent reports {day}", REPORTS_JOB, day.isoformat(),
                                   tags=tuple(tickers_tag(chunk).items())))
    return [Stage("reports", "reports", tuple(launches))]


def strategy_stages(tickers: Sequence[str]) -> list[Stage]:
    return [Stage("strategy", "strategy", tuple(
        Launch(f"{t} strategy back-test", STRATEGY_JOB, t) for t in tickers
    ))]


def plan_stages(
    tickers: Sequence[str],
    order: Sequence[str] | None = None,
    as_of: Mapping[str, date] | None = None,
    workers: int = 2,
    groups: Sequence[str] = STAGES,
    refetch_days: int = 0,
    tuning_trials: int | None = None,
) -> list[Stage]:
    """Every stage of a full refresh of `tickers` (`order`: the instance's ticker partitions in
    their order; `as_of`: each ticker's latest session, by default asked of the price source;
    `tuning_trials`: see tuning_stages)."""
    if as_of is None:
        from stock_assets.forecasting.sessions import latest_forecast_dates

        as_of = latest_forecast_dates(tickers)
    stages = [
        *data_stages(order or tickers, tickers, workers, refetch_days),
        *tuning_stages(tuning_trials),
        *model_stages(tickers),
        *forecast_stages(as_of, workers),
        *report_stages(as_of, workers),
        *strategy_stages([t for t in tickers if t in as_of]),
    ]
    return [s for s in stages if s.group in groups and s.launches]
