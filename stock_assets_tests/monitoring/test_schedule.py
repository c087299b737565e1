"""The daily schedule (holidays included) and the daily ingestion sensor's plan."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest

from stock_assets.market_calendar import last_completed_session
from stock_assets.monitoring.schedules import DAILY_DATE_TAG, daily_run_requests
from stock_assets.monitoring.sensors import INGESTION_DELAY, plan_ingestion

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from stock_assets.definitions import defs

    return defs


def test_a_holiday_produces_no_forecast_and_says_so():
    skip = daily_run_requests(date(2024, 7, 4), ["AAPL", "MSFT"])
    assert isinstance(skip, dg.SkipReason)
    assert (
        "2024-07-04 is not an NYSE session (market holiday): no forecast today" in skip.skip_message
    )


def test_a_session_requests_one_daily_run_for_the_whole_universe():
    requests = daily_run_requests(date(2024, 7, 5), [f"T{i:03d}" for i in range(500)])
    assert [r.partition_key for r in requests] == ["2024-07-05"]
    assert [r.run_key for r in requests] == ["daily-2024-07-05"]
    assert "stock_assets/tickers" not in requests[0].tags  # no tag: every registered ticker
    assert all(
        r.tags["stock_assets/kind"] == "daily" and r.tags[DAILY_DATE_TAG] == "2024-07-05"
        for r in requests
    )
    assert isinstance(daily_run_requests(date(2024, 7, 5), []), dg.SkipReason)


def test_the_schedule_runs_the_daily_job_on_weekday_evenings_in_new_york(defs):
    schedule = defs.resolve_schedule_def("daily_schedule")
    assert schedule.job_name == "daily_job"
    assert schedule.cron_schedule == "30 18 * * 1-5"
    assert schedule.execution_timezone == "America/New_York"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("ticker", ["AAPL", "NVDA"])
        holiday = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2024, 7, 4, 18, 30, tzinfo=NEW_YORK),
        )
        assert schedule.evaluate_tick(holiday).skip_message.startswith(
            "2024-07-04 is not an NYSE session"
        )
        friday = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2024, 7, 5, 18, 30, tzinfo=NEW_YORK),
            repository_def=defs.get_repository_def(),  # resolves partition keys against the job
        )
        requests = schedule.evaluate_tick(friday).run_requests
        assert [r.partition_key for r in requests] == ["2024-07-05"]


def test_ingestion_is_one_run_for_the_stale_tickers_then_feast_once():
    day = date(2024, 7, 5)
    tickers = ["AAPL", "JPM", "MSFT", "NVDA"]
    steps, done = plan_ingestion(day, tickers, up_to_date={"AAPL", "NVDA"}, finished_run_keys=set())
    assert not done
    assert [(s.job_name, s.partition_key, s.run_key) for s in steps] == [
        ("market_data_job", None, "ingest-2024-07-05-GSPC"),
        ("ticker_data_job", None, "ingest-2024-07-05-universe"),
    ]
    # one single-run backfill over the stale range (JPM..MSFT), not one run per ticker
    assert dict(steps[1].tags) == {
        "dagster/asset_partition_range_start": "JPM",
        "dagster/asset_partition_range_end": "MSFT",
    }
    # The universe run finished (MSFT failed its rules, still stale): Feast goes ahead.
    steps, done = plan_ingestion(
        day,
        tickers,
        up_to_date={"AAPL", "JPM", "NVDA", "GSPC"},
        finished_run_keys={"ingest-2024-07-05-universe"},
    )
    assert done and [(s.job_name, s.run_key) for s in steps] == [("feast_job", "feast-2024-07-05")]


def test_the_ingestion_sensor_requests_only_what_the_lake_lacks(defs, tmp_path: Path):
    from stock_assets.lake import LakeResource

    session = last_completed_session(datetime.now(UTC) - INGESTION_DELAY)
    lake = LakeResource(base_dir=str(tmp_path))
    lake.write(pl.DataFrame({"date": [session], "close": [1.0]}), "raw_prices", "AAPL")
    lake.write(
        pl.DataFrame({"date": [session - timedelta(days=7)], "close": [1.0]}), "raw_prices", "MSFT"
    )
    sensor = defs.resolve_sensor_def("daily_ingestion_sensor")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("ticker", ["AAPL", "MSFT"])
        context = dg.build_sensor_context(instance=instance, resources={"lake": lake})
        result = sensor(context)
    assert sorted((r.job_name, r.tags.get("dagster/asset_partition_range_start"))
                  for r in result.run_requests) == [
        ("market_data_job", None),
        ("ticker_data_job", "MSFT"),
    ]
    assert result.cursor is None  # the day is not done until Feast is requested
