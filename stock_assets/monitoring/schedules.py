"""The schedules: the daily forecast loop, and a monthly refresh of every child model.

daily_schedule, every weekday evening after the US close, forecasts, scores and checks.

One daily_job run per session forecasts, scores and checks the whole universe (the daily assets
are panels: one partition per date). The day's prices and Feast features are brought in by
daily_ingestion_sensor right after the close (one run for every ticker); daily_forecast refuses to forecast from a stale
window ("prices for D not ingested yet") and the daily job retries it later, so a late vendor
delays a forecast instead of producing a wrong one.

monthly_retrain_schedule retrains every ticker's child model on the month's first session, so a
model that never fails a check still learns from the latest month (the retraining sensor only
reacts to failures). Children only: the parent is retrained by parent_retrain_job on index drift,
and parent_retrain_children_sensor then retrains the children from it.
"""

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

import dagster as dg

from stock_assets.contract import DAILY_DATE_TAG
from stock_assets.execution import DAILY_RUN_TAGS, TRAINING_RUN_TAGS
from stock_assets.market_calendar import is_session, trading_sessions
from stock_assets.monitoring.retraining import RETRAIN_REASON_TAG, RETRAIN_TICKER_TAG
from stock_assets.monitoring.sensors import retrain_run_config
from stock_assets.monitoring_settings import MonitoringSettings
from stock_assets.partitions import ticker_partitions

DAILY_CRON = "30 18 * * 1-5"
MARKET_TIMEZONE = "America/New_York"

# Every weekday evening, after the daily job's 18:30 runs; only the month's first session acts.
MONTHLY_RETRAIN_CRON = "0 20 * * 1-5"
MONTHLY_RETRAIN_REASON = "monthly refresh"


def daily_run_requests(day: date, tickers: Sequence[str]) -> list[dg.RunRequest] | dg.SkipReason:
    """ONE daily_job run for `day` and every registered ticker, or why there is none (a holiday:
    no forecast; no ticker yet)."""
    if not is_session(day):
        return dg.SkipReason(
            f"{day} is not an NYSE session (market holiday): no forecast today; "
            "daily_forecast partitions of non-sessions hold zero rows."
        )
    if not tickers:
        return dg.SkipReason("No ticker partitions are registered yet.")
    return [
        dg.RunRequest(
            partition_key=day.isoformat(),
            run_key=f"daily-{day.isoformat()}",
            tags={**DAILY_RUN_TAGS, DAILY_DATE_TAG: day.isoformat()},
        )
    ]


def build_daily_schedule(daily_job) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_schedule",
        cron_schedule=DAILY_CRON,
        execution_timezone=MARKET_TIMEZONE,
        job=daily_job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            "Weekdays 18:30 New York: forecast, score and check every ticker for the day's "
            "session (with daily_ingestion_sensor on for the prices); holidays are skipped."
        ),
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.astimezone(ZoneInfo(MARKET_TIMEZONE)).date()
        return daily_run_requests(
            day, context.instance.get_dynamic_partitions(ticker_partitions.name)
        )

    return daily_schedule


def is_first_session_of_month(day: date) -> bool:
    """Whether `day` is a session and no session of its month comes before it."""
    return is_session(day) and trading_sessions(day.replace(day=1), day).len() == 1


def monthly_retrain_run_requests(
    day: date, tickers: Sequence[str], run_config: dict | None = None
) -> list[dg.RunRequest] | dg.SkipReason:
    """One retrain_job run per ticker on the month's first session, or why there is none."""
    if not is_first_session_of_month(day):
        return dg.SkipReason(
            f"{day} is not the first NYSE session of {day:%Y-%m}: the monthly retrain runs "
            "only on that session."
        )
    if not tickers:
        return dg.SkipReason("No ticker partitions are registered yet: nothing to retrain.")
    month = f"{day:%Y-%m}"
    return [
        dg.RunRequest(
            partition_key=ticker,
            run_key=f"monthly-retrain-{month}-{ticker}",
            tags={
                **TRAINING_RUN_TAGS,
                RETRAIN_REASON_TAG: MONTHLY_RETRAIN_REASON,
                RETRAIN_TICKER_TAG: ticker,
            },
            run_config=run_config or {},
        )
        for ticker in tickers
    ]


def build_monthly_retrain_schedule(retrain_job) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="monthly_retrain_schedule",
        cron_schedule=MONTHLY_RETRAIN_CRON,
        execution_timezone=MARKET_TIMEZONE,
        job=retrain_job,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=(
            "First NYSE session of each month, 20:00 New York: retrains every ticker's child "
            "model (retrain_job), failing check or not; other weekdays are skipped. The parent is "
            "retrained by parent_retrain_job on index drift, its children then follow."
        ),
    )
    def monthly_retrain_schedule(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.astimezone(ZoneInfo(MARKET_TIMEZONE)).date()
        return monthly_retrain_run_requests(
            day,
            context.instance.get_dynamic_partitions(ticker_partitions.name),
            retrain_run_config(MonitoringSettings.from_env(), parent=False),
        )

    return monthly_retrain_schedule
