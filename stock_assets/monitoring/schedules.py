"""The daily schedule: every weekday evening after the US close, forecast, score and check.

Why it targets only the (date, ticker) daily_job: a Dagster job cannot mix partitions definitions,
and ingestion is per ticker. The day's prices and Feast features are brought in by
daily_ingestion_sensor right after the close; daily_forecast refuses to forecast from a stale
window ("prices for D not ingested yet") and the daily job retries it later, so a late vendor
delays a forecast instead of producing a wrong one.
"""

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

import dagster as dg

from stock_assets.calendar import is_session
from stock_assets.execution import DAILY_RUN_TAGS
from stock_assets.partitions import ticker_partitions

DAILY_CRON = "30 18 * * 1-5"
MARKET_TIMEZONE = "America/New_York"
DAILY_DATE_TAG = "stock_assets/daily_date"


def daily_run_requests(day: date, tickers: Sequence[str]) -> list[dg.RunRequest] | dg.SkipReason:
    """One daily_job run per ticker for `day`, or why there is none (a holiday: no forecast)."""
    if not is_session(day):
        return dg.SkipReason(
            f"{day} is not an NYSE session (market holiday): no forecast today; "
            "daily_forecast partitions of non-sessions hold zero rows."
        )
    if not tickers:
        return dg.SkipReason("No ticker partitions are registered yet.")
    return [
        dg.RunRequest(
            partition_key=f"{day.isoformat()}|{ticker}",
            run_key=f"daily-{day.isoformat()}-{ticker}",
            tags={**DAILY_RUN_TAGS, DAILY_DATE_TAG: day.isoformat()},
        )
        for ticker in tickers
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
